"""``Idempotency-Key`` on the voucher and import POSTs: a retry returns the first answer and
creates nothing; the same key with another request, or a malformed key, is refused; refusals are
not remembered. Voucher versions over the API: a stale edit, review or post is refused with 409."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import func, select

from app.models.idempotency import IdempotentRequest
from app.models.ledger import Voucher, VoucherState
from app.services import voucher_import as importer
from tests.factories import make_books, make_client, make_voucher, voucher_data


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def book(app):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    return make_books(make_client(accountant=accountant, name="幂等测试有限公司"))


def _vouchers(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Voucher))


def _body(book, **kw) -> dict:
    return {"client_id": book.client_id, **voucher_data(**kw)}


def test_a_retried_voucher_post_returns_the_first_answer_and_creates_nothing(client, session, book, api_token):
    headers = {**api_token("accountant"), "Idempotency-Key": "0d9f2c1e-5b7a-4c1e-9a51-1f7e3c2b8a90"}
    first = client.post("/api/v1/voucher/", json=_body(book, amount="88.00"), headers=headers)
    assert first.status_code == 201, first.json
    assert "Idempotent-Replayed" not in first.headers

    again = client.post("/api/v1/voucher/", json=_body(book, amount="88.00"), headers=headers)

    assert again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _vouchers(session) == 1
    # without a key, the same body is a second voucher
    plain = client.post("/api/v1/voucher/", json=_body(book, amount="88.00"), headers=api_token("accountant"))
    assert plain.status_code == 201 and plain.json["number"] == 2
    assert _vouchers(session) == 2


def test_the_same_key_with_another_request_is_refused_and_writes_nothing(client, session, book, api_token):
    headers = {**api_token("accountant"), "Idempotency-Key": "key-1"}
    assert client.post("/api/v1/voucher/", json=_body(book, amount="10.00"), headers=headers).status_code == 201

    other = client.post("/api/v1/voucher/", json=_body(book, amount="99999.00"), headers=headers)

    assert other.status_code == 422
    assert "already used for a different request" in other.json["errors"]["Idempotency-Key"][0]
    assert _vouchers(session) == 1


def test_keys_belong_to_their_user(client, session, book, api_token):
    mine = client.post("/api/v1/voucher/", json=_body(book), headers={**api_token("accountant"),
                                                                       "Idempotency-Key": "shared"})
    theirs = client.post("/api/v1/voucher/", json=_body(book), headers={**api_token("manager"),
                                                                         "Idempotency-Key": "shared"})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json["id"] != theirs.json["id"]
    assert _vouchers(session) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "带中文的键", "has space", "tab\tkey"])
def test_a_malformed_key_is_refused_and_writes_nothing(client, session, book, api_token, key):
    response = client.post("/api/v1/voucher/", json=_body(book),
                           headers={**api_token("accountant"), "Idempotency-Key": key.encode().decode("latin-1")})
    assert response.status_code == 422, response.json
    assert "Idempotency-Key" in response.json["errors"]
    assert _vouchers(session) == 0
    assert session.scalar(select(func.count()).select_from(IdempotentRequest)) == 0


def test_a_refused_request_is_not_remembered_so_the_corrected_one_goes_through(client, session, book, api_token):
    headers = {**api_token("accountant"), "Idempotency-Key": "fix-and-retry"}
    bad = client.post("/api/v1/voucher/", json=_body(book, summary=""), headers=headers)
    assert bad.status_code == 422 and "summary" in bad.json["errors"]

    # Another body with the same key: the refusal left no trace, so this is a first request.
    good = client.post("/api/v1/voucher/", json=_body(book), headers=headers)

    assert good.status_code == 201 and "Idempotent-Replayed" not in good.headers
    assert _vouchers(session) == 1


def test_concurrent_retries_with_one_key_create_one_voucher(app, session, book, api_token):
    headers = {**api_token("accountant"), "Idempotency-Key": "burst-of-retries"}
    body = _body(book, amount="66.00")
    barrier = threading.Barrier(6)
    answers: list = []

    def send() -> None:
        test_client = app.test_client()
        barrier.wait(timeout=60)
        response = test_client.post("/api/v1/voucher/", json=body, headers=headers)
        answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(answers) == 6
    assert {status for status, _ in answers} == {201}, answers
    assert len({body["id"] for _, body in answers}) == 1
    assert _vouchers(session) == 1


def test_a_retried_import_imports_once(client, session, book, api_token):
    csv = importer.template("csv")  # one voucher of 2026-01
    headers = {**api_token("accountant"), "Idempotency-Key": "import-once"}

    def send():
        return client.post("/api/v1/voucher/import", headers=headers, content_type="multipart/form-data",
                           data={"client_id": str(book.client_id), "file": (io.BytesIO(csv), "v.csv")})

    first, again = send(), send()

    assert first.status_code == 201, first.json
    assert (again.status_code, again.json) == (201, first.json)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _vouchers(session) == 1


# --- versions ---------------------------------------------------------------------------------


def test_an_edit_from_a_stale_version_is_refused(client, session, book, api_token, user_id):
    headers = api_token("accountant")
    draft = make_voucher(book, user_id("accountant"), amount="10.00")
    assert draft.version == 1
    changed = client.put(f"/api/v1/voucher/{draft.id}", json={**_body(book, amount="20.00"), "version": 1},
                         headers=headers)
    assert changed.status_code == 200 and changed.json["version"] == 2

    stale = client.put(f"/api/v1/voucher/{draft.id}", json={**_body(book, amount="30.00"), "version": 1},
                       headers=headers)

    assert stale.status_code == 409
    assert "changed by someone else" in stale.json["errors"]["version"][0]
    session.expire_all()
    assert session.get(Voucher, draft.id).total == 20


def test_a_review_names_the_version_it_approves(client, session, book, api_token, user_id):
    draft = make_voucher(book, user_id("accountant"), amount="10.00")
    client.put(f"/api/v1/voucher/{draft.id}", json=_body(book, amount="99999.00"), headers=api_token("accountant"))
    reviewer = api_token("reviewer")

    stale = client.post(f"/api/v1/voucher/{draft.id}/review", json={"version": 1}, headers=reviewer)
    assert stale.status_code == 409
    session.expire_all()
    assert session.get(Voucher, draft.id).state == VoucherState.draft

    reviewed = client.post(f"/api/v1/voucher/{draft.id}/review", json={"version": 2}, headers=reviewer)
    assert reviewed.status_code == 200
    assert (reviewed.json["state"], reviewed.json["reviewed_version"]) == ("reviewed", 2)
    bad = client.post(f"/api/v1/voucher/{draft.id}/post", json={"version": "²"}, headers=reviewer)
    assert bad.status_code == 422 and "version" in bad.json["errors"]
    posted = client.post(f"/api/v1/voucher/{draft.id}/post", json={"version": 2}, headers=reviewer)
    assert posted.status_code == 200 and posted.json["state"] == "posted"
