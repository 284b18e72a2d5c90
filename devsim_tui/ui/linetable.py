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
