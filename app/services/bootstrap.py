"""Bring a database to the current schema and make sure roles and permissions exist.

``prepare_database`` is what ``run.py`` and ``flask init-db`` call: it applies the Alembic
migrations (never ``create_all``), registers every view's permissions, and writes the default
permissions of each role from ``app.security.ROLE_SPEC`` (additively: permissions an Admin
added stay; run ``flask sync-roles --reset`` to restore the defaults exactly).
"""

from __future__ import annotations

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import inspect

from app.config import BASE_DIR
from app.extensions import db
from app.security import ALL_CLIENTS, CHAT, ROLE_SPEC, SENSITIVE, SUPERVISE

PSEUDO_PERMISSIONS = [ALL_CLIENTS, SENSITIVE, CHAT, SUPERVISE]
EVERYONE_MENUS = ["Account", "Two-factor authentication"]


def database_is_empty() -> bool:
    return not inspect(db.engine).has_table("ab_user") or not db.session.execute(
        db.text("SELECT 1 FROM ab_user LIMIT 1")).first()


def migrate_database() -> None:
    upgrade(directory=str(BASE_DIR / "migrations"))


def sync_permissions(app: Flask) -> None:
    """Create the permission rows for every registered view, menu and pseudo permission."""
    sm = app.appbuilder.sm
    sm.add_role(sm.auth_role_admin)
    sm.add_role(sm.auth_role_public)
    app.appbuilder.add_permissions(update_perms=True)
    for perm, view in PSEUDO_PERMISSIONS:
        sm.add_permission_view_menu(perm, view)
    admin = sm.find_role(sm.auth_role_admin)
    for pv in db.session.query(sm.permissionview_model).all():
        if pv not in admin.permissions:
            admin.permissions.append(pv)
    db.session.commit()


def _menu_grants(app: Flask, grants_of_role: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Menu entries a role sees: those whose screen it may list, and their categories."""
    grants = []
    for category in app.appbuilder.menu.get_list():
        children = []
        for item in category.childs:
            baseview = getattr(item, "baseview", None)
            if baseview is not None and ("can_list", baseview.class_permission_name) in grants_of_role:
                children.append(item.name)
        if category.name in EVERYONE_MENUS:
            children.extend(i.name for i in category.childs)
        if children:
            grants.append(("menu_access", category.name))
            grants.extend(("menu_access", name) for name in children)
    return grants


def sync_roles(app: Flask, reset: bool = False) -> None:
    """Create the roles of ``ROLE_SPEC`` and grant their default permissions.

    Raises ``RuntimeError`` if the spec names a permission no view registers (a typo would
    otherwise silently grant nothing).
    """
    sm = app.appbuilder.sm
    for role_name, grants in ROLE_SPEC.items():
        role = sm.find_role(role_name) or sm.add_role(role_name)
        if reset:
            role.permissions = []
        for perm, view in grants + _menu_grants(app, set(grants)):
            pv = sm.find_permission_view_menu(perm, view)
            if pv is None:
                raise RuntimeError(f"role {role_name}: no permission {perm} on {view}")
            if pv not in role.permissions:
                role.permissions.append(pv)
    db.session.commit()


def prepare_database(app: Flask) -> None:
    """Migrate, then sync permissions and roles. Safe to run on every start."""
    migrate_database()
    sync_permissions(app)
    sync_roles(app)
