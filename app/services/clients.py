"""Client rules: 统一社会信用代码 and ID-number validation, masking of personal data, and when a
client may be deleted."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.contracts import Contract, FeeBill, Payment
from app.models.crm import Client, ServiceRecord
from app.services.errors import Conflict
from app.services.inputs import ascii_digits
from app.services.integrity import describe, holding_rows

# GB 32100-2015: the 31 characters allowed in a unified social credit code, in value order.
CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# GB 11643-1999: resident identity number check digit.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def credit_code_check_char(first17: str) -> str:
    """Return the check character for the first 17 characters of a credit code.

    Raises ``ValueError`` if a character is outside the GB 32100 charset.
    """
    total = 0
    for char, weight in zip(first17, CREDIT_CODE_WEIGHTS, strict=True):
        index = CREDIT_CODE_CHARSET.find(char)
        if index < 0:
            raise ValueError(char)
        total += index * weight
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def credit_code_error(code: str | None) -> str | None:
    """Validate a 统一社会信用代码; return a user-facing error message or ``None`` if valid.

    Rule: exactly 18 characters from the GB 32100 charset (digits and upper-case letters
    without I, O, S, V, Z) whose last character is the weighted mod-31 check character.
    """
    code = (code or "").strip()
    if len(code) != 18:
        return str(_l("The unified social credit code must be exactly 18 characters."))
    if any(c not in CREDIT_CODE_CHARSET for c in code):
        return str(
            _l("The unified social credit code may contain only digits and capital letters "
               "other than I, O, S, V and Z.")
        )
    if credit_code_check_char(code[:17]) != code[17]:
        return str(_l("The unified social credit code's check character is wrong."))
    return None


def id_number_error(number: str | None) -> str | None:
    """Validate a mainland resident ID number (18 characters, GB 11643 check digit).

    Empty is allowed (the field is optional); return an error message or ``None``.
    """
    number = (number or "").strip().upper()
    if not number:
        return None
    if len(number) != 18 or not ascii_digits(number[:17]) or not (ascii_digits(number[17]) or number[17] == "X"):
        return str(_l("An ID number has 17 digits followed by a digit or X."))
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS, strict=True))
    if ID_CHECK[total % 11] != number[17]:
        return str(_l("The ID number's check digit is wrong."))
    return None


def mask(value: str | None, keep: int = 4) -> str:
    """Mask all but the last *keep* characters (``**************1234``)."""
    if not value:
        return ""
    value = str(value)
    if len(value) <= keep:
        return "*" * len(value)
    return "*" * (len(value) - keep) + value[-keep:]


def normalize_credit_code(code: str | None) -> str:
    return (code or "").strip().upper()


def client_holders(session: Session, client: Client) -> dict[str, int]:
    """What keeps *client* from being deleted, counted by table: its set of books, vouchers,
    contracts with their fee bills and payments, archived documents, service records, and
    anything else whose foreign key refuses the delete. Its contacts, bank accounts and tags
    are part of the client and go with it. Reads only."""
    counts = holding_rows(session, client)
    own_contracts = select(Contract.id).where(Contract.client_id == client.id)
    with session.no_autoflush:
        for model, condition in ((ServiceRecord, ServiceRecord.client_id == client.id),
                                 (FeeBill, FeeBill.contract_id.in_(own_contracts)),
                                 (Payment, Payment.contract_id.in_(own_contracts))):
            count = session.scalar(select(func.count()).select_from(model).where(condition)) or 0
            if count:
                counts[model.__tablename__] = count
    order = ("ledger_book", "ledger_voucher", "contract", "fee_bill", "payment", "document", "service_record")
    return dict(sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def check_client_deletable(session: Session, client: Client) -> None:
    """Rule: a client with books, vouchers, contracts, bills, payments, documents, service records
    or any other row that refers to it is never deleted (that would erase or orphan its
    accounting history); it is suspended or ended instead (暂停服务 / 已停止服务).

    Raises :class:`Conflict` (409) naming what holds the client; writes nothing. The database's
    foreign keys refuse the same delete should a row be added after this check."""
    counts = client_holders(session, client)
    if counts:
        raise Conflict(_("Client %(name)s still has %(holders)s; set the client to Suspended or Ended "
                         "instead of deleting it.", name=client.name, holders=describe(counts)))
