"""A recording played back in the control room (`devsim-tui replay FILE`): a drill's (with its
drill pane, as the facilitator saw it) or a plain control-room session's.

Re-simulating a recording (seed, resolved profile, scenario, each command at its tick) is
deterministic, so the replay is a fresh engine fed the recorded commands; a seek rebuilds the
engine and fast-forwards to the target tick in a thread worker (about 2000 ticks a second, so a
30-minute drill takes about a second), which only posts messages; the screen keeps showing the
old position until the new one is ready. Read-only: the only commands are the replay's own
(pause, speed, step, seek); everything else is refused with a toast, like the observer mode.
"""

from __future__ import annotations

import bisect
from typing import Any, Callable

from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from devsim_tui.config.durations import parse_duration
from devsim_tui.drill.recording import Recording
from devsim_tui.sim import commands as C
from devsim_tui.ui.app import ControlRoomApp, create_app
from devsim_tui.ui.drill_panel import DrillControlRoom, fmt_clock
from devsim_tui.ui.events import EventLog
from devsim_tui.ui.header import HeaderBar

#: Engine commands that stay with the replay: its own clock, never the recorded engine's.
CLOCK = (C.Pause, C.SetSpeed)
SEEK_STEP_S = 60.0  # `[` / `]`
PROGRESS_EVERY = 200  # ticks between progress messages while seeking


def session_at(rec: Recording, tick: int, progress: Callable[[int], None] | None = None,
               cancelled: Callable[[], bool] = lambda: False):
    """A new session of the recording fast-forwarded to `tick` (None if cancelled)."""
    from devsim_tui.drill.runner import session_from_recording

    session = session_from_recording(rec)
    for tk in rec.ticks[:tick]:
        for c in tk.get("c", ()):
            session.apply(c)
        session.step()
        n = tk["n"]
        if n % PROGRESS_EVERY == 0:
            if cancelled():
                return None
            if progress is not None:
                progress(n)
    return session


class ReplayWorld:
    """A recording as a World: advancing feeds the recorded commands to a fresh engine; the
    pause and speed are the replay's own, so the engine sees only what was recorded."""

    facilitator = True  # a replay is a review: the whole drill is shown

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.session = session_at(rec, 0)
        self.profile = self.session.profile
        self.last_tick = rec.ticks[-1]["n"] if rec.ticks else 0
        self._times = [tk["t"] for tk in rec.ticks]
        self._speed: float | str = self.session.speed
        self._paused = False

    def snapshot(self):
        return self.session.snapshot()

    def submit(self, command: C.Command) -> None:
        if isinstance(command, C.Pause):
            self._paused = (not self._paused) if command.paused is None else command.paused
        elif isinstance(command, C.SetSpeed):
            self._speed = command.speed

    def submit_line(self, line: str) -> None:
        """Never reaches the recorded engine (the app refuses such lines first)."""

    def events_since(self, seq: int):
        return self.session.events_since(seq)

    def series(self, name: str, n: int):
        return self.session.series(name, n)

    def component_history(self, name: str):
        return self.session.component_history(name)

    def advance(self, ticks: int = 1):
        session = self.session
        for _ in range(ticks):
            n = session.engine.tick
            if n >= self.last_tick:
                break
            for c in self.rec.ticks[n].get("c", ()):
                session.apply(c)
            session.step()
        return session.snapshot()

    @property
    def tick(self) -> int:
        return self.session.engine.tick

    @property
    def speed(self) -> float | str:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def finished(self) -> bool:
        return self.tick >= self.last_tick

    def drill_state(self) -> dict[str, Any] | None:
        # A plain control-room session's recording hosts no drill.
        return self.session.drill.facilitator_state() if self.rec.is_drill else None

    def close(self, reason: str | None = None) -> None:
        """A replay writes nothing."""

    def prepare(self) -> None:
        self.session.prepare()

    @property
    def elapsed(self) -> float:
        """Simulated seconds since the start (a drill's: since its warm-up ended)."""
        return self.session.engine.t - self.session.start_t

    @property
    def duration(self) -> float:
        return self.rec.ticks[-1]["t"] - self.session.start_t if self.rec.ticks else 0.0

    def tick_at(self, sim_t: float) -> int:
        """The tick whose end is nearest to simulated time `sim_t` (clamped to the recording)."""
        dt = self.session.engine.dt
        return max(0, min(bisect.bisect_left(self._times, sim_t - dt / 2) + 1, self.last_tick))

    def target(self, spec: str) -> int:
        """`12m` (since the start), `+1m` / `-30s` (from here), `start`, `end` -> a tick."""
        spec = spec.strip()
        if spec == "start":
            return 0
        if spec == "end":
            return self.last_tick
        if spec[:1] in "+-":
            sign = 1 if spec[0] == "+" else -1
            return self.tick_at(self.session.engine.t + sign * parse_duration(spec[1:]))
        return self.tick_at(self.session.start_t + parse_duration(spec))


class ReplayBadge(Static):
    """Header badge: where the replay is, and a seek's progress."""

    def show(self, world: ReplayWorld, seeking: float | None) -> None:
        text = (f" REPLAY {fmt_clock(world.elapsed)} / {fmt_clock(world.duration)} · "
                f"tick {world.tick}/{world.last_tick} ")
        if seeking is not None:
            text += f"· seeking {seeking:.0%} "
        self.set_class(seeking is not None, "-seeking")
        self.update(text)


SEEK_BINDINGS = [
    Binding("left_square_bracket", "seek('-1m')", "Back 1m", key_display="["),
    Binding("right_square_bracket", "seek('+1m')", "Forward 1m", key_display="]"),
]


class ReplayRoom:
    """What makes a control room a replay (mixed into one: see the classes below): read-only,
    its own clock, seek, and a badge saying where it is."""

    #: Keys that change the world do nothing in a replay (hidden from the footer).
    READ_ONLY = frozenset({"drill_hint", "drill_inject_next", "drill_skip_inject", "drill_end"})
    #: Its commands (ui/routing.py): its own (seek), the UI's, and of the engine's its clock.
    ROUTE_SCOPES = ("engine", "ui", "replay")

    class SeekProgress(Message):
        def __init__(self, done: int, target: int) -> None:
            super().__init__()
            self.done, self.target = done, target

    class SeekDone(Message):
        def __init__(self, session: Any, target: int) -> None:
            super().__init__()
            self.session, self.target = session, target

    def __init__(self, world: ReplayWorld, **kwargs) -> None:
        super().__init__(world, **kwargs)
        self.seeking: float | None = None  # progress of a seek in flight
        self.result = None  # True once the end of the recording was shown

    async def on_mount(self) -> None:
        header = self.query_one(HeaderBar)
        await header.mount(ReplayBadge(id="replay-badge"), after=header.query_one("#env-badge"))

    def _draw_panes(self, snap) -> None:
        super()._draw_panes(snap)
        self.query_one(ReplayBadge).show(self.world, self.seeking)
        if self.world.finished and self.result is None:
            self._finish()

    def _drive(self) -> None:
        if self.world.finished:
            self._drive_timer = None  # the end of the recording: no busy loop at `max`
            return
        super()._drive()

    def _finish(self) -> None:
        self.result = True  # nothing to score: the recording has its own report
        self.notify(f"end of the recording (tick {self.world.last_tick}); [ or :seek go back",
                    title="replay")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.offers_action(action):
            return False
        return super().check_action(action, parameters)

    # ------------------------------------------------------------------ read-only

    def refuse(self, what: str) -> None:
        self.notify(f"{what}: refused, this is a replay (read-only; space, +/-, [ ] and :seek "
                    "work)", severity="error", title="read-only")

    def submit(self, cmd: C.Command) -> None:
        if not isinstance(cmd, CLOCK):
            self.refuse(cmd.describe())
            return
        self.world.submit(cmd)
        self._resume_driver()
        self.draw(force=True)

    def run_line(self, line: str) -> None:
        text = line.strip().lstrip(":").strip()
        words = text.split()
        if not words:
            return
        if self.router.ui_route(words[0]) is not None:  # seek, theme, window...
            super().run_line(text)
            return
        try:
            cmd = C.parse_line(text)
        except C.CommandError:
            self.refuse(words[0])
            return
        self.submit(cmd)

    def step(self, ticks: int = 1) -> None:
        if self.seeking is None:
            super().step(ticks)

    def offers(self, name: str) -> bool:
        return name in {cls.name for cls in CLOCK} or self.router.ui_route(name) is not None

    def offers_action(self, action: str) -> bool:
        return action not in self.READ_ONLY and action != "scale"

    def action_help(self) -> None:
        from devsim_tui.ui.help import HelpScreen

        keys = [b for b in self.BINDINGS if self.offers_action(b.action.split("(")[0])]
        self.push_screen(HelpScreen([("replay", keys)], self.router))

    # ------------------------------------------------------------------ seek

    def action_seek(self, spec: str) -> None:
        try:
            target = self.world.target(spec)
        except (ValueError, IndexError) as exc:
            self.notify(f"seek: {exc or 'expected 12m, +1m, -30s, start or end'}",
                        severity="error")
            return
        self.seeking = 0.0
        self._seek(target)
        self.draw(force=True)

    @work(thread=True, exclusive=True, group="seek", exit_on_error=False)
    def _seek(self, target: int) -> None:
        worker = get_current_worker()
        session = session_at(self.world.rec, target,
                             lambda n: self.post_message(self.SeekProgress(n, target)),
                             lambda: worker.is_cancelled)
        if session is not None and not worker.is_cancelled:
            self.post_message(self.SeekDone(session, target))

    def on_replay_room_seek_progress(self, event: SeekProgress) -> None:
        if self.seeking is not None and event.target:
            self.seeking = event.done / event.target
            self.query_one(ReplayBadge).show(self.world, self.seeking)

    def on_replay_room_seek_done(self, event: SeekDone) -> None:
        self.world.session = event.session
        self.seeking = None
        self.result = None
        self.query_one(EventLog).reset()
        self._toast_after = self.world.snapshot().last_event_seq
        self._resume_driver()
        self.draw(force=True)


class ReplayControlRoom(ReplayRoom, DrillControlRoom):
    """A drill's recording: the drill as the facilitator saw it, read-only."""

    BINDINGS = DrillControlRoom.BINDINGS + SEEK_BINDINGS


class SessionReplayRoom(ReplayRoom, ControlRoomApp):
    """A plain control-room session's recording (`devsim-tui --record FILE`), read-only."""

    BINDINGS = ControlRoomApp.BINDINGS + SEEK_BINDINGS


def create_replay_app(rec: Recording, **options: Any) -> ControlRoomApp:
    """The control room on a recording (the CLI's `replay FILE` and the tests)."""
    app_class = ReplayControlRoom if rec.is_drill else SessionReplayRoom
    return create_app(ReplayWorld(rec), app_class=app_class, **options)
