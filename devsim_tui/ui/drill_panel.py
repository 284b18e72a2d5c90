"""A drill hosted in the control room: the drill panel, the participant/facilitator views of the
world, and the app that adds the drill's keys and commands (`devsim-tui drill run` on a screen).

The panel reads only the drill's published state (`world.drill_state()`: `DrillController.state()`
for participants, `facilitator_state()` for the facilitator, see docs/drills.md) and draws it
through a pure function (`drill_lines`). What participants must not see (the notes, the true
cause, the inject list, the events the drill's own injects produced, and whether a root-cause
declaration is right before the drill ends) is removed in `DrillWorld`, before any pane gets it,
so no pane can leak it by accident. This module never touches the engine's internals.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from devsim_tui import access
from devsim_tui.drill.views import participant_events, participant_snapshot
from devsim_tui.sim import commands as C
from devsim_tui.sim.events import Event
from devsim_tui.ui.app import ControlRoomApp, create_app
from devsim_tui.ui.debrief import DebriefScreen
from devsim_tui.ui.help import HelpScreen
from devsim_tui.ui.panes import PaneSpec
from devsim_tui.ui.renderables import level_lines

#: App actions only a facilitator may take (hidden from the footer and help otherwise).
FACILITATOR_ACTIONS = frozenset({"drill_hint", "drill_inject_next", "drill_skip_inject",
                                 "drill_end", "toggle_pause", "faster", "slower", "step"})
DRILL_BINDINGS = [
    Binding("h", "drill_hint", "Hint"),
    Binding("n", "drill_inject_next", "Inject next"),
    Binding("k", "drill_skip_inject", "Skip inject"),
    Binding("E", "drill_end", "End drill"),
]
STATUS_MARK = {"met": ("✓", "ok"), "failed": ("✗", "bad"), "pending": ("○", "dim")}


def fmt_clock(seconds: float | None) -> str:
    """Drill time as [-]MM:SS (or H:MM:SS); '-' when unknown."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    sign, s = ("-" if s < 0 else ""), abs(s)
    if s >= 3600:
        return f"{sign}{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{sign}{s // 60:02d}:{s % 60:02d}"


# ---------------------------------------------------------------------- the world, per role


class DrillWorld:
    """A `DrillSession` as one seat sees it: commands are attributed to the seat's role, and a
    participant's events and drill state have the facilitator-only parts removed."""

    def __init__(self, session: Any, facilitator: bool = False) -> None:
        self.session = session
        self.facilitator = facilitator
        self.role = "facilitator" if facilitator else "participant"
        self.profile = session.profile
        self._view: tuple[Any, Any] | None = None  # (session snapshot, participant's copy)

    def snapshot(self):
        snap = self.session.snapshot()
        if self.facilitator:
            return snap
        if self._view is None or self._view[0] is not snap:  # one filtered copy per snapshot
            drill = self.session.drill
            self._view = (snap, participant_snapshot(snap, drill.injected_faults(),
                                                     drill.hidden_seqs))
        return self._view[1]

    def submit(self, command: C.Command) -> None:
        self.session.submit(command, by=self.role)

    def submit_line(self, line: str) -> None:
        self.session.submit_line(line, by=self.role)

    def events_since(self, seq: int) -> list[Event]:
        events = self.session.events_since(seq)
        return events if self.facilitator else participant_events(
            events, self.session.drill.hidden_seqs, self.session.finished)

    def series(self, name: str, n: int):
        return self.session.series(name, n)

    def component_history(self, name: str):
        return self.session.component_history(name)

    def advance(self, ticks: int = 1):
        return self.session.advance(ticks)

    @property
    def speed(self):
        return self.session.speed

    @property
    def paused(self) -> bool:
        return self.session.paused

    @property
    def finished(self) -> bool:
        return self.session.finished

    @property
    def tick(self) -> int:
        return self.session.tick

    def close(self, reason: str | None = None) -> None:
        self.session.close(reason)

    def prepare(self) -> None:
        self.session.prepare()

    def drill_state(self) -> dict[str, Any]:
        drill = self.session.drill
        return drill.facilitator_state() if self.facilitator else drill.state()


# ---------------------------------------------------------------------- pure drawing


def drill_lines(state: dict[str, Any], facilitator: bool) -> list[list[tuple[str, str]]]:
    """The panel as lines of (text, level); levels are the drill--* component classes."""
    lines: list[list[tuple[str, str]]] = []
    t, duration = state["drill_t"], state["duration"]
    head = [(f"{state['title']} ", "key"), (f"[{state['difficulty']}]  ", "dim")]
    if state["ended"]:
        head.append((f"ENDED at {fmt_clock(state['drill_t'])} ({state['end_reason']})", "warn"))
    elif state["warming_up"]:
        head.append((f"warm-up T{fmt_clock(t)}", "info"))
    else:
        head += [(f"T+{fmt_clock(t)}", "key"), (f" of {fmt_clock(duration)} · ", "dim"),
                 (f"{fmt_clock(state['remaining'])} left", "info")]
    lines.append(head)
    if state.get("situation"):
        # The participants' brief: the situation, never the cause (drill.brief).
        lines.append([("Brief", "head"), ("  the situation as the team knows it", "dim")])
        lines.append([(" " + state["situation"], "")])
        roles = state.get("roles") or []
        if roles:
            lines.append([(" roles: ", "dim"), (" · ".join(r["name"] for r in roles), "")])
    lines.append([("Objectives", "head")])
    for ob in state["objectives"]:
        mark, level = STATUS_MARK.get(ob["status"], ("?", "dim"))
        row = [(f" {mark} ", level), (ob["title"], "" if ob["armed"] else "dim")]
        if ob["status"] == "met":
            row.append((f"  met {fmt_clock(ob['met_t'])}", "ok"))
        elif ob["status"] == "failed":
            row.append((f"  failed {fmt_clock(ob['failed_t'])}", "bad"))
        elif not ob["armed"]:
            row.append(("  not armed yet", "dim"))
        elif ob["holding"]:
            row.append((f"  holding {fmt_clock(ob['holding_for'])}", "info"))
        else:
            row.append(("  not holding", "warn"))
        lines.append(row)
    detected, acked = state["detected_at"], state["acknowledged_at"]
    lines.append([("detected ", "dim"), (fmt_clock(detected), "key" if detected is not None
                                         else "dim"),
                  (" · acknowledged ", "dim"), (fmt_clock(acked), "key" if acked is not None
                                                else "dim")])
    if state["messages"]:
        lines.append([("Messages", "head")])
        for m in state["messages"]:
            lines.append([(f" {fmt_clock(m['t'])} ", "dim"), (f"{m['source']}: ", "warn"),
                          (m["text"], "")])
    hints = state["hints"]
    lines.append([("Hints", "head"), (f"  {len(hints['revealed'])} revealed · "
                                      f"{hints['left']} left", "dim")])
    for h in hints["revealed"]:
        lines.append([(f" {fmt_clock(h['t'])} ", "dim"), (h["text"], "info")])
    if state["remedies"]:
        lines.append([("Operator actions", "head"), ("  remedy NAME", "dim")])
        for r in state["remedies"]:
            lines.append([(f" {r['name']}", "key"), (f"  {r['summary']}", "dim")])
    rc = state["root_cause"]
    judged = state["ended"] or facilitator
    lines.append([("Root cause", "head"),
                  ("  declare-root-cause TEXT (your own words; judged at the end)", "dim")])
    for d in rc["declarations"]:
        row = [(f" {fmt_clock(d['t'])} ", "dim"), (repr(d["text"]), "")]
        if judged:
            row.append(("  correct", "ok") if d["correct"] else ("  wrong", "bad"))
        else:
            row.append(("  (judged at the end)", "dim"))
        lines.append(row)
    if judged and rc.get("summary"):
        lines.append([(" cause: ", "dim"), (rc["summary"], "fac")])
    if facilitator:
        lines += facilitator_lines(state)
    return lines


def facilitator_lines(state: dict[str, Any]) -> list[list[tuple[str, str]]]:
    inj = state["injects"]
    lines = [[("Facilitator", "head"), ("  hidden from participants", "dim")]]
    if state.get("notes"):
        lines.append([(" notes: ", "dim"), (" ".join(str(state["notes"]).split()), "fac")])
    if state.get("headline"):
        lines.append([(" headline alert: ", "dim"), (state["headline"], "fac")])
    lines.append([(" injects ", "dim"), (f"{inj['fired']} fired · {inj['pending']} pending · "
                                         f"{inj['total']} total", "")])
    for i in inj.get("list", ()):
        level = {"fired": "ok", "pending": "info", "skipped": "dim"}.get(i["status"], "")
        row = [(f"  [{i['id']}] ", "key"), (i["status"], level)]
        if i["fired_t"] is not None:
            row.append((f" {fmt_clock(i['fired_t'])}", "dim"))
        if i["faults"]:
            row.append((f" faults {', '.join(map(str, i['faults']))}", "dim"))
        if i["errors"]:
            row.append((f" errors: {'; '.join(i['errors'])}", "bad"))
        if i["note"]:
            row.append((f" — {i['note']}", "fac"))
        lines.append(row)
    return lines


# ---------------------------------------------------------------------- widgets


class DrillSummary(Static):
    """The drill's lines, coloured through drill--* component classes."""

    COMPONENT_CLASSES = {"drill--dim", "drill--key", "drill--head", "drill--ok", "drill--info",
                         "drill--warn", "drill--bad", "drill--fac"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: list | None = None

    def show(self, lines: list[list[tuple[str, str]]]) -> None:
        if lines == self._shown:
            return
        self._shown = lines
        st = self.get_component_rich_style
        styles: dict[str, Style] = {lvl: st(f"drill--{lvl}") for lvl in
                                    ("dim", "key", "head", "ok", "info", "warn", "bad", "fac")}
        self.update(level_lines(lines, styles))

    def restyle(self) -> None:
        self._shown = None


class DrillPanel(VerticalScroll):
    """The drill's clock, objectives, messages, hints, remedies and declarations (scrolls)."""

    ALLOW_MAXIMIZE = True  # `z` maximises its pane, as for the other panes' widgets

    def __init__(self, facilitator: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.facilitator = facilitator

    def compose(self) -> ComposeResult:
        yield DrillSummary(id="drill-summary")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _t: self.query_one(
            DrillSummary).restyle())

    def show(self, state: dict[str, Any]) -> str:
        """Update from the drill's state; returns the pane's subtitle."""
        self.query_one(DrillSummary).show(drill_lines(state, self.facilitator))
        met = sum(1 for o in state["objectives"] if o["status"] == "met")
        view = "facilitator" if self.facilitator else "participant"
        return f"{met}/{len(state['objectives'])} met · {view} view"


#: The drill pane (7): the drill's state as this seat may see it.
DRILL_PANE = PaneSpec("drill", "Drill", 7, "side",
                      lambda app: DrillPanel(app.facilitator, id="drill"), "#drill",
                      lambda app, _snap: app.query_one(DrillPanel).show(app.world.drill_state()))


# ---------------------------------------------------------------------- the app


class DrillControlRoom(ControlRoomApp):
    """The control room hosting a drill: a drill pane (7) and, for the facilitator, the keys
    that drive the drill. Participants act with the ordinary commands plus the drill's."""

    BINDINGS = ControlRoomApp.BINDINGS + DRILL_BINDINGS
    # The drill pane sits above the alerts, beside the metrics.
    PANE_SPECS = tuple(p for spec in ControlRoomApp.PANE_SPECS
                       for p in ((DRILL_PANE, spec) if spec.key == "alerts" else (spec,)))
    ROUTE_SCOPES = ("engine", "ui", "drill")
    HOSTS_DRILL = True

    def __init__(self, world: DrillWorld, *, record: str | None = None,
                 report: str | None = None, **kwargs) -> None:
        self.facilitator = world.facilitator  # before the panes are built (the drill's view)
        super().__init__(world, role="facilitator" if world.facilitator else "operator",
                         **kwargs)
        self.record_path = record
        self.report_prefix = report
        self.result = None  # the score, once the drill has ended
        self.outcome = ""  # what the end screen said (the CLI prints it too)

    # ------------------------------------------------------------------ layout

    def _draw_panes(self, snap) -> None:
        super()._draw_panes(snap)
        if self.world.finished and self.result is None:
            self._finish()

    def _drive(self) -> None:
        if self.world is not None and self.world.finished:
            self._drive_timer = None  # nothing left to run: no busy loop at `max`
            return
        super()._drive()

    def _finish(self) -> None:
        """Score the drill, write what was asked, and say where it went."""
        from devsim_tui.drill.report import summary_text, write_report
        from devsim_tui.drill.score import score_session

        session = self.world.session
        session.close()
        self.result = score_session(session)
        lines = [summary_text(self.result), ""]
        if self.record_path:
            lines.append(f"recording: {self.record_path} ({session.engine.tick} ticks)")
            lines.append(f"report:    devsim-tui drill report {self.record_path}")
            lines.append(f"replay:    devsim-tui replay {self.record_path}")
        else:
            lines.append("no recording kept (run with --record FILE to keep one)")
        if self.report_prefix:
            lines += [f"written:   {p}" for p in write_report(self.result, self.report_prefix)]
        self.outcome = "\n".join(lines)
        self.push_screen(DebriefScreen(self.result, self.outcome))

    # ------------------------------------------------------------------ who may do what
    # A participant is an operator (devsim_tui/access.py): the clock, the drill's steering,
    # the faults and the bad releases are the facilitator's; `may` refuses them.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed and not self.offers_action(action):
            return False  # not in the footer, and the key does nothing
        return allowed

    def offers_action(self, action: str) -> bool:
        return self.facilitator or action not in FACILITATOR_ACTIONS

    def offers(self, name: str) -> bool:
        return access.role_refusal(self.role, name) is None

    def refused_by_role(self, name: str, why: str) -> None:
        self.notify(f"{name}: only the facilitator may do that (drill run --facilitator)",
                    severity="error", title="facilitator only")

    def run_line(self, line: str) -> None:
        text = line.strip().lstrip(":").strip()
        name = text.split(None, 1)[0] if text else ""
        name = C.ALIASES.get(name, name)
        super().run_line(line)
        if name == C.DeclareRootCause.name and not self.observer:
            try:
                said = C.parse_line(text).text
            except C.CommandError:
                return  # refused, and said so
            self.notify(f"root cause declared: \u201c{said}\u201d (judged at the end)",
                        title="declared")

    # ------------------------------------------------------------------ drill keys

    def action_drill_hint(self) -> None:
        self.submit(C.DrillHint())

    def action_drill_inject_next(self) -> None:
        self.submit(C.InjectNext())

    def action_drill_skip_inject(self) -> None:
        self.submit(C.SkipInject())

    def action_drill_end(self) -> None:
        self.submit(C.EndDrill())

    # ------------------------------------------------------------------ help

    def action_help(self) -> None:
        from devsim_tui.ui.confirm import ConfirmScreen
        from devsim_tui.ui.servers import ServersTable

        def allowed(bindings: list[Binding]) -> list[Binding]:
            return [b for b in bindings if self.offers_action(b.action)]

        groups = [("global", allowed([b for b in self.BINDINGS if b not in DRILL_BINDINGS])),
                  ("drill", allowed(DRILL_BINDINGS)),
                  ("servers", list(ServersTable.BINDINGS)),
                  ("palette", [Binding("ctrl+p", "command_palette", "Command palette")]),
                  ("dialogs", list(ConfirmScreen.BINDINGS))]
        self.push_screen(HelpScreen(groups, self.router))


def create_drill_app(session: Any, *, facilitator: bool = False, record: str | None = None,
                     report: str | None = None, **options: Any) -> DrillControlRoom:
    """The control room on a drill session (the CLI's `drill run` and the tests)."""
    return create_app(DrillWorld(session, facilitator), app_class=DrillControlRoom,
                      app_options={"record": record, "report": report}, **options)
