"""Pure Rich renderables for the control room: they draw from plain values and styles handed in.

Widgets stay thin: they pick data from a snapshot and styles from their component classes (so
colours follow the theme), then hand both to one of these. Nothing here touches the app or
reads state of its own, which keeps drawing cheap and testable.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from devsim_tui.ui.format import downsample, np

BARS = "▁▂▃▄▅▆▇█"



def level_lines(lines: list[list[tuple[str, str]]], styles: dict[str, Style],
                text: Text | None = None) -> Text:
    """Lines of (part, level) pairs as one Text, each part in its level's style (unknown levels
    plain): the drill pane, the debrief and the Security pane draw their prose this way."""
    text = text if text is not None else Text()
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        for part, level in line:
            text.append(part, styles.get(level, Style()))
    return text


def spark_rows(values: np.ndarray, width: int, height: int = 1, how: str = "max",
               floor: float | None = None, ceiling: float | None = None) -> list[str]:
    """Sparkline characters, `height` rows of `width` cells, newest on the right.

    Values are downsampled to the width (max or mean per bucket); NaN buckets are blank;
    a flat series draws a low bar rather than nothing so a healthy zero still shows a line.
    The scale starts at zero unless `floor` says otherwise (noise of 12.0%..12.1% is not blown
    up to full height), and reaches at least `ceiling` (a constant 0.05% error rate under a
    5% ceiling is a low bar, not a full one).
    """
    data = downsample(np.asarray(values, dtype=float), width, how)
    pad = width - len(data)
    if len(data) == 0 or np.all(np.isnan(data)):
        return [" " * width for _ in range(height)]
    lo = min(float(np.nanmin(data)), 0.0) if floor is None else floor
    hi = float(np.nanmax(data)) if ceiling is None else max(ceiling, float(np.nanmax(data)))
    span = hi - lo
    levels = height * len(BARS)
    if span <= 0:
        scaled = np.where(np.isnan(data), -1, 1)
    else:
        scaled = np.where(np.isnan(data), -1,
                          np.clip(((data - lo) / span * (levels - 1)).round() + 1, 1, levels))
    rows = []
    for row in range(height - 1, -1, -1):
        base = row * len(BARS)
        chars = []
        for v in scaled:
            if v < 0 or v <= base:
                chars.append(" " if (v < 0 or row > 0) else BARS[0])
            elif v >= base + len(BARS):
                chars.append(BARS[-1])
            else:
                chars.append(BARS[int(v - base) - 1])
        rows.append(" " * pad + "".join(chars))
    return rows


@dataclass
class SparkStyles:
    """Styles a metric line draws with (taken from component classes by the widget)."""

    label: Style
    spark: Style
    value: Style
    dim: Style
    warn: Style
    bad: Style


class MetricLine:
    """One metric: `label  ▁▂▃▅▇  value unit  min..max`, fitted to the width it gets.

    When narrow it drops the min/max first, then shortens the sparkline; the label and the
    current value always show.
    """

    def __init__(self, label: str, values: np.ndarray, value: str, low: str, high: str,
                 styles: SparkStyles, level: str = "ok", height: int = 1,
                 how: str = "max", floor: float | None = None, ceiling: float | None = None,
                 label_width: int = 9, minmax_width: int = 0, gap: bool = False):
        self.label = label
        self.values = values
        self.value = value
        self.low = low
        self.high = high
        self.styles = styles
        self.level = level
        self.height = height
        self.how = how
        self.floor = floor
        self.ceiling = ceiling
        self.label_width = label_width
        self.minmax_width = minmax_width  # pad min..max so sparklines of a pane align
        self.gap = gap  # a blank line above (between tall charts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        st = self.styles
        value_style = {"warn": st.warn, "bad": st.bad}.get(self.level, st.value)
        value = f" {self.value:>9}"
        minmax = f"  {self.low}..{self.high}".ljust(self.minmax_width + 2)
        label = self.label[: self.label_width].ljust(self.label_width) + " "
        spark_w = width - cell_len(label) - cell_len(value)
        if spark_w - cell_len(minmax) >= 12:
            spark_w -= cell_len(minmax)
        else:
            minmax = ""
        spark_w = max(spark_w, 0)
        rows = spark_rows(self.values, spark_w, self.height, self.how, self.floor,
                          self.ceiling)
        if self.gap:
            yield Segment.line()
        for i, row in enumerate(rows):
            last = i == len(rows) - 1
            yield Segment(label if last else " " * len(label), st.label)
            yield Segment(row, st.spark)
            if last:
                yield Segment(value, value_style)
                if minmax:
                    yield Segment(minmax, st.dim)
            else:
                yield Segment(" " * (cell_len(value) + cell_len(minmax)))
            yield Segment.line()


class FitLine:
    """One line of parts separated by a divider, fitted to the width it gets.

    `parts` are (priority, Text, short Text or None); higher priority survives longer. To fit,
    parts first switch to their short form (lowest priority first), then the lowest-priority
    parts are dropped. Order on screen is kept.
    """

    def __init__(self, parts: list[tuple[int, Text, Text | None]], divider: Text):
        self.parts = parts
        self.divider = divider

    def fit(self, width: int) -> Text:
        chosen = {i: text for i, (_, text, _) in enumerate(self.parts)}

        def length() -> int:
            body = sum(t.cell_len for t in chosen.values())
            return body + self.divider.cell_len * max(len(chosen) - 1, 0)

        by_priority = sorted(range(len(self.parts)), key=lambda i: (self.parts[i][0], -i))
        for i in by_priority:
            if length() <= width:
                break
            if self.parts[i][2] is not None:
                chosen[i] = self.parts[i][2]
        for i in by_priority:
            if length() <= width or len(chosen) == 1:
                break
            del chosen[i]
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        for n, i in enumerate(sorted(chosen)):
            if n:
                text.append_text(self.divider)
            text.append_text(chosen[i])
        text.truncate(width, overflow="ellipsis")
        return text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.fit(options.max_width)
