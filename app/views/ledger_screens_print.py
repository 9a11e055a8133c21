"""Amounts in Chinese capitals (大写金额) for printed vouchers.

Rules (as on cheques and vouchers): digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟 within a group of
four and 万/亿/万亿 between groups; 壹拾 is written in full; a run of zeros inside the number is
one 零 and trailing zeros are dropped; an amount ending at 元 or 角 takes 整, one with 分 does
not; 1.05 is 壹元零伍分; zero is 零元整 and a negative amount (a red reversal) is prefixed 负.
"""

from __future__ import annotations

from decimal import Decimal

DIGITS = "零壹贰叁肆伍陆柒捌玖"
GROUP_UNITS = ("", "万", "亿", "万亿")
PLACES = ((1000, "仟"), (100, "佰"), (10, "拾"), (1, ""))


def _group_words(group: int) -> str:
    """Words of 1..9999 without a leading 零."""
    out, zero = "", False
    for place, unit in PLACES:
        digit = group // place % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += DIGITS[digit] + unit
    return out


def _integer_words(number: int) -> str:
    groups = []
    while number:
        number, group = divmod(number, 10000)
        groups.append(group)
    out, gap = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"
        out += _group_words(group) + GROUP_UNITS[index]
        gap = False
    return out


def amount_in_words(amount: Decimal | str | int) -> str:
    """``Decimal("1005.07")`` → ``"壹仟零伍元零柒分"``.

    Accepts up to two decimals and less than 10**16 in absolute value; raises ``ValueError``
    otherwise (a float is refused too: money is never binary floating point).
    """
    if isinstance(amount, float | bool):
        raise ValueError("amounts are Decimal, str or int")
    value = Decimal(str(amount))
    if not value.is_finite() or value != value.quantize(Decimal("0.01")) or abs(value) >= Decimal("1e16"):
        raise ValueError(f"not an amount: {amount!r}")
    cents = int(abs(value) * 100)
    yuan, rest = divmod(cents, 100)
    jiao, fen = divmod(rest, 10)
    if cents == 0:
        return "零元整"
    words = _integer_words(yuan) + "元" if yuan else ""
    if jiao:
        words += DIGITS[jiao] + "角"
    elif yuan and fen:
        words += "零"
    words += DIGITS[fen] + "分" if fen else "整"
    return ("负" if value < 0 else "") + words
