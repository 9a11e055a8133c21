"""CSV export of the client list (``/clientmodelview/export.csv``, permission ``can_export``).

The export is the list as the user sees it: every row (not one page), only the clients in the
user's scope, narrowed by the list's search filters. It opens correctly in spreadsheet programs
(UTF-8 with BOM) and cannot smuggle formulas into them.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from app.models.crm import Client, ClientStatus, Tag
from app.models.security import AuditLog
from tests.factories import make_client

URL = "/clientmodelview/export.csv"
BOM = b"\xef\xbb\xbf"
HEADER = ["Name", "Unified social credit code", "Taxpayer type", "Legal representative", "Registered address",
          "Office address", "Accountant", "Status", "Tags", "Notes"]

# FAB's filters for a text column, by index in ``_flt_<index>_<column>``.
STARTS_WITH, CONTAINS, EQUAL, NOT_CONTAINS = 0, 2, 3, 6


def _user(app, username: str):
    return app.appbuilder.sm.find_user(username=username)


def _english(login_as, username: str):
    browser = login_as(username)
    assert browser.get("/lang/en").status_code == 302
    return browser


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.startswith(BOM)
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def _names(response) -> list[str]:
    rows = _rows(response)
    assert rows[0] == HEADER
    return [row[0] for row in rows[1:]]


def test_manager_exports_every_client_not_just_one_page(app, login_as):
    created = sorted(make_client(name=f"导出客户{n:02d}有限公司").name for n in range(30))

    response = _english(login_as, "manager").get(URL)

    assert response.headers["Content-Disposition"] == "attachment; filename=client.csv"
    assert _names(response) == created  # ordered by name (they differ in the digits only); 30 > a page


def test_export_row_shows_the_client_as_on_screen_without_personal_data(app, login_as):
    client = make_client(name="上海甲乙会计服务有限公司", legal_rep_name="张三", registered_address="上海市浦东新区1号",
                         office_address="上海市黄浦区2号", status=ClientStatus.active, notes="月底前交票",
                         accountant=_user(app, "accountant"))

    rows = _rows(_english(login_as, "manager").get(URL))

    assert rows[1] == ["上海甲乙会计服务有限公司", client.credit_code, "Small-scale taxpayer", "张三",
                       "上海市浦东新区1号", "上海市黄浦区2号", "accountant -", "Active", "", "月底前交票"]
    assert client.legal_rep_id_number not in "".join(rows[1])


def test_accountant_exports_only_their_assigned_clients(app, login_as):
    make_client(name="甲会计的客户一有限公司", accountant=_user(app, "accountant"))
    make_client(name="甲会计的客户二有限公司", accountant=_user(app, "accountant"))
    make_client(name="乙会计的客户有限公司", accountant=_user(app, "accountant2"))
    make_client(name="未分配的客户有限公司")

    response = _english(login_as, "accountant").get(URL)

    assert sorted(_names(response)) == ["甲会计的客户一有限公司", "甲会计的客户二有限公司"]


def test_list_filters_narrow_the_export(app, login_as):
    for name in ("北京星辰科技有限公司", "北京晨光贸易有限公司", "上海星辰餐饮有限公司"):
        make_client(name=name)
    browser = _english(login_as, "manager")

    assert sorted(_names(browser.get(f"{URL}?_flt_{STARTS_WITH}_name=北京"))) == ["北京星辰科技有限公司",
                                                                                  "北京晨光贸易有限公司"]
    assert sorted(_names(browser.get(f"{URL}?_flt_{CONTAINS}_name=星辰"))) == ["上海星辰餐饮有限公司",
                                                                               "北京星辰科技有限公司"]
    assert _names(browser.get(f"{URL}?_flt_{EQUAL}_name=上海星辰餐饮有限公司")) == ["上海星辰餐饮有限公司"]
    assert _names(browser.get(f"{URL}?_flt_{NOT_CONTAINS}_name=星辰")) == ["北京晨光贸易有限公司"]
    both = f"{URL}?_flt_{STARTS_WITH}_name=北京&_flt_{CONTAINS}_name=星辰"
    assert _names(browser.get(both)) == ["北京星辰科技有限公司"]


def test_filters_cannot_widen_an_accountants_export(app, login_as):
    make_client(name="甲会计的客户有限公司", accountant=_user(app, "accountant"))
    make_client(name="乙会计的客户有限公司", accountant=_user(app, "accountant2"))
    browser = _english(login_as, "accountant")

    other = _user(app, "accountant2").id
    assert _names(browser.get(f"{URL}?_flt_0_accountant={other}")) == []
    assert _names(browser.get(f"{URL}?_flt_{CONTAINS}_name=客户")) == ["甲会计的客户有限公司"]


def test_values_that_look_like_formulas_are_quoted(app, login_as):
    make_client(name="=HYPERLINK(\"http://evil.example\",\"点我\")", notes="+1+2", legal_rep_name="@SUM(A1)",
                office_address="-3+4", registered_address="普通地址=不是公式")

    row = _rows(_english(login_as, "manager").get(URL))[1]

    assert row[0] == "'=HYPERLINK(\"http://evil.example\",\"点我\")"
    assert (row[3], row[5], row[9]) == ("'@SUM(A1)", "'-3+4", "'+1+2")
    assert row[4] == "普通地址=不是公式"  # only a leading sign is dangerous


def test_tags_export_as_plain_text_and_tab_or_return_led_values_are_quoted(app, login_as):
    tags = [Tag(name="R&D"), Tag(name="<重点>")]
    make_client(name="标签客户有限公司", tags=tags, notes="\t=1+1", office_address="\r@x")

    row = _rows(_english(login_as, "manager").get(URL))[1]

    assert sorted(row[8].split(", ")) == ["<重点>", "R&D"]  # no HTML entities in a CSV cell
    assert (row[9], row[5]) == ("'\t=1+1", "'\r@x")


def test_reviewer_without_export_permission_is_refused(app, session, login_as):
    make_client(name="审核员不可导出的客户有限公司")
    browser = login_as("reviewer")
    audit_rows = session.scalar(select(func.count()).select_from(AuditLog))

    response = browser.get(URL)

    assert response.status_code == 403
    assert "审核员不可导出的客户有限公司".encode() not in response.data
    assert not response.data.startswith(BOM)
    assert session.scalar(select(func.count()).select_from(AuditLog)) == audit_rows
    assert session.scalar(select(func.count()).select_from(Client)) == 1


def test_anonymous_export_is_refused(app):
    make_client(name="匿名不可导出的客户有限公司")

    response = app.test_client().get(URL)

    assert response.status_code == 302 and "/login/" in response.headers["Location"]
    assert "匿名不可导出的客户有限公司".encode() not in response.data
