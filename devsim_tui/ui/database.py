"""The database pane: every node's role, state, load, lag, disk and backup age, plus the cache.

Also home of `KeyedTable`, the small keyed table the database, cache, alerts and faults share: a
Line-API widget (like the servers pane) that formats only the rows on screen and repaints only
when what is on screen changed, so a frame costs the same whatever the number of rows. The cache
block exists only when the profile has a cache.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from devsim_tui.sim.snapshot import CacheView, DBNodeView, Snapshot
from devsim_tui.ui.format import age, bytes_, lag, pct, si
from devsim_tui.ui.linetable import LineTable, Row, RowKey, TableColumn, fit_table

DB_COLUMNS = (TableColumn("node", "NODE", 6), TableColumn("role", "ROLE", 12, min_width=7),
              TableColumn("state", "STATE", 10), TableColumn("conn", "CONN", 7, "right", 2),
              TableColumn("qps", "QPS", 5, "right", 3),
              TableColumn("lag", "LAG", 12, "right", 1, min_width=5),
              TableColumn("disk", "DISK", 4, "right", 1),
              TableColumn("backup", "BACKUP", 6, "right", 1))
#: A multi-master database: every node is a master (the mesh row says so), so the second
#: column shows where each runs instead.
MESH_COLUMNS = (DB_COLUMNS[0], TableColumn("region", "REGION", 12, min_width=7), *DB_COLUMNS[2:])
CACHE_COLUMNS = (TableColumn("node", "NODE", 8), TableColumn("role", "ROLE", 7),
                 TableColumn("state", "STATE", 8), TableColumn("ops", "OPS/s", 6, "right", 1),
                 TableColumn("mem", "MEM", 4, "right"))
LEVELS = ("ok", "warn", "bad", "muted", "info")
CELL_PADDING = 1  # cells each side of a column, as DataTable draws them (one before it, tight)
PAD = " " * CELL_PADDING


class KeyedTable(LineTable, can_focus=True):
    """Rows by key in the given order, drawn line by line; the header row stays put.

    Fed whole rows (`set_rows`) or, for long tables, keys plus a function that formats row i
    (`set_source`): only the rows on screen are ever formatted. A new set of rows repaints only
    when what is on screen changed. The cursor follows its key when rows reorder.
    """

    BINDINGS = [
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "cursor_to(0)", show=False),
        Binding("end", "cursor_to(-1)", show=False),
    ]

    COMPONENT_CLASSES = {"keyed--header", "keyed--cursor", *(f"keyed--{c}" for c in LEVELS)}

    #: Whether the column labels take the first line (a table with no rows may hide them).
    show_header: reactive[bool] = reactive(True)

    class Selected(Message):
        """The row under the cursor was clicked: open its details."""

        def __init__(self, table: KeyedTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> KeyedTable:
            return self.table

    def __init__(self, columns: tuple[tuple, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._columns = tuple(TableColumn(*c) for c in columns)
        #: (room, layout, tight): the columns shown and whether their gaps closed to one cell.
        self._fitted: tuple[int, list[tuple[int, int]], bool] | None = None
        self._keys: list[str] = []
        self._cells_of: Callable[[int], list[tuple[str, str]]] = lambda _i: []
        #: The `/` filter (regex, a leading `!` inverts) and the rows before it.
        self.filter_text = ""
        self._unfiltered: tuple[list[str], Callable[[int], list[tuple[str, str]]]] = (
            [], self._cells_of)
        self._formatted: dict[int, list[tuple[str, str]]] = {}
        #: The key under the cursor (the cursor follows it), and its row.
        self.cursor_key: str | None = None
        self.cursor_row = 0
        self._on_screen: tuple | None = None
        #: Called with the table when the row under the cursor changes (a preview follows it).
        self.followers: list[Callable[[KeyedTable], None]] = []
        self.set_reactive(ScrollView.virtual_size,
                          Size(sum(c.width + 2 * CELL_PADDING for c in self._columns), 1))

    # ------------------------------------------------------------------ handlers

    def watch_show_header(self) -> None:
        self._resize()
        self.refresh()

    def on_resize(self) -> None:
        self._on_screen = None
        self._fitted = None
        self._move_cursor(self.cursor_row, repaint=False)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = int(self.scroll_y) + offset.y - self._header_lines
        if offset.y >= self._header_lines and 0 <= row < len(self._keys):
            if row == self.cursor_row and self.cursor_key is not None:
                self.post_message(self.Selected(self, self.cursor_key))
            self._move_cursor(row)

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move_cursor(self.cursor_row + direction * max(self._page_rows() - 1, 1))

    def action_cursor_to(self, row: int) -> None:
        self._move_cursor(row if row >= 0 else len(self._keys) - 1)

    # ------------------------------------------------------------------ state

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def selected_key(self) -> str | None:
        return self.cursor_key if self._keys else None

    @property
    def ordered_rows(self) -> list[Row]:
        """The rows in display order (keys only; the cells come from `get_row`)."""
        return [Row(RowKey(k)) for k in self._keys]

    def get_row(self, key: RowKey | str) -> list[str]:
        """The cells of the row with this key, as text."""
        name = key.value if isinstance(key, RowKey) else key
        return [text for text, _level in self._cells(self._keys.index(name))]

    def set_rows(self, rows: list[tuple[str, list[tuple[str, str]]]]) -> None:
        """Rows as (key, [(text, level), ...]); levels name the keyed--* component classes."""
        cells = [c for _key, c in rows]
        self.set_source([key for key, _c in rows], cells.__getitem__)

    def set_filter(self, text: str) -> None:
        """Keep only the rows one of whose cells matches `text` (k9s' `/`); "" shows all."""
        self.filter_text = text
        self.set_source(*self._unfiltered)

    def set_source(self, keys: list[str], cells_of: Callable[[int], list[tuple[str, str]]]
                   ) -> None:
        """Rows by key in display order; `cells_of(i)` formats row i, called only for the
        rows that are drawn (all of them while a filter is on)."""
        self._unfiltered = (keys, cells_of)
        if self.filter_text:
            from devsim_tui.ui.servers import compile_filter

            pattern, invert = compile_filter(self.filter_text)
            if pattern is not None:
                kept = [i for i in range(len(keys)) if invert != any(
                    pattern.search(text) for text, _level in cells_of(i))]
                keys = [keys[i] for i in kept]
                cells_of = (lambda of, rows: lambda j: of(rows[j]))(cells_of, kept)
        resized = len(keys) != len(self._keys)
        self._keys, self._cells_of, self._formatted = keys, cells_of, {}
        if resized:
            self._resize()
        self._follow_cursor()
        if not self.is_mounted:
            return
        top = int(self.scroll_y)
        shown = range(top, min(top + self._page_rows(), len(keys)))
        on_screen = (top, self.cursor_row, self.show_header,
                     tuple((keys[i], tuple(self._cells(i))) for i in shown))
        if on_screen != self._on_screen:
            self._on_screen = on_screen
            self.refresh()

    def _cells(self, i: int) -> list[tuple[str, str]]:
        cells = self._formatted.get(i)
        if cells is None:
            cells = self._formatted[i] = self._cells_of(i)
        return cells

    @property
    def _header_lines(self) -> int:
        return 1 if self.show_header else 0

    def _resize(self) -> None:
        """The number of rows changed: a new virtual height (the table is as tall as its rows)."""
        self.virtual_size = Size(self.virtual_size.width, len(self._keys) + self._header_lines)
        self.refresh(layout=True)

    def _follow_cursor(self) -> None:
        """Put the cursor back on its key after a reorder (or nearby if it went away)."""
        keys = self._keys
        if not keys:
            self.cursor_row, self.cursor_key = 0, None
            return
        if self.cursor_key is not None and (self.cursor_row >= len(keys)
                                            or keys[self.cursor_row] != self.cursor_key):
            try:
                self.cursor_row = keys.index(self.cursor_key)
            except ValueError:
                pass
        self._move_cursor(self.cursor_row, repaint=False)

    def _move_cursor(self, row: int, repaint: bool = True) -> None:
        keys = self._keys
        if not keys:
            return
        row = max(0, min(row, len(keys) - 1))
        moved = keys[row] != self.cursor_key
        self.cursor_row, self.cursor_key = row, keys[row]
        if not self.is_mounted:
            return
        if moved:
            for follow in self.followers:
                follow(self)
        page, top = self._page_rows(), int(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False, immediate=True)
        if repaint:
            self._on_screen = None
            self.refresh()

    def _page_rows(self) -> int:
        return max(self.scrollable_content_region.height - self._header_lines, 1)

    # ------------------------------------------------------------------ drawing

    def layout_for(self, room: int) -> list[tuple[int, int]]:
        """The columns shown in `room` cells and their widths (kept until the size changes)."""
        return self._layout(room)[1]

    def _layout(self, room: int) -> tuple[int, list[tuple[int, int]], bool]:
        fitted = self._fitted
        if fitted is None or fitted[0] != room:
            layout, tight = fit_table(self._columns, room)
            self._fitted = fitted = (room, layout, tight)
            pads = CELL_PADDING if tight else 2 * CELL_PADDING
            wide = sum(size + pads for _i, size in layout)
            if wide != self.virtual_size.width:  # a sideways scrollbar only when it must
                self.virtual_size = Size(wide, self.virtual_size.height)
        return fitted

    @property
    def shown_labels(self) -> list[str]:
        """The labels of the columns on screen now."""
        return [self._columns[i].label for i, _w in
                self.layout_for(self.scrollable_content_region.width)]

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            elif name in ("cursor", "header"):  # whole styles, blended with the background
                # (the cursor is laid over a cell's own style: its colours win, as in DataTable)
                style = self.get_component_rich_style(f"keyed--{name}")
            else:
                style = self.rich_style + self.get_component_rich_style(
                    f"keyed--{name}", partial=True)
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._style("base")
        _room, layout, tight = self._layout(width)
        if y < self._header_lines:
            header = self._style("header")
            segments = [Segment(_fit(self._columns[i].label, size, self._columns[i].justify,
                                     tight), header) for i, size in layout]
            fill = header
        else:
            row = int(self.scroll_y) + y - self._header_lines
            if row >= len(self._keys):
                return Strip.blank(width, base)
            cursor = self._style("cursor") if row == self.cursor_row else None
            segments = []
            cells = self._cells(row)
            for i, size in layout:
                text, level = cells[i]
                style = self._style(level) if level else base
                segments.append(Segment(_fit(text, size, self._columns[i].justify, tight),
                                        style + cursor if cursor else style))
            fill = base + cursor if cursor else base
        x = int(self.scroll_x)
        return Strip(segments).crop_extend(x, x + width, fill)


def _fit(text: str, width: int, justify: str, tight: bool = False) -> str:
    """A cell's text padded into its column, with a cell of padding each side (only before it
    when the table is `tight`); a text too long ends in `…`, so a cut never passes for the
    whole value."""
    if cell_len(text) > width:
        text = set_cell_size(text, max(width - 1, 0)) + "…" if width > 1 else "…"[:width]
    body = set_cell_size(text.rjust(width) if justify == "right" else text, width)
    return f"{PAD}{body}" if tight else f"{PAD}{body}{PAD}"


def db_row(n: DBNodeView, mesh: bool = False) -> list[tuple[str, str]]:
    state_l = {"running": "ok", "backing-up": "info", "promoting": "warn", "restarting": "warn",
               "demoted": "muted", "crashed": "bad", "restoring": "bad"}.get(n.state, "warn")
    conn_frac = n.connections / n.max_connections if n.max_connections else 0.0
    conn_l = "bad" if conn_frac >= 0.9 else "warn" if conn_frac >= 0.75 else ""
    lag_s = n.lag_seconds
    lag_l = "" if lag_s is None else "bad" if lag_s >= 30 else "warn" if lag_s >= 5 else ""
    disk_l = "bad" if n.disk_pct >= 90 else "warn" if n.disk_pct >= 80 else ""
    backup_age = n.last_backup_age_s
    backup_l = "bad" if backup_age is None or backup_age > 2 * 86400 else (
        "warn" if backup_age > 86400 + 3600 else "")
    lag_cell = "-" if n.role == "primary" or lag_s is None or n.lag_bytes is None else \
        f"{lag(lag_s)} {bytes_(n.lag_bytes)}"
    return [(n.name, "ok" if n.state == "running" else state_l),
            (n.region, "") if mesh else (n.role, "info" if n.role == "primary" else ""),
            (n.state, state_l),
            (f"{n.connections}/{n.max_connections}", conn_l),
            (si(n.qps), ""),
            (lag_cell, lag_l),
            (f"{n.disk_pct:.0f}%", disk_l),
            (age(backup_age), backup_l)]


def cache_row(node) -> list[tuple[str, str]]:
    state_l = "ok" if node.state == "running" else "bad" if node.state == "crashed" else "warn"
    return [(node.name, state_l), (node.role, ""), (node.state, state_l), (si(node.ops), ""),
            (f"{node.memory_pct:.0f}%", "warn" if node.memory_pct >= 85 else "")]


def cache_summary(cache: CacheView) -> str:
    return (f"{cache.technology}: hit ratio {pct(cache.hit_ratio)} "
            f"(target {pct(cache.target_hit_ratio, 0)})")


def stream_summary(stream: dict) -> str:
    """One row: the event stream's consumer lag per group (docs/streaming.md)."""
    groups = " · ".join(f"{g['name']} {g['lag_seconds']:.0f}s ({si(g['lag_messages'])})"
                        for g in stream["groups"])
    broker = "" if stream["broker_up"] else "broker DOWN · "
    effects = ""  # what the lag does downstream, once past the profile's thresholds
    if stream.get("serving_stale"):
        effects += f" · serving data {stream['data_age_seconds']:.0f}s old"
    if stream.get("notifications_late"):
        effects += f" · notifications {stream['notification_delay_seconds']:.0f}s late"
    return f"Kafka lag: {broker}{groups}{effects}"


def mesh_summary(mesh: dict) -> str:
    """One row for a multi-master database (sim/mesh.py, docs/data.md): where the nodes run,
    the conflicts last-update-wins resolved (each discarded a write), a split brain."""
    split = mesh.get("partition")
    head = f"multi-master {mesh['location']}{', geo' if mesh['geo_redundancy'] else ''}"
    if split:
        head = f"{'SPLIT BRAIN' if mesh['split_brain'] else 'PARTITION'}: {split['region']} " \
            "cut off"
    lost = f" · lost {si(mesh['region_lost_writes'])}" if mesh.get("region_lost_writes") else ""
    return (f"{head} · conflicts {si(mesh['conflicts'])} ({mesh['conflicts_per_s']:.2f}/s)"
            f"{lost}")


def restore_summary(restore: dict) -> str:
    """One row while a point-in-time recovery runs (sim/backup.py, docs/data.md): how far,
    how long left, and what it will have cost (RPO and writes lost)."""
    return (f"Restoring to {restore['target']} {restore['progress']:.0%} · "
            f"{age(restore['remaining_s'])} left · RPO {age(restore['rpo_s'])} · "
            f"{si(restore['writes_lost'])} writes lost")


class DatabasePane(Vertical):
    """Database nodes, then the cache and the event stream (when the profile has them)."""

    def __init__(self, has_cache: bool, has_stream: bool = False, has_mesh: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.has_cache = has_cache
        self.has_stream = has_stream
        self.has_mesh = has_mesh
        self._shown: dict[str, str] = {}  # each summary line's text on screen

    def compose(self) -> ComposeResult:
        yield Static(id="restore-summary")  # shown only while a restore runs (-active)
        if self.has_mesh:
            yield Static(id="mesh-summary")
        yield KeyedTable(MESH_COLUMNS if self.has_mesh else DB_COLUMNS, id="db-table")
        if self.has_stream:
            yield Static(id="stream-summary")
        if self.has_cache:
            yield Static(id="cache-summary")
            yield KeyedTable(CACHE_COLUMNS, id="cache-table")

    def _summary_line(self, name: str, text: str, *, layout: bool = True) -> Static:
        """The `#NAME-summary` line, its text replaced only when it changed (a redraw of the
        same text would cost a refresh every frame)."""
        line = self.query_one(f"#{name}-summary", Static)
        if text != self._shown.get(name, ""):
            self._shown[name] = text
            line.update(text, layout=layout)
        return line

    def show(self, snap: Snapshot) -> None:
        self.query_one("#db-table", KeyedTable).set_rows(
            [(n.name, db_row(n, self.has_mesh)) for n in snap.db])
        restore = (snap.backup or {}).get("restore")
        text = restore_summary(restore) if restore else ""
        self._summary_line("restore", text).set_class(bool(text), "-active")
        mesh = snap.mesh
        if self.has_mesh and mesh is not None:
            line = self._summary_line("mesh", mesh_summary(mesh), layout=False)
            line.set_class(mesh["split_brain"], "-split")
            line.set_class(mesh["conflicts_per_s"] > 1.0 or mesh["partition"] is not None,
                           "-low")
        stream = (snap.chaos or {}).get("event_stream")
        if self.has_stream and stream is not None:
            line = self._summary_line("stream", stream_summary(stream), layout=False)
            line.set_class(not stream["broker_up"] or stream.get("serving_stale", False)
                           or stream.get("notifications_late", False)
                           or any(g["lag_seconds"] > 60 for g in stream["groups"]), "-low")
        if self.has_cache and snap.cache is not None:
            cache = snap.cache
            level = "-low" if cache.hit_ratio < cache.target_hit_ratio - 0.05 else ""
            summary = self._summary_line("cache", cache_summary(cache), layout=False)
            summary.set_class(bool(level), "-low")
            self.query_one("#cache-table", KeyedTable).set_rows(
                [(c.name, cache_row(c)) for c in cache.nodes])
