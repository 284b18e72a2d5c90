"""The servers pane: a keyed table of the app fleet, drawn line by line straight from the snapshot.

Built for fleets of 1,000+ servers. The table keeps no rows of its own: a tick computes the
display order (filter and sort, a few numpy operations) and repaints; `render_line(y)` then
formats only the row at screen line y from the snapshot's numpy columns, so the cost of a frame
follows the height of the pane, not the size of the fleet. Nothing that changes per tick is
cached; only the theme's styles and the column layout are.

Rows are keyed by server name: the cursor stays on the same server when rows reorder or servers
come and go. The fault badge sits in a one-cell gutter left of the name (like DataTable's row
labels), so `get_row` returns the data columns only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from textual.widgets import Static

from devsim_tui.config.clouds import named_after
from devsim_tui.sim.snapshot import (
    CRASHED, DRAINING, EVICTED, NOTREADY, PENDING, READY, STARTING, STATE_NAMES, Snapshot,
)
from devsim_tui.ui.format import age
from devsim_tui.ui.linetable import LineTable, Row, RowKey


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    numeric: bool = False


#: The data columns; name, version and region widths are fitted to the data.
COLUMNS = (
    Column("name", "NAME", 4),
    Column("state", "STATE", 8),
    Column("version", "VERSION", 7),
    Column("region", "REGION", 6),
    Column("cpu", "CPU", 4, True),
    Column("mem", "MEM", 4, True),
    Column("rps", "RPS", 5, True),
    Column("p99", "P99", 6, True),  # `9999ms`, then seconds: `10.2s`
    Column("err", "ERR", 4, True),  # `9.9%`, then whole percents: `12%`, `100%`
)
SORT_KEYS = tuple(c.key for c in COLUMNS) + ("fault",)
#: Sorts that start with the worst first.
DESCENDING_FIRST = ("cpu", "mem", "rps", "p99", "err", "fault")
LEVELS = ("ok", "warn", "bad", "muted", "info")
SHRINKABLE = (3, 2)  # region, then version, down to MIN_TEXT cells when the pane is narrow
MIN_TEXT = 6
FAULT_MARK = "!"
STATE_LEVEL = {READY: "ok", STARTING: "info", DRAINING: "muted", CRASHED: "bad",
               PENDING: "warn", NOTREADY: "bad", EVICTED: "muted"}
UNSCHEDULED = "-"  # the region cell of a Pending pod (no node took it)


# ---------------------------------------------------------------------- pure parts


def region_labels(snap: Snapshot) -> tuple[str, ...]:
    """Each region's cell: its name, and its cloud after a slash where the name does not say
    it (`eu-west/AWS`, plain `aws`); then UNSCHEDULED for pods no region took."""
    rows = (snap.cloud or {}).get("regions") or ()
    labels = []
    for i, name in enumerate(snap.regions):
        cloud = rows[i]["cloud"] if i < len(rows) else ""
        labels.append(name if not cloud or named_after(name, cloud) else f"{name}/{cloud}")
    return (*labels, UNSCHEDULED)


def region_summary(cloud: dict) -> tuple[str, bool]:
    """The servers pane's region line (sim/cloud.py): per region its Ready pods of those bound
    there and, when its nodes are not Ready, what Kubernetes does next; Pending pods; the
    cross-cloud egress bill. And whether anything is wrong."""
    parts = []
    wrong = False
    for r in cloud["regions"]:
        status = r["status"]
        text = f"{r['name']} {r['ready']}/{r['pods']}"
        if status == "Unreachable":
            text += f" ✗ unreachable, NotReady in {age(r.get('notready_in_s', 0.0))}"
        elif status == "NotReady":
            text += f" ✗ NotReady, evictions in {age(r.get('evict_in_s', 0.0))}"
        elif status != "Ready":
            text += f" ✗ NotReady, {r['evicted']} evicted"
        elif r["pods"] >= r["capacity"]:
            text += " full"
        wrong |= status != "Ready"
        parts.append(text)
    if cloud["pending"]:
        parts.append(f"{cloud['pending']} Pending")
        wrong = True
    if cloud["rescheduled_total"]:
        parts.append(f"{cloud['rescheduled_total']} rescheduled")
    if cloud["multi_cloud"]:
        parts.append(f"egress ${cloud['egress_usd_total']:,.2f}")
    return " · ".join(parts), wrong


class RegionSummary(Static):
    """One line under the servers: the regions' state (multi-region profiles only)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, **kwargs)
        self._text = ""

    def show(self, snap: Snapshot) -> None:
        cloud = snap.cloud
        multi = cloud is not None and len(cloud["regions"]) > 1
        self.set_class(multi, "-multi")
        if not multi:
            return
        text, wrong = region_summary(cloud)
        if text != self._text:
            self._text = text
            self.update(text)
        self.set_class(wrong, "-wrong")


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
    search = pattern.search

    def per_code(labels) -> np.ndarray:
        # State, version and region are codes into a few labels: match each label once.
        return np.array([bool(search(s)) for s in labels] + [False], dtype=bool)

    hits = np.fromiter((bool(search(name)) for name in fleet.names), dtype=bool, count=n)
    for codes, labels in ((fleet.state, STATE_NAMES), (fleet.version, snap.versions),
                          (fleet.region, region_labels(snap))):
        table = per_code(labels)
        hits |= table[np.clip(codes, 0, len(labels))]
    return ~hits if invert else hits


def faulted_mask(snap: Snapshot) -> np.ndarray:
    """Servers a chaos fault is acting on (from the ChaosController's extension state)."""
    names = (snap.chaos or {}).get("faulted_servers") or ()
    fleet = snap.fleet
    if not names:
        return np.zeros(len(fleet), dtype=bool)
    wanted = set(names)
    return np.fromiter((n in wanted for n in fleet.names), dtype=bool, count=len(fleet))


def rollout_version(snap: Snapshot) -> str | None:
    """The version a rollout in progress is moving to, else None."""
    rollout = (snap.releases or {}).get("rollout")
    return rollout.get("version") if rollout else None


def sort_order(snap: Snapshot, key: str, reverse: bool) -> np.ndarray:
    """Fleet row indices in display order (stable, ties broken by name order)."""
    f = snap.fleet
    if key == "fault":
        values = faulted_mask(snap)
    else:
        values = np.asarray({"name": f.ids, "state": f.state, "version": f.version,
                             "region": f.region, "cpu": f.cpu, "mem": f.memory_pct,
                             "rps": f.rps, "p99": f.p99_ms, "err": f.error_rate}[key])
    if key == "name":
        order = np.argsort(f.ids, kind="stable")
        return order[::-1] if reverse else order
    values = values.astype(float)
    return np.lexsort((f.ids, -values if reverse else values))


def fit_widths(snap: Snapshot, room: int,
               regions: tuple[str, ...] | None = None) -> tuple[tuple[int, ...], int]:
    """Column widths and the gap between columns that fit `room` cells (with the gutter).

    Text columns are fitted to the data; numbers never shrink. When the pane is narrow the
    gap closes to one cell, then region and version are cut down.
    """
    names = snap.fleet.names
    widths = [c.width for c in COLUMNS]
    widths[0] = max([len(names[0]) if names else 0, len(names[-1]) if names else 0,
                     COLUMNS[0].width])
    widths[2] = max([len(v) for v in snap.versions] + [COLUMNS[2].width])
    labels = region_labels(snap) if regions is None else regions
    widths[3] = max([len(r) for r in labels] + [COLUMNS[3].width])

    def total(gap: int) -> int:
        return 2 + sum(widths) + gap * (len(widths) - 1)

    gap = 2 if total(2) <= room else 1
    over = total(gap) - room
    for i in SHRINKABLE:
        if over > 0:
            cut = min(over, max(widths[i] - MIN_TEXT, 0))
            widths[i] -= cut
            over -= cut
    return tuple(widths), gap


def cut_text(text: str, width: int, keep_tail: bool = False) -> str:
    """`text` in `width` cells; a cut shows as `…`, at the end, or in the middle when the tail
    is what tells values apart (`v3.0…rc.2` and `v3.0…rc.3`, never two `v3.0.0-rc`)."""
    if len(text) <= width:
        return text.ljust(width)
    if width <= 1:
        return "…"[:width]
    if keep_tail:
        head = (width - 1) // 2
        return text[:head] + "…" + text[len(text) - (width - 1 - head):]
    return text[:width - 1] + "…"


def p99_cell(p99: int) -> str:
    """A p99 (whole milliseconds, -1 for a server that serves nothing to time) in at most six
    cells: milliseconds below ten seconds, then seconds (`10.2s`)."""
    if p99 < 0:
        return "-"
    if p99 < 10_000:
        return f"{p99}ms"
    seconds = p99 / 1000.0
    return f"{seconds:.1f}s" if seconds < 99.95 else f"{seconds:.0f}s"


def err_cell(err10: int) -> str:
    """An error rate (in tenths of a percent) in at most four cells: one decimal below ten
    percent, whole percents above (`0.4%`, `12%`, `100%`)."""
    return f"{err10 / 10:.1f}%" if err10 < 100 else f"{round(err10 / 10)}%"


def levels(state: int, cpu: int, mem: int, p99: int, err10: int,
           slo_p99_ms: float) -> tuple[str, str, str, str, str, str]:
    """Health level of (row, state, cpu, mem, p99, err) for one server's rounded figures."""
    cpu_l = "bad" if cpu >= 90 else "warn" if cpu >= 75 else "ok"
    mem_l = "bad" if mem >= 90 else "warn" if mem >= 80 else "ok"
    p99_l = "bad" if p99 > slo_p99_ms else "warn" if p99 > 0.8 * slo_p99_ms else "ok"
    err_l = "bad" if err10 >= 50 else "warn" if err10 >= 10 else "ok"
    state_l = STATE_LEVEL.get(state, "muted")
    every = (cpu_l, mem_l, p99_l, err_l, state_l)
    live = state in (READY, STARTING)
    row_l = "bad" if "bad" in every else "warn" if "warn" in every else (
        "ok" if live else "muted")
    return row_l, state_l, cpu_l, mem_l, p99_l, err_l


def row_cells(snap: Snapshot, i: int, regions: tuple[str, ...] | None = None
              ) -> tuple[list[str], tuple[str, ...], bool]:
    """The data cells of fleet row i as text, their levels, and whether the server is live
    (`regions`: region_labels(snap), when the caller has them)."""
    f = snap.fleet
    labels = region_labels(snap) if regions is None else regions
    state = int(f.state[i])
    version, region = int(f.version[i]), int(f.region[i])
    cpu = round(float(f.cpu[i]) * 100)
    mem = round(float(f.memory_pct[i]))
    rps = round(float(f.rps[i]))
    p99_ms = float(f.p99_ms[i])
    p99 = round(p99_ms) if p99_ms == p99_ms else -1  # NaN: not ready, no latency to show
    err10 = round(float(f.error_rate[i]) * 1000)
    cells = [
        f.names[i],
        STATE_NAMES[state] if state < len(STATE_NAMES) else "?",
        snap.versions[version] if version < len(snap.versions) else "?",
        labels[min(region, len(labels) - 1)],
        f"{cpu}%", f"{mem}%", f"{rps}", p99_cell(p99), err_cell(err10),
    ]
    return cells, (cpu, mem, p99, err10, state), state in (READY, STARTING)


# ---------------------------------------------------------------------- widget


class ServersTable(LineTable, can_focus=True):
    """The fleet, one row per server, keyed by name; the header row stays put when scrolling."""

    BINDINGS = [
        Binding("o", "cycle_sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "cursor_to(0)", show=False),
        Binding("end", "cursor_to(-1)", show=False),
    ]

    COMPONENT_CLASSES = {
        "servers--header", "servers--sorted", "servers--cursor", "servers--fault",
        "servers--rollout", *(f"servers--{c}" for c in LEVELS),
    }

    class SortChanged(Message):
        """The user picked another sort column or direction (for the pane title)."""

        def __init__(self, key: str, reverse: bool) -> None:
            super().__init__()
            self.key = key
            self.reverse = reverse

    class Selected(Message):
        """A server was chosen (a click on the row under the cursor): open its details."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, slo_p99_ms: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slo_p99_ms = slo_p99_ms
        #: Column the rows are sorted by, and whether descending.
        self.sort_key = "name"
        self.sort_reverse = False
        #: The `/` filter (regex; a leading `!` inverts).
        self.filter_text = ""
        #: The server under the cursor (the cursor follows it), and its display row.
        self.cursor_name: str | None = None
        self.cursor_row = 0
        self._snap: Snapshot | None = None
        self._order: np.ndarray = np.zeros(0, dtype=np.intp)
        self._faulted: np.ndarray = np.zeros(0, dtype=bool)
        self._rollout: str | None = None
        self._layout: tuple[tuple[int, ...], int] = ((), 1)
        self._labels: tuple[str, ...] = ()  # region_labels of the snapshot shown
        self._layout_key: tuple | None = None

    # ------------------------------------------------------------------ handlers

    def on_resize(self) -> None:
        self._layout_key = None
        if self._snap is not None:
            self.show(self._snap)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or self._snap is None:
            return
        x, y = offset
        if y == 0:
            key = self._column_at(x)
            if key is not None:
                self.sort_by(key)
            return
        row = int(self.scroll_y) + y - 1
        if 0 <= row < len(self._order):
            if row == self.cursor_row and self.cursor_name is not None:
                self.post_message(self.Selected(self.cursor_name))
            self._move_cursor(row)

    def action_cycle_sort(self) -> None:
        i = (SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)
        self.sort_key = SORT_KEYS[i]
        self.sort_reverse = self.sort_key in DESCENDING_FIRST
        self._resort()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move_cursor(self.cursor_row + direction * max(self._page_rows() - 1, 1))

    def action_cursor_to(self, row: int) -> None:
        self._move_cursor(row if row >= 0 else len(self._order) - 1)

    def sort_by(self, key: str) -> None:
        """Sort by `key`; the same key again flips the direction (a header click)."""
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key, self.sort_reverse = key, key in DESCENDING_FIRST
        self._resort()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        if self._snap is not None:
            self.show(self._snap)

    def _resort(self) -> None:
        if self._snap is None:
            return  # nothing shown yet (the world is still starting): the first show sorts
        self.post_message(self.SortChanged(self.sort_key, self.sort_reverse))
        self.show(self._snap)

    # ------------------------------------------------------------------ state

    @property
    def row_count(self) -> int:
        """Rows shown (after the filter)."""
        return len(self._order)

    @property
    def selected_name(self) -> str | None:
        return self.cursor_name if len(self._order) else None

    @property
    def ordered_rows(self) -> list[Row]:
        """The rows in display order (keys only; the cells come from `get_row`)."""
        if self._snap is None:
            return []
        names = self._snap.fleet.names
        return [Row(RowKey(names[i])) for i in self._order.tolist()]

    def get_row(self, key: RowKey | str) -> list[str]:
        """The data cells of the row with this key, as shown (without the fault gutter)."""
        name = key.value if isinstance(key, RowKey) else key
        snap = self._snap
        i = snap.fleet.index_of(name) if snap is not None else None
        if i is None:
            raise KeyError(name)
        return row_cells(snap, i, self._labels or None)[0]

    def show(self, snap: Snapshot) -> None:
        """Take a new snapshot: filter, sort, keep the cursor on its server, repaint."""
        self._snap = snap
        order = sort_order(snap, self.sort_key, self.sort_reverse)
        if self.filter_text:
            order = order[filter_mask(snap, self.filter_text)[order]]
        self._order = order
        self._faulted = faulted_mask(snap)
        self._rollout = rollout_version(snap)
        self._labels = region_labels(snap)
        if not self.is_mounted:
            return
        key = (self.scrollable_content_region.width, len(snap.fleet.names[0])
               if len(order) else 0, len(snap.fleet.names[-1]) if len(order) else 0,
               snap.versions, self._labels)
        if key != self._layout_key:
            self._layout_key = key
            self._layout = fit_widths(snap, key[0], self._labels)
        self.virtual_size = Size(self.scrollable_content_region.width, len(order) + 1)
        self._follow_cursor()
        self.refresh()

    def _follow_cursor(self) -> None:
        """Put the cursor back on its server after a reorder (or nearby if it went away)."""
        snap, order = self._snap, self._order
        if snap is None or not len(order):
            self.cursor_row = 0
            return
        i = snap.fleet.index_of(self.cursor_name) if self.cursor_name is not None else None
        hits = np.flatnonzero(order == i) if i is not None else ()
        row = int(hits[0]) if len(hits) else min(self.cursor_row, len(order) - 1)
        self._move_cursor(row, repaint=False)

    def _move_cursor(self, row: int, repaint: bool = True) -> None:
        order = self._order
        if self._snap is None or not len(order):
            return
        row = max(0, min(row, len(order) - 1))
        self.cursor_row = row
        self.cursor_name = self._snap.fleet.names[int(order[row])]
        page = self._page_rows()
        top = int(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False, immediate=True)
        if repaint:
            self.refresh()

    def _page_rows(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _column_at(self, x: int) -> str | None:
        widths, gap = self._layout
        left = 2
        for col, width in zip(COLUMNS, widths):
            if left <= x < left + width + gap:
                return col.key
            left += width + gap
        return "fault" if x < 2 else None

    # ------------------------------------------------------------------ drawing

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            elif name == "cursor":  # laid over a cell's own style: keeps its colour if unset
                style = self.get_component_rich_style("servers--cursor", partial=True)
            else:
                style = self.rich_style + self.get_component_rich_style(
                    f"servers--{name}", partial=True)
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths, gap = self._layout
        if self._snap is None or not widths:
            return Strip.blank(width, self._style("base"))
        if y == 0:
            segments = self._header(widths, gap)
        else:
            row = int(self.scroll_y) + y - 1
            if row >= len(self._order):
                return Strip.blank(width, self._style("base"))
            segments = self._row(row, widths, gap)
        return Strip(segments).crop_extend(0, width, self._style("base"))

    def _header(self, widths: tuple[int, ...], gap: int) -> list[Segment]:
        st = self._style
        header, sorted_ = st("header"), st("sorted")
        arrow = "▼" if self.sort_reverse else "▲"
        out = [Segment(FAULT_MARK, sorted_ if self.sort_key == "fault" else header),
               Segment(" ", header)]
        for n, (col, width) in enumerate(zip(COLUMNS, widths)):
            label = col.label + arrow if col.key == self.sort_key else col.label
            text = set_cell_size(label, width) if not col.numeric else label[-width:].rjust(width)
            style = sorted_ if col.key == self.sort_key else header
            if col.key == "version" and self._rollout is not None:
                style = st("rollout")
            out.append(Segment(text, style))
            if n < len(widths) - 1:
                out.append(Segment(" " * gap, header))
        return out

    def _row(self, row: int, widths: tuple[int, ...], gap: int) -> list[Segment]:
        st = self._style
        snap = self._snap
        i = int(self._order[row])
        cells, (cpu, mem, p99, err10, state), live = row_cells(snap, i, self._labels)
        row_l, state_l, cpu_l, mem_l, p99_l, err_l = levels(state, cpu, mem, p99, err10,
                                                            self.slo_p99_ms)
        dim = None if live else "muted"
        cell_levels = (row_l, state_l, dim or "base", dim or "base", dim or cpu_l,
                       dim or mem_l, dim or "ok", dim or p99_l, dim or err_l)
        if self._rollout is not None and cells[2] == self._rollout:
            cell_levels = cell_levels[:2] + ("rollout",) + cell_levels[3:]
        cursor = row == self.cursor_row
        cursor_style = st("cursor") if cursor else None
        gap_style = st("base") + cursor_style if cursor_style else st("base")
        faulted = bool(self._faulted[i]) if i < len(self._faulted) else False
        out = [Segment(FAULT_MARK if faulted else " ",
                       st("fault") if faulted else gap_style),
               Segment(" ", gap_style)]
        for n, (col, width, text, level) in enumerate(zip(COLUMNS, widths, cells, cell_levels)):
            text = text[-width:].rjust(width) if col.numeric else cut_text(
                text, width, keep_tail=col.key == "version")
            style = st(level)
            out.append(Segment(text, style + cursor_style if cursor_style else style))
            if n < len(widths) - 1:
                out.append(Segment(" " * gap, gap_style))
        return out
