"""Long ledgers as ruled lines of fixed-width text instead of an HTML table.

WeasyPrint lays out every table cell as its own box (style, line layout, borders, drawing): a
2,000-line ledger costs it ~6–10 ms per row. Printed as lines of a monospace face (Noto Sans
Mono CJK: a CJK character is exactly two Latin widths), a page is one ``<pre>`` block of some
thirty lines and the same ledger costs ~1.2 ms per row; the rules are one SVG background
picture per block (``reports.documents.LedgerSheets.rules_css``).

Rules of the layout:

- a column is as wide as its widest value over the whole document (so chunks rendered apart
  line up), at least its header and its ``least``; the text column (``flex``) as wide as its
  widest text too, but within what the line has left, and longer texts wrap onto continuation
  lines — nothing is ever cut off; line breaks and tabs in a text print as spaces;
- a character the monospace face lacks comes from a fallback font of another width and shifts
  the rest of its line (Noto Sans Mono CJK covers Latin and CJK);
- numbers are right-aligned, the direction centred, texts left-aligned;
- pages are made here, never by WeasyPrint: each page shows the column header first, and a row
  is never split between pages (``first_capacity`` lines on a chunk's first page, which carries
  the title block, ``capacity`` on the others).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

GAP = 3  # spaces between two columns; the vertical rule is drawn in the middle of the gap


def width(text: str) -> int:
    """Display width of *text* in half-width cells (CJK and full-width forms count two)."""
    total = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        total += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return total


def wrap(text: str, size: int) -> list[str]:
    """*text* cut into pieces of at most *size* cells (at least one piece, never empty text lost)."""
    if size <= 0 or width(text) <= size:
        return [text]
    pieces, current, used = [], [], 0
    for char in text:
        step = width(char)
        if used + step > size and current:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += step
    pieces.append("".join(current))
    return pieces


@dataclass(frozen=True)
class Column:
    """One column: header text, alignment (``left`` | ``right`` | ``center``), whether it takes
    the width left over (and wraps)."""

    header: str
    align: str = "left"
    flex: bool = False
    least: int = 0


def _pad(text: str, size: int, align: str) -> str:
    """*text* padded with spaces to *size* cells; a longer text is left as it is."""
    gap = max(0, size - width(text))
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


@dataclass
class Grid:
    """Column widths fixed for a whole document; ``line`` / ``row`` give its text lines."""

    columns: Sequence[Column]
    widths: list[int]

    @classmethod
    def fit(cls, columns: Sequence[Column], rows: Sequence[Sequence[str]], total: int) -> Grid:
        """Widths for *rows* within *total* cells: each column as its widest value (at least
        its header and its ``least``); the flex column no wider than that either (every padding
        space is a glyph WeasyPrint draws) but within what is left of *total*, wrapping beyond."""
        rows = [[" ".join(str(text).split()) for text in row] for row in rows]
        widths = []
        for index, column in enumerate(columns):
            values = [width(row[index]) for row in rows]
            widths.append(max([width(column.header), column.least, *values]))
        flex = [i for i, c in enumerate(columns) if c.flex]
        if flex:
            fixed = sum(w for i, w in enumerate(widths) if i not in flex) + GAP * (len(columns) - 1) + 2
            share = max(12, (total - fixed) // len(flex))
            for i in flex:
                widths[i] = max(width(columns[i].header), min(widths[i], share))
        return cls(columns, widths)

    @property
    def total(self) -> int:
        """Width of a line in cells (with one cell of margin each side)."""
        return sum(self.widths) + GAP * (len(self.widths) - 1) + 2

    def rules(self) -> list[int]:
        """Positions (in cells from the left edge) of the vertical rules between columns."""
        out, at = [], 1
        for size in self.widths[:-1]:
            at += size
            out.append(at + GAP // 2)
            at += GAP
        return out

    def line(self, cells: Sequence[str], align: bool = True) -> str:
        """One text line: each cell padded to its column's width (aligned as the column says,
        or centred when not *align*), columns ``GAP`` apart, trailing spaces dropped."""
        return " " + (" " * GAP).join(
            _pad(text, size, column.align if align else "center")
            for text, size, column in zip(cells, self.widths, self.columns, strict=True)).rstrip()

    def header(self) -> str:
        """The column header line (headers centred)."""
        return self.line([c.header for c in self.columns], align=False)

    def row(self, cells: Sequence[str]) -> list[str]:
        """The text lines of one row (more than one when a text is longer than its column).
        Line breaks and tabs inside a text become spaces (a row's lines are the block's lines)."""
        cells = [" ".join(str(text).split()) for text in cells]
        pieces = [wrap(text, size) if column.flex or width(text) > size else [text]
                  for text, size, column in zip(cells, self.widths, self.columns, strict=True)]
        height = max(len(p) for p in pieces)
        return [self.line([p[n] if n < len(p) else "" for p in pieces]) for n in range(height)]


def paginate(blocks: Sequence[tuple[str, list[str]]], first_capacity: int,
             capacity: int) -> list[list[tuple[str, str]]]:
    """Rows (``(kind, lines)``) into pages of at most *capacity* lines (*first_capacity* on the
    first page); a row is kept whole; returns pages of ``(kind, line)``. Always one page at least."""
    pages: list[list[tuple[str, str]]] = [[]]
    room = first_capacity
    for kind, lines in blocks:
        if len(lines) > room and pages[-1]:
            pages.append([])
            room = capacity
        pages[-1].extend((kind, text) for text in lines)
        room -= len(lines)
    return pages
