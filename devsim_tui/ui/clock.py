"""The control room's clock driver: how many ticks to run now, in slices that keep keys live.

The app calls `drive_slice` from a timer while the world runs and `step_slice` while a `:step N`
is under way; each runs the world for at most one slice of wall time and says whether (and
when) to come back. The wall clock is injected (`now`), so the pacing, the debt of a finite
speed and the slicing of a long step are tested without a screen or a real clock. Never draws,
never schedules anything itself: the app owns the timers.
"""

from __future__ import annotations

import time
from typing import Any, Callable

SLICE_S = 0.03  # engine time per driver callback at finite speeds
MAX_SLICE_S = 0.05  # engine time per driver callback at `max` (and per slice of a step)
MAX_CHUNK = 4096  # ticks per world.advance call at most


class ClockDriver:
    """Runs a world at its speed (`drive_slice`) and long steps in slices (`step_slice`)."""

    def __init__(self, now: Callable[[], float] = time.perf_counter,
                 slice_s: float = SLICE_S, max_slice_s: float = MAX_SLICE_S) -> None:
        self.now = now
        self.slice_s = slice_s
        self.max_slice_s = max_slice_s
        self.chunk = 1  # ticks per advance call, sized to ~5 ms of engine time
        self.debt = 0.0  # ticks owed at a finite speed
        self.step_left = 0  # ticks of a `:step N` still to run
        self._last = 0.0

    def reset(self) -> None:
        """The clock (re)starts: no debt from the time it stood still."""
        self._last = self.now()
        self.debt = 0.0

    def drive_slice(self, world: Any, tick_seconds: float) -> float:
        """Advance `world` by what its speed asks for since the last call, within a slice;
        returns the delay (s) before the next call."""
        speed = world.speed
        now = self.now()
        elapsed, self._last = now - self._last, now
        if speed == "max":
            wanted, budget = 1 << 30, self.max_slice_s
        else:
            self.debt += elapsed * float(speed) / tick_seconds
            wanted, budget = int(self.debt), self.slice_s
        done = self._run(world, wanted, now, budget)
        if speed == "max":
            return 0.001
        # Falling behind (a slow machine): drop the debt rather than spiral.
        self.debt = min(self.debt - done, 1.0)
        rate = float(speed) / tick_seconds
        return max(0.01, (1.0 - self.debt) / rate) if self.debt < 1.0 else 0.001

    def start_step(self, ticks: int) -> None:
        """A `:step N` (replacing one still running)."""
        self.step_left = max(1, ticks)

    def step_slice(self, world: Any) -> bool:
        """Run what is left of a step within one slice; True while some is left (call again
        after yielding), False once done, or when the world ran out of ticks or was resumed."""
        start = self.now()
        while self.step_left > 0 and world.paused:
            before = world.snapshot().tick
            n = min(self.step_left, max(self.chunk, 1))
            world.advance(n)
            if world.snapshot().tick == before:  # nothing more to run (a drill that ended)
                self.step_left = 0
                break
            self.step_left -= n
            if self.now() - start > self.max_slice_s:
                break
        if self.step_left > 0 and world.paused:
            return True
        self.step_left = 0
        return False

    def _run(self, world: Any, wanted: int, start: float, budget: float) -> int:
        done = 0
        while done < wanted:
            chunk = min(self.chunk, wanted - done)
            t0 = self.now()
            world.advance(chunk)
            done += chunk
            spent = self.now() - t0
            # Size chunks to ~5 ms so the budget check runs often without per-tick overhead.
            if spent < 0.0025:
                self.chunk = min(self.chunk * 2, MAX_CHUNK)
            elif spent > 0.01 and self.chunk > 1:
                self.chunk //= 2
            if self.now() - start > budget:
                break
        return done
