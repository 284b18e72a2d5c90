"""A recorded session: an engine behind the World interface whose inputs and events are recorded.

What `--record FILE` puts behind the control room (`devsim-tui --record FILE`) and behind
`simulate`, and the base of a drill's session (`drill.runner.DrillSession`, which adds the drill
controller, the scenario in the header and per-tick metrics for its report).

`submit` / `submit_line` note each command with the tick it applies at (a line the parser
refuses is noted too: the engine logs its rejection as an event, and a replay must log the same);
`step` runs one tick and appends it, with its events, to the recording. Replaying a recording
(`drill.runner.replay`, the control room's `replay FILE`) builds a new session from the header
and feeds it the same commands at the same ticks. Never imports the UI.
"""

from __future__ import annotations

import os
from typing import Any

from devsim_tui.drill.recording import Recorder, Recording, event_dict
from devsim_tui.errors import UserError
from devsim_tui.sim import commands as C
from devsim_tui.sim.engine import Engine
from devsim_tui.sim.events import Event
from devsim_tui.sim.snapshot import Snapshot
from devsim_tui.sim.world import LocalWorld


class RecordedSession(LocalWorld):
    """An engine whose run is recorded (on disk when `record` names a file): a `LocalWorld`
    whose commands and ticks also go to the recording.

    `source` says what ran it ("control-room", "simulate"), for the reader. `keep=False` keeps
    no ticks in memory (a control room may run for days at max speed; only a drill's score needs
    the recording in memory).
    """

    def __init__(self, profile: Any, seed: int | None = None,
                 record: str | os.PathLike[str] | None = None, *, source: str = "control-room",
                 keep: bool = True):
        super().__init__(Engine(profile, seed=seed))
        self.init_events = [event_dict(ev) for ev in self.engine.last_events]
        self.commands: list[dict[str, Any]] = []  # every submitted command, with its tick
        self._setup()
        header = {
            "source": source,
            "seed": self.engine.seed,
            "profile": profile.model_dump(mode="json"),
            "tick_seconds": self.engine.dt,
            "metrics": [],
            "init_events": self.init_events,
            **self._header(),
        }
        try:
            self.recorder = Recorder(record, header, keep=keep)
        except OSError as exc:
            raise UserError(f"--record {record}: {exc.strerror}") from None

    # What a subclass adds --------------------------------------------------------------------

    def _setup(self) -> None:
        """Attach what else the engine runs (a drill controller), before the header is written."""

    def _header(self) -> dict[str, Any]:
        """More of the recording's header (a drill's scenario, objectives, metric names)."""
        return {}

    def metrics(self) -> list[float | None]:
        """This tick's values of the header's `metrics` (none for a plain session)."""
        return []

    def condition_bits(self) -> str:
        """One character per objective (a drill's), recorded per tick."""
        return ""

    @property
    def finished(self) -> bool:
        return False

    @property
    def end_reason(self) -> str | None:
        return None

    @property
    def start_t(self) -> float:
        """Simulated time the session's clock counts from (a drill's warm-up excluded)."""
        return 0.0

    # World (what differs from LocalWorld: commands and ticks are recorded) ------------------

    def submit(self, command: C.Command, by: str | None = None) -> None:
        entry: dict[str, Any] = {"n": self.engine.tick + 1, "name": command.name,
                                 "args": command.args()}
        if by:
            entry["by"] = by
        self.commands.append(entry)
        self.recorder.command(entry)
        self.engine.submit(command)

    def submit_line(self, line: str, by: str | None = None) -> None:
        try:
            cmd = C.parse_line(line)
        except C.CommandError as exc:
            # Recorded too: the rejection is an event, which a replay must produce again.
            entry: dict[str, Any] = {"n": self.engine.tick + 1, "line": line}
            if by:
                entry["by"] = by
            self.recorder.command(entry)
            self.engine.emit(self.engine.t, "command.rejected", str(exc), "error", line=line)
            return
        self.submit(cmd, by)

    def advance(self, ticks: int = 1) -> Snapshot:
        for _ in range(ticks):
            if self.finished:
                break
            self.step()
        return self.engine.snapshot

    # Ticks --------------------------------------------------------------------------------

    def step(self) -> tuple[Event, ...]:
        e = self.engine
        _, events = e.advance()
        self.recorder.tick(e.tick, e.t, [event_dict(ev) for ev in events], self.metrics(),
                           self.condition_bits())
        return events

    def apply(self, entry: dict[str, Any]) -> None:
        """Submit one recorded command entry again (a replay)."""
        if "line" in entry:
            self.submit_line(entry["line"], entry.get("by"))
        else:
            self.submit(C.build(entry["name"], entry["args"]), entry.get("by"))

    @property
    def recording(self) -> Recording:
        return self.recorder.recording

    def close(self, reason: str | None = None) -> None:
        """Write the closing line (idempotent)."""
        self.recorder.close(reason or self.end_reason or "stopped", self.engine.tick)


def close_on_hangup(current: Any, reason: str = "seat hung up") -> None:
    """Close the recording of `current()` (a recorded world, or anything else: then nothing)
    with `reason` when the terminal hangs up, then die of SIGHUP as before.

    SIGHUP's default action kills the process before any `finally` runs, so a seat that
    `serve ssh` hangs up (or whose SSH line dropped) would leave its recording without an end
    line. Only the main thread may set a handler; elsewhere this does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal,
                                                                                "SIGHUP"):
        return

    def hung_up(signum: int, _frame: Any) -> None:
        world = current()
        if world is not None:
            world.close(reason)  # a world that records nothing does nothing
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGHUP, hung_up)


def recording_path(directory: str | os.PathLike[str], stem: str) -> str:
    """A new file in `directory` for one session: STEM-YYYYmmddTHHMMSS-a1b2.rec (servers that
    record each seat, `serve ssh --record DIR`). The wall clock only names the file."""
    import secrets
    import time
    from pathlib import Path

    return str(Path(directory) / f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}-"
                                 f"{secrets.token_hex(2)}.rec")

