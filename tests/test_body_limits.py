"""A request body over its limit answers 413 (JSON on the JSON faces, a page elsewhere), never a
500, and is refused before anything reads it."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from app.models.ledger import Voucher

TOO_LARGE = "The request is too large: send a smaller file."


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def _vouchers(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Voucher))


def test_a_json_body_over_the_limit_is_a_413_json_answer_not_a_500(app, session, api_token):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    body = json.dumps({"client_id": 1, "date": "2026-01-05", "summary": "x" * 8000, "lines": []})
    response = app.test_client().post("/api/v1/voucher/", data=body, content_type="application/json",
                                      headers=api_token("accountant"))
    assert response.status_code == 413
    assert response.is_json and response.json == {"message": TOO_LARGE}
    assert _vouchers(session) == 0


def test_a_form_over_the_limit_is_a_413_page(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = client.post("/login/", data={"username": "manager", "password": "x" * 8000})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert TOO_LARGE in response.get_data(as_text=True)


def test_a_chat_file_over_the_chat_limit_is_a_413_json_answer(app):
    app.config["CHAT_UPLOAD_MAX_BYTES"] = 1024
    response = app.test_client().post("/chat/files", content_type="multipart/form-data", data={
        "site_key": "any", "file": (io.BytesIO(b"\x89PNG" + b"0" * 200_000), "big.png")})
    assert response.status_code == 413
    assert response.is_json and response.json == {"message": TOO_LARGE}


def test_a_chunked_body_without_a_length_is_bounded_as_it_is_read(app, api_token):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = app.test_client().post(
        "/api/v1/voucher/", input_stream=io.BytesIO(b"{" + b" " * 100_000 + b"}"), content_type="application/json",
        headers=api_token("accountant"), environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413 and response.json == {"message": TOO_LARGE}


def test_a_body_within_the_limit_still_reaches_the_view(app, api_token):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = app.test_client().post("/api/v1/voucher/", json={"client_id": "x"}, headers=api_token("accountant"))
    assert response.status_code in (400, 404, 422)  # the view's own answer about the content


def test_the_413_page_speaks_the_users_language(app, client):
    app.config.update(MAX_CONTENT_LENGTH=4096, BABEL_DEFAULT_LOCALE="zh_CN")
    response = client.post("/login/", data={"username": "manager", "password": "x" * 8000})
    assert response.status_code == 413
    assert "请求过大，请发送较小的文件。" in response.get_data(as_text=True)
