"""The detail screen of one server or database node: larger sparklines and its own events.

History comes from `world.component_history(name)`; events are those whose subject is the
component or whose `servers` list names it. Refreshed by the app from the latest snapshot.
"""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from devsim_tui.sim.snapshot import STATE_NAMES, Snapshot
from devsim_tui.ui.events import EventLog
from devsim_tui.ui.format import age, lag, si
from devsim_tui.ui.renderables import MetricLine, SparkStyles

SERIES_LABELS = {
    "cpu": ("CPU", lambda v: f"{v * 100:.0f}%"),
    "memory_pct": ("Memory", lambda v: f"{v:.0f}%"),
    "memory_mb": ("Memory", lambda v: f"{v:.0f} MiB"),
    "rps": ("Requests", lambda v: si(v, "/s")),
    "p99_ms": ("p99", lambda v: f"{v:.0f}ms"),
    "error_rate": ("Errors", lambda v: f"{v * 100:.2f}%"),
    "qps": ("Queries", lambda v: si(v, "/s")),
    "lag_seconds": ("Repl. lag", lag),
    "connections": ("Conns", lambda v: f"{v:.0f}"),
}


def _region(snap: Snapshot, r: int) -> str:
    """The pod's region and cloud (sim/cloud.py); a Pending pod is in none yet."""
    if r >= len(snap.regions):
        return "no region (Pending)"
    rows = (snap.cloud or {}).get("regions") or ()
    cloud = rows[r]["cloud"] if r < len(rows) else ""
    return f"{snap.regions[r]} ({cloud})" if cloud else snap.regions[r]


def describe(snap: Snapshot, name: str) -> str:
    f = snap.fleet
    i = f.index_of(name)
    if i is not None:
        return (f"server {name} · {STATE_NAMES[int(f.state[i])]} · "
                f"{snap.versions[int(f.version[i])]} · {_region(snap, int(f.region[i]))} · "
                f"up {age(float(f.uptime_s[i]))} · restarts {int(f.restarts[i])}")
    for n in snap.db:
        if n.name == name:
            mesh = (f"{snap.mesh['location']} · {n.conflicts:,} writes lost to conflicts · "
                    if snap.mesh is not None else "")
            return (f"database {name} · {n.role} · {n.state} · {n.region} · {mesh}"
                    f"conns {n.connections}/{n.max_connections} · disk {n.disk_pct:.0f}% · "
                    f"backup {age(n.last_backup_age_s)}" + _restore_text(snap, n.state))
    return f"{name} · gone from the estate"


def _restore_text(snap: Snapshot, state: str) -> str:
    """A running restore's progress (sim/backup.py), shown on the node it restores."""
    r = (snap.backup or {}).get("restore")
    if state != "restoring" or not r:
        return ""
    return (f" · restore to {r['target']} {r['progress']:.0%}, {age(r['remaining_s'])} left, "
            f"{r['writes_lost']:,} writes lost (RPO {age(r['rpo_s'])})")


class HistoryCharts(Widget):
    """Larger sparklines (3 rows each) of one component's recent history."""

    COMPONENT_CLASSES = {"metrics--label", "metrics--spark", "metrics--value", "metrics--dim",
                         "metrics--warn", "metrics--bad"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._history: dict[str, np.ndarray] = {}
        self._labels: dict = SERIES_LABELS
        self._scales: dict[str, tuple[float, float]] = {}

    def show(self, history: dict[str, np.ndarray], labels: dict | None = None,
             scales: dict[str, tuple[float, float]] | None = None) -> None:
        """`labels`: key -> (label, formatter) (default SERIES_LABELS); `scales`: key ->
        (floor, ceiling) for charts that must share one scale to be compared by eye."""
        self._history = history
        self._labels = SERIES_LABELS if labels is None else labels
        self._scales = scales or {}
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(len(self._history) * 4, 1)

    def render(self):
        st = self.get_component_rich_style
        styles = SparkStyles(st("metrics--label"), st("metrics--spark"), st("metrics--value"),
                             st("metrics--dim"), st("metrics--warn"), st("metrics--bad"))
        charts = []
        # One time axis for every chart: shorter series are padded (blank) on the left, so
        # a cell is the same span of simulated time in each.
        span = max((len(v) for v in self._history.values()), default=0)
        for key, values in self._history.items():
            label, fmt = self._labels.get(key, (key.replace("_", " ").capitalize(),
                                                lambda v: f"{v:.2f}"))
            values = np.asarray(values, dtype=float)
            if len(values) < span:
                values = np.concatenate([np.full(span - len(values), np.nan), values])
            finite = values[np.isfinite(values)]
            if len(finite):
                cur, lo, hi = (fmt(float(finite[-1])), fmt(float(finite.min())),
                               fmt(float(finite.max())))
            else:
                cur = lo = hi = "-"
            floor, ceiling = self._scales.get(key, (None, None))
            charts.append(MetricLine(label, values, cur, lo, hi, styles, height=3, floor=floor,
                                     ceiling=ceiling))
        width = max((len(f"{c.low}..{c.high}") for c in charts), default=0)
        label_width = max((len(c.label) for c in charts), default=0)
        lines = []
        for chart in charts:
            chart.minmax_width = width  # the sparklines start and end in the same columns
            chart.label_width = max(chart.label_width, label_width)
            lines += [chart, Text("")]
        return Group(*lines) if lines else Text("no history for this component yet")


class DetailScreen(Screen[None]):
    """Enter on a server or node opens this; Escape returns."""

    BINDINGS = [Binding("escape,q", "close", "Back")]

    def __init__(self, name: str, start_hour: float) -> None:
        super().__init__()
        self.component = name
        self.start_hour = start_hour

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with Vertical(id="detail-charts-pane", classes="pane") as pane:
            pane.border_title = "History"
            yield HistoryCharts(id="detail-charts")
        with Vertical(id="detail-events-pane", classes="pane") as pane:
            pane.border_title = f"Events of {self.component}"
            yield EventLog(self.start_hour, subject=self.component, id="detail-events")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)

    def show(self, world, snap: Snapshot) -> None:
        self.query_one("#detail-title", Static).update(describe(snap, self.component))
        history = world.component_history(self.component)
        ticks = max((len(v) for v in history.values()), default=0)
        minutes = ticks * world.profile.simulation.tick_seconds / 60
        self.query_one("#detail-charts-pane").border_title = (
            f"History · last {minutes:.0f} min of simulated time")
        self.query_one(HistoryCharts).show(history)
        self.query_one(EventLog).pull(world, visible=True)
