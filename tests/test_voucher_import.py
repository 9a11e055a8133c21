"""Voucher import from CSV and XLSX: the service, the API and the screen.

Every refused file also asserts that nothing was written.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from app.models.ledger import Voucher, VoucherLine, VoucherState
from app.models.security import AuditLog
from app.services import periods
from app.services import voucher_import as importer
from app.services.errors import NotFound
from app.services.voucher_import import ImportFailed, RowError
from tests.factories import make_books, make_client, make_voucher

HEADER = ["日期", "凭证字", "凭证号", "摘要", "科目编码", "借方金额", "贷方金额", "附件数"]
GOOD = [
    ["2026-01-05", "记", "1", "提取现金", "1001", "500.00", "", "1"],
    ["2026-01-05", "记", "1", "提取现金", "1002", "", "500.00", "1"],
    ["2026-01-20", "收", "7", "销售商品", "1002", "1130.00", "", "2"],
    ["2026-01-20", "收", "7", "销售收入", "5001", "", "1000.00", ""],
    ["2026-01-20", "收", "7", "销项税额", "22210102", "", "130.00", ""],
]


@pytest.fixture(autouse=True)
def _english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


@pytest.fixture
def book(app):
    accountant = app.appbuilder.sm.find_user(username="accountant")
    return make_books(make_client(accountant=accountant, name="导入测试有限公司"))


@pytest.fixture
def maker(user_id):
    return user_id("accountant")


def csv_bytes(rows: list[list[str]], header: list[str] | None = None, bom: bool = True) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER if header is None else header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig" if bom else "utf-8")


def xlsx_bytes(rows: list[list[object]], header: list[str] | None = None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER if header is None else header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _written(session) -> tuple[int, int]:
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Voucher)),
            session.scalar(select(func.count()).select_from(VoucherLine)))


def _problems(exc: ImportFailed) -> list[tuple[int, str, str]]:
    return [(e.row, e.field, e.message) for e in exc.rows]


def _shape(vouchers: list[Voucher]) -> list[tuple]:
    return [(v.label, v.date.isoformat(), v.summary, v.attachments, v.state,
             [(ln.account.code, str(ln.debit), str(ln.credit), ln.memo) for ln in v.lines]) for v in vouchers]


EXPECTED_GOOD = [
    ("记-2", "2026-01-05", "提取现金", 1, VoucherState.draft,
     [("1001", "500.00", "0.00", None), ("1002", "0.00", "500.00", None)]),
    ("收-1", "2026-01-20", "销售商品", 2, VoucherState.draft,
     [("1002", "1130.00", "0.00", None), ("5001", "0.00", "1000.00", "销售收入"),
      ("22210102", "0.00", "130.00", "销项税额")]),
]


# --- the service ----------------------------------------------------------------------------


def test_csv_with_bom_is_imported_with_new_numbers(session, book, maker):
    make_voucher(book, maker)  # 记-1 exists: the file's group numbers only group
    saved = importer.import_vouchers(session, book.client_id, "凭证.csv", csv_bytes(GOOD), maker)
    assert _shape(saved) == EXPECTED_GOOD
    assert {v.maker_id for v in saved} == {maker}
    assert _written(session) == (3, 7)


def test_csv_without_bom_and_with_english_headers(session, book, maker):
    header = ["Date", "word", "group", "summary", "account_code", "debit", "credit", "attachments", "remark"]
    rows = [row + ["ignored column"] for row in GOOD]
    rows[0][5] = "1,000.00"
    rows[1][6] = "1,000.00"
    saved = importer.import_vouchers(session, book.client_id, "v.CSV", csv_bytes(rows, header, bom=False), maker)
    assert [(v.label, str(v.total)) for v in saved] == [("记-1", "1000.00"), ("收-1", "1130.00")]


def test_csv_saved_by_a_chinese_excel_in_gbk_is_imported(session, book, maker):
    """Excel on a Chinese Windows saves "CSV (逗号分隔)" in GBK, without a BOM."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([HEADER, *GOOD])
    data = out.getvalue().encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the file really is not UTF-8
    saved = importer.import_vouchers(session, book.client_id, "凭证.csv", data, maker)
    assert _shape(saved) == [("记-1", *EXPECTED_GOOD[0][1:]), EXPECTED_GOOD[1]]
    assert _written(session) == (2, 5)


def test_xlsx_with_typed_cells_is_imported(session, book, maker):
    make_voucher(book, maker)
    rows = [[datetime(2026, 1, 5), "记", 1, "提取现金", 1001, 500, None, 1],
            [datetime(2026, 1, 5), "记", 1, "提取现金", 1002, None, 500.0, 1],
            ["2026-01-20", "收", 7.0, "销售商品", "1002", 1130, None, 2],
            ["2026-01-20", "收", 7, "销售收入", 5001, None, 1000],
            ["2026-01-20", "收", 7, "销项税额", "22210102", "", "130.00"]]
    saved = importer.import_vouchers(session, book.client_id, "v.xlsx", xlsx_bytes(rows), maker)
    assert _shape(saved) == EXPECTED_GOOD


def test_xlsx_amount_with_a_third_decimal_is_refused(session, book, maker):
    rows = [["2026-01-05", "记", 1, "提取现金", 1001, 0.125, None],
            ["2026-01-05", "记", 1, "提取现金", 1002, None, 0.125]]
    with pytest.raises(ImportFailed) as caught:
        importer.import_vouchers(session, book.client_id, "v.xlsx", xlsx_bytes(rows), maker)
    assert _problems(caught.value) == [(2, "debit", "At most two decimal places."),
                                       (3, "credit", "At most two decimal places.")]
    assert _written(session) == (0, 0)


def test_every_problem_is_reported_by_row_and_nothing_is_written(session, book, maker):
    rows = [
        ["2026-01-05", "记", "1", "提取现金", "1001", "500.00", "", ""],      # row 2: fine
        ["2026-01-05", "记", "1", "提取现金", "1002", "", "5x0", ""],         # row 3: bad amount
        ["2026-01-06", "记", "2", "付房租", "5602", "100.00", "", ""],         # row 4: fine
        ["2026-01-06", "记", "2", "付房租", "9999", "", "100.00", ""],         # row 5: unknown account
        ["2026-01-07", "记", "3", "不平", "1001", "10.00", "", ""],            # rows 6-7: unbalanced
        ["2026-01-07", "记", "3", "不平", "1002", "", "9.00", ""],
        ["2026-01-08", "记", "", "无号", "1001", "1.00", "", ""],              # row 8: no group
        ["2026-01-09", "记", "4", "", "1001", "1.00", "", ""],                 # row 9: no summary
        ["2026-01-10", "记", "4", "", "1002", "", "1.00", "abc"],              # row 10: other date
    ]
    before = _written(session)
    with pytest.raises(ImportFailed) as caught:
        importer.import_vouchers(session, book.client_id, "v.csv", csv_bytes(rows), maker)
    assert _problems(caught.value) == [
        (3, "credit", "Not a valid amount."),
        (5, "account_code", "No account 9999 in these books."),
        (6, "lines", "Debits (10.00) and credits (9.00) do not balance; the difference is 1.00."),
        (8, "group", "Give the voucher number that groups this row."),
        (9, "summary", "A voucher needs a summary (摘要)."),
        (10, "date", "All rows of voucher 4 need the same date."),
    ]
    assert str(caught.value.rows[0]) == "Row 3 (credit): Not a valid amount."
    assert _written(session) == before


def test_one_bad_voucher_stops_the_good_ones_too(session, book, maker):
    rows = GOOD + [["2026-01-21", "记", "9", "单行", "1001", "1.00", "", ""]]
    with pytest.raises(ImportFailed) as caught:
        importer.import_vouchers(session, book.client_id, "v.csv", csv_bytes(rows), maker)
    assert _problems(caught.value) == [(7, "lines", "A voucher needs at least two lines.")]
    assert _written(session) == (0, 0)


def test_rows_in_a_closed_period_or_before_the_books_are_refused(session, book, maker, user_id):
    periods.close_period(session, book.client_id, "2026-01", user_id("manager"))
    rows = []
    for group, day in (("1", "2026-01-05"), ("2", "2025-12-05"), ("3", "2026-02-05")):
        rows += [[day, "记", group, "a", "1001", "1.00", "", ""], [day, "记", group, "a", "1002", "", "1.00", ""]]
    before = _written(session)
    with pytest.raises(ImportFailed) as caught:
        importer.import_vouchers(session, book.client_id, "v.csv", csv_bytes(rows), maker)
    assert _problems(caught.value) == [(2, "date", "The period 2026-01 is closed."),
                                       (4, "date", "The books start in 2026-01.")]
    assert _written(session) == before


NOT_TEXT = "The CSV file is neither UTF-8 nor GBK text; save it as \"CSV UTF-8\" or \"CSV (逗号分隔)\"."


@pytest.mark.parametrize(("filename", "data", "message"), [
    ("v.txt", b"x", "Upload a .csv or .xlsx file."),
    ("v.csv", b"", "The file is empty."),
    ("v.csv", csv_bytes([]), "The file has a header but no rows."),
    ("v.csv", "日期,凭证号\n".encode("utf-16"), NOT_TEXT),
    ("v.csv", "日期,凭证号\n".encode("utf-16-le"), NOT_TEXT),
    ("v.csv", b"\x89PNG\r\n\x1a\n\xff\xfe\x00", NOT_TEXT),
    ("v.xlsx", b"PK\x03\x04 not really a workbook", "The Excel file cannot be read; upload an .xlsx workbook."),
])
def test_unreadable_files_are_refused_as_a_whole(session, book, maker, filename, data, message):
    with pytest.raises(ImportFailed) as caught:
        importer.import_vouchers(session, book.client_id, filename, data, maker)
    assert _problems(caught.value) == [(0, "file", message)]
    assert str(caught.value.rows[0]) == message
    assert _written(session) == (0, 0)


def test_missing_and_duplicate_columns_are_named(session, book, maker):
    header = ["日期", "凭证号", "摘要", "科目编码", "借方金额", "借方"]
    with pytest.raises(ImportFailed) as caught:
        importer.import_vouchers(session, book.client_id, "v.csv", csv_bytes([["2026-01-01"] * 6], header), maker)
    assert _problems(caught.value) == [(1, "credit", "The column 贷方金额 / credit is missing."),
                                       (1, "debit", "The column 借方 appears twice.")]
    assert _written(session) == (0, 0)


def test_size_and_row_limits(session, book, maker):
    with pytest.raises(importer.ImportTooLarge) as too_big:
        importer.import_vouchers(session, book.client_id, "v.csv", csv_bytes(GOOD), maker,
                                 importer.Limits(max_bytes=100))
    assert _problems(too_big.value) == [(0, "file", "The file is larger than 0 KB.")]
    assert too_big.value.status_code == 413
    with pytest.raises(ImportFailed) as too_many:
        importer.import_vouchers(session, book.client_id, "v.xlsx", xlsx_bytes(GOOD), maker,
                                 importer.Limits(max_rows=4))
    assert _problems(too_many.value) == [(0, "file", "The file has more than 4 rows; split it.")]
    assert too_many.value.status_code == 422
    assert _written(session) == (0, 0)
    assert len(importer.import_vouchers(session, book.client_id, "v.csv", csv_bytes(GOOD), maker,
                                        importer.Limits(max_rows=5))) == 2


def test_client_without_books_is_not_found(session, maker):
    client = make_client()
    with pytest.raises(NotFound):
        importer.import_vouchers(session, client.id, "v.csv", csv_bytes(GOOD), maker)
    assert _written(session) == (0, 0)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_template_parses_back_into_one_voucher(session, book, maker, kind):
    data = importer.template(kind)
    if kind == "csv":
        assert data.startswith(b"\xef\xbb\xbf")
        assert next(csv.reader(io.StringIO(data.decode("utf-8-sig")))) == HEADER
    else:
        sheet = load_workbook(io.BytesIO(data)).worksheets[0]
        assert [c.value for c in sheet[1]] == HEADER and sheet.max_row == 3
    saved = importer.import_vouchers(session, book.client_id, f"template.{kind}", data, maker)
    assert [(v.label, v.date.isoformat(), v.total) for v in saved] == [("记-1", "2026-01-15", Decimal("1000.00"))]


def test_row_error_text_carries_the_row_number(app):
    assert str(RowError(5, "debit", "Not a valid amount.")) == "Row 5 (debit): Not a valid amount."
    assert RowError(5, "debit", "Not a valid amount.").as_dict() == {"row": 5, "field": "debit",
                                                                     "message": "Not a valid amount."}


# --- the API --------------------------------------------------------------------------------


def _upload(app, headers: dict, client_id: object, data: bytes | None, name: str = "v.csv"):
    form: dict = {"client_id": str(client_id)}
    if data is not None:
        form["file"] = (io.BytesIO(data), name)
    return app.test_client().post("/api/v1/voucher/import", data=form, headers=headers,
                                  content_type="multipart/form-data")


def test_api_import_answers_201_with_the_vouchers(app, session, book, api_token):
    response = _upload(app, api_token("accountant"), book.client_id, xlsx_bytes(GOOD), "v.xlsx")
    assert response.status_code == 201, response.json
    ids = [v.id for v in session.scalars(select(Voucher).order_by(Voucher.id))]
    assert response.json == {"imported": 2, "vouchers": [
        {"id": ids[0], "number": 1, "label": "记-1", "period": "2026-01"},
        {"id": ids[1], "number": 1, "label": "收-1", "period": "2026-01"}]}
    # Every imported voucher has its audit row, as one saved on the screen has.
    audit = {row.object_id: row for row in session.scalars(
        select(AuditLog).where(AuditLog.object_type == "ledger_voucher", AuditLog.action == "create"))}
    assert sorted(audit) == sorted(str(i) for i in ids)
    first = audit[str(ids[0])]
    assert first.username == "accountant" and first.summary == "2026-01 记-1"
    changes = json.loads(first.changes)
    assert changes["summary"] == [None, "提取现金"] and changes["total"] == [None, "500.00"]
    assert changes["state"] == [None, "draft"] and "created_at" not in changes


def test_api_import_errors_are_422_by_row_and_nothing_is_written(app, session, book, api_token):
    rows = [r[:] for r in GOOD]
    rows[3][4] = "9999"
    response = _upload(app, api_token("accountant"), book.client_id, csv_bytes(rows))
    assert response.status_code == 422
    assert response.json["rows"] == [{"row": 5, "field": "account_code",
                                        "message": "No account 9999 in these books."}]
    assert response.json["message"] == "Row 5 (account_code): No account 9999 in these books."
    assert _written(session) == (0, 0)


def test_api_import_needs_a_client_and_a_file(app, session, book, api_token):
    response = _upload(app, api_token("manager"), "", None)
    assert response.status_code == 422
    assert response.json["rows"] == [
        {"row": 0, "field": "client_id", "message": "Give the client's id (a whole number)."},
        {"row": 0, "field": "file", "message": "Choose a file to import."}]
    assert _written(session) == (0, 0)


def test_api_import_into_another_accountants_client_is_404(app, session, api_token):
    other = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant2")))
    response = _upload(app, api_token("accountant"), other.client_id, csv_bytes(GOOD))
    assert response.status_code == 404
    assert _written(session) == (0, 0)


@pytest.mark.parametrize("role", ["reviewer", "agent"])
def test_api_import_is_refused_to_reviewer_and_agent(app, session, book, api_token, role):
    assert _upload(app, api_token(role), book.client_id, csv_bytes(GOOD)).status_code == 403
    assert _written(session) == (0, 0)


# --- the screen -----------------------------------------------------------------------------


def test_screen_offers_only_own_clients_with_books(app, book, login_as):
    make_books(make_client(name="别人的账套公司", accountant=app.appbuilder.sm.find_user(username="accountant2")))
    make_client(name="没有账套公司", accountant=app.appbuilder.sm.find_user(username="accountant"))
    page = login_as("accountant").get("/voucherimport/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "导入测试有限公司" in text
    assert "别人的账套公司" not in text and "没有账套公司" not in text
    assert "/voucherimport/template?format=xlsx" in text and "/voucherimport/template?format=csv" in text


def test_screen_imports_a_file(app, session, book, login_as):
    browser = login_as("accountant")
    page = browser.post("/voucherimport/", data={"client_id": str(book.client_id),
                                                 "file": (io.BytesIO(csv_bytes(GOOD)), "v.csv")},
                        content_type="multipart/form-data")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "2 vouchers imported." in text
    assert "记-1" in text and "收-1" in text
    assert _written(session) == (2, 5)


def test_screen_imports_a_csv_a_chinese_excel_saved_in_gbk(app, session, book, login_as):
    """As a user does it: Excel on a Chinese Windows, 另存为 "CSV (逗号分隔)" (GBK, CRLF, no BOM),
    uploaded on the import screen."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([HEADER, *GOOD])
    data = out.getvalue().encode("gbk")
    assert not data.startswith(b"\xef\xbb\xbf") and "提取现金".encode("gbk") in data
    page = login_as("accountant").post("/voucherimport/", data={"client_id": str(book.client_id),
                                                                "file": (io.BytesIO(data), "凭证.csv")},
                                       content_type="multipart/form-data")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "2 vouchers imported." in text
    assert _written(session) == (2, 5)
    summaries = session.scalars(select(Voucher.summary).order_by(Voucher.id)).all()
    assert summaries == ["提取现金", "销售商品"]  # the Chinese text read right, not mojibake


def test_screen_shows_errors_by_row_and_writes_nothing(app, session, book, login_as):
    rows = [r[:] for r in GOOD]
    rows[1][6] = "499.00"
    page = login_as("manager").post("/voucherimport/", data={"client_id": str(book.client_id),
                                                             "file": (io.BytesIO(csv_bytes(rows)), "v.csv")},
                                    content_type="multipart/form-data")
    text = page.get_data(as_text=True)
    assert "Nothing was imported: the file has 1 problem(s)." in text
    assert 'id="import-errors"' in text
    assert "<td>2</td><td>lines</td><td>Debits (500.00) and credits (499.00) do not balance; the difference is " \
           "1.00.</td>" in text
    assert _written(session) == (0, 0)


def test_screen_refuses_another_accountants_client(app, session, login_as):
    other = make_books(make_client(accountant=app.appbuilder.sm.find_user(username="accountant2")))
    page = login_as("accountant").post("/voucherimport/", data={
        "client_id": str(other.client_id), "file": (io.BytesIO(csv_bytes(GOOD)), "v.csv")},
        content_type="multipart/form-data")
    assert "Not a valid choice" in page.get_data(as_text=True)
    assert _written(session) == (0, 0)


def test_screen_post_needs_the_csrf_token(app, session, book, login_as):
    browser = login_as("accountant")
    app.config["WTF_CSRF_ENABLED"] = True
    assert 'name="csrf_token"' in browser.get("/voucherimport/").get_data(as_text=True)
    page = browser.post("/voucherimport/", data={"client_id": str(book.client_id),
                                                 "file": (io.BytesIO(csv_bytes(GOOD)), "v.csv")},
                        content_type="multipart/form-data")
    assert page.status_code == 400
    assert "vouchers imported" not in page.get_data(as_text=True)
    assert _written(session) == (0, 0)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_screen_template_download(app, login_as, kind):
    response = login_as("accountant").get(f"/voucherimport/template?format={kind}")
    assert response.status_code == 200
    assert f"voucher_import_template.{kind}" in response.headers["Content-Disposition"]
    if kind == "csv":
        assert response.data == importer.template("csv")
    rows = importer.read_rows(f"t.{kind}", response.data)
    assert [(n, r["account_code"], r["debit"], r["credit"]) for n, r in rows] == [
        (2, "1001", "1000.00", ""), (3, "5001", "", "1000.00")]


def test_screen_is_refused_to_reviewer(app, login_as):
    response = login_as("reviewer").get("/voucherimport/")
    assert response.status_code == 403


@pytest.mark.parametrize(("role", "shown"), [("accountant", True), ("manager", True), ("reviewer", False),
                                             ("agent", False)])
def test_the_ledger_menu_offers_the_import_to_those_who_may_import(app, login_as, role, shown):
    page = login_as(role).get("/").get_data(as_text=True)
    assert ('href="/voucherimport/"' in page) is shown
    if shown:  # in the Ledger (账务) menu, beside the vouchers
        import re

        menus = re.findall(r'<li class="dropdown">\s*<a class="dropdown-toggle"[^>]*>\s*<i [^>]*></i>&nbsp;\s*'
                           r'([^<]+)<b class="caret"></b></a>(.*?)</ul></li>', page, re.S)
        holding = [name.strip() for name, items in menus if 'href="/voucherimport/"' in items]
        assert holding == ["Ledger"]
        ledger = next(items for name, items in menus if name.strip() == "Ledger")
        assert 'href="/ledger/vouchers/list/"' in ledger
