"""Bring a database to the current schema and make sure roles and permissions exist.

``prepare_database`` is what ``run.py`` and ``flask init-db`` call on every start:

- it applies the Alembic migrations (never ``create_all``), unless the database is at the head
  revision already: the head is read from the migration files' ``revision`` and
  ``down_revision`` lines, so a start with nothing to migrate never imports Alembic (nor
  Flask-Migrate, which ``init_migrations`` binds to the application only when a migration runs);
- it registers every view's permissions (``sync_permissions``): each registered view's
  permissions, each menu entry's ``menu_access``, the pseudo permissions; permissions a view no
  longer has are removed with their grants; the Admin role holds every permission;
- it writes the default permissions of each role from ``app.security.ROLE_SPEC`` (``sync_roles``;
  additively: permissions an Admin added stay; ``flask sync-roles --reset`` restores the defaults
  exactly).

The permission and role sync compare what the application needs with what the database holds in
a few queries and write only the difference in bulk, so a start with nothing to change costs a
handful of SELECTs (Flask-AppBuilder's own sync issues several queries per view). Each function
commits once.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from flask import Flask, current_app
from flask_appbuilder.security.sqla.models import assoc_permissionview_role
from sqlalchemy import delete, insert, inspect, select, text

from app.config import BASE_DIR
from app.extensions import db
from app.security import (
    ALL_CLIENTS,
    CHAT,
    CLIENTS_IN_CHAT,
    CONTACTS_FROM_CHAT,
    LEADS_FROM_CHAT,
    ROLE_SPEC,
    SENSITIVE,
    SUPERVISE,
)

PSEUDO_PERMISSIONS = [ALL_CLIENTS, SENSITIVE, CHAT, SUPERVISE, LEADS_FROM_CHAT, CONTACTS_FROM_CHAT, CLIENTS_IN_CHAT]
EVERYONE_MENUS = ["Account", "Two-factor authentication"]
MIGRATIONS = BASE_DIR / "migrations"


def database_is_empty() -> bool:
    return not inspect(db.engine).has_table("ab_user") or not db.session.execute(
        db.text("SELECT 1 FROM ab_user LIMIT 1")).first()


def init_migrations(app: Flask) -> None:
    """Bind Flask-Migrate to *app* (once): Alembic's ``env.py`` and the ``flask db`` commands need
    it. ``create_app`` leaves it out because importing Flask-Migrate imports Alembic, which a
    start on a database at the head revision never uses."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)


def upgrade(directory: str = str(MIGRATIONS), revision: str = "head") -> None:
    """Flask-Migrate's ``upgrade`` of the current application to *revision*."""
    init_migrations(current_app)
    from flask_migrate import upgrade as flask_migrate_upgrade

    flask_migrate_upgrade(directory=directory, revision=revision)


def _head_revisions() -> set[str]:
    """The head revisions of ``migrations/`` as Alembic finds them (it imports every migration)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return set(ScriptDirectory.from_config(config).get_heads())


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def heads_from_files() -> set[str] | None:
    """The head revisions of ``migrations/`` read from each migration file's module-level
    ``revision = ...`` and ``down_revision = ...`` lines (the revisions no other one revises),
    without importing Alembic or the migrations. ``None`` when a file does not state both as
    literals: Alembic is asked then."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        lines = dict(match.groups() for match in _REVISION_LINE.finditer(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(lines["revision"])
            down = ast.literal_eval(lines["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        downs = list(down) if isinstance(down, tuple | list) else [] if down is None else [down]
        if not isinstance(revision, str) or not all(isinstance(d, str) for d in downs):
            return None
        revisions.add(revision)
        revised.update(downs)
    return (revisions - revised) or None


def database_at_head() -> bool:
    """True when the database's Alembic revision is the head of ``migrations/`` (nothing to apply).
    Compared with ``heads_from_files`` first; only when that differs (or cannot tell) does Alembic
    load its script directory to decide."""
    if not inspect(db.engine).has_table("alembic_version"):
        return False
    current = {row[0] for row in db.session.execute(text("SELECT version_num FROM alembic_version"))}
    db.session.commit()  # end the read transaction before Alembic takes the connection
    return current == heads_from_files() or current == _head_revisions()


def migrate_database() -> None:
    """Apply the migrations that the database lacks (none at all when it is at the head)."""
    if not database_at_head():
        upgrade(directory=str(MIGRATIONS))


# --- permissions --------------------------------------------------------------------------------


def required_permissions(app: Flask) -> set[tuple[str, str]]:
    """Every (permission, view or menu) the application registers: the views' permissions, each
    menu entry's ``menu_access`` and the pseudo permissions."""
    needed: set[tuple[str, str]] = set()
    for baseview in app.appbuilder.baseviews:
        needed.update((perm, baseview.class_permission_name) for perm in baseview.base_permissions or ())
    for category in app.appbuilder.menu.get_list():
        needed.add(("menu_access", category.name))
        needed.update(("menu_access", item.name) for item in category.childs if item.name != "-")
    needed.update(PSEUDO_PERMISSIONS)
    return needed


def _view_names(app: Flask) -> set[str]:
    """The view menus that belong to registered views (every view menu is registered for them,
    even for views without permissions, as Flask-AppBuilder does)."""
    return {baseview.class_permission_name for baseview in app.appbuilder.baseviews}


def _named_ids(model: type, names: Iterable[str]) -> dict[str, int]:
    """``name -> id`` of *model* for *names*, inserting the missing names in one statement."""
    names = set(names)
    found = dict(db.session.execute(select(model.name, model.id)).all())
    missing = sorted(names - found.keys())
    if missing:
        db.session.execute(insert(model), [{"name": name} for name in missing])
        found = dict(db.session.execute(select(model.name, model.id)).all())
    return found


def _permission_views(sm) -> dict[tuple[str, str], int]:  # noqa: ANN001
    """``(permission, view) -> permission_view id`` of every permission view in the database."""
    perm, view, pv = sm.permission_model, sm.viewmenu_model, sm.permissionview_model
    rows = db.session.execute(select(perm.name, view.name, pv.id)
                              .join(perm, perm.id == pv.permission_id).join(view, view.id == pv.view_menu_id))
    return {(p, v): pv_id for p, v, pv_id in rows}


def _grant(role_id: int, pv_ids: Iterable[int]) -> int:
    """Give *role_id* every permission view of *pv_ids* it lacks; the number added."""
    assoc = assoc_permissionview_role
    held = set(db.session.scalars(select(assoc.c.permission_view_id).where(assoc.c.role_id == role_id)))
    missing = sorted(set(pv_ids) - held)
    if missing:
        db.session.execute(insert(assoc), [{"permission_view_id": pv_id, "role_id": role_id} for pv_id in missing])
    return len(missing)


def sync_permissions(app: Flask) -> None:
    """Make the permission rows match the registered views, menus and pseudo permissions (see the
    module docstring); the Admin and Public roles exist and Admin holds every permission. Commits."""
    sm = app.appbuilder.sm
    needed = required_permissions(app)
    roles = _named_ids(sm.role_model, [sm.auth_role_admin, sm.auth_role_public])
    perm_ids = _named_ids(sm.permission_model, {perm for perm, _ in needed})
    view_ids = _named_ids(sm.viewmenu_model, {view for _, view in needed} | _view_names(app))
    existing = _permission_views(sm)
    pv = sm.permissionview_model
    missing = sorted(needed - existing.keys())
    if missing:
        db.session.execute(insert(pv), [{"permission_id": perm_ids[p], "view_menu_id": view_ids[v]}
                                        for p, v in missing])
        existing = _permission_views(sm)
    # A permission a registered view no longer exposes goes, with its grants.
    views = _view_names(app)
    stale = [pv_id for (perm, view), pv_id in existing.items()
             if view in views and (perm, view) not in needed and perm != "menu_access"]
    if stale:
        db.session.execute(delete(assoc_permissionview_role)
                           .where(assoc_permissionview_role.c.permission_view_id.in_(stale)))
        db.session.execute(delete(pv).where(pv.id.in_(stale)))
        existing = {key: pv_id for key, pv_id in existing.items() if pv_id not in stale}
    _grant(roles[sm.auth_role_admin], existing.values())
    db.session.commit()


def _entry_permission(baseview: object) -> tuple[str, str]:
    """The permission that opens *baseview*'s menu entry: the one its default view requires
    (``can_list`` for a model list, ``can_import`` for the voucher import screen …)."""
    default = getattr(baseview, "default_view", "list")
    method = getattr(baseview, default, None)
    name = ((baseview.method_permission_name or {}).get(default) or getattr(method, "_permission_name", None)
            or default)
    return f"can_{name}", baseview.class_permission_name


def _menu_grants(app: Flask, grants_of_role: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Menu entries a role sees: those whose screen it may open (list, or whatever the screen's
    default view requires), and their categories."""
    grants = []
    for category in app.appbuilder.menu.get_list():
        children = []
        for item in category.childs:
            baseview = getattr(item, "baseview", None)
            if baseview is not None and (("can_list", baseview.class_permission_name) in grants_of_role
                                         or _entry_permission(baseview) in grants_of_role):
                children.append(item.name)
        if category.name in EVERYONE_MENUS:
            children.extend(i.name for i in category.childs)
        if children:
            grants.append(("menu_access", category.name))
            grants.extend(("menu_access", name) for name in children)
    return grants


def sync_roles(app: Flask, reset: bool = False) -> None:
    """Create the roles of ``ROLE_SPEC`` and grant their default permissions (with *reset*: exactly
    those). Commits.

    Raises ``RuntimeError`` if the spec names a permission no view registers (a typo would
    otherwise silently grant nothing); nothing is written then.
    """
    sm = app.appbuilder.sm
    existing = _permission_views(sm)
    wanted: dict[str, set[int]] = {}
    for role_name, grants in ROLE_SPEC.items():
        ids = set()
        for perm, view in grants + _menu_grants(app, set(grants)):
            if (perm, view) not in existing:
                db.session.rollback()
                raise RuntimeError(f"role {role_name}: no permission {perm} on {view}")
            ids.add(existing[(perm, view)])
        wanted[role_name] = ids
    roles = _named_ids(sm.role_model, wanted)
    for role_name, ids in wanted.items():
        if reset:
            db.session.execute(delete(assoc_permissionview_role)
                               .where(assoc_permissionview_role.c.role_id == roles[role_name]))
        _grant(roles[role_name], ids)
    db.session.commit()
    db.session.expire_all()  # role objects loaded before see their new permissions


def prepare_database(app: Flask) -> None:
    """Migrate, then sync permissions and roles. Safe to run on every start."""
    migrate_database()
    sync_permissions(app)
    sync_roles(app)
