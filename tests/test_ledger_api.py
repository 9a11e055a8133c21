"""The voucher and period REST API: shapes, row-level scope, roles, and refusals that write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models.ledger import Period, PeriodStatus, Voucher, VoucherKind, VoucherLine, VoucherState
from app.services import periods
from tests.factories import line, make_books, make_client, make_voucher, voucher_data


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def client(app):
    """A plain test client (each request in its own application context)."""
    return app.test_client()


@pytest.fixture
def book(app):
    """Books of a client of the user ``accountant``."""
    accountant = app.appbuilder.sm.find_user(username="accountant")
    return make_books(make_client(accountant=accountant, name="接口测试有限公司"))


@pytest.fixture
def other_book(app):
    """Books of a client of ``accountant2``: out of ``accountant``'s scope."""
    return make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant2")))


def _counts(session) -> tuple[int, int, int]:
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Voucher)),
            session.scalar(select(func.count()).select_from(VoucherLine)),
            session.scalar(select(func.count()).select_from(Period)))


def _body(book, **kw) -> dict:
    return {"client_id": book.client_id, **voucher_data(**kw)}


# --- create and read ------------------------------------------------------------------------


def test_accountant_creates_a_draft_and_reads_it_back(client, session, book, api_token):
    headers = api_token("accountant")
    response = client.post("/api/v1/voucher/", json=_body(book, amount="1234.50", attachments=2), headers=headers)
    assert response.status_code == 201, response.json
    voucher_id = response.json["id"]
    assert response.json == {"id": voucher_id, "number": 1, "label": "记-1", "period": "2026-01"}

    shown = client.get(f"/api/v1/voucher/{voucher_id}", headers=headers)
    assert shown.status_code == 200
    assert shown.json == {
        "id": voucher_id, "client_id": book.client_id, "client_name": "接口测试有限公司", "period": "2026-01",
        "date": "2026-01-15", "word": "记", "number": 1, "label": "记-1", "summary": "收到货款", "attachments": 2,
        "total": "1234.50", "state": "draft", "kind": "normal", "reversal_of": None, "maker": "accountant",
        "reviewer": None, "poster": None, "reviewed_at": None, "posted_at": None,
        "version": 1, "reviewed_version": None, "made_by_system": False,
        "lines": [
            {"line_no": 1, "account_code": "1001", "account_name": "库存现金", "debit": "1234.50",
             "credit": "0.00", "memo": None},
            {"line_no": 2, "account_code": "5001", "account_name": "主营业务收入", "debit": "0.00",
             "credit": "1234.50", "memo": None},
        ],
    }


def test_browser_session_works_as_well_as_a_token(login_as, book):
    browser = login_as("accountant")
    response = browser.post("/api/v1/voucher/", json=_body(book))
    assert response.status_code == 201
    assert browser.get(f"/api/v1/voucher/{response.json['id']}").json["label"] == "记-1"


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"lines": [line("1001", debit="100"), line("5001", credit="abc")]}, "lines[1].credit", "Not a valid amount."),
    ({"lines": [line("1001", debit="100"), line("5001", credit="100.005")]}, "lines[1].credit",
     "At most two decimal places."),
    ({"lines": [line("1001", debit=100), line("5001", credit=100.0)]}, "lines[1].credit",
     "Amounts must be given as strings, not numbers."),
    ({"lines": [line("1001", debit="100"), line("5001", credit="90")]}, "lines",
     "Debits (100.00) and credits (90.00) do not balance; the difference is 10.00."),
    ({"lines": [line("1001", debit="100"), line("9999", credit="100")]}, "lines[1].account_code",
     "No account 9999 in these books."),
    ({"date": "2026-13-01"}, "date", "A date is written YYYY-MM-DD."),
    ({"word": "X"}, "word", "The voucher word is one of 记, 收, 付, 转."),
    ({"client_id": "abc"}, "client_id", "Give the client's id (a whole number)."),
    ({"client_id": None}, "client_id", "Give the client's id (a whole number)."),
])
def test_bad_input_is_422_naming_the_field_and_writes_nothing(client, session, book, api_token, change, field,
                                                              message):
    before = _counts(session)
    response = client.post("/api/v1/voucher/", json={**_body(book), **change}, headers=api_token("accountant"))
    assert response.status_code == 422
    assert response.json["errors"][field] == [message]
    assert message in response.json["message"]
    assert _counts(session) == before


def test_a_body_that_is_not_an_object_is_422(client, session, api_token):
    before = _counts(session)
    response = client.post("/api/v1/voucher/", json=[1, 2], headers=api_token("accountant"))
    assert response.status_code == 422
    assert response.json["errors"] == {"_": ["The request body must be a JSON object."]}
    assert _counts(session) == before


def test_client_without_books_is_404_naming_the_client(client, session, app, api_token):
    own = make_client(accountant=app.appbuilder.sm.find_user(username="accountant"))
    before = _counts(session)
    response = client.post("/api/v1/voucher/", json={"client_id": own.id, **voucher_data()},
                           headers=api_token("accountant"))
    assert response.status_code == 404
    assert response.json["errors"] == {"client_id": ["This client has no books yet."]}
    assert _counts(session) == before


def test_closed_period_refuses_a_new_voucher_with_409(client, session, book, api_token, user_id):
    periods.close_period(session, book.client_id, "2026-01", user_id("manager"))
    before = _counts(session)
    response = client.post("/api/v1/voucher/", json=_body(book), headers=api_token("accountant"))
    assert response.status_code == 409
    assert response.json["errors"] == {"date": ["The period 2026-01 is closed."]}
    assert _counts(session) == before


# --- scope and roles ------------------------------------------------------------------------


def test_another_accountants_client_answers_404_everywhere_and_nothing_changes(client, session, book, other_book,
                                                                               api_token, user_id):
    foreign = make_voucher(other_book, user_id("accountant2"))
    posted = make_voucher(other_book, user_id("accountant2"), state="posted", reviewer_id=user_id("reviewer"))
    headers = api_token("accountant")
    before = _counts(session)
    calls = [
        ("POST", "/api/v1/voucher/", _body(other_book)),
        ("GET", f"/api/v1/voucher/{foreign.id}", None),
        ("PUT", f"/api/v1/voucher/{foreign.id}", _body(other_book, amount="5.00")),
        ("DELETE", f"/api/v1/voucher/{foreign.id}", None),
        ("POST", f"/api/v1/voucher/{foreign.id}/review", {}),
        ("POST", f"/api/v1/voucher/{posted.id}/reverse", {}),
        ("GET", f"/api/v1/voucher/?client_id={other_book.client_id}", None),
        ("GET", f"/api/v1/period/?client_id={other_book.client_id}", None),
        ("POST", "/api/v1/period/close", {"client_id": other_book.client_id, "period": "2026-01"}),
    ]
    for method, url, body in calls:
        response = client.open(url, method=method, json=body, headers=headers)
        assert response.status_code in (404, 403), (method, url, response.status_code)
        if "review" not in url:  # the accountant has no review permission at all: 403 before scope
            assert response.status_code == 404, (method, url)
    assert _counts(session) == before
    session.expire_all()
    assert session.get(Voucher, foreign.id).total == foreign.total
    listed = client.get("/api/v1/voucher/", headers=headers).json
    assert listed["count"] == 0 and listed["result"] == []
    assert client.get(f"/api/v1/voucher/{foreign.id}", headers=api_token("accountant2")).status_code == 200


def test_unknown_voucher_is_404(client, api_token):
    assert client.get("/api/v1/voucher/987654", headers=api_token("manager")).status_code == 404


def test_reviewer_reads_every_client_but_creates_nothing(client, session, book, other_book, api_token, user_id):
    make_voucher(other_book, user_id("accountant2"))
    headers = api_token("reviewer")
    assert client.get("/api/v1/voucher/", headers=headers).json["count"] == 1
    before = _counts(session)
    assert client.post("/api/v1/voucher/", json=_body(book), headers=headers).status_code == 403
    assert client.post("/api/v1/period/close", json={"client_id": book.client_id, "period": "2026-01"},
                       headers=headers).status_code == 403
    assert _counts(session) == before


def test_agent_has_no_ledger_api(client, session, book, api_token, user_id):
    voucher = make_voucher(book, user_id("accountant"))
    headers = api_token("agent")
    before = _counts(session)
    assert client.get("/api/v1/voucher/", headers=headers).status_code == 403
    assert client.get(f"/api/v1/voucher/{voucher.id}", headers=headers).status_code == 403
    assert client.post("/api/v1/voucher/", json=_body(book), headers=headers).status_code == 403
    assert client.get(f"/api/v1/period/?client_id={book.client_id}", headers=headers).status_code == 403
    assert _counts(session) == before


def test_no_login_is_401(client, book):
    assert client.get("/api/v1/voucher/").status_code == 401


def test_info_lists_what_the_user_may_do(client, api_token):
    accountant = client.get("/api/v1/voucher/_info", headers=api_token("accountant")).json
    reviewer = client.get("/api/v1/voucher/_info", headers=api_token("reviewer")).json
    assert accountant["permissions"] == ["can_delete", "can_get", "can_import", "can_info", "can_post",
                                         "can_post_voucher", "can_put", "can_reverse"]
    assert reviewer["permissions"] == ["can_get", "can_info", "can_post_voucher", "can_review", "can_unreview"]
    assert accountant["words"] == ["记", "收", "付", "转"]
    assert accountant["states"] == ["draft", "reviewed", "posted"]


# --- review, post, reverse ------------------------------------------------------------------


def test_review_unreview_and_post(client, session, book, api_token, user_id):
    voucher = make_voucher(book, user_id("accountant"))
    reviewer = api_token("reviewer")
    reviewed = client.post(f"/api/v1/voucher/{voucher.id}/review", headers=reviewer)
    assert reviewed.status_code == 200
    assert (reviewed.json["state"], reviewed.json["reviewer"]) == ("reviewed", "reviewer")
    assert reviewed.json["reviewed_at"].endswith("Z")
    back = client.post(f"/api/v1/voucher/{voucher.id}/unreview", headers=reviewer)
    assert (back.status_code, back.json["state"], back.json["reviewer"]) == (200, "draft", None)
    client.post(f"/api/v1/voucher/{voucher.id}/review", headers=reviewer)
    posted = client.post(f"/api/v1/voucher/{voucher.id}/post", headers=api_token("accountant"))
    assert posted.status_code == 200
    assert (posted.json["state"], posted.json["poster"], posted.json["reviewer"]) == ("posted", "accountant",
                                                                                      "reviewer")
    session.expire_all()
    assert all(ln.posted for ln in session.get(Voucher, voucher.id).lines)


def test_the_maker_cannot_review_their_own_voucher(client, session, book, api_token):
    headers = api_token("manager")
    created = client.post("/api/v1/voucher/", json=_body(book), headers=headers).json
    response = client.post(f"/api/v1/voucher/{created['id']}/review", headers=headers)
    assert response.status_code == 409
    assert response.json["errors"] == {"_": ["The maker of a voucher cannot review it (制单人 ≠ 审核人)."]}
    session.expire_all()
    assert session.get(Voucher, created["id"]).state == VoucherState.draft


def test_an_accountant_cannot_review(client, session, book, api_token, user_id):
    voucher = make_voucher(book, user_id("manager"))
    assert client.post(f"/api/v1/voucher/{voucher.id}/review", headers=api_token("accountant")).status_code == 403
    session.expire_all()
    assert session.get(Voucher, voucher.id).state == VoucherState.draft


def test_posting_a_draft_is_409_and_changes_nothing(client, session, book, api_token, user_id):
    voucher = make_voucher(book, user_id("accountant"))
    response = client.post(f"/api/v1/voucher/{voucher.id}/post", headers=api_token("reviewer"))
    assert response.status_code == 409
    assert response.json["errors"] == {"_": ["Only a reviewed voucher can be posted."]}
    session.expire_all()
    assert session.get(Voucher, voucher.id).state == VoucherState.draft


def test_reverse_creates_a_negated_draft_with_201(client, session, book, api_token, user_id):
    original = make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"),
                            amount="80.00")
    headers = api_token("accountant")
    response = client.post(f"/api/v1/voucher/{original.id}/reverse", json={"date": "2026-02-03"}, headers=headers)
    assert response.status_code == 201
    body = response.json
    assert (body["kind"], body["state"], body["reversal_of"], body["period"], body["label"]) == (
        "reversal", "draft", original.id, "2026-02", "记-1")
    assert [(ln["account_code"], ln["debit"], ln["credit"]) for ln in body["lines"]] == [
        ("1001", "-80.00", "0.00"), ("5001", "0.00", "-80.00")]
    before = _counts(session)
    again = client.post(f"/api/v1/voucher/{original.id}/reverse", headers=headers)
    assert again.status_code == 409
    assert again.json["errors"] == {"_": ["Voucher 记-1 has already been reversed."]}
    assert _counts(session) == before


def test_reverse_with_a_bad_date_is_422(client, session, book, api_token, user_id):
    original = make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"))
    before = _counts(session)
    response = client.post(f"/api/v1/voucher/{original.id}/reverse", json={"date": "soon"},
                           headers=api_token("manager"))
    assert response.status_code == 422
    assert response.json["errors"] == {"date": ["A date is written YYYY-MM-DD."]}
    assert _counts(session) == before


# --- edit and delete ------------------------------------------------------------------------


def test_put_replaces_a_draft(client, session, book, api_token, user_id):
    voucher = make_voucher(book, user_id("accountant"))
    body = _body(book, amount="55.55", summary="改过的摘要", debit_code="1002")
    response = client.put(f"/api/v1/voucher/{voucher.id}", json=body, headers=api_token("accountant"))
    assert response.status_code == 200
    assert (response.json["id"], response.json["summary"], response.json["total"]) == (voucher.id, "改过的摘要",
                                                                                       "55.55")
    assert [ln["account_code"] for ln in response.json["lines"]] == ["1002", "5001"]


def test_put_refuses_a_reviewed_voucher_and_a_move_to_another_client(client, session, book, other_book, api_token,
                                                                      user_id):
    voucher = make_voucher(book, user_id("accountant"), state="reviewed", reviewer_id=user_id("reviewer"))
    headers = api_token("manager")
    response = client.put(f"/api/v1/voucher/{voucher.id}", json=_body(book, amount="1.00"), headers=headers)
    assert response.status_code == 409
    assert response.json["errors"] == {"_": ["Only a draft can be edited; un-review it first. Posted vouchers are "
                                             "corrected by a reversal."]}
    moved = client.put(f"/api/v1/voucher/{voucher.id}", json=_body(other_book), headers=headers)
    assert moved.status_code == 422
    assert moved.json["errors"] == {"client_id": ["A voucher cannot move to another client."]}
    session.expire_all()
    saved = session.get(Voucher, voucher.id)
    assert (saved.client_id, str(saved.total), saved.state) == (book.client_id, "100.00", VoucherState.reviewed)


def test_delete_removes_a_draft_but_not_a_posted_voucher(client, session, book, api_token, user_id):
    draft = make_voucher(book, user_id("accountant")).id
    posted = make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer")).id
    headers = api_token("accountant")
    assert client.delete(f"/api/v1/voucher/{draft}", headers=headers).json == {"message": "OK"}
    before = _counts(session)
    refused = client.delete(f"/api/v1/voucher/{posted}", headers=headers)
    assert refused.status_code == 409
    assert refused.json["errors"] == {"_": ["Only a draft can be deleted."]}
    assert _counts(session) == before == (1, 2, 0)
    assert client.get(f"/api/v1/voucher/{draft}", headers=headers).status_code == 404


# --- list -----------------------------------------------------------------------------------


def test_list_filters_and_pages(client, book, api_token, user_id):
    maker, checker = user_id("accountant"), user_id("reviewer")
    make_voucher(book, maker)
    make_voucher(book, maker, word="收")
    make_voucher(book, maker, state="reviewed", reviewer_id=checker)
    make_voucher(book, maker, day="2026-02-02")
    headers = api_token("accountant")

    def labels(query: str) -> list[str]:
        response = client.get(f"/api/v1/voucher/?client_id={book.client_id}&{query}", headers=headers)
        assert response.status_code == 200, response.json
        return [f"{row['period']} {row['label']}" for row in response.json["result"]]

    assert labels("period=2026-01") == ["2026-01 记-1", "2026-01 记-2", "2026-01 收-1"]
    assert labels("word=收") == ["2026-01 收-1"]
    assert labels("state=reviewed") == ["2026-01 记-2"]
    assert labels("period=2026-01&page_size=2&page=1") == ["2026-01 收-1"]
    page = client.get("/api/v1/voucher/?page_size=2", headers=headers).json
    assert (page["count"], page["page"], page["page_size"], len(page["result"])) == (4, 0, 2, 2)
    assert "lines" not in page["result"][0] and page["result"][0]["total"] == "100.00"


@pytest.mark.parametrize(("query", "field"), [
    ("period=2026-1", "period"), ("word=Z", "word"), ("state=done", "state"), ("page=-1", "page"),
    ("page_size=500", "page_size"), ("client_id=x", "client_id"),
])
def test_list_refuses_bad_filters_naming_them(client, api_token, query, field):
    response = client.get(f"/api/v1/voucher/?{query}", headers=api_token("manager"))
    assert response.status_code == 422
    assert list(response.json["errors"]) == [field]


# --- periods --------------------------------------------------------------------------------


def test_close_then_reopen_a_period(client, session, book, api_token, user_id):
    make_voucher(book, user_id("accountant"), state="posted", reviewer_id=user_id("reviewer"), amount="300.00")
    body = {"client_id": book.client_id, "period": "2026-01"}
    closed = client.post("/api/v1/period/close", json=body, headers=api_token("accountant"))
    assert closed.status_code == 200, closed.json
    carry_id = closed.json["carry_forward_voucher_id"]
    assert closed.json == {"client_id": book.client_id, "period": "2026-01", "status": "closed",
                           "carry_forward_voucher_id": carry_id}
    session.expire_all()
    assert session.get(Voucher, carry_id).kind == VoucherKind.carry_forward

    listed = client.get(f"/api/v1/period/?client_id={book.client_id}", headers=api_token("reviewer")).json
    assert (listed["start_period"], listed["latest_closed"]) == ("2026-01", "2026-01")
    assert [(p["period"], p["status"], p["version"], p["closed_by"]) for p in listed["result"]] == [
        ("2026-01", "closed", 1, "accountant")]

    again = client.post("/api/v1/period/close", json=body, headers=api_token("manager"))
    assert (again.status_code, again.json["errors"]) == (409, {"period": ["The period 2026-01 is already closed."]})

    reopened = client.post("/api/v1/period/reopen", json=body, headers=api_token("manager"))
    assert reopened.status_code == 200
    assert reopened.json == {"client_id": book.client_id, "period": "2026-01", "status": "open",
                             "carry_forward_voucher_id": None}
    session.expire_all()
    assert session.get(Voucher, carry_id) is None
    assert client.get(f"/api/v1/period/?client_id={book.client_id}",
                      headers=api_token("manager")).json["result"] == []


def test_close_lists_every_unmet_precondition_and_writes_nothing(client, session, book, api_token, user_id):
    make_voucher(book, user_id("accountant"), day="2026-02-10")
    before = _counts(session)
    response = client.post("/api/v1/period/close", json={"client_id": book.client_id, "period": "2026-02"},
                           headers=api_token("accountant"))
    assert response.status_code == 409
    assert response.json["errors"] == {"period": ["Close the previous period 2026-01 first.",
                                                  "1 voucher(s) of this period are not posted yet."]}
    assert _counts(session) == before


@pytest.mark.parametrize("role", ["accountant", "reviewer", "agent"])
def test_only_manager_and_admin_reopen(client, session, book, api_token, user_id, role):
    periods.close_period(session, book.client_id, "2026-01", user_id("manager"))
    response = client.post("/api/v1/period/reopen", json={"client_id": book.client_id, "period": "2026-01"},
                           headers=api_token(role))
    assert response.status_code == 403
    session.expire_all()
    assert session.scalar(select(Period.status).where(Period.book_id == book.id)) == PeriodStatus.closed


def test_period_requests_are_checked(client, session, book, api_token):
    headers = api_token("manager")
    before = _counts(session)
    bad = client.post("/api/v1/period/close", json={"client_id": book.client_id, "period": "2026-13"},
                      headers=headers)
    assert (bad.status_code, bad.json["errors"]) == (422, {"period": ["A period is written YYYY-MM, for example "
                                                                      "2026-03."]})
    missing = client.post("/api/v1/period/close", json={}, headers=headers)
    assert missing.status_code == 422 and set(missing.json["errors"]) == {"client_id", "period"}
    assert client.get("/api/v1/period/", headers=headers).status_code == 422
    assert client.post("/api/v1/period/close", json={"client_id": 987654, "period": "2026-01"},
                       headers=headers).status_code == 404
    assert _counts(session) == before


def test_the_openapi_document_describes_the_ledger_api(client, api_token):
    spec = client.get("/api/v1/_openapi", headers=api_token("admin")).json
    for path in ("/voucher/", "/voucher/{pk}", "/voucher/{pk}/review", "/voucher/{pk}/post", "/voucher/import",
                 "/period/close", "/period/reopen"):
        assert "/api/v1" + path in spec["paths"], path
    assert {"VoucherIn", "VoucherOut", "LedgerError", "PeriodOut"} <= set(spec["components"]["schemas"])
