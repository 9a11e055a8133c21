"""Errors and the date picker in the user's language: the 403, 404, 429 and 500 pages, the API's
field errors from its schemas, and FAB's date picker (zh_CN by default, English after /lang/en)."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.test_zh_raw_values import visible_text


def test_a_forbidden_page_says_so_in_chinese(login_as) -> None:
    response = login_as("reviewer").get("/contractmodelview/list/")
    assert response.status_code == 403
    page = visible_text(response.get_data(as_text=True))
    assert "无权访问" in page and "您无权执行此操作。" in page
    assert "Forbidden" not in page and "permission" not in page
    assert '<html lang="zh-CN">' in response.get_data(as_text=True)


def test_a_missing_page_says_so_in_chinese_then_in_english(login_as) -> None:
    client = login_as("manager")
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = visible_text(response.get_data(as_text=True))
    assert "页面不存在" in page and "Not Found" not in page
    assert client.get("/lang/en").status_code == 302
    page = visible_text(client.get("/no-such-page/").get_data(as_text=True))
    assert "Page not found" in page and "页面不存在" not in page


@pytest.fixture
def limited_app(second_app):
    application = second_app(AUTH_RATE_LIMITED=True, RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="3 per minute")
    limiter = application.appbuilder.sm.limiter
    limiter.reset()  # the storage may be a Redis shared with earlier runs
    yield application
    limiter.reset()


def test_too_many_sign_ins_answer_a_chinese_page_with_retry_after(limited_app) -> None:
    client = limited_app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.41.0.1"
    for username in ("manager", "reviewer", "agent"):
        assert client.post("/login/", data={"username": username, "password": "wrong-Password-1"}).status_code == 302
    response = client.post("/login/", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 429
    page = visible_text(response.get_data(as_text=True))
    assert "请求过于频繁" in page and "Too Many Requests" not in page
    assert "per 1 minute" not in page  # not the limit's own English text
    assert int(response.headers["Retry-After"]) > 0


def test_a_server_error_page_is_chinese(app) -> None:
    from werkzeug.exceptions import InternalServerError

    from app.errors import error_page

    with app.test_request_context("/"):
        response = error_page(InternalServerError())
    assert response.status_code == 500
    page = visible_text(response.get_data(as_text=True))
    assert "服务器出错" in page and "Internal Server Error" not in page


def test_the_apis_field_errors_from_its_schemas_are_chinese(client, api_token, session) -> None:
    response = client.post("/api/v1/client/", json={"name": 5}, headers=api_token("manager"))
    assert response.status_code == 422
    errors = response.json["errors"]
    assert errors["name"] == ["不是有效的文本。"]  # "Not a valid string."
    assert errors["credit_code"] == ["此项为必填项。"]  # "Missing data for required field."
    assert "Missing data" not in response.json["message"]


@pytest.mark.parametrize(("english", "chinese"), [
    ("Longer than maximum length 200.", "最多 200 个字符。"),
    ("Must be one of: small_scale, general.", "必须是以下之一：small_scale, general。"),
    ("Unknown field.", "未知字段。"),
    ("Something else entirely.", "Something else entirely."),
])
def test_schema_messages_with_numbers_and_lists_are_translated(app, english, chinese) -> None:
    from app.errors import schema_message

    with app.test_request_context():
        assert schema_message(english) == chinese


def test_a_json_body_that_is_not_an_object_is_refused_in_chinese(client, api_token) -> None:
    response = client.post("/api/v1/security/login", json=[1])
    assert response.status_code == 400
    assert response.json["message"] == "请求内容不是 JSON 对象。"


def test_fabs_date_picker_speaks_chinese_then_english(login_as, app) -> None:
    client = login_as("manager")
    page = client.get("/contractmodelview/add").get_data(as_text=True)
    assert "appbuilder_date" in page  # the contract's dates use FAB's picker
    assert 'datepicker/zh-CN.js' in page and 'data-language="zh-CN"' in page
    script = client.get("/static/datepicker/zh-CN.js").get_data(as_text=True)
    assert '"一月"' in script and "今天" in script
    client.get("/lang/en")
    page = client.get("/contractmodelview/add").get_data(as_text=True)
    assert 'data-language=""' in page
