"""The drill inside the engine: an extension controller that fires injects, reveals hints,
judges objectives and applies the facilitator's and participants' drill commands.

It is attached to one engine (`attach`), not registered for every engine, and acts only through
the engine's own command dispatcher, events and alert engine, so everything a drill does is in
the event log (and therefore in a recording) and is as deterministic as the engine: it draws no
random numbers and reads no clock.

Timing: an inject due at drill time T is applied at the end of the tick that ends at T, with the
engine's clock at T, exactly like a command queued for the next tick boundary (which is stamped
with the same time); it is applied synchronously so the drill knows which faults it created.
Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devsim_tui.drill import conditions
from devsim_tui.drill.schema import Inject, LoadedScenario, Objective
from devsim_tui.sim import commands as C
from devsim_tui.sim import extensions

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

#: Alerts the drill raises itself (decoys) carry this source; scoring never counts them as
#: detection.
DECOY_SOURCE = "drill"


def event_dict_of(ev: Any) -> dict[str, Any]:
    return {"type": ev.type, "t": ev.t, "data": ev.data}


def is_detection(ev: dict[str, Any], signals: set[str] | frozenset[str]) -> bool:
    """Whether an event is one of the signals the incident's injects declare: a (non-decoy)
    alert among them, a detector finding (or an open episode taking in new signals) if
    `finding` is, an event whose type `event:TYPE` names. An unrelated alert is not
    detection."""
    data = ev.get("data") or {}
    if ev["type"] == "alert.firing":
        return data.get("source") != DECOY_SOURCE and data.get("alert") in signals
    if ev["type"] in ("detector.finding", "detector.episode_grew"):
        return "finding" in signals
    return f"event:{ev['type']}" in signals


def acked_alert(ev: dict[str, Any]) -> str | None:
    """The alert a responder acknowledged by name (`ack-alert NAME`, not `all`): they called it
    related to the incident, so its firing counts as detection."""
    data = ev.get("data") or {}
    if ev["type"] != "command.applied" or data.get("command") != "ack-alert":
        return None
    name = (data.get("args") or {}).get("alert")
    return None if name in (None, "all") else str(name)


@dataclass
class InjectState:
    spec: Inject
    status: str = "pending"  # pending | fired | skipped
    fired_t: float | None = None
    fault_ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tracker: conditions.Tracker | None = None


@dataclass
class ObjectiveState:
    spec: Objective
    tracker: conditions.Tracker | None
    status: str = "pending"  # pending | met | failed
    met_t: float | None = None  # when it counted as met (after its `for` hold)
    since_t: float | None = None  # when the condition started holding (the restoration time)
    failed_t: float | None = None
    armed: bool = False
    breached: bool = False  # its expression has been false since it was armed


class DrillController:
    """One drill in one engine. `state()` is what a drill panel shows (see docs/drills.md)."""
    state_key = extensions.DRILL

    commands = (C.DeclareRootCause, C.Remedy, C.DrillHint, C.InjectNext, C.SkipInject,
                C.EndDrill)

    def __init__(self, engine: Engine, loaded: LoadedScenario):
        self.engine = engine
        self.loaded = loaded
        s = self.scenario = loaded.scenario
        self.start_t = s.warmup
        self.started = False
        self.ended = False
        self.end_reason: str | None = None
        self.end_t: float | None = None
        self.injects = [InjectState(i, tracker=conditions.Tracker(conditions.parse(i.when))
                                    if i.when else None) for i in s.injects]
        self.hint_trackers = {h.id: conditions.Tracker(conditions.parse(h.when))
                              for h in s.hints if h.when}
        self.revealed: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.objectives = [ObjectiveState(o, conditions.Tracker(conditions.parse(o.condition))
                                          if o.condition else None) for o in s.objectives]
        self.root_cause_found_at: float | None = None
        self.declarations: list[dict[str, Any]] = []
        self.remedies_applied: list[dict[str, Any]] = []
        self.decoys: dict[str, float] = {}  # decoy alert name -> drill time it stops
        self.detected_at: float | None = None
        self.acked_at: float | None = None
        self._firing: dict[str, float] = {}  # alert name -> when it fired in the incident
        # Event seq ranges emitted while the drill applied inject commands (chaos.injected,
        # command.applied...): a participant view hides them, a facilitator view shows them.
        self.hidden_seqs: list[tuple[int, int]] = []
        self._seen_seq = engine.events.last_seq
        self.agg = engine.agg  # the aggregates conditions read (this tick's, in after_tick)
        self._get = conditions.engine_getter(engine, self)
        first = s.first_incident()
        self.first_incident_id = first.id if first is not None else None

    # ------------------------------------------------------------------ helpers

    @property
    def drill_t(self) -> float:
        return self.engine.t - self.start_t

    def injected_faults(self) -> list[str]:
        """The ids of every fault an inject started (the facilitator's secret)."""
        return [f for i in self.injects for f in i.fault_ids]

    def fault_ids(self, inject_id: str) -> list[str]:
        st = self._inject(inject_id)
        return st.fault_ids if st is not None else []

    def _inject(self, ident: str) -> InjectState | None:
        return next((i for i in self.injects if i.spec.id == ident), None)

    def _emit(self, type_: str, msg: str, severity: str = "info", **data: Any) -> None:
        self.engine.emit(self.engine.t, type_, msg, severity, None,
                         drill_t=round(self.drill_t, 6), **data)

    # ------------------------------------------------------------------ commands

    def apply(self, cmd: C.Command) -> str | None:
        if not self.started:
            return f"the drill starts after its {self.start_t:g}s warm-up"
        if self.ended:
            return "the drill has ended"
        if isinstance(cmd, C.DeclareRootCause):
            return self._declare(cmd.text)
        if isinstance(cmd, C.Remedy):
            return self._remedy(cmd.name_)
        if isinstance(cmd, C.DrillHint):
            return self._reveal_next(cmd.id, "requested")
        if isinstance(cmd, (C.InjectNext, C.SkipInject)):
            pending = [i for i in self.injects if i.status == "pending"]
            if cmd.id is not None:
                pending = [i for i in pending if i.spec.id == cmd.id]
                if not pending:
                    return f"no pending inject '{cmd.id}'"
            if not pending:
                return "no pending inject"
            st = pending[0]
            if isinstance(cmd, C.InjectNext):
                self._fire(st, "facilitator")
            else:
                st.status = "skipped"
                self._emit("drill.inject.skipped", f"inject {st.spec.id} skipped", id=st.spec.id)
            return None
        assert isinstance(cmd, C.EndDrill)
        self._end("facilitator")
        return None

    def _declare(self, text: str) -> str | None:
        correct = self.scenario.root_cause.judge(text)
        self.declarations.append({"t": self.drill_t, "text": text, "correct": correct})
        if correct and self.root_cause_found_at is None:
            self.root_cause_found_at = self.drill_t
        verdict = "names the cause" if correct else "does not name the cause"
        self._emit("drill.root_cause." + ("correct" if correct else "incorrect"),
                   f"root cause declared: {text!r} ({verdict})", "info", text=text,
                   correct=correct)
        return None

    def _remedy(self, name: str) -> str | None:
        remedy = self.scenario.remedies.get(name)
        if remedy is None:
            known = ", ".join(self.scenario.remedies) or "none in this drill"
            return f"no remedy '{name}' (remedies: {known})"
        chaos = self.engine.controller(extensions.CHAOS)
        active = {f.id for f in chaos.active} if chaos is not None else set()
        stopped = [fid for ref in remedy.stops for fid in self.fault_ids(ref) if fid in active]
        self._emit("drill.remedy", f"remedy {name}: {remedy.summary}", "info", remedy=name,
                   stops=stopped)
        for fid in stopped:
            self._run_line(f"chaos-stop {fid}")
        for line in remedy.do:
            self._run_line(line)
        self.remedies_applied.append({"t": self.drill_t, "name": name, "stopped": stopped})
        return None

    def _run_line(self, line: str) -> str | None:
        """Apply an engine command now; returns its rejection, if any."""
        # Applied now (not `submit`, which would apply it a tick later): the drill is part of
        # the world's timeline, see the module docstring.
        events = self.engine.apply_now(C.parse_line(line))
        if events:
            self.hidden_seqs.append((events[0].seq, events[-1].seq))
        rejected = [e for e in events if e.type == "command.rejected"]
        return rejected[-1].message if rejected else None

    # ------------------------------------------------------------------ injects and hints

    def _fire(self, st: InjectState, how: str) -> None:
        e = self.engine
        spec = st.spec
        st.status, st.fired_t = "fired", self.drill_t
        self._emit("drill.inject", f"inject {spec.id} ({how})", "info", id=spec.id, how=how,
                   incident=spec.is_incident, commands=list(spec.do),
                   says=spec.message.text if spec.message else None,
                   decoy=spec.alert.name if spec.alert else None)
        for line in spec.do:
            before = e.events.last_seq
            error = self._run_line(line)
            st.fault_ids += [ev.data["id"] for ev in e.events.since(before)
                             if ev.type == "chaos.injected"]
            if error:
                st.errors.append(error)
                self._emit("drill.inject.failed", f"inject {spec.id}: {error}", "error",
                           id=spec.id, line=line)
        if spec.message is not None:
            msg = {"t": self.drill_t, "source": spec.message.source, "text": spec.message.text,
                   "inject": spec.id}
            self.messages.append(msg)
            self._emit("drill.message", f"{spec.message.source}: {spec.message.text}",
                       "warning", source=spec.message.source, text=spec.message.text)
        if spec.alert is not None:
            a = spec.alert
            e.alerts.raise_external(e.t, DECOY_SOURCE, a.name, {}, True, severity=a.severity,
                                    summary=a.summary or a.name)
            self.decoys[a.name] = self.drill_t + a.duration

    def _due(self, st: InjectState, half_tick: float) -> bool:
        spec = st.spec
        base = 0.0
        if spec.after is not None:
            dep = self._inject(spec.after)
            if dep is None or dep.status != "fired":
                return False
            base = dep.fired_t
        if spec.at is not None and self.drill_t + half_tick < base + spec.at:
            return False
        if st.tracker is not None:
            return st.tracker.update(self.drill_t, self._get)
        if spec.at is None and spec.after is None:
            return False  # facilitator-only: fired by inject-next
        return True

    def _reveal_next(self, ident: str | None, how: str) -> str | None:
        done = {h["id"] for h in self.revealed}
        left = [h for h in self.scenario.hints if h.id not in done]
        if ident is not None:
            left = [h for h in left if h.id == ident]
            if not left:
                return f"no unrevealed hint '{ident}'"
        if not left:
            return "no hints left"
        h = left[0]
        self.revealed.append({"id": h.id, "t": self.drill_t, "text": h.text, "how": how})
        self._emit("drill.hint", f"hint: {h.text}", "info", id=h.id, how=how, text=h.text)
        return None

    # ------------------------------------------------------------------ tick

    def before_tick(self, t: float) -> None:
        """Nothing acts before the world moves: injects and judgements follow the aggregates."""

    def after_tick(self, t: float, agg: Aggregates) -> None:
        self.agg = agg
        if self.ended:
            return
        if not self.started:
            if self.drill_t < -1e-9:
                return
            self.started = True
            s = self.scenario
            self._emit("drill.started", f"drill '{s.title}' started ({s.difficulty}, "
                       f"{len(s.injects)} injects, {len(s.objectives)} objectives)", "info",
                       scenario=self.loaded.name)
        self._watch_events()
        half = self.engine.dt / 2
        for st in self.injects:
            if st.status == "pending" and self._due(st, half):
                self._fire(st, "scheduled")
        self._auto_hints(half)
        self._decoys()
        self._judge()
        if self.drill_t + half >= self.scenario.duration:
            self._end("time")
        elif self.scenario.end_on_success and self._all_achieved():
            self._end("objectives met")

    def _watch_events(self) -> None:
        """Detection and acknowledgement as they happen (for the panel; the report recomputes
        them from the recording with the same rule, `is_detection`)."""
        events = self.engine.events.since(self._seen_seq)
        if events:
            self._seen_seq = events[-1].seq
        first = self._inject(self.first_incident_id) if self.first_incident_id else None
        if first is None or first.fired_t is None:
            return
        t0 = first.fired_t + self.start_t
        signals = self.incident_signals()
        for ev in events:
            if ev.type == "alert.firing" and ev.t >= t0 - 1e-9 \
                    and ev.data.get("source") != DECOY_SOURCE:
                for key in (ev.data.get("alert"), ev.data.get("id")):
                    self._firing.setdefault(str(key), ev.t)
            if ev.t < t0 - 1e-9:
                continue
            when = None
            if is_detection(event_dict_of(ev), signals):
                when = ev.t
            else:
                related = acked_alert(event_dict_of(ev))
                if related is not None and related in self._firing:
                    when = self._firing[related]  # the responder called it related
            if when is not None and (self.detected_at is None
                                     or when - self.start_t < self.detected_at):
                self.detected_at = when - self.start_t
            if (self.acked_at is None and self.detected_at is not None
                    and ev.type == "command.applied" and ev.data.get("command") == "ack-alert"):
                self.acked_at = ev.t - self.start_t

    def incident_signals(self) -> set[str]:
        """The signals of the incident injects that have fired (the ground truth of detection)."""
        return {x for i in self.injects if i.status == "fired" and i.spec.is_incident
                for x in i.spec.signals}

    def _auto_hints(self, half: float) -> None:
        done = {h["id"] for h in self.revealed}
        for h in self.scenario.hints:
            if h.id in done:
                continue
            due = h.at is not None and self.drill_t + half >= h.at
            tr = self.hint_trackers.get(h.id)
            if tr is not None:
                true = tr.update(self.drill_t, self._get)
                due = true if h.at is None else (due and true)
            if due:
                self._reveal_next(h.id, "scheduled")

    def _decoys(self) -> None:
        e = self.engine
        for name, until in list(self.decoys.items()):
            if self.drill_t + e.dt / 2 >= until:
                e.alerts.raise_external(e.t, DECOY_SOURCE, name, {}, False)
                del self.decoys[name]

    def _armed(self, o: Objective) -> bool:
        ref = o.after or (self.first_incident_id if o.kind == "achieve" else None)
        if ref is None:
            return True
        st = self._inject(ref)
        return st is not None and st.status == "fired"

    def _judge(self) -> None:
        dt = self.drill_t
        for ob in self.objectives:
            if ob.status != "pending":
                continue
            o = ob.spec
            if not ob.armed:
                ob.armed = self._armed(o)
                if not ob.armed:
                    continue
            if o.root_cause:
                if self.root_cause_found_at is not None:
                    ob.since_t = ob.met_t = self.root_cause_found_at
                    self._met(ob)
            elif o.kind == "maintain":
                if not ob.tracker.update(dt, self._get):
                    ob.status, ob.failed_t = "failed", dt
                    self._emit("drill.objective.failed", f"objective failed: {o.title}",
                               "warning", id=o.id, reason="no longer holds")
                    continue
            else:
                holds = ob.tracker.update(dt, self._get)
                # "Restored" needs a breach first: a condition that has not yet broken after
                # the inject (a slow leak, a lagging replica) is not met by the calm before it.
                ob.breached = ob.breached or not ob.tracker.now
                if holds and ob.breached:
                    ob.since_t, ob.met_t = ob.tracker.since, dt
                    self._met(ob)
            if ob.status == "pending" and o.deadline is not None and dt + 1e-9 >= o.deadline:
                ob.status, ob.failed_t = "failed", dt
                self._emit("drill.objective.failed", f"objective failed: {o.title}", "warning",
                           id=o.id, reason="deadline passed")

    def _met(self, ob: ObjectiveState) -> None:
        ob.status = "met"
        self._emit("drill.objective.met", f"objective met: {ob.spec.title}", "info",
                   id=ob.spec.id, since=round(ob.since_t, 6), met=round(ob.met_t, 6),
                   stage=ob.spec.effective_stage)

    def _all_achieved(self) -> bool:
        achieve = [ob for ob in self.objectives if ob.spec.kind == "achieve"]
        return bool(achieve) and all(ob.status != "pending" for ob in achieve)

    def _end(self, reason: str) -> None:
        dt = self.drill_t
        for ob in self.objectives:
            # A maintain objective that never broke is met at the end; so is an achieve one
            # whose condition never broke at all (the team prevented the impact).
            o = ob.spec
            never_broke = (o.kind == "achieve" and not o.root_cause and not ob.breached
                           and ob.tracker.now)
            if ob.status == "pending" and ob.armed and (o.kind == "maintain" or never_broke):
                ob.status, ob.met_t = "met", dt
                ob.since_t = 0.0 if o.kind == "maintain" else ob.tracker.since
                self._emit("drill.objective.met", f"objective met: {o.title}", "info",
                           id=o.id, since=round(ob.since_t, 6), met=round(dt, 6),
                           stage=o.effective_stage, at_end=True)
        self.ended, self.end_reason, self.end_t = True, reason, dt
        met = sum(1 for ob in self.objectives if ob.status == "met")
        self._emit("drill.ended", f"drill ended ({reason}): {met}/{len(self.objectives)} "
                   "objectives met", "info", reason=reason, met=met,
                   objectives=len(self.objectives))

    def condition_bits(self) -> str:
        """One character per objective: 1 while its expression is true now (recorded per tick,
        so the report can tell which actions were followed by recovery)."""
        out = []
        for ob in self.objectives:
            if ob.spec.root_cause:
                out.append("1" if self.root_cause_found_at is not None else "0")
            else:
                out.append("1" if ob.tracker.now else "0")
        return "".join(out)

    # ------------------------------------------------------------------ view

    def state(self) -> dict:
        """JSON-able: the clock, objectives with live state, messages, revealed hints."""
        s = self.scenario
        return {
            "scenario": self.loaded.name, "title": s.title, "difficulty": s.difficulty,
            # The participants' brief (drill.brief): the situation and who is who.
            "situation": " ".join(s.summary.split()),
            "roles": [{"name": r.name, "duties": r.duties} for r in s.roles],
            "started": self.started, "ended": self.ended, "end_reason": self.end_reason,
            "drill_t": self.drill_t,  # negative during the warm-up
            "warming_up": not self.started,
            "duration": s.duration, "remaining": max(s.duration - self.drill_t, 0.0),
            "objectives": [{
                "id": ob.spec.id, "title": ob.spec.title, "kind": ob.spec.kind,
                "stage": ob.spec.effective_stage, "status": ob.status, "armed": ob.armed,
                "holding": (ob.tracker.now if ob.tracker is not None
                            else self.root_cause_found_at is not None),
                "holding_for": (self.drill_t - ob.tracker.since
                                if ob.tracker is not None and ob.tracker.since is not None
                                else 0.0),
                "met_t": ob.met_t, "failed_t": ob.failed_t,
            } for ob in self.objectives],
            "messages": list(self.messages),
            "hints": {"revealed": list(self.revealed),
                      "left": len(s.hints) - len(self.revealed)},
            "injects": {"fired": sum(1 for i in self.injects if i.status == "fired"),
                        "pending": sum(1 for i in self.injects if i.status == "pending"),
                        "total": len(self.injects)},
            "root_cause": {"found_at": self.root_cause_found_at,
                           "declarations": list(self.declarations)},
            "remedies": [{"name": k, "summary": r.summary} for k, r in s.remedies.items()],
            "detected_at": self.detected_at, "acknowledged_at": self.acked_at,
            # What a participant's screen leaves out (drill.views): the events the injects
            # caused and the faults they started. Opaque: seq ranges and fault ids.
            "hidden": {"seqs": [list(r) for r in self.hidden_seqs],
                       "faults": self.injected_faults()},
        }

    def facilitator_state(self) -> dict:
        """Everything in `state()` plus what participants must not see."""
        out = self.state()
        out["notes"] = self.scenario.facilitator_notes
        out["root_cause"]["summary"] = self.scenario.root_cause.summary
        out["headline"] = self.scenario.headline
        out["injects"]["list"] = [{"id": i.spec.id, "status": i.status, "fired_t": i.fired_t,
                                   "faults": list(i.fault_ids), "errors": list(i.errors),
                                   "note": i.spec.note} for i in self.injects]
        out["hidden_seqs"] = list(self.hidden_seqs)
        return out


def attach(engine: Engine, loaded: LoadedScenario) -> DrillController:
    """Add a drill controller to a freshly built engine (last, so it sees every other
    controller's effects of the tick). Controllers are normally built from the global factory
    list; a drill belongs to one engine only, so it joins this engine's list directly."""
    ctl = DrillController(engine, loaded)
    engine.attach(ctl)
    return ctl


def fmt_t(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    s = int(round(seconds))
    sign = "-" if s < 0 else ""
    s = abs(s)
    return f"{sign}{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 \
        else f"{sign}{s // 60:02d}:{s % 60:02d}"
