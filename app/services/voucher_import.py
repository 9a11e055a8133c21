"""Voucher import (凭证导入) from a CSV (UTF-8, with or without BOM) or XLSX file.

Rules:
- One row per voucher line. Columns (Chinese or English headers, any order): 日期/date,
  凭证字/word (default 记), 凭证号/group, 摘要/summary, 科目编码/account_code, 借方金额/debit,
  贷方金额/credit, 附件数/attachments (optional), 备注/memo (optional). Unknown columns are ignored.
- Rows with the same word and group number form one voucher; the group number only groups
  (vouchers get the next free numbers of their books). The voucher's date, summary and
  attachment count come from its first row; later rows must not give another date. A row whose
  summary differs from its voucher's keeps it as the line memo (unless a memo is given).
- Every row and every voucher passes the rules of ``vouchers.save_voucher`` (open period, leaf
  active accounts, amounts as text with two decimals, at least two lines, debits = credits).
- All or nothing: any error raises ``ImportFailed`` listing every problem with its row number
  (the header is row 1) and nothing is written; otherwise all vouchers are saved in one
  transaction as drafts of the importing user.
- Bounded before any work (``Limits``, from ``IMPORT_MAX_MB``, ``IMPORT_MAX_UNPACKED_MB``,
  ``IMPORT_MAX_ROWS``, ``IMPORT_MAX_COLUMNS``): a file over the byte limit, or a workbook whose
  parts unpack to more than the unpacked limit, raises ``ImportTooLarge`` (HTTP 413); more data
  rows or columns than allowed raise ``ImportFailed`` (422). The file is parsed into plain rows
  of text in a worker process (``reports.sheets`` through ``app.workers``): a hostile file costs
  the web server neither time nor memory. Validation and writing stay here, in one transaction;
  validation yields to the server's other work between vouchers, and the write phase takes the
  voucher numbers once per month and word and keeps the session small, so that it holds the
  database's write lock as briefly as it can (on SQLite other writers wait for it).

Entry points: ``read_rows`` (the file → rows; no database: call it before opening a transaction,
as it waits for a worker), ``import_rows`` (rows → vouchers; commits) and ``import_vouchers``
(both).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.extensions import socketio
from app.models.ledger import LedgerBook, Voucher, VoucherKind, VoucherState, VoucherWord
from app.services import books
from app.services.accounting import ZERO, period_of
from app.services.errors import DomainError, ValidationFailed
from app.services.vouchers import (
    VoucherInput,
    ensure_open,
    insert_vouchers,
    lock_book,
    next_number,
    parse_voucher,
    retrying,
)
from reports.sheets import SheetRefused

MB = 1024 * 1024
FORMATS = ("csv", "xlsx")

# canonical field → accepted header spellings (compared lower-case, without spaces)
HEADERS: dict[str, tuple[str, ...]] = {
    "date": ("日期", "凭证日期", "date"),
    "word": ("凭证字", "word"),
    "group": ("凭证号", "group", "voucher_no", "number"),
    "summary": ("摘要", "summary"),
    "account_code": ("科目编码", "科目代码", "account_code", "account"),
    "debit": ("借方金额", "借方", "debit"),
    "credit": ("贷方金额", "贷方", "credit"),
    "attachments": ("附件数", "附件", "attachments"),
    "memo": ("备注", "memo"),
}
REQUIRED = ("date", "group", "summary", "account_code", "debit", "credit")
TEMPLATE_HEADER = ["日期", "凭证字", "凭证号", "摘要", "科目编码", "借方金额", "贷方金额", "附件数"]
TEMPLATE_ROWS = [
    ["2026-01-15", "记", "1", "收到货款", "1001", "1000.00", "", "1"],
    ["2026-01-15", "记", "1", "收到货款", "5001", "", "1000.00", "1"],
]


@dataclass(frozen=True)
class Limits:
    """What an import file may be: bytes, unpacked bytes (XLSX), data rows, columns."""

    max_bytes: int = 2 * MB
    max_unpacked: int = 20 * MB
    max_rows: int = 2000
    max_columns: int = 40

    @classmethod
    def from_config(cls, config: dict) -> Limits:
        """The limits set by ``IMPORT_MAX_*`` (see ``app.config``)."""
        return cls(max_bytes=int(config.get("IMPORT_MAX_BYTES", cls.max_bytes)),
                   max_unpacked=int(config.get("IMPORT_MAX_UNPACKED_BYTES", cls.max_unpacked)),
                   max_rows=int(config.get("IMPORT_MAX_ROWS", cls.max_rows)),
                   max_columns=int(config.get("IMPORT_MAX_COLUMNS", cls.max_columns)))


@dataclass(frozen=True)
class RowError:
    """One problem of an import: the file row (header = 1, 0 for the whole file), the field, the message."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        if self.row == 0:
            return self.message
        return str(_l("Row %(row)d (%(field)s): %(message)s", row=self.row, field=self.field, message=self.message))

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}


class ImportFailed(ValidationFailed):
    """The file was refused; ``rows`` lists every problem by row. Nothing was written."""

    def __init__(self, rows: list[RowError]) -> None:
        self.rows = sorted(rows, key=lambda e: (e.row, e.field))
        super().__init__({"file": [str(e) for e in self.rows]})


class ImportTooLarge(ImportFailed):
    """The file (or the workbook once unpacked) is over its size limit. Nothing was read."""

    status_code = 413


@dataclass
class _Group:
    key: tuple[str, str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


# --- reading the file -----------------------------------------------------------------------

Reader = Callable[[str, bytes, int, int, int], list[list[str]]]


def _file_error(message: str, kind: type[ImportFailed] = ImportFailed) -> ImportFailed:
    return kind([RowError(0, "file", message)])


def _in_worker(kind: str, data: bytes, max_rows: int, max_columns: int, max_unpacked: int) -> list[list[str]]:
    from app import workers

    return workers.call("sheet.read", kind, data, max_rows, max_columns, max_unpacked, queue_wait=60.0,
                        limit=60.0)


def _refusal(refused: SheetRefused, limits: Limits) -> ImportFailed:
    if refused.reason == "not_text":
        return _file_error(str(_l("The CSV file is neither UTF-8 nor GBK text; save it as \"CSV UTF-8\" "
                                  "or \"CSV (逗号分隔)\".")))
    if refused.reason == "csv_unreadable":
        return _file_error(str(_l("The CSV file cannot be read.")))
    if refused.reason == "unpacked_too_large":
        return _file_error(str(_l("The workbook is larger than %(mb)s MB once unpacked; it cannot be read.",
                                  mb=f"{limits.max_unpacked / MB:g}")), ImportTooLarge)
    if refused.reason == "too_many_rows":
        return _file_error(str(_l("The file has more than %(n)d rows; split it.", n=limits.max_rows)))
    if refused.reason == "too_many_columns":
        return _file_error(str(_l("The file has more than %(n)d columns.", n=limits.max_columns)))
    return _file_error(str(_l("The Excel file cannot be read; upload an .xlsx workbook.")))


def file_format(filename: str) -> str:
    """``"csv"`` or ``"xlsx"`` from the file name; raises ``ImportFailed`` for anything else."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in FORMATS:
        raise _file_error(str(_l("Upload a .csv or .xlsx file.")))
    return suffix


def read_rows(filename: str, data: bytes, limits: Limits | None = None,
              reader: Reader | None = None) -> list[tuple[int, dict[str, str]]]:
    """The data rows of the file as ``(row number, {field: text})``, blank rows skipped.

    The file is parsed by *reader* (default: a worker process; waits cooperatively, so hold no
    database transaction). Raises ``ImportTooLarge`` for a file or unpacked workbook over its
    limit, ``ImportFailed`` for a wrong type, an empty or unreadable file, too many rows or
    columns, or a header without the required columns, and ``app.workers.WorkerError`` when no
    worker could read it.
    """
    limits = limits or Limits()
    kind = file_format(filename)
    if not data:
        raise _file_error(str(_l("The file is empty.")))
    if len(data) > limits.max_bytes:
        raise _file_error(str(_l("The file is larger than %(kb)d KB.", kb=limits.max_bytes // 1024)), ImportTooLarge)
    try:
        raw = (reader or _in_worker)(kind, data, limits.max_rows + 1, limits.max_columns, limits.max_unpacked)
    except SheetRefused as refused:
        raise _refusal(refused, limits) from None
    while raw and not any(raw[0]):
        raw.pop(0)
    if not raw:
        raise _file_error(str(_l("The file is empty.")))
    columns = _columns(raw[0])
    rows: list[tuple[int, dict[str, str]]] = []
    for number, values in enumerate(raw[1:], start=2):
        if not any(values):
            continue
        rows.append((number, {name: (values[i] if i < len(values) else "") for name, i in columns.items()}))
    if len(rows) > limits.max_rows:
        raise _file_error(str(_l("The file has more than %(n)d rows; split it.", n=limits.max_rows)))
    if not rows:
        raise _file_error(str(_l("The file has a header but no rows.")))
    return rows


def _columns(header: list[str]) -> dict[str, int]:
    spellings = {s.lower(): name for name, options in HEADERS.items() for s in options}
    columns: dict[str, int] = {}
    problems: list[RowError] = []
    for index, title in enumerate(header):
        name = spellings.get(title.replace(" ", "").lower())
        if name is None:
            continue
        if name in columns:
            problems.append(RowError(1, name, str(_l("The column %(title)s appears twice.", title=title))))
        columns[name] = index
    for name in REQUIRED:
        if name not in columns:
            english = next(title for title in HEADERS[name] if title.isascii())
            problems.append(RowError(1, name, str(_l("The column %(title)s is missing.",
                                                     title=f"{HEADERS[name][0]} / {english}"))))
    if problems:
        raise ImportFailed(problems)
    return columns


# --- validating -----------------------------------------------------------------------------


def _groups(rows: list[tuple[int, dict[str, str]]], errors: list[RowError]) -> list[_Group]:
    groups: dict[tuple[str, str], _Group] = {}
    for number, row in rows:
        group = row.get("group", "").strip()
        if not group:
            errors.append(RowError(number, "group", str(_l("Give the voucher number that groups this row."))))
            continue
        key = (row.get("word", "").strip() or "记", group)
        groups.setdefault(key, _Group(key)).rows.append((number, row))
    return list(groups.values())


def _voucher_data(group: _Group, errors: list[RowError]) -> dict:
    first = group.rows[0][1]
    summary = first.get("summary", "").strip()
    for number, row in group.rows[1:]:
        if row.get("date", "").strip() and row["date"].strip() != first.get("date", "").strip():
            errors.append(RowError(number, "date", str(_l(
                "All rows of voucher %(group)s need the same date.", group=group.key[1]))))
    lines = []
    for _number, row in group.rows:
        memo = row.get("memo", "").strip()
        own_summary = row.get("summary", "").strip()
        if not memo and own_summary and own_summary != summary:
            memo = own_summary
        lines.append({"account_code": row.get("account_code", ""), "debit": row.get("debit", ""),
                      "credit": row.get("credit", ""), "memo": memo})
    return {"date": first.get("date", "").strip().replace("/", "-"), "word": group.key[0], "summary": summary,
            "attachments": first.get("attachments", ""), "lines": lines}


def _row_errors(group: _Group, problems: dict[str, list[str]]) -> list[RowError]:
    """Map ``save_voucher``-style field errors (``lines[2].debit``) to file rows."""
    found: list[RowError] = []
    first_row = group.rows[0][0]
    for key, messages in problems.items():
        row, name = first_row, key
        if key.startswith("lines[") and "]" in key:
            index = int(key[6:key.index("]")])
            row = group.rows[index][0] if index < len(group.rows) else first_row
            name = key[key.index("]") + 2:] or "lines"
        elif key in ("_", "lines"):
            name = "lines"
        found.extend(RowError(row, name, str(m)) for m in messages)
    return found


def _validate(session: Session, book: LedgerBook, rows: list[tuple[int, dict[str, str]]]) -> list[VoucherInput]:
    errors: list[RowError] = []
    planned: list[VoucherInput] = []
    for group in _groups(rows, errors):
        # Only reads so far (no write lock, no open snapshot on SQLite): let the server's other
        # requests and chat sockets run between two vouchers of a long file.
        socketio.sleep(0)
        data = _voucher_data(group, errors)
        problems: dict[str, list[str]] = {}
        try:
            parsed = parse_voucher(session, book.id, data, problems)
            if not problems:
                ensure_open(session, book, period_of(parsed.day))
        except DomainError as exc:  # unbalanced, or a closed month: one more problem of these rows
            problems.update(exc.errors)
        if problems:
            errors.extend(_row_errors(group, problems))
            continue
        planned.append(parsed)
    if errors:
        raise ImportFailed(errors)
    return planned


# --- importing ------------------------------------------------------------------------------


def import_rows(session: Session, client_id: int, rows: list[tuple[int, dict[str, str]]],
                user_id: int | None, before_commit: Callable[[list[Voucher]], None] | None = None) -> list[Voucher]:
    """导入凭证: validate the rows of a file (``read_rows``) against the client's books and save
    every voucher as a draft, in one transaction.

    Raises ``NotFound`` (client without books) and ``ImportFailed`` (any problem, by row); in both
    cases nothing is written. Returns the new vouchers in file order. *before_commit* runs with
    them inside the transaction (to store the answer of an idempotent request). Commits.
    """
    book = books.get_book(session, client_id)
    try:
        return _import(session, book.id, rows, user_id, before_commit)
    except DomainError:
        session.rollback()
        raise


def import_vouchers(session: Session, client_id: int, filename: str, data: bytes, user_id: int | None,
                    limits: Limits | None = None) -> list[Voucher]:
    """``read_rows`` then ``import_rows``: the file is read (in a worker) before the books are
    touched. Raises what they raise; nothing is written unless everything passed. Commits."""
    rows = read_rows(filename, data, limits)
    return import_rows(session, client_id, rows, user_id)


@retrying
def _import(session: Session, book_id: int, rows: list[tuple[int, dict[str, str]]], user_id: int | None,
            before_commit: Callable[[list[Voucher]], None] | None = None) -> list:
    book = session.get(LedgerBook, book_id)
    planned = _validate(session, book, rows)
    lock_book(session, book.id)
    numbers: dict[tuple[int, VoucherWord], int] = {}  # under the book's lock: taken once, then counted on
    written: list[tuple[dict, list]] = []
    for item in planned:
        period = period_of(item.day)
        key = (period, item.word)
        numbers[key] = numbers[key] + 1 if key in numbers else next_number(session, book.id, period, item.word)
        written.append(({"book_id": book.id, "client_id": book.client_id, "maker_id": user_id,
                         "state": VoucherState.draft, "kind": VoucherKind.normal, "period": period,
                         "word": item.word, "date": item.day, "summary": item.summary,
                         "attachments": item.attachments, "number": numbers[key],
                         "total": sum((line.debit for line in item.lines), ZERO)}, item.lines))
    # A few statements for the whole file, not an ORM flush a voucher: the write lock (the whole
    # database on SQLite) is held for milliseconds, not seconds.
    ids = insert_vouchers(session, written)
    by_id = {voucher.id: voucher for voucher in session.scalars(select(Voucher).where(Voucher.id.in_(ids)))}
    saved = [by_id[voucher_id] for voucher_id in ids]
    if before_commit is not None:
        before_commit(saved)
    session.commit()
    return saved


# --- template -------------------------------------------------------------------------------


def template(kind: str) -> bytes:
    """The import template (header and two example rows) as ``csv`` (UTF-8 with BOM, so that
    spreadsheet programs show the Chinese headers) or ``xlsx``. Raises ``ValidationFailed``."""
    if kind == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(TEMPLATE_HEADER)
        writer.writerows(TEMPLATE_ROWS)
        return out.getvalue().encode("utf-8-sig")
    if kind == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        sheet.title = "凭证"
        sheet.append(TEMPLATE_HEADER)
        for row in TEMPLATE_ROWS:
            sheet.append(row)
        for cells in sheet.iter_rows(min_row=1):
            for cell in cells:
                cell.number_format = "@"  # text: keeps codes and amounts exactly as typed
        for letter, width in zip("ABCDEFGH", (12, 8, 8, 24, 12, 14, 14, 8), strict=True):
            sheet.column_dimensions[letter].width = width
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()
    raise ValidationFailed({"format": [str(_l("The template comes as csv or xlsx."))]})
