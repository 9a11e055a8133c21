"""Referential integrity (参照完整性): what still refers to a row, and deletes the database would refuse.

Every foreign key says what happens to the rows that refer to a deleted row (``ondelete``):
CASCADE deletes them too, SET NULL clears the reference, and RESTRICT (or no rule, which
PostgreSQL and SQLite treat alike) refuses the delete. Both databases enforce this (SQLite
through ``PRAGMA foreign_keys=ON`` on every connection, app/extensions.py), so the database is
the last line of defence. A delete is checked here first, so that the user learns what holds
the row in words instead of a driver's error: :func:`holding_rows` counts the rows that would
refuse it, directly or through the rows it would cascade to, and :func:`refuse_held_delete`
turns them into a :class:`~app.services.errors.Conflict`. When two requests race and the
database refuses after all, :func:`delete_refused` gives the same kind of answer (and
:func:`write_refused` for an insert or update); the driver's text (SQL, table and
constraint names, values) never reaches a client.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_appbuilder import Model
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import ColumnElement, Table, func, inspect, select
from sqlalchemy.orm import Session

from app.services.errors import Conflict, ValidationFailed

# ondelete rules under which a referring row stops the delete.
_HOLDING = {None, "RESTRICT", "NO ACTION"}


def _labels() -> dict[str, Callable[[int], str]]:
    """How a count of rows of each table is named to a user (translated at call time)."""
    return {
        "ledger_book": lambda n: ngettext("%(num)d set of books", "%(num)d sets of books", n),
        "ledger_voucher": lambda n: ngettext("%(num)d voucher", "%(num)d vouchers", n),
        "ledger_voucher_line": lambda n: ngettext("%(num)d voucher line", "%(num)d voucher lines", n),
        "ledger_account": lambda n: ngettext("%(num)d account", "%(num)d accounts", n),
        "ledger_opening_balance": lambda n: ngettext("%(num)d opening balance", "%(num)d opening balances", n),
        "contract": lambda n: ngettext("%(num)d contract", "%(num)d contracts", n),
        "fee_bill": lambda n: ngettext("%(num)d fee bill", "%(num)d fee bills", n),
        "payment": lambda n: ngettext("%(num)d payment", "%(num)d payments", n),
        "document": lambda n: ngettext("%(num)d archived document", "%(num)d archived documents", n),
        "service_record": lambda n: ngettext("%(num)d service record", "%(num)d service records", n),
        "tax_filing": lambda n: ngettext("%(num)d tax filing", "%(num)d tax filings", n),
        "ab_user": lambda n: ngettext("%(num)d user account", "%(num)d user accounts", n),
        "chat_conversation_topic": lambda n: ngettext("%(num)d conversation filed under it",
                                                      "%(num)d conversations filed under it", n),
    }


def describe(counts: dict[str, int]) -> str:
    """``{"ledger_voucher": 145, "contract": 2}`` in words: "145 vouchers, 2 contracts"
    (in Chinese "145 张凭证、2 份合同"); tables without a name of their own are summed up as
    other records. Zero counts are left out."""
    labels = _labels()
    parts, others = [], 0
    for table, count in counts.items():
        if not count:
            continue
        if table in labels:
            parts.append(labels[table](count))
        else:
            others += count
    if others:
        parts.append(ngettext("%(num)d other record", "%(num)d other records", others))
    return _(", ").join(parts)


def _referring(table: Table) -> list[tuple[Table, object]]:
    """Every (table, foreign key) whose key points at *table*."""
    return [(child, fk) for child in Model.metadata.sorted_tables for fk in child.foreign_keys
            if fk.column.table is table]


def _collect(session: Session, table: Table, rows: ColumnElement[bool], counts: dict[str, int],
             path: tuple[Table, ...]) -> None:
    for child, fk in _referring(table):
        referring = fk.parent.in_(select(fk.column).where(rows))
        if fk.ondelete in _HOLDING:
            if child is table:  # a row of the same table that is itself deleted holds nothing
                referring = referring & ~rows
            count = session.scalar(select(func.count()).select_from(child).where(referring)) or 0
            if count:
                counts[child.name] = counts.get(child.name, 0) + count
        elif fk.ondelete == "CASCADE" and child not in path:
            _collect(session, child, referring, counts, (*path, child))


def holding_rows(session: Session, instance: object) -> dict[str, int]:
    """Count, by table name, the rows that would make the database refuse to delete *instance*:
    rows referring to it through a RESTRICT (or rule-less) key, and such rows referring to the
    rows the delete would cascade to (a contract's fee bills, say). Empty: the delete may go
    ahead. Reads only."""
    mapper = inspect(instance).mapper
    table = mapper.local_table
    condition = None
    for column, value in zip(mapper.primary_key, mapper.primary_key_from_instance(instance), strict=True):
        clause = column == value
        condition = clause if condition is None else condition & clause
    counts: dict[str, int] = {}
    with session.no_autoflush:
        _collect(session, table, condition, counts, (table,))
    return counts


def refuse_held_delete(session: Session, instance: object, what: str) -> None:
    """Raise :class:`Conflict` naming what holds *instance* (called *what* in the message) when
    the database would refuse to delete it; return when nothing does. Writes nothing."""
    counts = holding_rows(session, instance)
    if counts:
        raise Conflict(_("%(what)s cannot be deleted: it is still referred to by %(holders)s.",
                         what=what, holders=describe(counts)))


def delete_refused() -> Conflict:
    """The answer to a delete the database refused for its keys (another request added a
    referring row after the check): a :class:`Conflict` without the driver's text."""
    return Conflict(_("Other records still refer to this record; nothing was deleted."))


def write_refused() -> ValidationFailed:
    """The answer to an insert or update the database refused for a constraint (a duplicate, a
    missing value, a reference to a row that does not exist): a :class:`ValidationFailed`
    without the driver's text."""
    return ValidationFailed(_("The database refused the change: a duplicate, a missing value or a "
                              "reference to a record that does not exist; nothing was saved."))
