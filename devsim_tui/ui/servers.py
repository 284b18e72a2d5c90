"""The servers pane: a keyed DataTable of the app fleet, filterable, sortable, health-coloured.

Built for fleets of 1,000+ servers: column widths are fixed (never re-measured per tick), the
row order is computed with numpy and applied only when it changed, rows are added/removed by
key in a batch, and only the rows in the viewport get their cells refreshed. Rows that scroll
into view are brought up to date straight away from the held snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from devsim_tui.sim.snapshot import (
    CRASHED, DRAINING, READY, STARTING, STATE_NAMES, Snapshot,
)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    numeric: bool = False


#: The columns; name, version and region widths are fitted to the data at build time.
COLUMNS = (
    Column("name", "NAME", 8),
    Column("state", "STATE", 8),
    Column("version", "VERSION", 7),
    Column("region", "REGION", 6),
    Column("cpu", "CPU", 4, True),
    Column("mem", "MEM", 4, True),
    Column("rps", "RPS", 5, True),
    Column("p99", "P99", 6, True),
    Column("err", "ERR", 5, True),
)
SORT_KEYS = tuple(c.key for c in COLUMNS)
ROW_CLASSES = ("ok", "warn", "bad", "muted", "info")


def compile_filter(text: str) -> tuple[re.Pattern[str] | None, bool]:
    """k9s-style filter: a case-insensitive regex; a leading `!` inverts it.

    An invalid regex is matched literally rather than rejected, so typing never errors.
    """
    invert = text.startswith("!")
    body = text[1:] if invert else text
    if not body:
        return None, invert
    try:
        return re.compile(body, re.IGNORECASE), invert
    except re.error:
        return re.compile(re.escape(body), re.IGNORECASE), invert


def filter_mask(snap: Snapshot, text: str) -> np.ndarray:
    """Which fleet rows the filter keeps: the regex matches any one cell of name, state,
    version or region (so `$` and `^` anchor within a cell, as k9s users expect)."""
    fleet = snap.fleet
    n = len(fleet)
    pattern, invert = compile_filter(text)
    if pattern is None:
        return np.ones(n, dtype=bool)
    versions, regions = snap.versions, snap.regions
    state, ver, reg = fleet.state.tolist(), fleet.version.tolist(), fleet.region.tolist()
    search = pattern.search
    hits = np.fromiter(
        (bool(search(fleet.names[i]) or search(STATE_NAMES[state[i]])
              or search(versions[ver[i]]) or search(regions[reg[i]])) for i in range(n)),
        dtype=bool, count=n)
    return ~hits if invert else hits


def sort_order(snap: Snapshot, key: str, reverse: bool) -> np.ndarray:
    """Fleet row indices in display order (stable, ties broken by name order)."""
    f = snap.fleet
    columns = {"name": f.ids, "state": f.state, "version": f.version, "region": f.region,
               "cpu": f.cpu, "mem": f.memory_pct, "rps": f.rps, "p99": f.p99_ms,
               "err": f.error_rate}
    values = np.asarray(columns[key])
    order = np.lexsort((f.ids, -values if reverse and key != "name" else values))
    if reverse and key == "name":
        order = order[::-1]
    return order


class ServersTable(DataTable):
    """The fleet, one keyed row per server."""

    BINDINGS = [
        Binding("o", "cycle_sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
    ]

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {f"servers--{c}" for c in ROW_CLASSES}

    class SortChanged(Message):
        """The user picked another sort column or direction (for the pane title)."""

        def __init__(self, key: str, reverse: bool) -> None:
            super().__init__()
            self.key = key
            self.reverse = reverse

    def __init__(self, slo_p99_ms: float, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, fixed_columns=1, **kwargs)
        self.slo_p99_ms = slo_p99_ms
        self.sort_key = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self._snap: Snapshot | None = None
        self._shown: dict[str, tuple] = {}  # row key -> values last written to its cells
        self._order: list[str] = []
        self._styles: dict[str, Style] = {}
        self._built_widths: tuple[int, ...] = ()
        self._force = False

    # ------------------------------------------------------------------ handlers

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme) -> None:
        self._styles = {}
        self._shown.clear()
        self._force = True
        if self._snap is not None:
            self.call_after_refresh(self.show, self._snap)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key, self.sort_reverse = key, key in ("cpu", "mem", "rps", "p99", "err")
        self._resort()

    def action_cycle_sort(self) -> None:
        i = (SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)
        self.sort_key = SORT_KEYS[i]
        self.sort_reverse = self.sort_key in ("cpu", "mem", "rps", "p99", "err")
        self._resort()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def _resort(self) -> None:
        self.post_message(self.SortChanged(self.sort_key, self.sort_reverse))
        if self._snap is not None:
            self.show(self._snap)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        if self._snap is not None:
            self.show(self._snap)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._snap is not None and int(old) != int(new):
            self.call_after_refresh(self._refresh_visible)

    def on_resize(self) -> None:
        if self._snap is not None:
            self.call_after_refresh(self.show, self._snap)

    # ------------------------------------------------------------------ updating

    @property
    def selected_name(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # no cursor row (an empty table after a filter)
            return None
        return key.value

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"servers--{name}",
                                                                       partial=True)
        return style

    def _widths(self, snap: Snapshot) -> tuple[int, ...]:
        name_w = max([len(n) for n in snap.fleet.names[-1:]] + [COLUMNS[0].width])
        version_w = max([len(v) for v in snap.versions] + [COLUMNS[2].width])
        region_w = max([len(r) for r in snap.regions] + [COLUMNS[3].width])
        widths = [name_w, 8, version_w, region_w] + [c.width for c in COLUMNS[4:]]
        # Shrink the text columns (never the numbers) when the pane is too narrow for all.
        room = self.size.width - 2 * self.cell_padding * len(COLUMNS) - 1
        over = sum(widths) - room
        for i in (3, 2):
            if over > 0 and self.size.width > 0:
                cut = min(over, widths[i] - 6)
                widths[i] -= cut
                over -= cut
        return tuple(widths)

    def _build(self, snap: Snapshot) -> None:
        widths = self._widths(snap)
        self.clear(columns=True)
        for col, width in zip(COLUMNS, widths):
            label = Text(col.label, justify="right" if col.numeric else "left")
            self.add_column(label, width=width, key=col.key)
        self._built_widths = widths
        self._shown.clear()
        self._order = []

    def _cells(self, snap: Snapshot, i: int) -> tuple:
        f = snap.fleet
        state = int(f.state[i])
        return (state, int(f.version[i]), int(f.region[i]), round(float(f.cpu[i]) * 100),
                round(float(f.memory_pct[i])), round(float(f.rps[i])), round(float(f.p99_ms[i])),
                round(float(f.error_rate[i]) * 1000))

    def _render_row(self, snap: Snapshot, name: str, v: tuple) -> list[Text]:
        state, version, region, cpu, mem, rps, p99, err = v
        st = self._style
        slo = self.slo_p99_ms
        live = state in (READY, STARTING)
        cpu_l = "bad" if cpu >= 90 else "warn" if cpu >= 75 else "ok"
        mem_l = "bad" if mem >= 90 else "warn" if mem >= 80 else "ok"
        p99_l = "bad" if p99 > slo else "warn" if p99 > 0.8 * slo else "ok"
        err_l = "bad" if err >= 50 else "warn" if err >= 10 else "ok"
        state_l = {READY: "ok", STARTING: "info", DRAINING: "muted", CRASHED: "bad"}.get(
            state, "muted")
        levels = (cpu_l, mem_l, p99_l, err_l, state_l)
        row_l = "bad" if "bad" in levels else "warn" if "warn" in levels else (
            "ok" if live else "muted")
        dim = None if live else st("muted")

        def num(text: str, level: str) -> Text:
            return Text(text, style=dim or st(level), justify="right")

        return [
            Text(name, style=st(row_l)),
            Text(STATE_NAMES[state], style=st(state_l)),
            Text(snap.versions[version] if version < len(snap.versions) else "?",
                 style=dim or ""),
            Text(snap.regions[region] if region < len(snap.regions) else "?", style=dim or ""),
            num(f"{cpu}%", cpu_l),
            num(f"{mem}%", mem_l),
            num(f"{rps}", "ok"),
            num(f"{p99}ms", p99_l),
            num(f"{err / 10:.1f}%", err_l),
        ]

    def show(self, snap: Snapshot) -> None:
        """Bring the table in line with `snap` (keys, order, visible cells) in one batch."""
        self._snap = snap
        if not self.is_mounted:
            return
        with self.app.batch_update():
            if self._force or self._widths(snap) != self._built_widths:
                self._force = False
                self._build(snap)
            fleet = snap.fleet
            mask = filter_mask(snap, self.filter_text)
            order = sort_order(snap, self.sort_key, self.sort_reverse)
            order = order[mask[order]]
            names = fleet.names
            wanted = [names[i] for i in order.tolist()]
            current = set(self._shown)
            wanted_set = set(wanted)
            gone = current - wanted_set
            if len(gone) > 32:
                # Many removals: one rebuild is O(n); remove_row in a loop is O(n^2).
                self.clear()
                self._shown.clear()
                self._order = []
            else:
                for key in gone:
                    self.remove_row(key)
                    del self._shown[key]
            index = {name: i for i, name in enumerate(names)}
            for name in wanted:
                if name not in self._shown:
                    v = self._cells(snap, index[name])
                    self.add_row(*self._render_row(snap, name, v), key=name)
                    self._shown[name] = v
            if wanted != self._order:
                rank = {name: r for r, name in enumerate(wanted)}
                self.sort("name", key=lambda cell: rank[cell.plain])
                self._order = wanted
            self._refresh_visible(index)

    def _refresh_visible(self, index: dict[str, int] | None = None) -> None:
        snap = self._snap
        if snap is None or not self._order:
            return
        if index is None:
            index = {name: i for i, name in enumerate(snap.fleet.names)}
        top = max(int(self.scroll_y), 0)
        bottom = min(top + max(self.size.height, 1), len(self._order))
        keys = [c.key for c in COLUMNS]
        for name in self._order[top:bottom]:
            i = index.get(name)
            if i is None:
                continue
            v = self._cells(snap, i)
            old = self._shown.get(name)
            if v == old:
                continue
            for col, cell in zip(keys, self._render_row(snap, name, v)):
                self.update_cell(name, col, cell)
            self._shown[name] = v
