"""The header bar: which estate, simulated time, speed, scaler, health and SLO at a glance.

The environment badge carries the per-environment colour cue (from the theme's `$env-*`
variables, see app.tcss); the rest is one line that drops its least important parts to fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from devsim_tui.ui.format import age, pct, speed_label
from devsim_tui.ui.renderables import FitLine

if TYPE_CHECKING:
    from devsim_tui.sim.snapshot import Snapshot


class StatusLine(Static):
    """Clock, speed, scaler, health and SLO, fitted to the width (a FitLine)."""

    COMPONENT_CLASSES = {
        "status--dim", "status--key", "status--ok", "status--warn", "status--bad",
        "status--paused",
    }

    def show(self, snap: Snapshot, speed: float | str, paused: bool, slo_target: float,
             window: str) -> None:
        style = self.get_component_rich_style
        dim, key = style("status--dim"), style("status--key")
        level = {"ok": "status--ok", "degraded": "status--warn", "critical": "status--bad"}
        health = Text.assemble(("● ", style(level.get(snap.health, "status--warn"))),
                               (snap.health.upper(), style(level.get(snap.health, "status--warn"))))
        speed_txt = speed_label(speed, paused)
        speed_part = (Text("❚❚ paused", style("status--paused")) if paused
                      else Text.assemble(("▶ ", key), (speed_txt, key)))
        if snap.tick == 0:
            # Nothing simulated yet (a paused start, a seat before the host's first tick): no
            # SLO, health or fleet figures to invent.
            waiting = Text("waiting for the estate's first tick" + (
                " (space starts the clock)" if paused else "…"), dim)
            self.update(FitLine([(9, Text(snap.clock, key), None), (8, speed_part, None),
                                 (7, waiting, None)], Text(" │ ", dim)), layout=False)
            return
        agg = snap.agg
        avail_level = "status--ok" if agg.availability >= slo_target else "status--bad"
        burned = agg.error_budget_burned
        burn_level = ("status--bad" if burned >= 1 or agg.burn_rate_1h >= 14.4 else
                      "status--warn" if burned >= 0.5 or agg.burn_rate_1h >= 2 else "status--ok")
        # Achieved / target, over the window the achieved figure covers (since the start):
        # a bare `SLO 99.95%` read like the target.
        over = f" over {age(snap.t)}" if snap.t > 0 else ""
        slo = Text.assemble(("SLO ", dim), (pct(agg.availability, 2), style(avail_level)),
                            (f" / {pct(slo_target, 2)} target{over}", dim))
        # (short, it keeps its window: a projector's header still says what the figure covers)
        slo_short = Text.assemble(("SLO ", dim), (pct(agg.availability, 2), style(avail_level)),
                                  (f"/{pct(slo_target, 2)}{over}", dim))
        budget = Text.assemble(("error budget ", dim), (pct(burned, 1), style(burn_level)),
                               (" used · burn ", dim),
                               (f"{agg.burn_rate_1h:.2f}x", style(burn_level)))
        budget_short = Text.assemble(("budget ", dim), (pct(burned, 1), style(burn_level)),
                                     (" ", dim), (f"{agg.burn_rate_1h:.1f}x", style(burn_level)))
        clock = Text(snap.clock, key)
        clock_short = Text(snap.clock.split(" ")[-1], key)
        scaler = Text.assemble(("scaler ", dim), (snap.scaler, key))
        scaler_short = Text(snap.scaler.split(" ")[0], key)
        health_short = Text("● ", style(level.get(snap.health, "status--warn")))
        health_short.append(snap.health[:4].upper())
        fleet = Text.assemble(("fleet ", dim), (f"{agg.ready}/{agg.total}", key),
                              (f" want {agg.desired}", dim))
        fleet_short = Text.assemble(("fleet ", dim), (f"{agg.ready}/{agg.total}", key),
                                    (f"→{agg.desired}" if agg.desired != agg.total else "", dim))
        win = Text.assemble(("window ", dim), (window, key))
        parts = [(9, clock, clock_short), (8, speed_part, None), (7, health, health_short),
                 (6, scaler, scaler_short), (5, slo, slo_short), (4, budget, budget_short),
                 (2, fleet, fleet_short), (1, win, None)]
        # One fixed-height line: no layout pass needed when the text changes.
        self.update(FitLine(parts, Text(" │ ", dim)), layout=False)


class HeaderBar(Horizontal):
    """Environment badge + status line, one row."""

    def __init__(self, profile_name: str, environment: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.profile_name = profile_name
        self.environment = environment

    def compose(self) -> ComposeResult:
        badge = Static(f" {self._label()} ", id="env-badge",
                       classes=f"-env-{self.environment}")
        badge.shrink = False
        yield badge
        yield StatusLine(id="status")

    def relabel(self, profile_name: str, environment: str) -> None:
        """Name the estate anew (the profile was loaded after the first frame)."""
        if (profile_name, environment) == (self.profile_name, self.environment):
            return
        badge = self.query_one("#env-badge", Static)
        badge.remove_class(f"-env-{self.environment}")
        self.profile_name, self.environment = profile_name, environment
        badge.add_class(f"-env-{environment}")
        badge.update(f" {self._label()} ")

    def _label(self) -> str:
        label = self.environment.upper()
        if self.profile_name != self.environment:
            label += f" · {self.profile_name}"
        return label

    def show(self, snap: Snapshot, speed: float | str, paused: bool, slo_target: float,
             window: str) -> None:
        self.query_one(StatusLine).show(snap, speed, paused, slo_target, window)
