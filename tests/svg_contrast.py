"""The contrast of every text cell in a Textual snapshot SVG (WCAG 2 relative luminance).

Textual writes one `<text>` per run of equally styled cells, its colour in a CSS class, and a
`<rect fill=...>` per run of background; a text run sits on the rect of its line that covers
it. Only runs with a letter or a digit count (borders, sparkline blocks and hatching are
drawing, not text).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

CLASS = re.compile(r"\.(terminal-[\w-]*r\d+) \{ fill: (#[0-9a-fA-F]{6})")
RECT = re.compile(r'<rect fill="(#[0-9a-fA-F]{6})" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"')
TEXT = re.compile(r'<text class="([\w-]+)" x="([\d.]+)" y="([\d.]+)" textLength="([\d.]+)" '
                  r'clip-path="url\(#[\w-]*line-(\d+)\)">(.*?)</text>')
LINE_H = 24.4
TOP = 1.5


@dataclass(frozen=True)
class Cell:
    text: str
    line: int
    fg: str
    bg: str
    ratio: float


def luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_cells(svg: str) -> list[Cell]:
    fills = dict(CLASS.findall(svg))
    rects: dict[int, list[tuple[float, float, str]]] = {}
    for fill, x, y, width in RECT.findall(svg):
        line = round((float(y) - TOP) / LINE_H)
        rects.setdefault(line, []).append((float(x), float(x) + float(width), fill))
    out = []
    for cls, x, _y, length, line, raw in TEXT.findall(svg):
        text = html.unescape(raw).replace("\xa0", " ")
        if not any(ch.isalnum() for ch in text) or cls not in fills:
            continue
        mid = float(x) + float(length) / 2
        bg = next((fill for left, right, fill in rects.get(int(line), ())
                   if left <= mid < right), None)
        if bg is None:
            continue
        fg = fills[cls]
        out.append(Cell(text.strip(), int(line), fg, bg, contrast(fg, bg)))
    return out
