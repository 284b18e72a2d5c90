"""The metrics pane: one sparkline per aggregate series over a window of simulated time.

Series come from `world.series(name, n)`; a long window is downsampled to the sparkline width
(max per bucket for load and latency, so a spike never disappears; mean for ratios). The drawing
is a pure renderable (`MetricLine`); this widget only picks data and styles.

A metric the engine's anomaly detector currently finds anomalous (its signal in
`snap.anomaly["anomalous"]`, mapped to a series by `["series_of"]`) gets its
label in the anomaly style and a ◆ before its value.

Where the estate keeps its history in Thanos (`snap.thanos`, sim/thanos.py),
the long windows (1 h, 24 h) read it as a Thanos Query would: instants it cannot serve now (the
object store down, blocks lost) are blank, and a last line says what the long-term store is
doing (store up or down, the sidecar's upload lag, lost blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.widget import Widget

from devsim_tui.sim.security import SECURITY_SIGNAL_PREFIXES
from devsim_tui.sim.snapshot import Snapshot
from devsim_tui.sim.thanos import available_mask
from devsim_tui.ui.format import age, si, sim_clock
from devsim_tui.ui.renderables import MetricLine, SparkStyles


@dataclass(frozen=True)
class Metric:
    label: str
    series: tuple[str, ...]  # summed when several (network = in + out)
    unit: str
    fmt: Callable[[float], str]
    how: str = "max"  # per-bucket reduction when downsampling
    floor: float | None = None  # None: scale the sparkline from the window's minimum
    ceiling: float | None = None  # fixed top of the scale (percentages), else the maximum
    warn: float | None = None
    bad: float | None = None
    lower_is_worse: bool = False


def _pct(scale: float, digits: int = 0) -> Callable[[float], str]:
    return lambda v: f"{v * scale:.{digits}f}%"


def metrics_for(snap: Snapshot, slo_p99_ms: float) -> list[Metric]:
    """The metrics this estate has (build time and cache only where they exist)."""
    out = [
        Metric("CPU", ("cpu",), "%", _pct(100), floor=0.0, ceiling=1.0, warn=0.75, bad=0.9),
        Metric("Memory", ("memory_pct",), "%", _pct(1), floor=0.0, ceiling=100.0, warn=80,
               bad=90),
        Metric("Disk", ("disk_pct",), "%", _pct(1), floor=0.0, ceiling=100.0, warn=80, bad=90),
        Metric("Network", ("net_in_kbps", "net_out_kbps"), "B/s",
               lambda v: si(v * 125.0, "B/s")),
        Metric("Requests", ("offered_rps",), "rps", lambda v: si(v, "/s")),
        *([Metric("Forecast", ("forecast_rps",), "rps", lambda v: si(v, "/s"))]
          if snap.agg.forecast_rps is not None else []),
        Metric("p99", ("p99_ms",), "ms", lambda v: f"{v:.0f}ms", warn=0.8 * slo_p99_ms,
               bad=slo_p99_ms),
        # Drawn against 0..5% (the bad level) at least: a healthy 0.05% is a low bar.
        Metric("Errors", ("error_rate",), "%", _pct(100, 2), floor=0.0, ceiling=0.05,
               warn=0.01, bad=0.05),
    ]
    if snap.agg.build_time_s is not None:
        out.append(Metric("Build", ("build_time_s",), "s", lambda v: f"{v:.1f}s", floor=0.0,
                          warn=60, bad=120))
    if snap.agg.cache_hit_ratio is not None:
        out.append(Metric("Cache hit", ("cache_hit_ratio",), "%", _pct(100, 1), how="mean",
                          floor=0.0, ceiling=1.0, warn=0.85, bad=0.7, lower_is_worse=True))
    return out


ANOMALY_MARK = "◆"
LONG_WINDOW_S = 300.0  # windows longer than this read the long-term store (Thanos)


def thanos_line(thanos: dict, clock: Callable[[float], str]) -> tuple[str, str]:
    """(text, level) of the long-term store's state for the long windows."""
    parts = [f"Thanos: store {'up' if thanos['store_up'] else 'DOWN'}",
             f"upload lag {age(thanos['upload_lag_s'])}", f"{thanos['uploaded_blocks']} blocks in the bucket"]
    if not thanos["store_up"]:
        parts.append(f"older than {clock(thanos['local_from'])} blank")
    if thanos["lost"]:
        parts.append(f"{len(thanos['lost'])} blocks lost")
    level = "bad" if thanos["lost"] else ("warn" if not thanos["store_up"] else "dim")
    return " · ".join(parts), level


def anomalous_series(snap: Snapshot) -> dict[str, float]:
    """Estate-wide series the detector flags now: series name -> worst score.

    Signals about one database node are left out (this pane shows the estate's aggregates);
    the cache's signals map to the `cache_*` series.
    """
    det = snap.anomaly or {}
    flagged = det.get("anomalous") or {}
    if not flagged:
        return {}
    series_of = det.get("series_of") or {}
    nodes = {n.name for n in snap.db}
    out: dict[str, float] = {}
    for signal, score in flagged.items():
        component, metric = (list(series_of.get(signal) or ()) + [None, None])[:2]
        if metric is None or component in nodes:
            continue
        name = f"cache_{metric}" if component == "cache" else metric
        out[name] = max(out.get(name, 0.0), float(score))
    return out


def detector_status(snap: Snapshot) -> str | None:
    """One line on the detector: warming up or armed, and what it watches per component."""
    det = snap.anomaly or {}
    if not det.get("enabled"):
        return None
    if det.get("warming_up"):
        state = f"warming up ({det.get('updates', 0)}/{det.get('warmup_updates', 0)})"
    elif det.get("episode"):
        state = f"finding {det['episode']['id']}"
    else:
        state = "armed" + (" (warm start)" if det.get("warm_started") else "")
    nodes = {n.name for n in snap.db}
    per: dict[str, int] = {}
    for signal, (component, _) in (det.get("series_of") or {}).items():
        group = _signal_group(signal, component, nodes)
        per[group] = per.get(group, 0) + 1
    watched = ", ".join(f"{c} {n}" for c, n in per.items())
    return f"{state} · {sum(per.values())} signals: {watched}"


def _signal_group(signal: str, component: str, nodes: set[str]) -> str:
    """The detector line's group of a signal: its service, `db` for the database nodes and
    the archive, `security` for the security telemetry, else its component."""
    if signal.startswith(SECURITY_SIGNAL_PREFIXES):
        return "security"
    if component in nodes or component == "db":
        return "db"
    return component


def level_of(metric: Metric, value: float) -> str:
    if not np.isfinite(value) or metric.warn is None:
        return "ok"
    if metric.lower_is_worse:
        return "bad" if value <= metric.bad else "warn" if value <= metric.warn else "ok"
    return "bad" if value >= metric.bad else "warn" if value >= metric.warn else "ok"


class MetricsPane(Widget, can_focus=True):
    """Sparklines of the estate's aggregates, one per line."""

    COMPONENT_CLASSES = {"metrics--label", "metrics--spark", "metrics--value", "metrics--dim",
                         "metrics--warn", "metrics--bad", "metrics--anomaly"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lines: list[MetricLine] = []
        self._status: Text | None = None  # the detector's line, under the sparklines
        #: Rows per sparkline and a blank line above each (more than one when zoomed).
        self._tall: tuple[int, bool] = (1, False)

    #: The tallest a sparkline grows when the pane is zoomed.
    MAX_ROWS = 6

    def show(self, world, snap: Snapshot, window_s: float, slo_p99_ms: float) -> None:
        ticks = max(int(window_s / world.profile.simulation.tick_seconds), 2)
        st = self.get_component_rich_style
        styles = SparkStyles(label=st("metrics--label"), spark=st("metrics--spark"),
                             value=st("metrics--value"), dim=st("metrics--dim"),
                             warn=st("metrics--warn"), bad=st("metrics--bad"))
        flagged = anomalous_series(snap)
        thanos = snap.thanos or {}
        keep = None
        if thanos.get("enabled") and window_s > LONG_WINDOW_S:
            keep = available_mask(thanos, world.series("t", ticks))
        marked = SparkStyles(label=st("metrics--anomaly"), spark=styles.spark,
                             value=styles.value, dim=styles.dim, warn=styles.warn,
                             bad=st("metrics--anomaly")) if flagged else styles
        lines = []
        for m in metrics_for(snap, slo_p99_ms):
            data = world.series(m.series[0], ticks)
            for extra in m.series[1:]:
                data = data + world.series(extra, ticks)
            if keep is not None and len(keep) == len(data):
                data = np.where(keep, data, np.nan)
            finite = data[np.isfinite(data)]
            current = float(finite[-1]) if len(finite) else float("nan")
            low = m.fmt(float(finite.min())) if len(finite) else "-"
            high = m.fmt(float(finite.max())) if len(finite) else "-"
            value = m.fmt(current) if len(finite) else "-"
            if any(name in flagged for name in m.series):
                lines.append(MetricLine(m.label, data, f"{ANOMALY_MARK} {value}", low, high,
                                        marked, "bad", how=m.how, floor=m.floor,
                                        ceiling=m.ceiling))
                continue
            lines.append(MetricLine(m.label, data, value, low, high, styles,
                                    level_of(m, current), how=m.how, floor=m.floor,
                                    ceiling=m.ceiling))
        width = max(len(f"{line.low}..{line.high}") for line in lines)
        for line in lines:
            line.minmax_width = width
            line.height, line.gap = self._tall
        label_width = max(9, max(len(line.label) for line in lines))
        if keep is not None:
            start = world.profile.simulation.start_hour
            text, level = thanos_line(thanos, lambda t: sim_clock(start, t)[:-3])
            lines.append(Text(text, style=st(f"metrics--{level}"), no_wrap=True,
                              overflow="ellipsis"))
        status = detector_status(snap)
        before = self._status
        # wraps rather than cuts (a projector shows the whole list): the pane grows a line
        self._status = None if status is None else Text.assemble(
            (f"{'Detector':<{label_width}}", styles.label), " ", (status, styles.dim))
        # (a new detector line may wrap to another height: it changes a few times an hour)
        relayout = len(lines) != len(self._lines) or (before and before.plain) != (
            self._status and self._status.plain)
        self._lines = lines
        self.refresh(layout=relayout)

    def get_content_height(self, container, viewport, width: int) -> int:
        status = 0 if self._status is None else len(self._status.wrap(self.app.console,
                                                                      max(width, 1)))
        self._fit_charts(container.height if self._zoomed() else None, status)
        charts = sum(line.height + line.gap if isinstance(line, MetricLine) else 1
                     for line in self._lines)
        return max(charts + status, 1)

    def _zoomed(self) -> bool:
        pane = self.parent
        return pane is not None and pane.has_class("-maximized")

    def _fit_charts(self, rows: int | None, status: int) -> None:
        """Zoomed (`rows`: the pane's height), the sparklines share the rows the other lines
        leave, up to MAX_ROWS each with a blank line between two; else one line each. Decided
        here, where the layout hands over the pane's size, so a zoom or a resize refits them."""
        charts = [line for line in self._lines if isinstance(line, MetricLine)]
        if rows is None or not charts:
            tall = (1, False)
        else:
            share = (rows - status - (len(self._lines) - len(charts))) // len(charts)
            gap = share >= 3  # two tall charts never read as one
            tall = (max(1, min(self.MAX_ROWS, share - gap)), gap)
        self._tall = tall
        for line in charts:
            line.height, line.gap = tall

    def render(self):
        return Group(*self._lines, *([self._status] if self._status is not None else []))
