"""Extension singletons, bound to an application by ``create_app``.

Flask-AppBuilder is the exception: an ``AppBuilder`` keeps the views it registered, so each
application gets its own (``create_app`` builds it; code reaches it as ``current_app.appbuilder``).
"""

from __future__ import annotations

from flask_appbuilder.utils.legacy import get_sqla_class
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

db = get_sqla_class()()
migrate = Migrate()
csrf = CSRFProtect()
socketio = SocketIO()
