"""Odd input is a clear 4xx in one shape, never a server error, and writes nothing: ids in URLs,
numbers in queries and bodies, deeply nested JSON, NUL characters; and every API error answer is
``{"message", "errors"}``."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from app.models.crm import Client
from app.models.ledger import Voucher
from app.services.inputs import parse_count, parse_id
from tests.factories import make_books, make_client, voucher_data


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def client(app):
    return app.test_client()


def _count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def _one_shape(response) -> None:
    assert response.is_json, response.data[:200]
    assert set(response.json) == {"message", "errors"}, response.json
    assert isinstance(response.json["message"], str) and response.json["message"]
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in response.json["errors"].values())


@pytest.mark.parametrize("value, expected", [
    (1, 1), ("42", 42), (" 7 ", 7), (2**31 - 1, 2**31 - 1), (2**31, None), ("2147483648", None), (0, None),
    (-1, None), ("²", None), ("٣", None), ("1e3", None), (1.0, None), (True, None), ("", None), (None, None),
    ("99999999999999999999", None)])
def test_an_id_is_ascii_digits_within_the_column(value, expected):
    assert parse_id(value) == expected


@pytest.mark.parametrize("value, expected", [
    (None, 5), ("", 5), ("0", 0), ("12", 12), (12, 12), ("²", None), ("-1", None), ("1.5", None), (False, None),
    ("101", None)])
def test_a_count_is_ascii_digits_up_to_its_maximum(value, expected):
    assert parse_count(value, 5, 100) == expected


@pytest.mark.parametrize("path", ["/api/v1/voucher/²", "/api/v1/voucher/٣", "/api/v1/voucher/2147483648",
                                  "/api/v1/client/9223372036854775808", "/api/v1/client/99999999999999999999"])
def test_an_id_in_the_url_that_no_row_can_have_is_a_json_404(client, api_token, path):
    response = client.get(path, headers=api_token("admin"))
    assert response.status_code == 404
    _one_shape(response)


def test_an_id_on_a_screen_that_no_row_can_have_is_404_not_a_server_error(login_as):
    assert login_as("manager").get("/ledger/vouchers/show/2147483648").status_code == 404


@pytest.mark.parametrize("query, field", [("page=²", "page"), ("page_size=٣", "page_size"), ("page=1.5", "page"),
                                          ("client_id=²", "client_id")])
def test_numbers_in_a_query_are_ascii_digits(client, api_token, query, field):
    response = client.get(f"/api/v1/voucher/?{query}", headers=api_token("admin"))
    assert response.status_code == 422
    _one_shape(response)
    assert field in response.json["errors"]


def test_a_client_id_out_of_range_in_a_body_is_no_client_and_writes_nothing(client, api_token, session):
    for client_id in (3536636349913385402368, 2**31, "9223372036854775808"):
        response = client.post("/api/v1/voucher/", json={**voucher_data(), "client_id": client_id},
                               headers=api_token("admin"))
        assert response.status_code == 404, (client_id, response.json)
        _one_shape(response)
    assert _count(session, Voucher) == 0


def test_attachments_given_in_superscript_digits_are_refused(client, api_token, session, app):
    book = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant")))
    response = client.post("/api/v1/voucher/", json={**voucher_data(attachments="²"), "client_id": book.client_id},
                           headers=api_token("accountant"))
    assert response.status_code == 422 and "attachments" in response.json["errors"]
    assert _count(session, Voucher) == 0


@pytest.mark.parametrize("path", ["/api/v1/voucher/", "/api/v1/client/"])
def test_json_nested_fifty_thousand_deep_is_refused_as_a_client_error(client, api_token, session, path):
    response = client.post(path, data=b"[" * 50_000 + b"]" * 50_000,
                           headers={**api_token("admin"), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
    _one_shape(response)
    assert _count(session, Client) == 0


@pytest.mark.parametrize("where", ["json value", "json key", "query", "form"])
def test_a_nul_character_anywhere_is_refused_before_anything_is_written(client, api_token, session, where):
    headers = api_token("admin")
    if where == "json value":
        response = client.post("/api/v1/client/", json={"name": "坏\x00名字"}, headers=headers)
    elif where == "json key":
        response = client.post("/api/v1/client/", json={"na\x00me": "x"}, headers=headers)
    elif where == "query":
        response = client.get("/api/v1/voucher/?period=2026-01%00", headers=headers)
    else:
        response = client.post("/api/v1/voucher/import", data={"client_id": "1\x00"}, headers=headers)
    assert response.status_code == 400
    _one_shape(response)
    assert response.json["message"] == "Text may not contain the NUL character."
    assert _count(session, Client) == 0


@pytest.mark.parametrize("method, path, body, status", [
    ("get", "/api/v1/nothing-here", None, 404),
    ("delete", "/api/v1/voucher/", None, 405),
    ("get", "/api/v1/client/123456", None, 404),
    ("post", "/api/v1/client/", {"name": ""}, 422),
    ("post", "/api/v1/contract/", {"monthly_fee": 1.5}, 422),
])
def test_every_api_error_has_one_shape(client, api_token, method, path, body, status):
    response = getattr(client, method)(path, json=body, headers=api_token("admin"))
    assert response.status_code == status, response.json
    _one_shape(response)


def test_fab_field_errors_are_moved_under_errors(client, api_token):
    response = client.post("/api/v1/client/", json={"name": "x", "status": "nonsense"}, headers=api_token("admin"))
    assert response.status_code == 422
    _one_shape(response)
    assert "status" in response.json["errors"]


@pytest.mark.parametrize("authorization", ["Bearer abc.def.ghi", "Bearer x", "Basic YWRtaW46eA==", None])
def test_a_missing_or_invalid_token_is_401_in_the_one_shape(client, authorization):
    response = client.get("/api/v1/voucher/", headers={"Authorization": authorization} if authorization else {})
    assert response.status_code == 401
    _one_shape(response)
    assert "Authorization" in response.json["errors"]


def test_one_bad_client_id_gets_one_answer_from_every_endpoint(client, api_token):
    """The same malformed ``client_id`` sent to the voucher list, voucher entry, voucher import,
    period close, document upload and report APIs: the same status and the same shape, naming
    the field."""
    headers = api_token("admin")
    answers = {
        "voucher list": client.get("/api/v1/voucher/?client_id=abc", headers=headers),
        "voucher entry": client.post("/api/v1/voucher/", json={**voucher_data(), "client_id": "abc"}, headers=headers),
        "voucher import": client.post("/api/v1/voucher/import", data={"client_id": "abc"}, headers=headers),
        "period close": client.post("/api/v1/period/close", json={"client_id": "abc", "period": "2026-01"},
                                    headers=headers),
        "document upload": client.post("/api/v1/document/upload", headers=headers,
                                       data={"client_id": "abc", "file": (io.BytesIO(b"%PDF-1.4\n"), "a.pdf")}),
        "trial balance": client.get("/api/v1/reports/trial-balance?client_id=abc&period=2026-01", headers=headers),
    }
    for name, response in answers.items():
        assert response.status_code == 422, (name, response.status_code, response.data[:300])
        assert set(response.json) >= {"message", "errors"}, name
        assert "client_id" in response.json["errors"], (name, response.json)


@pytest.mark.parametrize("q", ["(page:-380670)", "(page_size:-5)", "(page:1.5)", "(page:!t)"])
def test_a_negative_or_odd_page_of_a_model_list_is_refused_not_a_database_error(client, api_token, q):
    response = client.get(f"/api/v1/client/?q={q}", headers=api_token("admin"))
    assert response.status_code in (400, 422), response.json
    _one_shape(response)
    assert client.get("/api/v1/client/", headers=api_token("admin")).status_code == 200  # nothing left aborted
