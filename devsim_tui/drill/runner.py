"""Running a drill: a session (engine + drill controller + recorder) behind the World interface,
a scripted responder, the headless loop, and replay.

`DrillSession` is what a control room (or a remote seat) drives: `submit`/`submit_line` record
each command with the tick it applies at before handing it to the engine, `advance` runs ticks
and records them, `drill.state()` feeds a drill panel. The headless loop (`run_headless`) adds
wall-clock pacing and a scripted responder. Never imports the UI.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devsim_tui.config.durations import parse_duration
from devsim_tui.config.yamlsrc import load_list
from devsim_tui.drill import conditions
from devsim_tui.drill.controller import DrillController, attach
from devsim_tui.drill.recording import METRICS, Recording, event_dict, normal
from devsim_tui.drill.schema import LoadedScenario, parse_scenario
from devsim_tui.drill.session import RecordedSession
from devsim_tui.drill.views import is_secret, participant_refusal
from devsim_tui.errors import UserError
from devsim_tui.sim.events import Event
from devsim_tui.sim import commands as C

# --------------------------------------------------------------------------- session


class DrillSession(RecordedSession):
    """One drill run: a recorded session with the drill controller attached. A World, so a
    control room can host it as its world."""

    def __init__(self, loaded: LoadedScenario, seed: int | None = None,
                 record: str | os.PathLike[str] | None = None, profile=None):
        self.loaded = loaded
        profile = profile if profile is not None else loaded.load_profile()
        super().__init__(profile, seed if seed is not None else loaded.scenario.seed, record,
                         source="drill")

    def _setup(self) -> None:
        self.drill: DrillController = attach(self.engine, self.loaded)
        self._get = conditions.engine_getter(self.engine, self.drill)

    def _header(self) -> dict[str, Any]:
        loaded, s = self.loaded, self.loaded.scenario
        return {"scenario": {"path": loaded.path, "name": loaded.name, "text": loaded.text},
                "objectives": [o.id for o in s.objectives], "warmup": s.warmup,
                "metrics": list(METRICS)}

    def metrics(self) -> list[float | None]:
        return [self._get(name, None) for name in METRICS]

    def condition_bits(self) -> str:
        return self.drill.condition_bits()

    @property
    def finished(self) -> bool:
        return self.drill.ended

    @property
    def end_reason(self) -> str | None:
        return self.drill.end_reason

    @property
    def start_t(self) -> float:
        return self.drill.start_t

    def participant_refusal(self, cmd: C.Command) -> str | None:
        """Why a participant may not send `cmd` here (an MQTT host asks before submitting)."""
        return participant_refusal(cmd)

    def hidden_event(self, ev: Event) -> bool:
        """Whether participants must not see `ev` (an MQTT host marks such events for seats)."""
        return is_secret(ev, self.drill.hidden_seqs)


# --------------------------------------------------------------------------- responder


class ResponderStep(BaseModel):
    """One scripted action: at a drill time, on a condition, or both (then after a delay)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at: float | None = Field(None, description="drill time; with `when`, the earliest time")
    when: str | None = Field(None, description="condition the responder reacts to")
    delay: float = Field(0.0, description="reaction time after `at`/`when` is satisfied")
    line: str | None = Field(None, description="a command line: 'ack-alert all'")
    command: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    by: str | None = Field(None, description="the role acting (for the report)")

    @field_validator("at", "delay", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @field_validator("when")
    @classmethod
    def _when(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                conditions.parse(v)
            except conditions.ConditionError as exc:
                raise ValueError(f"condition: {exc}") from None
        return v

    @model_validator(mode="after")
    def _one(self) -> ResponderStep:
        if (self.line is None) == (self.command is None):
            raise ValueError("give either line or command (with args)")
        if self.at is None and self.when is None:
            raise ValueError("give at, when, or both")
        try:
            self.build()
        except C.CommandError as exc:
            raise ValueError(str(exc)) from None
        return self

    def build(self) -> C.Command:
        return C.parse_line(self.line) if self.line is not None else C.build(self.command,
                                                                            self.args)


class ResponderFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: list[ResponderStep]


def load_responder(path: str | os.PathLike[str]) -> list[ResponderStep]:
    """A responder script: a YAML list of steps (or `steps:`), FILE:LINE errors, exit 2."""
    return load_list(path, ResponderFile, "steps")


class Responder:
    """Plays a script against a session: each step once, in drill time."""

    def __init__(self, steps: Iterable[ResponderStep], session: DrillSession):
        self.session = session
        self.steps = list(steps)
        self.trackers = [conditions.Tracker(conditions.parse(s.when)) if s.when else None
                         for s in self.steps]
        self.ready_at: list[float | None] = [None] * len(self.steps)  # when it will act
        self.done = [False] * len(self.steps)
        self._get = conditions.engine_getter(session.engine, session.drill)

    def observe(self) -> None:
        """After a tick: note which steps' triggers are now satisfied."""
        d = self.session.drill
        if not d.started:
            return
        t = d.drill_t
        half = self.session.engine.dt / 2
        for k, s in enumerate(self.steps):
            if self.done[k] or self.ready_at[k] is not None:
                continue
            if s.at is not None and t + half < s.at:
                continue
            tr = self.trackers[k]
            if tr is not None and not tr.update(t, self._get):
                continue
            self.ready_at[k] = t + s.delay

    def act(self) -> int:
        """Before a tick: submit every step whose time has come; returns how many."""
        d = self.session.drill
        if not d.started:
            return 0
        t = d.drill_t
        half = self.session.engine.dt / 2
        n = 0
        for k, s in enumerate(self.steps):
            at = self.ready_at[k]
            if not self.done[k] and at is not None and at <= t + half:
                self.done[k] = True
                self.session.submit(s.build(), s.by)
                n += 1
        return n

    def next_step(self) -> int | None:
        """The first step not yet taken (a paused headless run takes it at once)."""
        return next((k for k in range(len(self.steps)) if not self.done[k]), None)

    def force(self, k: int) -> None:
        self.done[k] = True
        s = self.steps[k]
        self.session.submit(s.build(), s.by)


# --------------------------------------------------------------------------- headless


#: End reasons that come from outside the drill (the runner), not from the recorded ticks.
PAUSED_FOREVER = "paused with nothing left to resume it"
EXTERNAL_ENDS = (PAUSED_FOREVER, "stopped", "interrupted")


def run_headless(session: DrillSession, responder: Responder | None = None,
                 speed: float | str = "max",
                 progress: Callable[[DrillSession], None] | None = None) -> str:
    """Run to the drill's end; returns the end reason.

    Wall-clock pacing follows `speed` (simulated seconds per wall second). A facilitator pause
    holds the clock; with no one at a keyboard, the script's next step is taken at once (usually
    `pause false`), and a pause nothing in the script can lift ends the run.
    """
    e = session.engine
    e.speed = speed
    # Pacing is anchored at the last speed change (a facilitator's set-speed), so it paces from
    # then on instead of catching up against the old speed.
    anchor_sp, anchor_t, anchor_wall = e.speed, e.t, time.monotonic()
    try:
        while not session.finished:
            if responder is not None:
                responder.act()
            while e.paused and not session.finished:
                k = responder.next_step() if responder is not None else None
                if k is None:
                    session.drill._end(PAUSED_FOREVER)
                    break
                responder.force(k)
            if session.finished:
                break
            session.step()
            if responder is not None:
                responder.observe()
            if progress is not None and (e.tick & 63) == 0:
                progress(session)
            if e.speed != anchor_sp:
                anchor_sp, anchor_t, anchor_wall = e.speed, e.t, time.monotonic()
            if e.speed != "max":
                ahead = (e.t - anchor_t) / float(e.speed) - (time.monotonic() - anchor_wall)
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        session.close()
    return session.drill.end_reason or "stopped"


# --------------------------------------------------------------------------- replay


class ReplayResult:
    def __init__(self, ticks: int, mismatch: str | None, recording: Recording,
                 session: RecordedSession):
        self.ticks, self.mismatch, self.recording, self.session = (ticks, mismatch, recording,
                                                                    session)

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def session_from_recording(rec: Recording) -> RecordedSession:
    """A new session with the recording's inputs (a drill's, or a plain session's), unrecorded."""
    from pydantic import ValidationError

    from devsim_tui.config.schema import Profile

    head = rec.header
    try:
        profile = Profile.model_validate(head["profile"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise UserError(f"{rec.path}:1: the recorded profile is not valid here ({where}: "
                        f"{first.get('msg')}); was it written by another devsim-tui version?"
                        ) from None
    if not rec.is_drill:
        return RecordedSession(profile, head["seed"], source=rec.source, keep=False)
    sc = head["scenario"]
    loaded = parse_scenario(sc["text"], sc["path"], check_profile=False)
    return DrillSession(loaded, seed=head["seed"], profile=profile)


def replay(rec: Recording) -> ReplayResult:
    """Re-run a recording's inputs and compare every event with the recorded ones."""
    session = session_from_recording(rec)
    e = session.engine
    got = normal([event_dict(ev) for ev in e.last_events])
    want = rec.header.get("init_events", [])
    if got != want:
        return ReplayResult(0, _diff("start", want, got), rec, session)
    for tk in rec.ticks:
        for c in tk.get("c", ()):
            if c["n"] != tk["n"]:
                return ReplayResult(e.tick, f"tick {tk['n']}: a command is marked for tick "
                                    f"{c['n']}", rec, session)
            session.apply(c)
        events = normal([event_dict(ev) for ev in session.step()])
        want = tk.get("e", [])
        if events != want or e.tick != tk["n"]:
            return ReplayResult(e.tick, _diff(f"tick {tk['n']} (t={tk['t']:g}s)", want, events),
                                rec, session)
    external = rec.end is not None and rec.end["reason"] in EXTERNAL_ENDS
    if rec.is_drill and rec.end is not None and not external \
            and session.end_reason != rec.end["reason"]:
        return ReplayResult(e.tick, f"the drill ended for {session.end_reason!r}, the "
                            f"recording for {rec.end['reason']!r}", rec, session)
    return ReplayResult(e.tick, None, rec, session)


def _diff(where: str, want: list, got: list) -> str:
    for k in range(max(len(want), len(got))):
        a = want[k] if k < len(want) else None
        b = got[k] if k < len(got) else None
        if a != b:
            return f"{where}: event {k}: recorded {a!r}, replayed {b!r}"
    return f"{where}: differs"
