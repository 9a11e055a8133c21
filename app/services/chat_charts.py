"""The chat analytics' charts (统计图表), drawn by pygal as SVG for the screen and the PDF.

Each chart is an ``<svg>`` element to inline in HTML: pygal's tooltip script and its config
``<script>`` are removed (the desk's Content-Security-Policy allows no inline script, and a label
written into the script's JSON could end it), so the charts are static pictures. Every text is
written by ElementTree, which escapes it. The font family names Noto Sans CJK SC first so that
Chinese labels are drawn (the fonts Debian ships as ``fonts-noto-cjk``, which WeasyPrint also uses).

The functions take the tables of ``app.services.chat_analytics`` and the translated labels from
the caller, and return ``Markup`` (safe to inline: it is pygal's escaped XML).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from xml.etree import ElementTree

import pygal
from markupsafe import Markup
from pygal.style import Style

FONT = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif'
STYLE = Style(
    font_family=FONT, label_font_family=FONT, major_label_font_family=FONT, value_font_family=FONT,
    value_label_font_family=FONT, tooltip_font_family=FONT, title_font_family=FONT, legend_font_family=FONT,
    no_data_font_family=FONT, background="#ffffff", plot_background="#ffffff", foreground="#333333",
    foreground_strong="#333333", foreground_subtle="#777777", colors=("#1677ff", "#f5222d", "#52c41a", "#fa8c16"),
    title_font_size=14, label_font_size=11, major_label_font_size=11, legend_font_size=11,
)
WIDTH, HEIGHT = 720, 300


def _config(**overrides: object) -> dict:
    config = {"style": STYLE, "js": [], "disable_xml_declaration": True, "width": WIDTH, "height": HEIGHT,
              "legend_at_bottom": True, "print_values": False, "show_y_guides": True, "explicit_size": False}
    config.update(overrides)
    return config


def to_svg(chart: pygal.graph.graph.Graph) -> Markup:
    """The chart as an inline ``<svg>`` without any ``<script>`` element."""
    root = chart.render_tree()
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return Markup(ElementTree.tostring(root, encoding="unicode"))  # noqa: S704 - escaped by ElementTree


def _whole_ticks(series: list[tuple[str, list]]) -> list[int]:
    """Axis ticks for counts: whole numbers only, at most about ten of them."""
    top = max((v for _, values in series for v in values if v is not None), default=0)
    step = max(1, math.ceil(top / 10))
    return list(range(0, int(top) + step + 1, step))


def bars(title: str, labels: Sequence[str], series: Iterable[tuple[str, Sequence[float | None]]], *,
         horizontal: bool = False, counts: bool = True, no_data: str = "—") -> Markup:
    """A bar chart: one bar per label for each ``(name, values)`` series (*counts*: whole ticks)."""
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    height = max(HEIGHT, 40 + 22 * len(labels)) if horizontal else HEIGHT
    chart = kind(**_config(height=height, no_data_text=no_data, show_legend=True))
    chart.title = title
    chart.x_labels = list(labels)
    listed = [(name, list(values)) for name, values in series]
    if counts and any(v for _, values in listed for v in values):
        chart.y_labels = _whole_ticks(listed)
    for name, values in listed:
        chart.add(name, values)
    return to_svg(chart)


def line(title: str, labels: Sequence[str], series: Iterable[tuple[str, Sequence[float | None]]], *,
         no_data: str = "—") -> Markup:
    """A line chart over *labels* (hours of the day), one line per series."""
    chart = pygal.Line(**_config(no_data_text=no_data, show_dots=False, fill=False))
    chart.title = title
    chart.x_labels = list(labels)
    chart.x_labels_major_every = 3
    chart.show_minor_x_labels = False
    listed = [(name, list(values)) for name, values in series]
    if any(v for _, values in listed for v in values):
        chart.y_labels = _whole_ticks(listed)
    for name, values in listed:
        chart.add(name, values)
    return to_svg(chart)
