"""Permission checks that read the user's permissions once per request.

FAB asks the database once per check, and a page makes 50-90 of them (one per menu item, per
button, per related view). ``CachedPermissions`` reads the ``(permission, view)`` pairs of a set
of roles with one query into ``flask.g`` and answers the checks from that set. The set is keyed
by the role ids, so two users (or a user whose roles change mid-request) never share a wrong
one; it lives only as long as the request, so a changed role counts from the next request on,
and a request that writes roles, grants or users drops it at once (``_drop_permission_cache``).
Built-in roles (``FAB_ROLES``) are checked as FAB does.
"""

from __future__ import annotations

from flask import g, has_request_context
from flask_appbuilder.security.sqla.models import (
    Group,
    Permission,
    PermissionView,
    Role,
    User,
    ViewMenu,
    assoc_permissionview_role,
)
from sqlalchemy import event, select
from sqlalchemy.orm import Session, joinedload


class CachedPermissions:
    """Mixin for FAB's SQLAlchemy ``SecurityManager`` (put it first in the bases): FAB's checks
    (``has_access``, the menu, public permissions) all come down to the methods below."""

    def load_user(self, pk):  # noqa: ANN001, ANN201
        """The signed-in user with their roles and groups, in one statement."""
        user = self.session.get(self.user_model, int(pk),
                                options=[joinedload(User.roles), joinedload(User.groups)])
        if user and user.is_active:
            return user
        return None

    def role_permissions(self, role_ids: tuple[int, ...]) -> frozenset[tuple[str, str]]:
        """Every ``(permission, view)`` pair granted to any of *role_ids* (database roles).

        Read with one query and kept for the rest of the request (see the module); outside a request
        (CLI, background tasks) it is read every time, since nothing would end the cache.
        """
        cache = _request_cache()
        key = ("roles", role_ids)
        if cache is not None and key in cache:
            return cache[key]
        stmt = (
            select(Permission.name, ViewMenu.name)
            .select_from(assoc_permissionview_role)
            .join(PermissionView, PermissionView.id == assoc_permissionview_role.c.permission_view_id)
            .join(Permission, Permission.id == PermissionView.permission_id)
            .join(ViewMenu, ViewMenu.id == PermissionView.view_menu_id)
            .where(assoc_permissionview_role.c.role_id.in_(role_ids))
        )
        granted = frozenset((perm, view) for perm, view in self.session.execute(stmt)) if role_ids else frozenset()
        if cache is not None:
            cache[key] = granted
        return granted

    def get_public_role(self):  # noqa: ANN201
        """The role of anonymous visitors, read once per request."""
        cache = _request_cache()
        if cache is not None and "public" in cache:
            return cache["public"]
        role = super().get_public_role()
        if cache is not None:
            cache["public"] = role
        return role

    def _db_permissions(self, roles: list) -> frozenset[tuple[str, str]]:
        role_ids = tuple(sorted({role.id for role in roles if role is not None
                                 and role.name not in self.builtin_roles}))
        return self.role_permissions(role_ids)

    def _has_view_access(self, user, permission_name: str, view_name: str) -> bool:  # noqa: ANN001
        return self._roles_have(self.get_user_roles(user), permission_name, view_name)

    def _get_user_permission_view_menus(self, user, permission_name: str,  # noqa: ANN001
                                        view_menus_name: list[str]) -> set[str]:
        roles = [self.get_public_role()] if user is None else self.get_user_roles(user)
        result = {name for role in roles if role is not None and role.name in self.builtin_roles
                  for name in view_menus_name
                  if self._has_access_builtin_roles(role, permission_name, name)}
        result.update(view for perm, view in self._db_permissions(roles) if perm == permission_name)
        return result

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        return self._roles_have([self.get_public_role()], permission_name, view_name)

    def _roles_have(self, roles: list, permission_name: str, view_name: str) -> bool:
        if any(role is not None and role.name in self.builtin_roles
               and self._has_access_builtin_roles(role, permission_name, view_name) for role in roles):
            return True
        return (permission_name, view_name) in self._db_permissions(roles)


_CACHE_KEY = "_desk_permissions"
# A write to any of these may change what someone may do: the request's cache is dropped.
_SECURITY_MODELS = (Role, PermissionView, Permission, ViewMenu, User, Group)


def _request_cache() -> dict | None:
    """The per-request permission cache in ``g``, or ``None`` outside a request."""
    if not has_request_context():
        return None
    cache = g.get(_CACHE_KEY)
    if cache is None:
        cache = {}
        setattr(g, _CACHE_KEY, cache)
    return cache


@event.listens_for(Session, "after_flush")
def _drop_permission_cache(session: Session, flush_context) -> None:  # noqa: ANN001, ARG001
    """A request that changes roles, grants or a user's roles checks the next permission afresh."""
    if not has_request_context() or g.get(_CACHE_KEY) is None:
        return
    if any(isinstance(obj, _SECURITY_MODELS) for obj in (*session.new, *session.dirty, *session.deleted)):
        g.pop(_CACHE_KEY, None)
