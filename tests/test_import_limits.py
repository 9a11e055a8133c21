"""Voucher import files are bounded before they are parsed: bytes, unpacked bytes, rows and
columns. A file over a limit gets a clear 413 or 422 and nothing is written."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from tests import test_voucher_import as imports
from tests.test_voucher_import import GOOD, HEADER, _written, csv_bytes, xlsx_bytes

book, _english = imports.book, imports._english  # fixtures


def _rewrite_sheet(data: bytes, edit) -> bytes:  # noqa: ANN001
    """The workbook *data* with its first sheet's XML passed through *edit* (text → text)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = edit(content.decode()).encode()
            target.writestr(item, content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def zip_bomb(inflated: int) -> bytes:
    """A real workbook (the good rows) whose first sheet also has one cell of *inflated* bytes of
    text: a small file that unpacks to a huge one."""
    data = xlsx_bytes(GOOD)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                target.writestr(item, source.read(item), compress_type=zipfile.ZIP_DEFLATED)
                continue
            head, tail = source.read(item).decode().split("</sheetData>")
            info = zipfile.ZipInfo(item.filename)
            info.compress_type = zipfile.ZIP_DEFLATED
            with target.open(info, "w", force_zip64=True) as sheet:
                sheet.write(head.encode() + b'<row r="9"><c r="A9" t="inlineStr"><is><t>')
                block = b"x" * (1 << 20)
                for _ in range(inflated // len(block)):
                    sheet.write(block)
                sheet.write(b"</t></is></c></row></sheetData>" + tail.encode())
    return out.getvalue()


def _upload(app, token: dict, client_id: int, data: bytes, name: str):  # noqa: ANN001
    return app.test_client().post("/api/v1/voucher/import", headers=token, content_type="multipart/form-data",
                                  data={"client_id": str(client_id), "file": (io.BytesIO(data), name)})


def test_a_zip_bomb_is_refused_before_it_is_unpacked(app, session, book, api_token):
    app.config["IMPORT_MAX_UNPACKED_BYTES"] = 4 * 1024 * 1024
    bomb = zip_bomb(64 * 1024 * 1024)
    assert len(bomb) < 200 * 1024  # small on the wire
    response = _upload(app, api_token("accountant"), book.client_id, bomb, "bomb.xlsx")
    assert response.status_code == 413, response.json
    assert response.json["rows"] == [{
        "row": 0, "field": "file", "message": "The workbook is larger than 4 MB once unpacked; it cannot be read."}]
    assert _written(session) == (0, 0)


@pytest.mark.parametrize(("ref", "message"), [
    ("A1:H1048576", "The file has more than 2000 rows; split it."),
    ("A1:XFD6", "The file has more than 40 columns."),
])
def test_a_sheet_claiming_a_huge_dimension_is_refused_before_its_rows_are_read(app, session, book, api_token,
                                                                                 ref, message):
    data = _rewrite_sheet(xlsx_bytes(GOOD), lambda xml: re.sub(r'<dimension ref="[^"]+"', f'<dimension ref="{ref}"',
                                                                 xml))
    response = _upload(app, api_token("accountant"), book.client_id, data, "v.xlsx")
    assert response.status_code == 422
    assert response.json["rows"] == [{"row": 0, "field": "file", "message": message}]
    assert _written(session) == (0, 0)


def test_a_sheet_without_a_dimension_is_still_counted_row_by_row(app, session, book, api_token):
    app.config["IMPORT_MAX_ROWS"] = 4
    data = _rewrite_sheet(xlsx_bytes(GOOD), lambda xml: re.sub(r"<dimension [^>]*/>", "", xml))
    assert b"dimension" not in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    response = _upload(app, api_token("accountant"), book.client_id, data, "v.xlsx")
    assert response.status_code == 422
    assert response.json["message"] == "The file has more than 4 rows; split it."
    assert _written(session) == (0, 0)
    app.config["IMPORT_MAX_ROWS"] = 5  # the same file within the limit goes in
    assert _upload(app, api_token("accountant"), book.client_id, data, "v.xlsx").status_code == 201


def test_a_workbook_declaring_a_dtd_is_not_read(app, session, book, api_token):
    data = _rewrite_sheet(xlsx_bytes(GOOD), lambda xml: (
        '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>' + xml))
    response = _upload(app, api_token("accountant"), book.client_id, data, "v.xlsx")
    assert response.status_code == 422
    assert response.json["message"] == "The Excel file cannot be read; upload an .xlsx workbook."
    assert _written(session) == (0, 0)


def test_a_csv_with_a_million_columns_is_refused(app, session, book, api_token):
    data = csv_bytes(GOOD) + b"," * 1_000_000 + b"x\r\n"
    assert len(data) < app.config["IMPORT_MAX_BYTES"]
    response = _upload(app, api_token("accountant"), book.client_id, data, "v.csv")
    assert response.status_code == 422
    assert response.json["rows"] == [{"row": 0, "field": "file", "message": "The file has more than 40 columns."}]
    assert _written(session) == (0, 0)


def test_trailing_empty_cells_and_rows_are_not_counted(app, session, book, api_token):
    rows = [row + [""] * 60 for row in GOOD] + [[""] * 8] * 3000
    response = _upload(app, api_token("accountant"), book.client_id, csv_bytes(rows), "v.csv")
    assert response.status_code == 201, response.json
    assert _written(session) == (2, 5)


def test_a_file_over_the_byte_limit_is_413_and_a_larger_body_is_refused_unread(app, session, book, api_token):
    app.config["IMPORT_MAX_BYTES"] = 1024
    filler = [["2026-01-05", "记", "1", "提取现金" * 5, "1001", "1.00", "", ""]] * 40
    just_over = csv_bytes(filler)[:1025]
    response = _upload(app, api_token("accountant"), book.client_id, just_over, "v.csv")
    assert response.status_code == 413
    assert response.json["rows"] == [{"row": 0, "field": "file", "message": "The file is larger than 1 KB."}]
    huge = _upload(app, api_token("accountant"), book.client_id, b"x" * (512 * 1024), "v.csv")
    assert huge.status_code == 413 and huge.is_json
    assert huge.json["message"] == "The request is too large: send a smaller file."
    assert _written(session) == (0, 0)


def test_the_screen_answers_413_with_the_message(app, session, book, login_as):
    app.config["IMPORT_MAX_UNPACKED_BYTES"] = 1024 * 1024
    page = login_as("accountant").post("/voucherimport/", content_type="multipart/form-data", data={
        "client_id": str(book.client_id), "file": (io.BytesIO(zip_bomb(8 * 1024 * 1024)), "v.xlsx")})
    assert page.status_code == 413
    text = page.get_data(as_text=True)
    assert "Nothing was imported: the file has 1 problem(s)." in text
    assert "The workbook is larger than 1 MB once unpacked; it cannot be read." in text
    assert _written(session) == (0, 0)


def test_a_header_only_past_the_column_limit_is_refused(app, session, book, api_token):
    data = csv_bytes([], header=HEADER + [f"extra{i}" for i in range(40)])
    response = _upload(app, api_token("accountant"), book.client_id, data, "v.csv")
    assert response.status_code == 422
    assert response.json["message"] == "The file has more than 40 columns."


def test_a_dtd_behind_a_long_comment_is_found_too(app, session, book, api_token):
    data = _rewrite_sheet(xlsx_bytes(GOOD), lambda xml: (
        "<!--" + "注释" * 20000 + '--><!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">]>' + xml))
    response = _upload(app, api_token("accountant"), book.client_id, data, "v.xlsx")
    assert response.status_code == 422
    assert response.json["message"] == "The Excel file cannot be read; upload an .xlsx workbook."
    assert _written(session) == (0, 0)
