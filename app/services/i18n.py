"""Message catalogs: compiled (.mo) from the committed .po files when missing or stale."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from app.config import BASE_DIR

TRANSLATIONS = BASE_DIR / "translations"
# The marker functions pybabel must read besides its defaults (which include ``pgettext``): the
# lazy forms, and the context (``1c``) of the ``pgettext`` family, which keeps an English word
# used in two meanings apart (``pgettext("ledger", "Account")`` 会计科目 vs. the user account).
EXTRACT_KEYWORDS = ("_", "_l", "lazy_gettext", "gettext", "ngettext:1,2", "pgettext:1c,2",
                    "lazy_pgettext:1c,2", "npgettext:1c,2,3")


def extract_args() -> list[str]:
    """The ``-k`` arguments of ``pybabel extract`` for :data:`EXTRACT_KEYWORDS`."""
    return [arg for keyword in EXTRACT_KEYWORDS for arg in ("-k", keyword)]


def ensure_compiled(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile every ``messages.po`` whose ``.mo`` is missing or older; return those written."""
    written = []
    for po_path in directory.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle)
        with mo_path.open("wb") as handle:
            write_mo(handle, catalog)
        written.append(mo_path)
    return written
