"""The permission matrix: every screen and API endpoint, for every role (and no login).

``EXPECTED`` states who may use each endpoint. The test fails when the application gains an
endpoint that is not in the matrix, so a new screen cannot ship without deciding who sees it.
"""

from __future__ import annotations

import io
import re

import pytest

from app.models.contracts import ContractStatus
from app.models.documents import DocumentType
from app.services.demo import minimal_pdf
from app.services.documents import store_document
from tests.factories import make_bank_account, make_client, make_contact, make_contract, make_service_record
from tests.matrix import (
    chat,
    chat_analytics,
    chat_console,
    chat_faq,
    chat_inbox,
    chat_tools,
    chat_topics,
    leads,
    ledger_api,
    ledger_reports,
    ledger_screens,
    reports,
    staffing,
    tax,
    tax_filings,
    tax_worksheet,
    work_board,
)

MATRIX_MODULES = (ledger_screens, ledger_api, ledger_reports, chat, chat_console, chat_tools, chat_inbox,
                  chat_faq, chat_topics, staffing, chat_analytics, reports, tax, tax_worksheet, tax_filings,
                  work_board, leads)
ROLES = ["anonymous", "agent", "reviewer", "accountant", "manager", "admin"]
A, M, C, R, G = "admin", "manager", "accountant", "reviewer", "agent"
NOBODY: set[str] = set()
USERS = {A, M, C, R, G}


def crud(list_show, add, edit, delete, export=frozenset({A}), download=frozenset({A})) -> dict:
    return {"list": set(list_show), "show": set(list_show), "add": set(add), "edit": set(edit),
            "delete": set(delete), "export_csv": set(export), "download": set(download)}


def security_view(extra: dict | None = None) -> dict:
    view = {"list": {A}, "show": {A}, "add": {A}, "edit": {A}, "delete": {A}}
    view.update(extra or {})
    return view


EXPECTED: dict[str, dict[str, set[str]]] = {
    "ClientModelView": crud({A, M, C, R}, {A, M}, {A, M, C}, {A, M}, export={A, M, C}),
    "ContactModelView": crud({A, M, C, R}, {A, M, C}, {A, M, C}, {A, M, C}),
    "BankAccountModelView": crud({A, M, C}, {A, M, C}, {A, M, C}, {A, M, C}),
    "ServiceRecordModelView": crud({A, M, C, R}, {A, M, C}, {A, M, C}, {A, M, C}),
    "TagModelView": crud({A, M, C, R}, {A, M}, {A, M}, {A, M}),
    "ContractModelView": {**crud({A, M, C}, {A, M}, {A, M}, {A, M}, export={A, M}),
                          "activate": {A, M}, "expire": {A, M}, "terminate": {A, M}, "change": {A, M},
                          "bill": {A, M}},
    "ContractChangeModelView": crud({A, M, C}, NOBODY, NOBODY, NOBODY, export=NOBODY, download=NOBODY),
    "FeeBillModelView": crud({A, M, C}, {A, M}, {A, M}, {A, M}, export={A, M}),
    "PaymentModelView": crud({A, M, C}, {A, M}, {A, M}, {A, M}, export={A, M}),
    "RenewalView": {"list": {A, M, C}},
    "DocumentModelView": crud({A, M, C, R}, {A, M, C}, {A, M, C}, {A, M, C}, download={A, M, C, R}),
    "AuditLogModelView": crud({A, M}, NOBODY, NOBODY, NOBODY, export=NOBODY, download=NOBODY),
    "ClientApi": {"get": {A, M, C, R}, "get_list": {A, M, C, R}, "info": {A, M, C, R},
                  "balance": {A, M, C, R}, "post": {A, M}, "put": {A, M, C}, "delete": {A, M}},
    "ContractApi": {"get": {A, M, C}, "get_list": {A, M, C}, "info": {A, M, C}, "balance": {A, M, C},
                    "post": {A, M}, "put": {A, M}, "delete": {A, M}, "transition": {A, M}},
    "DocumentApi": {"get": {A, M, C, R}, "get_list": {A, M, C, R}, "info": {A, M, C, R},
                    "download": {A, M, C, R}, "put": {A, M, C}, "delete": {A, M}, "upload": {A, M, C}},
    "DeskUserDBModelView": security_view({"userinfo": USERS}),
    "DeskRoleModelView": security_view(),
    # Permissions and view names come from the code: listed, never edited by hand.
    "DeskPermissionModelView": security_view({"show": NOBODY, "add": NOBODY, "edit": NOBODY, "delete": NOBODY}),
    "DeskViewMenuModelView": security_view({"show": NOBODY, "add": NOBODY, "edit": NOBODY, "delete": NOBODY}),
    "DeskPermissionViewModelView": security_view({"show": NOBODY, "add": NOBODY, "edit": NOBODY,
                                                  "delete": NOBODY}),
    "DeskUserGroupModelView": security_view(),
    "UserStatsChartView": {"chart": {A}},
    "DeskResetPasswordView": {"this_form_get": {A}, "this_form_post": {A}},
    "DeskResetMyPasswordView": {"this_form_get": USERS, "this_form_post": USERS},
    "UserInfoEditView": {"this_form_get": USERS, "this_form_post": USERS},
    "MFAAdminView": {"reset": {A}},
    "AccountLockView": {"lift": {A}},
    "AccountLockApi": {"get": {A}, "delete": {A}},
    "MFAView": {"setup": USERS, "disable": USERS, "recovery_codes": USERS},
    "DeskIndexView": {"index": USERS},
    "MenuApi": {"get_menu_data": USERS},
}
for _module in MATRIX_MODULES:
    EXPECTED.update(_module.EXPECTED)
# Reachable without a permission check (login, logout, language, health, docs, static files)
# or not a real operation (FAB's bulk-action endpoints with no action defined).
UNCHECKED = {"DeskAuthDBView", "DeskSecurityApi", "LocaleView", "UtilView", "health", "static",
             "appbuilder", "SwaggerView", "OpenApi", "MFAView.verify",
             "widget"}  # the chat widget's public scripts, loaded by any website
ACTION_ENDPOINTS = {"action", "action_post"}


@pytest.fixture
def objects(app, session, user_id):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    client = make_client(accountant=accountant)
    contract = make_contract(client, status=ContractStatus.active)
    contact = make_contact(client)
    bank = make_bank_account(client)
    record = make_service_record(client)
    document = store_document(session, app.config["UPLOAD_DIR"], app.config["UPLOAD_MAX_BYTES"],
                              client_id=client.id, filename="a.pdf", stream=io.BytesIO(minimal_pdf("x")),
                              doc_type=DocumentType.invoice)
    return {"ClientModelView": client.id, "ClientApi": client.id, "ContractModelView": contract.id,
            "ContractApi": contract.id, "ContactModelView": contact.id, "BankAccountModelView": bank.id,
            "ServiceRecordModelView": record.id, "DocumentModelView": document.id,
            "DocumentApi": document.id, "ContractChangeModelView": contract.changes[0].id,
            "DeskUserDBModelView": user_id("agent"), "MFAAdminView": user_id("agent"),
            "AccountLockView": user_id("agent"), "AccountLockApi": user_id("agent"),
            **{view: pk for module in MATRIX_MODULES for view, pk in module.objects(app, session, user_id).items()}}


def _url(rule, pk: int) -> str:
    url = re.sub(r"<(?:int:)?pk>", str(pk), rule.rule)
    url = re.sub(r"<int:user_id>", str(pk), url)
    url = re.sub(r"<(?:string:)?(?:filename|name)>", "x", url)
    url = re.sub(r"<group_by>", "0", url)
    return re.sub(r"<version>", "v1", url)


def _denied(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and "/login/" in response.headers.get("Location", "")


def _endpoints(app):
    for rule in app.url_map.iter_rules():
        view, _, method = rule.endpoint.partition(".")
        if view in UNCHECKED or rule.endpoint in UNCHECKED:
            continue
        yield rule, view, method


def test_every_endpoint_is_in_the_matrix(app):
    missing = sorted(rule.endpoint for rule, view, method in _endpoints(app)
                     if method not in ACTION_ENDPOINTS and "<string:filename>" not in rule.rule
                     and method not in EXPECTED.get(view, {}))
    assert missing == []


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(app, role, objects, login_as):
    client = app.test_client() if role == "anonymous" else login_as(role)
    wrong = []
    for rule, view, method in sorted(_endpoints(app), key=lambda item: item[0].endpoint):
        pk = objects.get(view, 1)
        url = _url(rule, pk)
        for http in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if http in ("POST", "PUT", "DELETE") and method in ("delete", "put") and role in ("manager",
                                                                                                "admin"):
                continue  # destructive calls by permitted roles are exercised in their own tests
            kwargs = {"json": {}} if view.endswith("Api") and http in ("POST", "PUT") else {}
            response = client.open(url, method=http, **kwargs)
            assert response.status_code != 500, (role, http, url, response.data[:300])
            if method in ACTION_ENDPOINTS or "<string:filename>" in rule.rule:
                continue  # FAB bulk actions and file-column downloads: none exist here (404)
            allowed = role in EXPECTED[view][method]
            if _denied(response) == allowed:
                wrong.append((http, url, response.status_code, "expected " + ("allowed" if allowed else "denied")))
    assert wrong == [], "\n".join(map(str, wrong))
