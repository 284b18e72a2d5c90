"""What the control room's Line-API tables share: row keys and a per-theme style cache.

The servers table and the keyed tables (alerts, database, cache, faults) draw each visible row
straight into a `Strip`. Resolving component styles is costly, so each table keeps the styles it
resolved and drops them when the theme or its focus state changes.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.style import Style
from textual.scroll_view import ScrollView


class RowKey(NamedTuple):
    """A row's key, shaped like DataTable's `RowKey.value` (tests and callers read `.value`)."""

    value: str


class Row(NamedTuple):
    key: RowKey


class LineTable(ScrollView):
    """A ScrollView with a style cache that follows the theme and focus."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._styles: dict[str, Style] = {}

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self._styles.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()  # focus and theme change the cursor's and levels' styles


class TableColumn(NamedTuple):
    """A keyed table's column: `width` is what it wants; when the table is narrower, columns
    with the highest `priority` go first (0: never dropped), then `shrinkable` ones are cut
    down to `min_width`; spare room goes to the `flex` column (a summary, a message), so a wide
    or zoomed table shows its whole text."""

    key: str
    label: str
    width: int
    justify: str = "left"
    priority: int = 0
    flex: bool = False
    min_width: int | None = None


def fit_columns(columns: tuple[TableColumn, ...], room: int, padding: int,
                *, per_column: int | None = None) -> list[tuple[int, int]]:
    """(column index, width) of the columns shown in `room` cells, each column with `padding`
    cells either side (or `per_column` cells in all, when given). Pure, so every table size
    can be checked without a screen."""
    pad = 2 * padding if per_column is None else per_column
    shown = list(range(len(columns)))

    def least(i: int) -> int:
        c = columns[i]
        return c.width if c.min_width is None else min(c.min_width, c.width)

    while sum(least(i) + pad for i in shown) > room:
        droppable = [i for i in shown if columns[i].priority > 0]
        if not droppable:
            break  # the key columns stay; the table scrolls sideways
        # The least important goes first; among equals, the rightmost.
        shown.remove(max(droppable, key=lambda i: (columns[i].priority, i)))
    widths = {i: columns[i].width for i in shown}
    over = sum(w + pad for w in widths.values()) - room
    # The flexible column gives way first, then the others from left to right.
    for i in sorted(shown, key=lambda i: (not columns[i].flex, i)):
        if over <= 0:
            break
        cut = min(over, widths[i] - least(i))
        widths[i] -= cut
        over -= cut
    if over < 0:
        flex = [i for i in shown if columns[i].flex]
        if flex:
            widths[flex[0]] += -over
    return [(i, widths[i]) for i in shown]


def loses(columns: tuple[TableColumn, ...], layout: list[tuple[int, int]]) -> bool:
    """Whether a layout drops a column or cuts one below the width it wants."""
    return len(layout) < len(columns) or any(w < columns[i].width for i, w in layout)


def fit_table(columns: tuple[TableColumn, ...], room: int) -> tuple[list[tuple[int, int]], bool]:
    """The layout of a table in `room` cells and whether its gaps are tight: a cell either
    side of each column while everything fits; when that would drop or cut a column, one cell
    before each column only (a one-cell gap), if that shows every column the roomy layout
    shows at least as wide (it may add one, never at the price of cutting another)."""
    roomy = fit_columns(columns, room, 1)
    if not loses(columns, roomy):
        return roomy, False
    tight = fit_columns(columns, room, 0, per_column=1)
    widths = dict(tight)
    if all(widths.get(i, -1) >= w for i, w in roomy):
        return tight, True
    return roomy, False
