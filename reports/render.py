"""The render pipeline: a ``Document`` (title, template, context, rows) → HTML → PDF.

- One Jinja environment over ``reports/templates`` with autoescape on (client names, memos and
  chat text are always inserted as text) and the app's translations (flask_babel).
- ``base.html`` carries the title and the metadata (title, author, date) WeasyPrint writes into
  the PDF; ``reports/pdf.py`` adds the page rules: A4 (landscape where wide), agency / title /
  client in the header, "generated at … by …" and "第 X 页 / 共 Y 页" in the footer. Table
  headers repeat on every page (WeasyPrint repeats ``thead``; totals are body rows so that they
  print once).
- A document's ``rows`` can be split into chunks rendered apart (``split``); each chunk is
  a whole HTML document showing the title block first and the closing totals last.
- The PDF itself is made in a worker process (``reports.jobs``), never here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import get_locale, ngettext, npgettext, pgettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.extensions import socketio
from reports.pdf import FONT_FAMILY, Numbering, PageStyle, plan_numbering

HERE = Path(__file__).parent
CSS_FILE = HERE / "static" / "report.css"
_ENV: Environment | None = None


def money(value: Decimal | None, blank_zero: bool = False) -> str:
    """``Decimal("11300")`` → ``"11,300.00"``; ``None`` (and zero when *blank_zero*) → ``""``."""
    if value is None or (blank_zero and not value):
        return ""
    return f"{Decimal(value).quantize(Decimal('0.01')):,}"


def env() -> Environment:
    """The reports' Jinja environment (autoescaped, translated through flask_babel)."""
    global _ENV
    if _ENV is None:
        jinja = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(
            ["html"], default_for_string=True), extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
        jinja.install_gettext_callables(gettext=_, ngettext=ngettext, pgettext=pgettext,  # type: ignore[attr-defined]
                                        npgettext=npgettext, newstyle=True)
        jinja.filters["money"] = money
        jinja.filters["amount"] = lambda value: money(value, blank_zero=True)
        _ENV = jinja
    return _ENV


@dataclass
class Document:
    """One printable document before rendering.

    ``rows`` is the part that may be split into chunks (ledger lines, vouchers, messages);
    ``context`` holds everything else the template needs. ``cache_key`` is set when the
    document may be served from the cache (a closed period), with its content version in it.
    ``page_plan(rows, first)`` is set when the document makes its own pages: how many pages a
    chunk of *rows* prints (*first*: the chunk carrying the title block), so that chunks
    rendered apart can print their own page numbers.
    """

    kind: str
    title: str
    template: str
    client_name: str
    subtitle: str
    author: str
    filename: str
    rows: list[Any] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    landscape: bool = False
    cache_key: str | None = None
    chunk_rows: int = 0  # >0: rows per chunk when rendered in the background
    generated_at: datetime | None = None
    page_plan: Callable[[list[Any], bool], int] | None = None
    font_family: str = FONT_FAMILY  # of the page header and footer

    def style(self) -> PageStyle:
        agency = current_app.config.get("AGENCY_NAME", "")
        stamp = self.generated_at.strftime("%Y-%m-%d %H:%M") if self.generated_at else ""
        return PageStyle(
            landscape=self.landscape, header_left=agency, header_center=self.title,
            header_right=self.client_name,
            footer_left=_("Generated %(at)s by %(user)s", at=stamp, user=self.author),
            page_label=_("Page {page} of {pages}"), font_family=self.font_family,
            metadata={"Title": f"{self.title} {self.client_name} {self.subtitle}".strip(), "Author": self.author,
                      "Creator": agency, "Subject": self.subtitle})


def _css() -> str:
    return CSS_FILE.read_text(encoding="utf-8")


def render_html(document: Document, rows: list[Any] | None = None, first: bool = True, last: bool = True) -> str:
    """The HTML of *document* (or of one chunk of it: *rows*, first / last flags)."""
    template = env().get_template(document.template)
    return template.render(doc=document, rows=document.rows if rows is None else rows, first=first, last=last,
                           css=_css(), lang=str(get_locale() or "zh_CN").replace("_", "-"),
                           created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           **document.context)


@dataclass
class Chunks:
    """A document split for rendering apart: the chunks' HTML and, when the document plans its
    pages, the pages each chunk prints (else ``None``)."""

    htmls: list[str]
    plan: list[int] | None

    def numbering(self) -> list[Numbering | None]:
        """The page numbers each chunk prints: from the plan, else none (stamped at the merge)."""
        return plan_numbering(self.plan) if self.plan is not None else [None] * len(self.htmls)

    @property
    def merge_htmls(self) -> list[str] | None:
        """The HTML the merge renders again if a chunk is off its plan (planned documents only)."""
        return self.htmls if self.plan is not None else None


def split(document: Document, size: int) -> Chunks:
    """*document* split into whole HTML documents of about *size* rows each (at least one).

    The rows are shared evenly between ``round(rows / size)`` chunks (2,012 rows at 1,000 a
    chunk: two chunks of 1,006, not a third one of 12 rows that would cost a render and a
    merge for nothing)."""
    rows = document.rows
    if size <= 0 or len(rows) <= size:
        parts = [rows]
    else:
        count = max(1, round(len(rows) / size))
        size = -(-len(rows) // count)
        parts = [rows[i:i + size] for i in range(0, len(rows), size)]
    htmls = []
    for index, part in enumerate(parts):
        htmls.append(render_html(document, part, first=index == 0, last=index == len(parts) - 1))
        socketio.sleep(0)  # let the server's other requests run between two chunks' templates
    plan = None
    if document.page_plan is not None:
        plan = [document.page_plan(part, index == 0) for index, part in enumerate(parts)]
    return Chunks(htmls, plan)


NO_DATA = _l("No data for this period.")
