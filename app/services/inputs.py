"""Numbers typed by people and programs, read strictly.

Rules:
- A whole number is ASCII digits only: ``str.isdigit`` also accepts ``²`` and ``٣``, which
  ``int`` then refuses or reads as another number.
- A row id is from 1 to ``MAX_ID`` (an INTEGER column on PostgreSQL); a larger number is no
  row, never a database error.
- Text never holds the NUL character (PostgreSQL cannot store it), and structured input nests at
  most ``MAX_DEPTH`` levels (``hostile_part``).
"""

from __future__ import annotations

from typing import Any

MAX_ID = 2**31 - 1
MAX_DEPTH = 64


def ascii_digits(text: str) -> bool:
    """True when *text* is one or more of the characters 0-9 and nothing else."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_id(value: object) -> int | None:
    """A row id given as an integer or a string of ASCII digits (spaces around allowed), from 1 to
    ``MAX_ID``; ``None`` for anything else (booleans, floats, ``"²"``, ``"1e3"``, out of range)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and len(value.strip()) <= 10 and ascii_digits(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if 1 <= number <= MAX_ID else None


def parse_count(value: object, default: int, maximum: int = MAX_ID) -> int | None:
    """A whole number from 0 (a query argument such as ``page``, a number of attachments), as an
    integer or ASCII digits; *default* when absent or blank; ``None`` when malformed or above
    *maximum*."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not (len(text) <= 10 and ascii_digits(text)):
            return None
        number = int(text)
    return number if 0 <= number <= maximum else None


def hostile_part(data: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Where *data* (parsed JSON, a socket payload) breaks the rules above: ``"depth"`` when it nests
    deeper than *max_depth*, else the path of the first text holding a NUL character
    (``lines[2].memo``; ``_`` for the whole), else ``None``. Iterative: no recursion on hostile
    input."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if depth > max_depth:
            return "depth"
        if isinstance(item, str):
            if "\x00" in item:
                return path or "_"
        elif isinstance(item, dict):
            for key, value in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and "\x00" in key:
                    return name.replace("\x00", "")
                stack.append((value, depth + 1, name))
        elif isinstance(item, list | tuple):
            stack.extend((value, depth + 1, f"{path}[{index}]") for index, value in enumerate(item))
    return None
