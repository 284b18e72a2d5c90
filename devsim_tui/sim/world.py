"""The one interface between a world and whoever watches it: snapshots out, commands in.

The control room, the exporters and (later) remote seats only use `World`. `LocalWorld` runs an
`Engine` in-process; a remote world (MQTT seats, shared drills) implements the same protocol.
Never imports the UI.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from devsim_tui.config.schema import Profile
from devsim_tui.sim.commands import Command, CommandError, parse_line
from devsim_tui.sim.engine import Engine
from devsim_tui.sim.events import Event
from devsim_tui.sim.snapshot import Snapshot


class World(Protocol):
    profile: Profile

    def snapshot(self) -> Snapshot:
        """The latest immutable snapshot."""

    def submit(self, command: Command) -> None:
        """Queue a command for the next tick boundary."""

    def submit_line(self, line: str) -> None:
        """Parse and queue a `:` command line; a bad line becomes a `command.rejected` event."""

    def events_since(self, seq: int) -> list[Event]:
        """Events newer than `seq` that are still held (bounded log)."""

    def series(self, name: str, n: int) -> np.ndarray:
        """The last n per-tick values of an aggregate series (see sim.history.SERIES)."""

    def component_history(self, name: str) -> dict[str, np.ndarray]:
        """Recent per-tick values of one server or database node."""

    def advance(self, ticks: int) -> Snapshot:
        """Run `ticks` ticks (a local world); a remote world just returns its latest snapshot."""

    @property
    def speed(self) -> float | str: ...

    @property
    def paused(self) -> bool: ...

    @property
    def tick(self) -> int:
        """Ticks run so far (a remote world: those of its latest snapshot)."""

    @property
    def finished(self) -> bool:
        """Whether the world has nothing left to run (a drill that ended, a replay at its end)."""

    def drill_state(self) -> dict[str, Any] | None:
        """A hosted drill's state as this viewer may see it; None when the world hosts none."""

    def close(self, reason: str | None = None) -> None:
        """End the world: a recorded one writes its closing line (idempotent); others do
        nothing."""

    def prepare(self) -> None:
        """Do the start-up work a first tick would otherwise do (a local engine's detector
        warm start), e.g. in a worker thread before the clock starts; nothing else changes."""


class LocalWorld:
    """An in-process engine behind the World interface."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.profile = engine.profile

    def snapshot(self) -> Snapshot:
        return self.engine.snapshot

    def submit(self, command: Command) -> None:
        self.engine.submit(command)

    def submit_line(self, line: str) -> None:
        self.engine.submit_line(line)

    def events_since(self, seq: int) -> list[Event]:
        return self.engine.events_since(seq)

    def series(self, name: str, n: int) -> np.ndarray:
        return self.engine.history.series(name, n)

    def component_history(self, name: str) -> dict[str, np.ndarray]:
        return self.engine.component_history(name)

    def advance(self, ticks: int) -> Snapshot:
        return self.engine.step(ticks)

    @property
    def speed(self) -> float | str:
        return self.engine.speed

    @property
    def paused(self) -> bool:
        return self.engine.paused

    @property
    def tick(self) -> int:
        return self.engine.tick

    @property
    def finished(self) -> bool:
        return False

    def drill_state(self) -> dict[str, Any] | None:
        return None

    def close(self, reason: str | None = None) -> None:
        """Nothing is recorded here (a RecordedSession writes its closing line)."""

    def prepare(self) -> None:
        self.engine.prepare()


__all__ = ["World", "LocalWorld", "CommandError", "parse_line"]
