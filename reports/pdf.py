"""HTML to PDF with WeasyPrint, and the merge of chunks rendered apart.

This module imports neither Flask nor the application: its functions run in worker processes
(the local process pool, or ``rq worker`` on another machine) that receive finished HTML and
page-style parameters and return PDF bytes.

Page numbers ("第 X 页 / 共 Y 页") of a document rendered in chunks: each chunk is rendered
without the page-number box, its pages are counted, then one light "footer" document of
exactly the total number of pages is rendered with the page-number box only (WeasyPrint's own
``counter(page)`` / ``counter(pages)``), and each of its pages is stamped over the matching
content page. Numbers are therefore right whatever the chunks' lengths.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field

_FONTS = threading.local()
COUNTERS = {"{page}": "counter(page)", "{pages}": "counter(pages)"}
FONT_FAMILY = '"Noto Sans CJK SC", "Noto Sans CJK", "Noto Sans SC", "Source Han Sans SC", sans-serif'


@dataclass(frozen=True)
class PageStyle:
    """What every page carries besides the content: size, running header and footer texts.

    ``page_label`` is a translated pattern with ``{page}`` and ``{pages}`` placeholders
    (``"第 {page} 页 / 共 {pages} 页"``).
    """

    landscape: bool = False
    header_left: str = ""
    header_center: str = ""
    header_right: str = ""
    footer_left: str = ""
    page_label: str = "{page} / {pages}"
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


def page_number_content(pattern: str) -> str:
    """``"第 {page} 页 / 共 {pages} 页"`` → the CSS ``content`` value with the page counters."""
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
        parts.append(COUNTERS[mark])
        rest = rest[at + len(mark):]
    return " ".join(parts) or '""'


def page_css(style: PageStyle, numbered: bool = True, content: bool = True) -> str:
    """The ``@page`` rules: A4 (landscape when asked), header boxes, generated-by and page number.

    The margin boxes have fixed widths: with ``auto`` WeasyPrint measures their contents'
    min- and max-content widths on every page (~8 ms a page, a fifth of a ruled ledger page).

    *numbered* False leaves the page-number box out (chunks); *content* False keeps only it
    (the footer document stamped over the chunks).
    """
    size = "A4 landscape" if style.landscape else "A4"
    font = f"font-family: {FONT_FAMILY}; font-size: 8pt; color: #444;"
    boxes = []
    if content:
        boxes += [f"@top-left {{ content: {css_string(style.header_left)}; width: 30%; {font} }}",
                  f"@top-center {{ content: {css_string(style.header_center)}; width: 40%; {font} color: #000; }}",
                  f"@top-right {{ content: {css_string(style.header_right)}; width: 30%; {font} }}",
                  f"@bottom-left {{ content: {css_string(style.footer_left)}; width: 60%; {font} }}"]
    if numbered:
        boxes.append(f"@bottom-right {{ content: {page_number_content(style.page_label)}; width: 40%; {font} "
                     "color: #000; }")
    return f"@page {{ size: {size}; margin: 18mm 12mm 16mm 12mm; {' '.join(boxes)} }}"


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


def html_to_pdf(html: str, style: PageStyle, numbered: bool = True) -> tuple[bytes, int]:
    """Render *html* (a whole document) into PDF bytes; returns (pdf, number of pages)."""
    document = _render(html, page_css(style, numbered=numbered))
    return document.write_pdf(), len(document.pages)


def footer_pdf(style: PageStyle, pages: int) -> bytes:
    """A document of *pages* blank pages carrying only the page-number box."""
    blank = '<div style="break-after: page"></div>' * (pages - 1) + "<div></div>"
    html = f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{blank}</body></html>"
    return _render(html, page_css(style, numbered=True, content=False)).write_pdf()


def merge_chunks(chunks: list[bytes], style: PageStyle) -> bytes:
    """Join chunk PDFs (rendered without page numbers) and stamp "第 X 页 / 共 Y 页" on every page;
    the metadata (title, author...) of *style* goes into the result."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for chunk in chunks:
        writer.append(PdfReader(io.BytesIO(chunk)))
    total = len(writer.pages)
    stamps = PdfReader(io.BytesIO(footer_pdf(style, total)))
    for page, stamp in zip(writer.pages, stamps.pages, strict=True):
        page.merge_page(stamp)
    writer.add_metadata({f"/{key}": value for key, value in style.metadata.items()})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def page_count(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)
