"""The headless runner: drive an engine without a screen and write JSON lines.

Line kinds (schema in docs/headless.md): one `run.start`, one `tick` per tick, one `event` per
engine event (its dotted `type` kept), and a final `summary` with SLO attainment and error
budget burned. The engine stays pure; wall-clock pacing and I/O live here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator

from devsim_tui.sim.command_file import TimedCommand
from devsim_tui.sim.engine import Engine
from devsim_tui.sim.events import Event

SCHEMA_VERSION = 1


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def tick_record(engine: Engine) -> dict[str, Any]:
    a = engine.agg
    return {
        "kind": "tick", "tick": engine.tick, "t": engine.t, "clock": engine.clock(),
        "fleet": {
            "ready": a.ready, "total": a.total, "desired": a.desired,
            "offered_rps": _r(a.offered_rps, 3), "served_rps": _r(a.served_rps, 3),
            "errored_rps": _r(a.errored_rps, 3), "timed_out_rps": _r(a.timed_out_rps, 3),
            "rejected_rps": _r(a.rejected_rps, 3), "reset_rps": _r(a.reset_rps, 3),
            "queued": _r(a.queued, 3),
            "p50_ms": _r(a.p50_ms, 3), "p99_ms": _r(a.p99_ms, 3),
            "error_rate": _r(a.error_rate, 6), "cpu": _r(a.cpu, 4),
        },
        "db": {
            "primary": a.db_primary, "writable": a.db_writable,
            "max_lag_bytes": _r(a.db_max_lag_bytes, 1), "max_lag_s": _r(a.db_max_lag_s, 4),
            "connections": a.db_connections,
            "backup": _backup(engine),
            "plans": {"optimizer": engine.db.planner.mode,
                      "cost_factor": _r(engine.db.planner.cost_factor, 3)},
            "mesh": _mesh(engine),
        },
        "cache_hit_ratio": _r(a.cache_hit_ratio, 4),
        "kafka": _kafka(engine),
        "cloud": _cloud(engine),
        "health": engine.health(),
        "security": _security(engine),
    }


def _security(engine: Engine) -> dict[str, Any] | None:
    """Posture score, failing controls, attack figures (sim/security.py, docs/security.md)."""
    from devsim_tui.sim.security import security_of, summary

    sec = security_of(engine)
    return summary(sec.state()) if sec is not None else None


def _backup(engine: Engine) -> dict[str, Any]:
    """Restore point, WAL archive queue and a running restore (sim/backup.py)."""
    v = engine.db.backups.view(engine.t)
    r = v.get("restore")
    return {
        "restore_point_age_s": _r(v["restore_point_age_s"], 1),
        "archive_pending_mb": v["archive_pending_mb"], "backups_kept": v["backups_kept"],
        "restore": None if r is None else {"target": r["target"], "progress": r["progress"],
                                           "remaining_s": r["remaining_s"],
                                           "writes_lost": r["writes_lost"]},
    }


def _cloud(engine: Engine) -> dict[str, Any] | None:
    """Regions (status, pods ready/placed/capacity), Pending pods, evictions and cross-cloud
    egress (sim/cloud.py, docs/cloud.md)."""
    from devsim_tui.sim.cloud import cloud_of

    ctl = cloud_of(engine)
    return ctl.summary() if ctl is not None else None


def _mesh(engine: Engine) -> dict[str, Any] | None:
    """Multi-master write conflicts and split brain (sim/mesh.py); None for other topologies."""
    mesh = engine.db.mesh
    if mesh is None:
        return None
    return {"conflicts": mesh.total, "conflicts_per_s": _r(mesh.rate, 4),
            "by_node": {n.name: int(c) for n, c in zip(mesh.nodes, mesh.conflicts)},
            "merged": mesh.merged,
            "partition": None if mesh.split is None else mesh.split.region,
            "split_brain": mesh.split_brain,
            "region_lost_writes": _r(mesh.region_lost, 0)}


def _kafka(engine: Engine) -> dict[str, Any] | None:
    """Per-group consumer lag of the event stream (profiles with `streaming.enabled`)."""
    from devsim_tui.sim.chaos import ChaosController

    ctl = next((c for c in engine.controllers if isinstance(c, ChaosController)), None)
    s = ctl.stream if ctl is not None else None
    if s is None:
        return None
    secs = s.group_lag_seconds()
    return {"broker_up": s.broker_up, "produce_rate": _r(s.produce_rate, 1),
            "lost_events": _r(s.lost, 0),
            "data_age_s": _r(s.data_age, 1), "notification_delay_s": _r(s.notification_delay, 1),
            "stale_responses": _r(s.stale_responses, 0),
            "late_notifications": _r(s.late_notifications, 0),
            "groups": {n: {"lag": _r(float(m + s.buffered), 0), "lag_s": _r(float(x), 2),
                           "age_s": _r(float(a), 1)}
                       for n, m, x, a in zip(s.groups, s.group_lag, secs, s.group_age)}}


def event_record(ev: Event) -> dict[str, Any]:
    out = {"kind": "event"}
    out.update(ev.to_dict())
    return out


@dataclass
class Summary:
    profile: str
    seed: int
    duration_s: float
    ticks: int
    offered: float
    failed: float
    availability: float
    availability_target: float
    slo_met: bool
    p99_target_ms: float
    p99_attainment: float
    error_budget_burned: float
    lost_writes: float
    alerts_fired: int
    commands_applied: int
    commands_rejected: int
    # E-mail delivery at the end (notify.email.DeliveryReport), when SMTP is configured.
    email: Any = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "summary"}
        for k, v in self.__dict__.items():
            if k == "email":
                if v is not None:
                    out[k] = v.record()
                continue
            out[k] = round(v, 6) if isinstance(v, float) else v
        return out

    def text(self) -> str:
        met = "MET" if self.slo_met else "MISSED"
        return "\n".join([
            f"profile {self.profile}, seed {self.seed}: {self.duration_s:.0f} s simulated "
            f"({self.ticks} ticks)",
            f"  availability {self.availability:.5%} vs SLO {self.availability_target:.3%}: {met}",
            f"  p99 <= {self.p99_target_ms:.0f} ms in {self.p99_attainment:.2%} of ticks",
            f"  error budget burned: {self.error_budget_burned:.2%} of the window's budget "
            f"({self.failed:.0f} of {self.offered:.0f} requests failed)",
            f"  lost writes: {self.lost_writes:.0f}; alerts fired: {self.alerts_fired}; "
            f"commands applied/rejected: {self.commands_applied}/{self.commands_rejected}",
        ] + ([f"  {self.email.text()}"] if self.email is not None else []))


class _Counter:
    def __init__(self) -> None:
        self.alerts = self.applied = self.rejected = 0

    def see(self, ev: Event) -> None:
        if ev.type == "alert.firing":
            self.alerts += 1
        elif ev.type == "command.applied":
            self.applied += 1
        elif ev.type == "command.rejected":
            self.rejected += 1


class _Runner:
    """One headless run, stepped tick by tick so a sync and an asyncio driver share it."""

    def __init__(self, engine: Engine, duration_s: float, out: IO[str],
                 commands: Iterable[TimedCommand], speed: float | str, progress: Any,
                 session: Any = None, finalize: Any = None):
        self.engine, self.duration_s, self.out, self.progress = engine, duration_s, out, progress
        # Called once the ticks are done, before the summary: flushes the e-mail and returns
        # its DeliveryReport (or None), which the summary reports.
        self.finalize = finalize
        # A RecordedSession around `engine` (`simulate --record`): commands and ticks go
        # through it, so they are recorded; otherwise straight to the engine.
        self.submit = session.submit if session is not None else engine.submit
        self.step = session.step if session is not None else (lambda: engine.advance()[1])
        self.pending = sorted(commands, key=lambda c: c.at)
        self.counter = _Counter()
        self.dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
        self.speed = speed
        self.last_events: tuple[Event, ...] = ()

    def start(self) -> None:
        engine, dumps, out = self.engine, self.dumps, self.out
        out.write(dumps({"kind": "run.start", "schema": SCHEMA_VERSION,
                         "profile": engine.profile.name,
                         "environment": engine.profile.environment, "seed": engine.seed,
                         "tick_seconds": engine.dt, "duration_s": self.duration_s}) + "\n")
        for ev in engine.last_events:
            self.counter.see(ev)
            out.write(dumps(event_record(ev)) + "\n")
        engine.speed = self.speed

    def ticks(self) -> Iterator[float]:
        """Advance tick by tick; yield after each how long to wait to keep the asked speed."""
        engine, dumps, out, counter = self.engine, self.dumps, self.out, self.counter
        pending, i = self.pending, 0
        # Pacing is anchored at the last speed change, so a set-speed mid-run (an MQTT command)
        # paces from then on instead of catching up or stalling against the old speed.
        anchor_sp, anchor_t, anchor_wall = engine.speed, engine.t, time.monotonic()
        ticks = int(round(self.duration_s / engine.dt))
        for k in range(ticks):
            # Commands due by the end of the next tick apply at its start (tick boundary).
            while i < len(pending) and pending[i].at <= engine.t + engine.dt / 2:
                self.submit(pending[i].build())
                i += 1
            events = self.step()
            self.last_events = events
            for ev in events:
                counter.see(ev)
                out.write(dumps(event_record(ev)) + "\n")
            out.write(dumps(tick_record(engine)) + "\n")
            sp = engine.speed
            if sp != anchor_sp:
                anchor_sp, anchor_t, anchor_wall = sp, engine.t, time.monotonic()
            ahead = 0.0
            if sp != "max":
                ahead = (engine.t - anchor_t) / float(sp) - (time.monotonic() - anchor_wall)
            # Every tick when paced (the exporter's publishing limits itself to 5 a second;
            # every 64 ticks left its /metrics 3 wall seconds stale at 20x), else every 64.
            if self.progress is not None and (sp != "max" or (k & 63) == 0):
                self.progress(engine.t)
            yield ahead

    def finish(self) -> Summary:
        engine, counter = self.engine, self.counter
        if self.progress is not None:
            self.progress(engine.t)
        a = engine.agg
        slo = engine.profile.slo
        email = self.finalize() if self.finalize is not None else None
        summary = Summary(
            profile=engine.profile.name, seed=engine.seed, duration_s=engine.t,
            ticks=engine.tick, offered=engine.offered_total, failed=engine.failed_total,
            availability=a.availability, availability_target=slo.availability,
            slo_met=a.availability >= slo.availability, p99_target_ms=slo.p99_latency_ms,
            p99_attainment=engine.p99_ok_ticks / engine.tick if engine.tick else 1.0,
            error_budget_burned=a.error_budget_burned, lost_writes=a.lost_writes,
            alerts_fired=counter.alerts, commands_applied=counter.applied,
            commands_rejected=counter.rejected, email=email,
        )
        self.out.write(self.dumps(summary.record()) + "\n")
        return summary


def run(engine: Engine, duration_s: float, out: IO[str], commands: Iterable[TimedCommand] = (),
        speed: float | str = "max", progress: Any = None, session: Any = None,
        finalize: Any = None) -> Summary:
    """Run `duration_s` simulated seconds; write JSON lines to `out`; return the summary.

    `session`: the `drill.session.RecordedSession` that owns `engine`, to record the run.
    `finalize`: called before the summary; returns the e-mail DeliveryReport or None."""
    runner = _Runner(engine, duration_s, out, commands, speed, progress, session, finalize)
    runner.start()
    for ahead in runner.ticks():
        if ahead > 0:
            time.sleep(ahead)
    return runner.finish()


async def run_async(engine: Engine, duration_s: float, out: IO[str],
                    commands: Iterable[TimedCommand] = (), speed: float | str = "max",
                    progress: Any = None, bridge: Any = None,
                    yield_every_s: float = 0.005, session: Any = None,
                    finalize: Any = None) -> Summary:
    """`run` inside asyncio, for a bridge (MQTT) that must publish and take commands meanwhile.

    The output is the same as `run`'s. At --speed max the loop yields to the event loop every
    `yield_every_s` of wall time; each tick's events go to `bridge.publish_tick` (only enqueued),
    and while the broker link is up `bridge.wait_writable()` holds the loop back if the bridge's
    buffer fills, so a healthy link gets every event; a down link never slows the run.
    """
    runner = _Runner(engine, duration_s, out, commands, speed, progress, session, finalize)
    runner.start()
    snapshot = (lambda: engine.snapshot)  # built only when the bridge's rate limit lets one out
    if bridge is not None:
        bridge.publish_tick(snapshot, engine.last_events)
    last_yield = time.monotonic()
    for ahead in runner.ticks():
        if bridge is not None:
            bridge.publish_tick(snapshot, runner.last_events)
        if ahead > 0:
            await asyncio.sleep(ahead)
            last_yield = time.monotonic()
        elif time.monotonic() - last_yield >= yield_every_s:
            await asyncio.sleep(0)
            if bridge is not None:
                await bridge.wait_writable()
            last_yield = time.monotonic()
    return runner.finish()


def progress_bar(total_s: float):
    """A rich progress bar on stderr; returns (update, close)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                    TimeRemainingColumn(), console=None, transient=True)
    prog.console.file = sys.stderr
    task = prog.add_task("sim", total=total_s)
    prog.start()
    return (lambda t: prog.update(task, completed=t)), prog.stop
