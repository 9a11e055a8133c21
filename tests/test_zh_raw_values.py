"""The Chinese back office shows labels, never the raw values the code stores.

Every list and show page (the pages ``test_page_queries`` opens, with the same rows) is rendered
in zh_CN as the administrator; the text a user reads there (not the markup, scripts or links)
must not contain an ASCII word that is the value of one of the models' enums or an audit action
or record type, nor the stored name of a built-in role, a permission or a view menu.
"""

from __future__ import annotations

import enum
import re
from html.parser import HTMLParser

import pytest

from app import models
from tests.test_page_queries import PAGES, World, grow

ASCII_WORD = re.compile(r"^[a-z][a-z_]*$")


def _enum_classes() -> list[type[enum.Enum]]:
    import app.models.chat
    import app.models.contracts
    import app.models.crm
    import app.models.documents
    import app.models.ledger
    import app.models.tax

    found = []
    for module in (models, app.models.chat, app.models.contracts, app.models.crm, app.models.documents,
                   app.models.ledger, app.models.tax):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, enum.Enum) and value is not enum.Enum:
                found.append(value)
    return found


def raw_words() -> set[str]:
    """Every stored value a user must never read: enum values that are ASCII words, audit actions,
    the audited record types (table names), and Python's True, False and None."""
    from app.services import audit

    words = {member.value for cls in _enum_classes() for member in cls
             if isinstance(member.value, str) and ASCII_WORD.match(member.value)}
    return words | set(audit.ACTIONS) | set(audit.record_types()) | {"True", "False", "None"}


def security_names(app) -> set[str]:  # noqa: ANN001
    """The stored names of the permissions and the views' view menus (the security screens show
    their labels; the role names are checked on the role and user screens by
    tests/test_security_labels.py: "Agent" is also a word of titles FAB makes up)."""
    from app.services.bootstrap import required_permissions

    pairs = required_permissions(app)
    views = {view for _, view in pairs} | {view.class_permission_name for view in app.appbuilder.baseviews}
    return {perm for perm, _ in pairs} | {name for name in views if ASCII_NAME.match(name)}


ASCII_NAME = re.compile(r"^[A-Za-z][A-Za-z_]*$")  # a class name; "Audit log" is a menu entry's own name


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:  # noqa: ANN001, ARG002
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag) -> None:  # noqa: ANN001
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data) -> None:  # noqa: ANN001
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def raw_values_in(text: str, words: set[str]) -> set[str]:
    return {word for word in re.findall(r"(?<![\w.@/:-])[A-Za-z][A-Za-z_]*(?![\w.@/-])", text) if word in words}


def test_the_check_finds_a_raw_value_in_the_text_but_not_in_markup() -> None:
    html = ('<td class="active">已结束</td><td>least_busy</td><script>var s = "queued";</script>'
            '<a href="/x/closed">x</a>')
    assert raw_values_in(visible_text(html), {"least_busy", "queued", "closed", "active"}) == {"least_busy"}


@pytest.fixture
def world(app) -> World:
    data = World()
    grow(app, data, 2)
    return data


# Besides the pages test_page_queries opens: the forms with a choice of an enum value.
FORMS = ["/chatsitemodelview/add", "/chatsitemodelview/edit/{site}", "/agentgroupmodelview/add",
         "/agentgroupmodelview/edit/{group}", "/agentprofilemodelview/edit/{profile}",
         "/auditlogmodelview/show/{audit}",
         # the security screens: roles, permissions and view menus by their labels
         "/roles/edit/{role}", "/roles/add", "/users/add", "/groups/list/", "/groups/add",
         "/permissions/list/", "/viewmenus/list/", "/permissionviews/list/"]
NOT_CHECKED: tuple[str, ...] = ()


def test_no_page_of_the_chinese_back_office_shows_a_raw_value(app, login_as, world, session) -> None:
    from datetime import date

    from sqlalchemy import func, select

    from app.models.security import AuditLog

    words = raw_words() | security_names(app)
    assert {"least_busy", "queued", "offline", "create", "login_success", "ledger_voucher", "can_list",
            "ClientModelView", "VoucherApi"} <= words
    words -= {user.username for user in app.appbuilder.sm.get_all_users()}  # a name may be any word
    admin, agent = login_as("admin"), login_as("agent")
    values = {**world.ids, "year": date.today().year,
              "audit": session.scalar(select(func.max(AuditLog.id)).where(AuditLog.action == "update"))}
    pages = [(page, roles) for page, roles, _ in PAGES] + [(page, {"admin"}) for page in FORMS]
    found = {}
    for page, roles in pages:
        if NOT_CHECKED and page.startswith(NOT_CHECKED):
            continue
        client = admin if "admin" in roles else agent
        url = page.format(**values)
        response = client.get(url)
        assert response.status_code == 200, url
        raw = raw_values_in(visible_text(response.get_data(as_text=True)), words)
        if raw:
            found[url] = sorted(raw)
    assert not found, "\n".join(f"{url}: {words}" for url, words in found.items())


# --- the label maps are complete --------------------------------------------------------------


def test_every_enum_value_that_is_a_word_has_a_label() -> None:
    from app.views.labels import ENUM_LABELS

    missing = [f"{cls.__name__}.{member.name}" for cls in _enum_classes() for member in cls
               if isinstance(member.value, str) and ASCII_WORD.match(member.value)
               and member not in ENUM_LABELS.get(cls, {})]
    assert not missing, f"no label in app/views/labels.py ENUM_LABELS for {missing}"


def test_every_audit_action_and_record_type_has_a_label() -> None:
    from app.services import audit
    from app.views.audit import ACTION_LABELS, RECORD_TYPE_LABELS

    assert set(audit.ACTIONS) - set(ACTION_LABELS) == set()
    assert audit.record_types() - set(RECORD_TYPE_LABELS) == set()
    assert {"ledger_voucher", "client", "ab_user", "chat_conversation", "ledger_period"} <= audit.record_types()


_ACTION_LITERAL = re.compile(r"""(?:record_event\(\s*[\w.]+,\s*|action=)["']([a-z_]+)["']""")
_ACTION_CONSTANT = re.compile(r"""^[A-Z_]*ACTION\s*=\s*["']([a-z_]+)["']""", re.M)
_OBJECT_TYPE_LITERAL = re.compile(r"""object_type=["']([a-z_]+)["']""")


def test_every_action_and_record_type_the_code_writes_is_registered() -> None:
    """A grep over the code: each ``record_event(session, "…")``, ``action="…"`` and ``…ACTION = "…"``
    names a registered action, each ``object_type="…"`` a registered record type."""
    from app.config import BASE_DIR
    from app.services import audit

    actions, types = set(), set()
    for path in (BASE_DIR / "app").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        actions |= set(_ACTION_LITERAL.findall(source)) | set(_ACTION_CONSTANT.findall(source))
        types |= set(_OBJECT_TYPE_LITERAL.findall(source))
    assert {"login_success", "period_close", "password_changed", "chat_transcript", "chat_retention"} <= actions
    assert actions - set(audit.ACTIONS) == set()
    assert types - audit.record_types() == set()


def test_an_unregistered_audit_action_is_refused(session) -> None:
    from app.services import audit

    with pytest.raises(ValueError, match="made_up"):
        audit.record_event(session, "made_up")


def test_the_audit_log_names_actions_and_record_types_in_chinese(login_as, session) -> None:
    from tests.factories import make_client

    make_client(name="审计测试客户")
    page = visible_text(login_as("admin").get("/auditlogmodelview/list/").get_data(as_text=True))
    assert "新增" in page and "客户" in page  # the client's creation
    assert "登录成功" in page  # the admin's sign-in
    assert not raw_values_in(page, {"create", "client", "login_success"})
