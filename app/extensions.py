"""Extension singletons, bound to an application by ``create_app``."""

from __future__ import annotations

from flask_appbuilder import AppBuilder
from flask_appbuilder.utils.legacy import get_sqla_class
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

db = get_sqla_class()()
appbuilder = AppBuilder()
migrate = Migrate()
csrf = CSRFProtect()
socketio = SocketIO()
