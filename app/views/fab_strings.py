"""Flask-AppBuilder's own screen texts that the desk's catalog translates.

FAB ships a ``zh`` catalog; under zh_CN gettext reads it first and then the desk's catalog, whose
entries win. A FAB text that FAB's catalog leaves untranslated, or that the desk also uses, is
therefore shown in the desk's translation on FAB's screens too: each is listed here, so that
extraction keeps it in the desk's catalog in FAB's meaning (``Show`` is 查看 on a list row; the
report forms' button says ``pgettext("form button", "Show")`` 查询).
tests/test_translations.py fails on a FAB text the desk translates that is not listed here.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

FAB_STRINGS = (
    # the row and record buttons (templates/appbuilder/general/lib.html)
    _l("Show"), _l("Add"), _l("Edit"), _l("Delete"), _l("Back"), _l("Save"), _l("Search"),
    _l("Are you sure you want to delete this item?"), _l("User confirmation needed"),
    # list filters
    _l("Equal to"), _l("Greater than"), _l("Smaller than"), _l("Contains (insensitive)"), _l("Start with"),
    _l("In"), _l("Not In"),
    # users, roles and groups (security/views.py, security/forms.py)
    _l("Name"), _l("Email"), _l("Password"), _l("Passwords must match"), _l("Security"), _l("Groups"),
    _l("Edit User Information"), _l("User information changed"),
    _l("The user's password for authentication"),
    _l("It's not a good policy to remove a user, just make it inactive"),
    _l("User(s) exists in the role, cannot delete"), _l("User(s) exists in the group, cannot delete"),
    _l("Either select a role or a group"),
    _l("List Groups"), _l("Show Group"), _l("Add Group"), _l("Edit Group"), _l("Users"),
    # (FAB builds this one with lazy_formatter_gettext, which extraction does not see)
    _l("The user group on the application, this will associate with a list of roles associated with the group"),
    # FAB's form and database errors
    _l("This field is required."), _l("Database Error"),
)
