"""The development workflow as the developer lives it: builds, unit tests, hot reloads, console.

The development profile's workflow (seed: architecture.md) is: make a code change -> auto-reload
triggers a rebuild -> run unit tests -> check console logs -> commit when ready. The engine
already models the mechanics (a `code-change` starts `rollout.HotReload`: build, possibly failing,
unit tests, a process restart); `DevLoop` is a controller that keeps the developer's record of
them from the engine's own events, in simulated time:

- builds: version, start, duration, succeeded or failed (compile error);
- unit-test runs: the suite's size (it grows with each change that passes: a test per change,
  from `SUITE_BASE`), passed and failed counts, duration (`hot_reload.test_seconds`); a failed
  build runs no tests;
- hot reloads: when the process restarted on the new code and how long until it served again
  (the restart gap plus start-up);
- console: warning and error lines, as a developer's terminal shows them, newest last, bounded:
  the profile's start-up warnings each time the app becomes ready after a reload, and the
  engine's warning and error events (alerts' console notifications among them).

It draws nothing from the engine's random generator, so attaching it leaves the trajectory
unchanged. Never imports the UI; never reads the wall clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from devsim_tui.sim import extensions

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

SUITE_BASE = 120  # unit tests in the suite before the session's first change
KEEP = 50  # builds, test runs, reloads kept
CONSOLE_LINES = 200


@dataclass
class Build:
    version: str
    started_t: float
    seconds: float | None = None
    outcome: str = "building"  # building | succeeded | failed | cancelled


@dataclass
class TestRun:
    version: str
    t: float
    total: int
    passed: int
    failed: int
    seconds: float


@dataclass
class Reload:
    version: str
    t: float
    ready_t: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ready_t is None else self.ready_t - self.t


@dataclass
class ConsoleLine:
    t: float
    level: str  # warning | error
    source: str  # the event type
    message: str


class DevLoop:
    """Controller: the development workflow's record (attach with `engine.attach`)."""

    commands: tuple = ()
    state_key = extensions.DEVLOOP

    def __init__(self, engine: Engine):
        self.engine = engine
        self._seq = engine.events.last_seq
        self.builds: deque[Build] = deque(maxlen=KEEP)
        self.tests: deque[TestRun] = deque(maxlen=KEEP)
        self.reloads: deque[Reload] = deque(maxlen=KEEP)
        self.console: deque[ConsoleLine] = deque(maxlen=CONSOLE_LINES)
        self.counts = {"builds": 0, "builds_failed": 0, "test_runs": 0, "tests_passed": 0,
                       "tests_failed": 0, "reloads": 0, "warnings": 0, "errors": 0}
        self.suite = SUITE_BASE
        hr = engine.profile.deployment.hot_reload
        self.test_seconds = float(hr.test_seconds) if hr is not None else 0.0

    def apply(self, cmd: Any) -> str | None:  # pragma: no cover - owns no command
        return "not a development workflow command"

    def before_tick(self, t: float) -> None:
        pass

    def after_tick(self, t: float, agg: Aggregates) -> None:
        events = self.engine.events.since(self._seq)
        if not events:
            return
        self._seq = events[-1].seq
        for ev in events:
            self._see(ev)

    def _see(self, ev: Any) -> None:
        d = ev.data
        if ev.type == "build.started":
            self.builds.append(Build(d.get("version", "?"), ev.t))
            self.counts["builds"] += 1
        elif ev.type in ("build.succeeded", "build.failed"):
            b = self._build(d.get("version"))
            if b is not None:
                b.seconds = float(d.get("build_seconds", ev.t - b.started_t))
                b.outcome = "succeeded" if ev.type == "build.succeeded" else "failed"
            if ev.type == "build.failed":
                self.counts["builds_failed"] += 1
        elif ev.type == "build.cancelled":
            b = self.builds[-1] if self.builds else None
            if b is not None and b.outcome == "building":
                b.outcome = "cancelled"
        elif ev.type == "tests.passed":
            # The engine's unit-test stage passes or the reload does not happen (a broken
            # change fails at the build); failed counts stay for suites that report them.
            run = TestRun(d.get("version", "?"), ev.t, self.suite, self.suite, 0,
                          self.test_seconds)
            self.tests.append(run)
            self.counts["test_runs"] += 1
            self.counts["tests_passed"] += run.passed
            self.suite += 1  # the change came with its test
        elif ev.type == "release.reloaded":
            self.reloads.append(Reload(d.get("version", "?"), ev.t))
            self.counts["reloads"] += 1
        elif ev.type == "server.ready":
            r = self.reloads[-1] if self.reloads else None
            if r is not None and r.ready_t is None:
                r.ready_t = ev.t
            # The app prints the profile's start-up warnings each time it starts (a dev
            # server's banner: TLS off, plain-text credentials, debug endpoints).
            for text in self.engine.profile.warnings:
                self.console.append(ConsoleLine(ev.t, "warning", "app.start", text))
                self.counts["warnings"] += 1
        if ev.severity in ("warning", "error", "critical"):
            level = "warning" if ev.severity == "warning" else "error"
            self.console.append(ConsoleLine(ev.t, level, ev.type, ev.message))
            self.counts["warnings" if level == "warning" else "errors"] += 1

    def _build(self, version: str | None) -> Build | None:
        for b in reversed(self.builds):
            if b.version == version and b.outcome == "building":
                return b
        return None

    def state(self) -> dict:
        """JSON-able: counts, recent builds / test runs / reloads, the console's last lines."""
        done = [b.seconds for b in self.builds if b.seconds is not None]
        return {
            "counts": dict(self.counts),
            "suite_size": self.suite,
            "last_build_seconds": done[-1] if done else None,
            "mean_build_seconds": round(sum(done) / len(done), 1) if done else None,
            "building": any(b.outcome == "building" for b in self.builds),
            "builds": [asdict(b) for b in self.builds],
            "tests": [asdict(r) for r in self.tests],
            "reloads": [dict(asdict(r), seconds=r.seconds) for r in self.reloads],
            "console": [asdict(c) for c in self.console],
        }
