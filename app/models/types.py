"""Column types shared by the models.

``EncryptedText`` keeps personal data (ID numbers, bank account numbers, TOTP secrets)
encrypted at rest with Fernet; the key comes from ``FIELD_ENCRYPTION_KEY``.

``Money`` is an amount in yuan, exact to the cent on every database: ``NUMERIC(18, 2)`` on
PostgreSQL, and on SQLite (which keeps ``NUMERIC`` values as binary floats, so that
9,999,999,999,999,999.99 reads back as 10,000,000,000,000,000.00) the same declared column holding
integer cents, which SQLite keeps exactly (64 bits) and sums exactly. Python sees
``Decimal`` quantized to 0.01 on both. SQL over these columns (``sum``, ``debit - credit``,
``coalesce(sum(...), 0)``, comparisons with literals) keeps the ``Money`` type, so literals are
bound as cents and results are read back from cents; a sum that no longer fits 64 bits makes
SQLite raise "integer overflow" rather than round (see ``is_sum_overflow``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Integer, Numeric, Text
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")
MONEY_DIGITS = 16  # integer digits of NUMERIC(18, 2)
MONEY_LIMIT = Decimal(10) ** MONEY_DIGITS  # every stored amount is strictly below this in size


def field_cipher() -> MultiFernet:
    """Return the cipher of the current application (several keys allow rotation)."""
    cipher = current_app.extensions.get("field_cipher")
    if cipher is None:
        keys = [k.strip() for k in current_app.config["FIELD_ENCRYPTION_KEY"].split(",") if k.strip()]
        cipher = MultiFernet([Fernet(k.encode()) for k in keys])
        current_app.extensions["field_cipher"] = cipher
    return cipher


class EncryptedText(TypeDecorator):
    """A text column stored as a Fernet token; ``None`` and ``""`` are stored as NULL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001
        if value is None or value == "":
            return None
        return field_cipher().encrypt(str(value).encode()).decode()

    def process_result_value(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        try:
            return field_cipher().decrypt(value.encode()).decode()
        except InvalidToken as exc:  # wrong key: fail loudly rather than show ciphertext
            raise RuntimeError("FIELD_ENCRYPTION_KEY cannot decrypt stored data") from exc


def _decimal(value: object) -> Decimal:
    if isinstance(value, float | bool):  # money is never binary floating point
        raise TypeError(f"money must be a Decimal, an int or a string, not {type(value).__name__}")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    if abs(amount) < MONEY_LIMIT:  # (quantizing 1e30 would overflow the decimal context)
        amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)  # as PostgreSQL rounds into numeric(18, 2)
    if abs(amount) >= MONEY_LIMIT:
        # The services refuse such amounts first (ValidationFailed); this is the last line of
        # defence, the same on SQLite as PostgreSQL's "numeric field overflow".
        raise ValueError(f"amount {amount} does not fit NUMERIC(18, 2)")
    return amount


def to_cents(value: object) -> int | None:
    """``Decimal("12.34")`` → ``1234`` (how SQLite stores money); ``None`` stays ``None``.

    Raises ``TypeError`` for a float and ``ValueError`` for a non-finite amount or one that does not
    fit ``NUMERIC(18, 2)``."""
    if value is None:
        return None
    return int(_decimal(value).scaleb(2))


def from_cents(value: object) -> Decimal | None:
    """``1234`` (SQLite storage) → ``Decimal("12.34")``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, float):  # only SQLite's own float arithmetic (avg ...) produces one
        value = round(value)
    return Decimal(value).scaleb(-2).quantize(CENT)


def is_sum_overflow(exc: BaseException) -> bool:
    """True for SQLite's "integer overflow": a sum of cents beyond 64 bits (92 million billion yuan)."""
    return "integer overflow" in str(getattr(exc, "orig", exc)).lower()


class Money(TypeDecorator):
    """An amount in yuan: ``Decimal`` with two places, exact on PostgreSQL and SQLite alike.

    PostgreSQL stores ``NUMERIC(18, 2)``; SQLite stores integer cents in the same declared
    column (see the module docstring). Binding a float raises ``TypeError``, an amount beyond
    ``NUMERIC(18, 2)`` ``ValueError`` (on both databases: the services check first)."""

    impl = Numeric(18, 2)
    cache_ok = True

    def bind_processor(self, dialect):  # noqa: ANN001, ANN201
        if dialect.name == "sqlite":
            return to_cents
        return super().bind_processor(dialect)

    def literal_processor(self, dialect):  # noqa: ANN001, ANN201
        if dialect.name == "sqlite":
            return lambda value: str(to_cents(value))
        return super().literal_processor(dialect)

    def result_processor(self, dialect, coltype):  # noqa: ANN001, ANN201
        if dialect.name == "sqlite":
            return from_cents
        return super().result_processor(dialect, coltype)

    def coerce_compared_value(self, op, value):  # noqa: ANN001, ANN201
        # ``debit * 2`` multiplies by two, not by 200 cents: a factor or divisor is a plain number.
        if op in (operators.mul, operators.truediv, operators.floordiv, operators.mod):
            return Integer() if isinstance(value, int) else Numeric()
        try:
            if isinstance(value, str | int | Decimal):
                _decimal(value)
        except ValueError:
            # Text that is not an amount ("abc", "1e30": list filters pass what was typed) compares
            # with NULL and matches nothing, rather than failing the statement.
            return NotAnAmount()
        return self  # ``debit > 100``, ``amount = :x``: the literal is an amount, bound as one

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ARG002
        return None if value is None else _decimal(value)

    def process_result_value(self, value, dialect):  # noqa: ANN001, ARG002
        return None if value is None else Decimal(value).quantize(CENT)


class NotAnAmount(TypeDecorator):
    """The type of a literal compared with a ``Money`` column that is not an amount: bound as NULL,
    so the comparison matches no row on any database."""

    impl = Numeric(18, 2)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ARG002
        return None


def render_stored_type(type_: str, obj: object, autogen_context: object) -> str | bool:  # noqa: ARG001
    """Alembic's ``render_item`` hook (``migrations/env.py``): autogenerate writes a column of the
    types above as what the database declares (``sa.Numeric(precision=18, scale=2)``,
    ``sa.Text()``), as the existing migrations do, so that a migration never imports the
    application; any other item is rendered as Alembic would (``False``)."""
    if type_ == "type" and isinstance(obj, Money | EncryptedText):
        return f"sa.{obj.impl_instance!r}"
    return False
