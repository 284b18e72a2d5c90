"""The facilitator's debrief view: after a drill ends, the control room shows the scored
timeline and the report's charts (the key metrics over the drill, with the moments that
matter marked under them), so the room can debrief on the screen.

Drawing is a pure function of the score (`debrief_lines`): lines of (text, level) that the
thin `DebriefBody` colours through its debrief--* component classes (debrief.tcss). It reads
only a `drill.score.Result`, never the engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from devsim_tui.ui.renderables import level_lines
from devsim_tui.drill.controller import fmt_t
from devsim_tui.drill.report import charts, helped_text, timeline, verdict
from devsim_tui.ui.renderables import spark_rows

#: Timeline rows that mark the incident's phases, and the letter each leaves under the charts.
PHASES = {"INJECT": "I", "DETECTED": "D", "ACKNOWLEDGED": "A", "MITIGATED": "M",
          "RESOLVED": "R"}
LEVELS = ("dim", "head", "key", "mark", "ok", "bad", "chart")

Line = list[tuple[str, str]]


def phase_marks(d: dict[str, Any]) -> list[tuple[float, str]]:
    """(drill time, letter) of the incident injects, detection, acknowledgement, mitigation
    and resolution."""
    tm = d["timings"]
    out = [(i["t"], "I") for i in d["injects"] if i["incident"]]
    out += [(tm[k], letter) for k, letter in (("detected", "D"), ("acknowledged", "A"),
                                              ("mitigated", "M"), ("resolved", "R"))
            if tm[k] is not None]
    return out


def marker_row(marks: list[tuple[float, str]], t_lo: float, t_hi: float, width: int) -> str:
    row = [" "] * width
    span = max(t_hi - t_lo, 1e-9)
    for t, letter in marks:
        if t_lo <= t <= t_hi:
            x = min(width - 1, max(0, int(round((t - t_lo) / span * (width - 1)))))
            row[x] = letter if row[x] == " " else "*"
    return "".join(row)


def debrief_lines(result: Any, width: int = 100, outcome: str = "") -> list[Line]:
    d = result.data
    s = result.loaded.scenario
    tm = d["timings"]
    L: list[Line] = []
    L.append([(f"{s.title}", "head"), (f"  ended at {fmt_t(d['ended']['t'])} "
                                       f"({d['ended']['reason']}) · {d['objectives_met']}/"
                                       f"{d['objectives_total']} objectives met", "dim")])
    L.append([("detect ", "dim"), (fmt_t(tm["time_to_detect"]), "key"),
              ("  acknowledge ", "dim"), (fmt_t(tm["time_to_acknowledge"]), "key"),
              ("  mitigate ", "dim"), (fmt_t(tm["time_to_mitigate"]), "key"),
              ("  resolve ", "dim"), (fmt_t(tm["time_to_resolve"]), "key"),
              ("  (after the incident began at ", "dim"), (fmt_t(tm["incident_start"]), "key"),
              (")", "dim")])
    L.append([("root cause: ", "dim"), (verdict(d), "ok" if d["root_cause"]["found"]
                                        else "bad")])
    L.append([])
    L.append([("Objectives", "head")])
    for o in d["objectives"]:
        when = o["met_t"] if o["status"] == "met" else o["failed_t"]
        L.append([(" ✓ " if o["status"] == "met" else " ✗ ", "ok" if o["status"] == "met"
                   else "bad"), (o["title"], ""), (f"  {o['status']}", "dim")]
                 + ([(f" {fmt_t(when)}", "dim")] if when is not None else []))
    L.append([])
    L.append([("Charts", "head"), ("  I inject · D detected · A acknowledged · M mitigated · "
                                   "R resolved", "dim")])
    rec = result.recording
    warm = float(rec.header.get("warmup", 0.0))
    marks = phase_marks(d)
    cw = max(20, width - 28)
    for name, label, rng in charts(result):
        t, v = rec.series(name)
        keep = t >= warm
        t, v = t[keep] - warm, v[keep]
        if not len(t):
            continue
        rows = spark_rows(np.asarray(v, dtype=float), cw, height=2)
        for k, row in enumerate(rows):
            L.append([(f" {label if k == 0 else rng:<24} ", "dim" if k else ""), (row, "chart")])
        L.append([(" " * 26, ""), (marker_row(marks, float(t[0]), float(t[-1]), cw), "mark")])
    L.append([])
    L.append([("Timeline", "head")])
    for t, text in timeline(d):
        phase = next((p for p in PHASES if text.startswith(p)), None)
        L.append([(f" {fmt_t(t):>7}  ", "dim"), (text, "mark" if phase else "")])
    helped = [x for x in d["actions"] if x["effect"] == "helped"]
    if helped:
        L.append([])
        L.append([("What helped", "head")])
        for x in helped:
            L.append([(f" {fmt_t(x['t']):>7}  ", "dim"), (x["line"], "key"),
                      (f"  {helped_text(x)}", "ok")])
    if outcome:
        L.append([])
        L += [[(line, "dim")] for line in outcome.splitlines() if line.startswith(
            ("recording:", "report:", "replay:", "written:", "no recording"))]
    return L


class DebriefBody(Static):
    """The debrief's lines, coloured through debrief--* component classes."""

    COMPONENT_CLASSES = {f"debrief--{lvl}" for lvl in LEVELS}

    def show(self, lines: list[Line]) -> None:
        styles = {lvl: self.get_component_rich_style(f"debrief--{lvl}") for lvl in LEVELS}
        self.update(level_lines(lines, styles))


class DebriefScreen(ModalScreen[None]):
    """After the drill: the score, the objectives, the charts with the phases marked, and the
    scored timeline (scrolls)."""

    CSS_PATH = "debrief.tcss"
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, result: Any, outcome: str = "") -> None:
        super().__init__()
        self.result = result
        self.outcome = outcome

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="debrief-box") as box:
            box.border_title = "Debrief — esc to close"
            yield DebriefBody(id="debrief-body")

    def on_mount(self) -> None:
        width = max(60, min(self.app.size.width - 8, 140))
        self.query_one(DebriefBody).show(debrief_lines(self.result, width - 6, self.outcome))

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)
