"""What the security screens show for roles, permissions and view menus.

The stored names are keys (``Accountant``, ``can_list``, ``ClientModelView``) and never change;
the screens show what they mean, in the user's language:

* a role by ``ROLE_LABELS`` (a role an Admin created shows its own name);
* a permission by ``PERMISSION_LABELS``, or on an API by ``API_PERMISSION_LABELS`` (``can_post``
  posts a voucher on the voucher screen, and creates a record through an API);
* a view menu by the label of what it names, read from the registered application: a menu entry
  or category by its label; a view by its ``permission_label`` attribute, else its one menu
  entry's label; an API by its ``permission_label`` (the screen it serves), else by the label of
  a screen over the same model, followed by (API);
  Flask-AppBuilder's own views and the permissions not tied to a view by ``OTHER_VIEW_LABELS``.

A name without a label falls back to a readable form of itself; tests/test_security_labels.py
fails listing every role, permission and view menu the application registers that has none.
Labels are read from memory: formatting a page's rows runs no statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Flask, current_app
from flask_appbuilder.api import BaseApi
from flask_babel import gettext, lazy_pgettext
from markupsafe import Markup, escape

ROLE_LABELS = {
    "Admin": lazy_pgettext("role", "Administrator"),
    "Manager": lazy_pgettext("role", "Manager"),
    "Accountant": lazy_pgettext("role", "Accountant"),
    "Reviewer": lazy_pgettext("role", "Reviewer"),
    "Agent": lazy_pgettext("role", "Chat agent"),
    "Public": lazy_pgettext("role", "Public (not signed in)"),
}

PERMISSION_LABELS = {
    # Flask-AppBuilder's screens
    "can_list": lazy_pgettext("permission", "View list"),
    "can_show": lazy_pgettext("permission", "View details"),
    "can_add": lazy_pgettext("permission", "Add"),
    "can_edit": lazy_pgettext("permission", "Edit"),
    "can_delete": lazy_pgettext("permission", "Delete"),
    "can_download": lazy_pgettext("permission", "Download"),
    "can_export": lazy_pgettext("permission", "Export"),
    "menu_access": lazy_pgettext("permission", "Show in menu"),
    "can_this_form_get": lazy_pgettext("permission", "Open the form"),
    "can_this_form_post": lazy_pgettext("permission", "Submit the form"),
    "can_userinfo": lazy_pgettext("permission", "View own user information"),
    "userinfoedit": lazy_pgettext("permission", "Edit own user information"),
    "resetmypassword": lazy_pgettext("permission", "Change own password"),
    "resetpasswords": lazy_pgettext("permission", "Reset users' passwords"),
    "copyrole": lazy_pgettext("permission", "Copy roles"),
    "can_chart": lazy_pgettext("permission", "View charts"),
    # the desk's own
    "can_access": lazy_pgettext("permission", "Access"),
    "can_read": lazy_pgettext("permission", "Read"),
    "can_chat": lazy_pgettext("permission", "Answer visitors"),
    "can_supervise": lazy_pgettext("permission", "Supervise chats"),
    "can_choose": lazy_pgettext("permission", "Choose"),
    "can_open": lazy_pgettext("permission", "Open books"),
    "can_close": lazy_pgettext("permission", "Close periods"),
    "can_reopen": lazy_pgettext("permission", "Reopen"),
    "can_renumber": lazy_pgettext("permission", "Renumber vouchers"),
    "can_review": lazy_pgettext("permission", "Review"),
    "can_unreview": lazy_pgettext("permission", "Cancel review"),
    "can_post": lazy_pgettext("permission", "Post"),
    "can_post_voucher": lazy_pgettext("permission", "Post vouchers"),
    "can_reverse": lazy_pgettext("permission", "Reverse"),
    "can_print": lazy_pgettext("permission", "Print"),
    "can_import": lazy_pgettext("permission", "Import"),
    "can_transition": lazy_pgettext("permission", "Change status"),
    "can_bill": lazy_pgettext("permission", "Bill"),
    "can_upload": lazy_pgettext("permission", "Upload"),
    "can_regenerate": lazy_pgettext("permission", "Regenerate the key"),
    "can_assign": lazy_pgettext("permission", "Assign"),
    "can_reply": lazy_pgettext("permission", "Reply"),
    "can_share": lazy_pgettext("permission", "Share with the team"),
    "can_canned": lazy_pgettext("permission", "Use"),
    "can_links": lazy_pgettext("permission", "Use"),
    "can_lift": lazy_pgettext("permission", "Unlock"),
    "can_reset": lazy_pgettext("permission", "Reset"),
    "can_accrue": lazy_pgettext("permission", "Accrue taxes"),
    "can_generate": lazy_pgettext("permission", "Generate"),
    "can_file": lazy_pgettext("permission", "Mark as filed"),
    "can_pay": lazy_pgettext("permission", "Mark as paid"),
    "can_tick": lazy_pgettext("permission", "Tick off"),
    "can_job": lazy_pgettext("permission", "Run jobs"),
    "can_transcript": lazy_pgettext("permission", "Chat transcripts"),
    "can_create_lead": lazy_pgettext("permission", "Make leads of visitors"),
    "can_link_contact": lazy_pgettext("permission", "Add visitors as client contacts"),
    "can_find_clients": lazy_pgettext("permission", "Find any client from a chat"),
    "can_convert": lazy_pgettext("permission", "Convert to client"),
}

# On an API (Flask-AppBuilder's BaseApi) the HTTP methods.
API_PERMISSION_LABELS = {
    "can_get": lazy_pgettext("API permission", "Read"),
    "can_info": lazy_pgettext("API permission", "Read form information"),
    "can_post": lazy_pgettext("API permission", "Create"),
    "can_put": lazy_pgettext("API permission", "Update"),
    "can_delete": lazy_pgettext("API permission", "Delete"),
}

# View menus that are not the desk's views: Flask-AppBuilder's own, and the permissions of
# app.security that are not tied to one view.
OTHER_VIEW_LABELS = {
    "UserInfoEditView": lazy_pgettext("view menu", "Own user information"),
    "ResetPasswordView": lazy_pgettext("view menu", "Reset a user's password"),
    "ResetMyPasswordView": lazy_pgettext("view menu", "Change own password"),
    "UtilView": lazy_pgettext("view menu", "Page navigation"),
    "LocaleView": lazy_pgettext("view menu", "Language switch"),
    "MenuApi": lazy_pgettext("view menu", "Menu (API)"),
    "OpenApi": lazy_pgettext("view menu", "API description (OpenAPI)"),
    "SwaggerView": lazy_pgettext("view menu", "API documentation"),
    "AllClients": lazy_pgettext("view menu", "Every client (not only one's own)"),
    "ClientSensitiveData": lazy_pgettext("view menu", "Clients' ID and bank account numbers"),
    "LiveChat": lazy_pgettext("view menu", "Live chat"),
}

# A view's permissions are listed in this order: reading first, then writing, then the rest.
_ORDER = {name: i for i, name in enumerate(dict.fromkeys([
    "can_list", "can_show", "can_get", "can_info", "can_add", "can_post", "can_edit", "can_put", "can_delete",
    *PERMISSION_LABELS]))}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def readable_view_name(name: str) -> str:
    """The fallback for a view menu without a label: ``FooBarModelView`` → ``Foo Bar``."""
    base = re.sub(r"(ModelView|View|Api)$", "", name) or name
    return _CAMEL.sub(" ", base)


def readable_permission_name(name: str) -> str:
    """The fallback for a permission without a label: ``can_foo_bar`` → ``foo bar``."""
    return re.sub(r"^can_", "", name).replace("_", " ")


def role_label(name: str) -> str:
    """A role's name as shown: its label, or the name an Admin gave it."""
    label = ROLE_LABELS.get(name)
    return str(label) if label is not None else name


def roles_text(roles: Iterable | None) -> str:
    """A formatter for a list of roles (or groups): their labels, comma separated."""
    return gettext(", ").join(role_label(role.name) for role in roles or ())


def _view_labels(app: Flask) -> tuple[dict[str, object], set[str]]:
    """``name → label`` of every view menu the application can label, and the names of its APIs.
    Built once per application from its registered views and menu."""
    cached = app.extensions.get("desk_view_labels")
    if cached is not None:
        return cached
    appbuilder = app.appbuilder
    labels: dict[str, object] = dict(OTHER_VIEW_LABELS)
    entries: dict[str, set] = {}
    for category in appbuilder.menu.get_list():
        if category.label:
            labels[category.name] = category.label
        for item in category.childs:
            if item.name != "-" and item.label:
                labels[item.name] = item.label
            baseview = getattr(item, "baseview", None)
            if baseview is not None and item.label:
                entries.setdefault(baseview.class_permission_name, set()).add(item.label)
    by_model: dict[type, object] = {}
    apis: set[str] = set()
    later = []
    for view in appbuilder.baseviews:
        name = view.class_permission_name
        own = getattr(view, "permission_label", None)
        if isinstance(view, BaseApi):
            apis.add(name)
        if own is not None:  # an API names the screen it serves
            labels.setdefault(name, _api_label(own) if isinstance(view, BaseApi) else own)
        elif len(entries.get(name, ())) == 1:
            labels[name] = next(iter(entries[name]))
        elif isinstance(view, BaseApi):
            later.append(view)
            continue
        model = getattr(getattr(view, "datamodel", None), "obj", None)
        if model is not None and name in labels and not isinstance(view, BaseApi):
            by_model.setdefault(model, labels[name])
    for view in later:  # an API over a labelled screen's model: that screen's label (API)
        model = getattr(getattr(view, "datamodel", None), "obj", None)
        screen = by_model.get(model)
        if screen is not None:
            labels.setdefault(view.class_permission_name, _api_label(screen))
    app.extensions["desk_view_labels"] = (labels, apis)
    return labels, apis


class _ApiLabel:
    """``客户（接口）``: a screen's label for its API, in the language of the request."""

    def __init__(self, screen: object) -> None:
        self.screen = screen

    def __str__(self) -> str:
        return gettext("%(screen)s (API)", screen=str(self.screen))


def _api_label(screen: object) -> _ApiLabel:
    return _ApiLabel(screen)


def view_menu_label(name: str) -> str:
    """A view menu's name as shown (a readable form of the name when it has no label)."""
    label = _view_labels(current_app)[0].get(name)
    return str(label) if label is not None else readable_view_name(name)


def permission_label(name: str, view_name: str | None = None) -> str:
    """A permission's name as shown; on *view_name*, in that view's meaning (an API's methods)."""
    if view_name is not None and view_name in _view_labels(current_app)[1]:
        label = API_PERMISSION_LABELS.get(name)
        if label is not None:
            return str(label)
    label = PERMISSION_LABELS.get(name, API_PERMISSION_LABELS.get(name))
    return str(label) if label is not None else readable_permission_name(name)


def permission_view_label(permission_view) -> str:  # noqa: ANN001
    """``客户 — 查看列表``: a permission on a view menu as shown."""
    view = permission_view.view_menu.name
    return gettext("%(view)s — %(permission)s", view=view_menu_label(view),
                   permission=permission_label(permission_view.permission.name, view))


def permission_views_text(permission_views: Iterable | None) -> Markup:
    """A formatter for a role's permissions: one line per view menu, ``客户：查看列表、查看详情``,
    the view menus in the order of their labels."""
    grouped: dict[str, list[tuple[int, str]]] = {}
    for pv in permission_views or ():
        view, name = pv.view_menu.name, pv.permission.name
        grouped.setdefault(view_menu_label(view), []).append((_ORDER.get(name, len(_ORDER)),
                                                               permission_label(name, view)))
    lines = [gettext("%(view)s: %(permissions)s", view=view,
                     permissions=gettext(", ").join(label for _, label in sorted(perms)))
             for view, perms in sorted(grouped.items())]
    return Markup("<br>").join(escape(line) for line in lines)


def sorted_permission_views(permission_views: Iterable) -> list:
    """Permission views in the order of their labels (view menu, then permission)."""
    return sorted(permission_views, key=permission_view_label)


def missing_labels(app: Flask, role_names: Iterable[str],
                   permissions: Iterable[tuple[str, str]]) -> list[str]:
    """The role names, permission names and view menu names among those given (and every
    registered view's) that have no label: what a screen would show only in its fallback form."""
    labels, apis = _view_labels(app)
    missing = [f"role {name}" for name in sorted(set(role_names)) if name not in ROLE_LABELS]
    pairs = set(permissions)
    missing += [f"permission {perm} on {view}" for perm, view in sorted(pairs)
                if perm not in PERMISSION_LABELS and not (view in apis and perm in API_PERMISSION_LABELS)]
    views = {view for _, view in pairs} | {view.class_permission_name for view in app.appbuilder.baseviews}
    missing += [f"view menu {name}" for name in sorted(views) if name not in labels]
    return missing
