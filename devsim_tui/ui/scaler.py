"""The scaler's detail screen: how the autoscaler decides, and what the plain HPA would have done.

Opened by Enter on the metrics pane. With the predictive scaler (sim/predictive.py) it shows,
per HPA sync over the last hour of simulated time: the request rate against the forecast that
was made one lead time before for that moment, the replicas decided against the HPA's own
recommendation on the same fleet (the counterfactual: `hpa_desired`), the replicas the forecast
asked for, the confidence against its gate, and the ScaleAhead / HPA events. With the plain HPA
it shows the HPA's state and its events. The data is the snapshot's `hpa` dict; nothing here
reads the engine. `scaler_view` is pure, so what the screen says is testable without a screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Footer, Static

from devsim_tui.sim.snapshot import Snapshot
from devsim_tui.ui.detail import DetailScreen, HistoryCharts
from devsim_tui.ui.events import EventLog
from devsim_tui.ui.format import age, si

#: Chart key -> (label, formatter); the order is the screen's.
CHARTS = {
    "actual_rps": ("Requests", lambda v: si(v, "/s")),
    "forecast_rps": ("Forecast", lambda v: si(v, "/s")),
    "replicas": ("Replicas", lambda v: f"{v:.0f}"),
    "hpa_replicas": ("HPA alone", lambda v: f"{v:.0f}"),
    "need": ("Forecast needs", lambda v: f"{v:.0f}"),
    "confidence": ("Confidence", lambda v: f"{v * 100:.0f}%"),
}
#: Charts drawn on one shared scale, so that they can be compared by eye.
SHARED = (("actual_rps", "forecast_rps"), ("replicas", "hpa_replicas", "need"))
#: The events this screen lists (the scaler's decisions).
EVENT_TYPES = ("scale.",)


@dataclass
class ScalerView:
    """What the screen shows: a title, summary lines, charts and their shared scales."""

    title: str
    lines: list[str] = field(default_factory=list)
    charts: dict[str, np.ndarray] = field(default_factory=dict)
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)
    minutes: float = 0.0


def scaler_view(snap: Snapshot) -> ScalerView:
    """The scaler's state and record from a snapshot (pure)."""
    hpa = snap.hpa or {}
    util = hpa.get("utilization")
    target = hpa.get("target")
    state = (f"CPU {util}% vs target {target}%" if util is not None and target is not None
             else "no CPU reading yet")
    record = hpa.get("record")
    if not record:
        title = f"scaler {snap.scaler} · {state}"
        if hpa.get("reason"):
            title += f" · {hpa['reason']}"
        lines = ["No forecast: this estate scales with the plain HPA (scaling.scaler: hpa), so "
                 "there is no counterfactual to show. The events below are its decisions."]
        return ScalerView(title, lines)
    confidence = hpa.get("confidence", 0.0)
    gate = hpa.get("min_confidence", 0.0)
    gated = bool(hpa.get("gated"))
    title = (f"scaler {snap.scaler} · model {hpa.get('model', '-')} · lead "
             f"{hpa.get('lead_s', 0):.0f} s · gate "
             f"{'closed: the HPA acts alone' if gated else 'open'} (confidence "
             f"{confidence:.0%} {'<' if gated else '>='} {gate:.0%}) · {state}")
    charts = {k: np.asarray(record.get(k, ()), dtype=float) for k in CHARTS}
    scales = {}
    for group in SHARED:
        values = np.concatenate([charts[k] for k in group])
        finite = values[np.isfinite(values)]
        if len(finite):
            lo, hi = float(finite.min()), float(finite.max())
            lo = max(0.0, lo - 0.1 * (hi - lo) - 1.0)  # the lowest value still shows a bar
            for k in group:
                scales[k] = (lo, hi)
    scales["confidence"] = (0.0, 1.0)
    t = np.asarray(record.get("t", ()), dtype=float)
    minutes = float(t[-1] - t[0]) / 60.0 if len(t) > 1 else 0.0
    lines = [_counterfactual(charts, t)]
    errors = hpa.get("errors") or {}
    if errors:
        lines.append("recent error of each model (lead-time forecasts, share of the traffic "
                     "level): " + ", ".join(f"{n} {e:.1%}" for n, e in errors.items())
                     + f"; the lowest is used, and below {gate:.0%} confidence the HPA acts "
                     "alone")
    return ScalerView(title, lines, charts, scales, minutes)


def _counterfactual(charts: dict[str, np.ndarray], t: np.ndarray) -> str:
    """One sentence: how the decided replicas compare with the HPA's own recommendation."""
    ours, alone = charts["replicas"], charts["hpa_replicas"]
    both = np.isfinite(ours) & np.isfinite(alone)
    if not both.any():
        return "no sync compared with the HPA yet"
    diff = np.where(both, ours - alone, 0.0)
    step_min = float(np.median(np.diff(t))) / 60.0 if len(t) > 1 else 0.25
    above = int((diff > 0).sum())
    extra = float(diff[diff > 0].sum()) * step_min
    now_ours, now_alone = ours[both][-1], alone[both][-1]
    return (f"Counterfactual, last {age(float(len(t)) * step_min * 60.0)}: above the HPA's "
            f"own recommendation at {above} of {int(both.sum())} syncs (+{extra:.1f} "
            f"replica-minutes); now {now_ours:.0f} replicas, the HPA alone {now_alone:.0f}")


class ScalerDetailScreen(DetailScreen):
    """Enter on the metrics pane opens this; Escape returns."""

    def __init__(self, start_hour: float) -> None:
        super().__init__("scaler", start_hour)

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with Vertical(id="detail-charts-pane", classes="pane") as pane:
            pane.border_title = "Forecast and replicas"
            yield HistoryCharts(id="detail-charts")
        yield Static(id="scaler-summary")
        with Vertical(id="detail-events-pane", classes="pane") as pane:
            pane.border_title = "Scaling events (ScaleAhead: scaled before the HPA would)"
            yield EventLog(self.start_hour, types=EVENT_TYPES, id="detail-events")
        yield Footer()

    def show(self, world, snap: Snapshot) -> None:
        view = scaler_view(snap)
        self.query_one("#detail-title", Static).update(view.title)
        self.query_one("#scaler-summary", Static).update("\n".join(view.lines))
        pane = self.query_one("#detail-charts-pane")
        pane.display = bool(view.charts)
        if view.charts:
            pane.border_title = (f"Forecast and replicas · one point per HPA sync, the forecast "
                                 f"made one lead time before · last {view.minutes:.0f} min")
            self.query_one(HistoryCharts).show(view.charts, CHARTS, view.scales)
        self.query_one(EventLog).pull(world, visible=True)
