"""An uploaded spreadsheet (CSV or XLSX) as rows of text, with its size checked before parsing.

Runs in a worker process (task ``sheet.read`` of ``reports.worker``), so that neither the
parsing nor a hostile file can stall or swell the web server; imports neither Flask nor the
application. The caller has already bounded the file's bytes.

Before any cell is parsed:

- XLSX: the file must be a zip archive of at most ``MAX_MEMBERS`` parts whose declared sizes add
  up to at most *max_unpacked* bytes (Python's zip reader never inflates a part beyond its
  declared size, so this bounds what the parser can be fed: a 300 KB "zip bomb" whose cells
  inflate to 300 MB is refused here); no XML part may contain a DTD (entity expansion has no
  place in a workbook; each part is scanned, within the unpacked limit); the first sheet's
  declared dimension (``<dimension ref="A1:XFD1048576">``) may not exceed the row and column
  limits. Then the sheet is streamed (openpyxl read-only) and
  refused at the first row or column past a limit, so a sheet without a dimension is bounded too.
- CSV: UTF-8 (a BOM is allowed) or, failing that, GB18030 — the superset of GBK, which Excel
  writes when a Chinese Windows saves "CSV (逗号分隔)"; text that is neither is refused
  (``not_text``). Streamed row by row and refused at the first row or column past a limit.

Rows count up to the last row with content (blank rows in between count, trailing ones do not);
columns count up to the last cell with content. Refusals raise ``SheetRefused(reason, limit)``,
reason one of ``REASONS``; the caller words the message.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

MAX_MEMBERS = 2000
REASONS = ("not_text", "csv_unreadable", "not_xlsx", "unpacked_too_large", "too_many_rows", "too_many_columns")
_DTD_MARKS = (b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))


class SheetRefused(Exception):
    """The file was refused before or while it was read: ``reason`` (see ``REASONS``) and the
    ``limit`` it broke (rows, columns or bytes; 0 when none applies)."""

    def __init__(self, reason: str, limit: int = 0) -> None:
        super().__init__(reason, limit)
        self.reason = reason
        self.limit = limit


def cell_text(value: object) -> str:
    """A cell as text: integral floats lose their ``.0`` (Excel stores 1001 as 1001.0), other
    floats keep their shortest exact form, dates become ISO dates."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()


class _Rows:
    """Collects rows, refusing the first row or column past the limits."""

    def __init__(self, max_rows: int, max_columns: int) -> None:
        self.max_rows, self.max_columns = max_rows, max_columns
        self.rows: list[list[str]] = []
        self.blank = 0  # blank rows seen since the last row with content

    def add(self, values: list[str]) -> None:
        width = len(values)
        while width and not values[width - 1]:
            width -= 1
        if not width:
            self.blank += 1
            return
        if width > self.max_columns:
            raise SheetRefused("too_many_columns", self.max_columns)
        if len(self.rows) + self.blank + 1 > self.max_rows:
            raise SheetRefused("too_many_rows", self.max_rows)
        self.rows.extend([] for _ in range(self.blank))
        self.blank = 0
        self.rows.append(values[:width])


def csv_text(data: bytes) -> str:
    """*data* decoded as UTF-8 (BOM or not), else as GB18030; ``SheetRefused("not_text")`` when
    it is neither (a UTF-16 file, a binary file renamed .csv)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise SheetRefused("not_text")


def read_csv(data: bytes, max_rows: int, max_columns: int) -> list[list[str]]:
    """The rows of a UTF-8 or GBK (GB18030) CSV file (see the module's rules)."""
    text = csv_text(data)
    rows = _Rows(max_rows, max_columns)
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            rows.add([value.strip() for value in row])
    except csv.Error:
        raise SheetRefused("csv_unreadable") from None
    return rows.rows


def _declares_dtd(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    """Whether the part holds a document type declaration anywhere (read in blocks, so that a
    long comment before it does not hide it)."""
    overlap = max(len(mark) for mark in _DTD_MARKS)
    tail = b""
    with archive.open(member) as part:
        while block := part.read(1 << 20):
            window = tail + block
            if any(mark in window for mark in _DTD_MARKS):
                return True
            tail = window[-overlap:]
    return False


def _check_archive(data: bytes, max_unpacked: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > max_unpacked:
                raise SheetRefused("unpacked_too_large", max_unpacked)
            for member in members:
                if member.filename.endswith((".xml", ".rels", ".vml")) and _declares_dtd(archive, member):
                    raise SheetRefused("not_xlsx")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError):
        raise SheetRefused("not_xlsx") from None


def read_xlsx(data: bytes, max_rows: int, max_columns: int, max_unpacked: int) -> list[list[str]]:
    """The rows of the first sheet of an XLSX workbook (see the module's rules)."""
    from openpyxl import load_workbook

    _check_archive(data, max_unpacked)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook is the same user error
        raise SheetRefused("not_xlsx") from None
    try:
        if not workbook.worksheets:
            raise SheetRefused("not_xlsx")
        sheet = workbook.worksheets[0]
        claimed_rows, claimed_columns = sheet.max_row, sheet.max_column  # from <dimension>, when given
        if claimed_columns is not None and claimed_columns > max_columns:
            raise SheetRefused("too_many_columns", max_columns)
        if claimed_rows is not None and claimed_rows > max_rows:
            raise SheetRefused("too_many_rows", max_rows)
        rows = _Rows(max_rows, max_columns)
        try:
            # one column more than allowed: a value there means the sheet is too wide
            for values in sheet.iter_rows(max_col=max_columns + 1, values_only=True):
                rows.add([cell_text(v) for v in values])
        except SheetRefused:
            raise
        except Exception:  # noqa: BLE001 - a broken part inside a readable archive
            raise SheetRefused("not_xlsx") from None
        return rows.rows
    finally:
        workbook.close()


def read_sheet(kind: str, data: bytes, max_rows: int, max_columns: int, max_unpacked: int) -> list[list[str]]:
    """The rows of *data*, a ``"csv"`` or ``"xlsx"`` file, as lists of cell texts (trailing
    blank cells and rows dropped). Raises ``SheetRefused``; ``ValueError`` for another *kind*."""
    if kind == "csv":
        return read_csv(data, max_rows, max_columns)
    if kind == "xlsx":
        return read_xlsx(data, max_rows, max_columns, max_unpacked)
    raise ValueError(f"not a spreadsheet kind: {kind!r}")
