"""The database pane: every node's role, state, load, lag, disk and backup age, plus the cache.

Small keyed tables (a handful of nodes): cells are updated by key, and only when the shown
text changed; the cache block exists only when the profile has a cache.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from devsim_tui.sim.snapshot import CacheView, DBNodeView, Snapshot
from devsim_tui.ui.format import age, bytes_, pct, si

DB_COLUMNS = (("node", "NODE", 6, "left"), ("role", "ROLE", 12, "left"),
              ("state", "STATE", 10, "left"), ("conn", "CONN", 7, "right"),
              ("qps", "QPS", 5, "right"), ("lag", "LAG", 12, "right"),
              ("disk", "DISK", 4, "right"), ("backup", "BACKUP", 6, "right"))
CACHE_COLUMNS = (("node", "NODE", 8, "left"), ("role", "ROLE", 7, "left"),
                 ("state", "STATE", 8, "left"), ("ops", "OPS/s", 6, "right"),
                 ("mem", "MEM", 4, "right"))
LEVELS = ("ok", "warn", "bad", "muted", "info")


class KeyedTable(DataTable):
    """A DataTable fed whole rows by key; cells are rewritten only when their text changed."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {f"keyed--{c}" for c in LEVELS}

    def __init__(self, columns: tuple[tuple[str, str, int], ...], **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._columns = columns
        self._rows: dict[str, tuple[str, ...]] = {}

    def on_mount(self) -> None:
        for key, label, width, *justify in self._columns:
            label_text = Text(label, justify="right" if justify == ["right"] else "left")
            self.add_column(label_text, width=width, key=key)
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme) -> None:
        # Styles are baked into the cells: mark every row stale so the next update rewrites it.
        self._rows = {key: ("",) * len(sig) for key, sig in self._rows.items()}

    def style_of(self, level: str) -> Style:
        return self.get_component_rich_style(f"keyed--{level}", partial=True)

    def _texts(self, cells: list[tuple[str, str]]) -> list[Text]:
        return [Text(t, style=self.style_of(lvl) if lvl else "",
                     justify="right" if col[-1] == "right" else "left")
                for (t, lvl), col in zip(cells, self._columns)]

    def set_rows(self, rows: list[tuple[str, list[tuple[str, str]]]]) -> None:
        """Rows as (key, [(text, level), ...]); levels name the keyed--* component classes."""
        wanted = [key for key, _ in rows]
        current = [r.key.value for r in self.ordered_rows]
        wanted_set = set(wanted)
        kept = [k for k in current if k in wanted_set]
        if kept + [k for k in wanted if k not in self._rows] != wanted:
            # The order changed (these tables hold a handful of rows): rebuild them in order,
            # keeping the cursor on the same key.
            selected = self.selected_key
            self.clear()
            self._rows = {}
            for key, cells in rows:
                self.add_row(*self._texts(cells), key=key)
                self._rows[key] = tuple(f"{t}\0{lvl}" for t, lvl in cells)
            if selected in self._rows:
                self.move_cursor(row=wanted.index(selected), animate=False)
            return
        for key in set(self._rows) - set(wanted):
            self.remove_row(key)
            del self._rows[key]
        cols = [c[0] for c in self._columns]
        for key, cells in rows:
            sig = tuple(f"{t}\0{lvl}" for t, lvl in cells)
            old = self._rows.get(key)
            if old == sig:
                continue
            texts = self._texts(cells)
            if old is None:
                self.add_row(*texts, key=key)
            else:
                for col, text, a, b in zip(cols, texts, sig, old):
                    if a != b:
                        self.update_cell(key, col, text)
            self._rows[key] = sig

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value


def db_row(n: DBNodeView) -> list[tuple[str, str]]:
    state_l = {"running": "ok", "backing-up": "info", "promoting": "warn", "restarting": "warn",
               "demoted": "muted", "crashed": "bad"}.get(n.state, "warn")
    conn_frac = n.connections / n.max_connections if n.max_connections else 0.0
    conn_l = "bad" if conn_frac >= 0.9 else "warn" if conn_frac >= 0.75 else ""
    lag_l = "bad" if n.lag_seconds >= 30 else "warn" if n.lag_seconds >= 5 else ""
    disk_l = "bad" if n.disk_pct >= 90 else "warn" if n.disk_pct >= 80 else ""
    backup_age = n.last_backup_age_s
    backup_l = "bad" if backup_age is None or backup_age > 2 * 86400 else (
        "warn" if backup_age > 86400 + 3600 else "")
    lag = "-" if n.role == "primary" else f"{n.lag_seconds:.1f}s {bytes_(n.lag_bytes)}"
    return [(n.name, "ok" if n.state == "running" else state_l),
            (n.role, "info" if n.role == "primary" else ""),
            (n.state, state_l),
            (f"{n.connections}/{n.max_connections}", conn_l),
            (si(n.qps), ""),
            (lag, lag_l),
            (f"{n.disk_pct:.0f}%", disk_l),
            (age(backup_age), backup_l)]


def cache_row(node) -> list[tuple[str, str]]:
    state_l = "ok" if node.state == "running" else "bad" if node.state == "crashed" else "warn"
    return [(node.name, state_l), (node.role, ""), (node.state, state_l), (si(node.ops), ""),
            (f"{node.memory_pct:.0f}%", "warn" if node.memory_pct >= 85 else "")]


def cache_summary(cache: CacheView) -> str:
    return (f"{cache.technology}: hit ratio {pct(cache.hit_ratio)} "
            f"(target {pct(cache.target_hit_ratio, 0)})")


class DatabasePane(Vertical):
    """Database nodes, then the cache (when the profile has one)."""

    def __init__(self, has_cache: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.has_cache = has_cache
        self._summary = ""

    def compose(self) -> ComposeResult:
        yield KeyedTable(DB_COLUMNS, id="db-table")
        if self.has_cache:
            yield Static(id="cache-summary")
            yield KeyedTable(CACHE_COLUMNS, id="cache-table")

    def show(self, snap: Snapshot) -> None:
        self.query_one("#db-table", KeyedTable).set_rows([(n.name, db_row(n)) for n in snap.db])
        if self.has_cache and snap.cache is not None:
            cache = snap.cache
            level = "-low" if cache.hit_ratio < cache.target_hit_ratio - 0.05 else ""
            summary = self.query_one("#cache-summary", Static)
            text = cache_summary(cache)
            if text != self._summary:
                self._summary = text
                summary.update(text, layout=False)
            summary.set_class(bool(level), "-low")
            self.query_one("#cache-table", KeyedTable).set_rows(
                [(c.name, cache_row(c)) for c in cache.nodes])
