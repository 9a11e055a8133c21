"""HTML to PDF with WeasyPrint, and the merge of chunks rendered apart.

This module imports neither Flask nor the application: its functions run in worker processes
(the local pool of ``reports.worker``, or RQ workers on any machine) that receive finished HTML
and page-style parameters and return PDF bytes.

Page numbers ("第 X 页 / 共 Y 页") of a document rendered in chunks:

- when the document paginates itself (the ruled-line ledgers know every page before rendering),
  each chunk prints its own numbers: its first page number and the document's total are given
  to the page rules (``@page :first { counter-reset: page N }``, the total as text). The merge
  checks that every chunk laid out exactly the pages planned; if one did not (a title block
  taller than planned pushed a line over), the chunks are rendered again without numbers and
  numbered as below, so a wrong number is never printed;
- otherwise each chunk is rendered without the page-number box, its pages are counted, then one
  light "footer" document of exactly the total number of pages is rendered with the
  page-number box only (WeasyPrint's own ``counter(page)`` / ``counter(pages)``), and each of
  its pages is stamped over the matching content page.

Numbers are therefore right whatever the chunks' lengths.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field

_FONTS = threading.local()
COUNTERS = {"{page}": "counter(page)", "{pages}": "counter(pages)"}
FONT_FAMILY = '"Noto Sans CJK SC", "Noto Sans CJK", "Noto Sans SC", "Source Han Sans SC", sans-serif'
MONO_FAMILY = '"Noto Sans Mono CJK SC", "Noto Sans Mono CJK", monospace'


@dataclass(frozen=True)
class PageStyle:
    """What every page carries besides the content: size, running header and footer texts.

    ``page_label`` is a translated pattern with ``{page}`` and ``{pages}`` placeholders
    (``"第 {page} 页 / 共 {pages} 页"``). ``font_family`` is the margin boxes' font: a document
    printed in one face (the ruled ledgers) says so, as every face costs a subset per render.
    """

    landscape: bool = False
    header_left: str = ""
    header_center: str = ""
    header_right: str = ""
    footer_left: str = ""
    page_label: str = "{page} / {pages}"
    font_family: str = FONT_FAMILY
    metadata: dict[str, str] = field(default_factory=dict)


def css_string(text: str) -> str:
    """*text* as a quoted CSS string (quotes, backslashes and line breaks escaped)."""
    out = []
    for char in str(text):
        if char in '"\\':
            out.append("\\" + char)
        elif char in "\n\r\f" or ord(char) < 32:
            out.append(f"\\{ord(char):x} ")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def page_number_content(pattern: str, total: int | None = None) -> str:
    """``"第 {page} 页 / 共 {pages} 页"`` → the CSS ``content`` value with the page counters
    (*total*, when given, is printed for ``{pages}`` instead of WeasyPrint's page count)."""
    parts: list[str] = []
    rest = pattern
    while rest:
        positions = [(rest.find(mark), mark) for mark in ("{pages}", "{page}") if mark in rest]
        if not positions:
            parts.append(css_string(rest))
            break
        at, mark = min(positions)
        if at:
            parts.append(css_string(rest[:at]))
        parts.append(css_string(str(total)) if mark == "{pages}" and total is not None else COUNTERS[mark])
        rest = rest[at + len(mark):]
    return " ".join(parts) or '""'


@dataclass(frozen=True)
class Numbering:
    """The page numbers a chunk prints: its first page's number and the document's total."""

    first: int
    total: int


def page_css(style: PageStyle, numbered: bool = True, content: bool = True, numbering: Numbering | None = None) -> str:
    """The ``@page`` rules: A4 (landscape when asked), header boxes, generated-by and page number.

    The margin boxes have fixed widths: with ``auto`` WeasyPrint measures their contents'
    min- and max-content widths on every page (~8 ms a page, a fifth of a ruled ledger page).

    *numbered* False leaves the page-number box out (chunks); *content* False keeps only it
    (the footer document stamped over the chunks); *numbering* makes the numbers start at
    ``numbering.first`` and the total read ``numbering.total`` (a chunk of a planned document).
    """
    size = "A4 landscape" if style.landscape else "A4"
    font = f"font-family: {style.font_family}; font-size: 8pt; color: #444;"
    boxes = []
    if content:
        boxes += [f"@top-left {{ content: {css_string(style.header_left)}; width: 30%; {font} }}",
                  f"@top-center {{ content: {css_string(style.header_center)}; width: 40%; {font} color: #000; }}",
                  f"@top-right {{ content: {css_string(style.header_right)}; width: 30%; {font} }}",
                  f"@bottom-left {{ content: {css_string(style.footer_left)}; width: 60%; {font} }}"]
    if numbered:
        label = page_number_content(style.page_label, numbering.total if numbering else None)
        boxes.append(f"@bottom-right {{ content: {label}; width: 40%; {font} color: #000; }}")
    rules = f"@page {{ size: {size}; margin: 18mm 12mm 16mm 12mm; {' '.join(boxes)} }}"
    if numbered and numbering:
        rules += f" @page :first {{ counter-reset: page {int(numbering.first)} }}"
    return rules


def _font_config():  # noqa: ANN202
    from weasyprint.text.fonts import FontConfiguration

    if getattr(_FONTS, "config", None) is None:
        _FONTS.config = FontConfiguration()
    return _FONTS.config


def _stylesheet(css: str):  # noqa: ANN202
    """The parsed ``CSS`` of *css*, kept per thread (page rules repeat from render to render)."""
    from weasyprint import CSS

    cache = getattr(_FONTS, "sheets", None)
    if cache is None:
        cache = _FONTS.sheets = {}
    sheet = cache.get(css)
    if sheet is None:
        if len(cache) >= 64:
            cache.clear()
        sheet = cache[css] = CSS(string=css, font_config=_font_config())
    return sheet


def _render(html: str, css: str, base_url: str | None = None):  # noqa: ANN202
    from weasyprint import HTML

    return HTML(string=html, base_url=base_url).render(stylesheets=[_stylesheet(css)], font_config=_font_config())


def html_to_pdf(html: str, style: PageStyle, numbered: bool = True,
                numbering: Numbering | None = None) -> tuple[bytes, int]:
    """Render *html* (a whole document, or a chunk numbered from ``numbering.first``) into PDF
    bytes; returns (pdf, number of pages)."""
    document = _render(html, page_css(style, numbered=numbered, numbering=numbering))
    return document.write_pdf(), len(document.pages)


def footer_pdf(style: PageStyle, pages: int) -> bytes:
    """A document of *pages* blank pages carrying only the page-number box."""
    blank = '<div style="break-after: page"></div>' * (pages - 1) + "<div></div>"
    html = f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{blank}</body></html>"
    return _render(html, page_css(style, numbered=True, content=False)).write_pdf()


def plan_numbering(plan: list[int]) -> list[Numbering]:
    """Planned pages per chunk → the numbering of each chunk (``[3, 2]`` → first pages 1 and 4
    of 5)."""
    total, out, first = sum(plan), [], 1
    for pages in plan:
        out.append(Numbering(first, total))
        first += pages
    return out


def merge_chunks(chunks: list[bytes], style: PageStyle, plan: list[int] | None = None,
                 htmls: list[str] | None = None) -> bytes:
    """Join chunk PDFs into one; the metadata (title, author...) of *style* goes into the result.

    With *plan* (pages planned per chunk; the chunks printed their numbers from
    ``plan_numbering(plan)``) the chunks are only joined, if each has exactly its planned pages;
    if one has not, the chunks are rendered again from *htmls* without numbers. Chunks without
    numbers get "第 X 页 / 共 Y 页" stamped on every page from a footer document.

    Raises ``ValueError`` when a chunk is off plan and *htmls* are not given."""
    return merge_counted(chunks, style, plan, htmls)[0]


def merge_counted(chunks: list[bytes], style: PageStyle, plan: list[int] | None = None,
                  htmls: list[str] | None = None) -> tuple[bytes, int]:
    """``merge_chunks`` and the number of pages of the result."""
    from pypdf import PdfReader, PdfWriter

    readers = [PdfReader(io.BytesIO(chunk)) for chunk in chunks]
    numbered = plan is not None and [len(reader.pages) for reader in readers] == list(plan)
    if plan is not None and not numbered:
        if htmls is None or len(htmls) != len(chunks):
            raise ValueError("a chunk is off its page plan and its HTML is not given")
        readers = [PdfReader(io.BytesIO(html_to_pdf(html, style, numbered=False)[0])) for html in htmls]
    writer = PdfWriter()
    for reader in readers:
        writer.append(reader)
    if not numbered:
        stamps = PdfReader(io.BytesIO(footer_pdf(style, len(writer.pages))))
        for page, stamp in zip(writer.pages, stamps.pages, strict=True):
            page.merge_page(stamp)
    writer.add_metadata({f"/{key}": value for key, value in style.metadata.items()})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), len(writer.pages)


def page_count(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)
