"""The simulation engine: one deterministic world, advanced one tick at a time.

It owns a virtual clock and a seeded `numpy.random.Generator`; it never reads the wall clock or
global random state, so the same profile, seed and command sequence give the same trajectory.
Commands are queued and applied at tick boundaries; each tick publishes an immutable `Snapshot`
and appends to bounded ring buffers. Never imports the UI.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from devsim_tui.config.schema import Profile
from devsim_tui.sim import commands as C
from devsim_tui.sim.alerts import AlertEngine, default_rules
from devsim_tui.sim.autoscale import HPAController
from devsim_tui.sim.cache import Cache
from devsim_tui.sim.database import Database
from devsim_tui.sim.events import Event, EventLog
from devsim_tui.sim.extensions import ANOMALY, load_builtin, ordered
from devsim_tui.sim.fleet import METRIC_DELAY_SECONDS, Fleet
from devsim_tui.sim.history import History
from devsim_tui.sim.metrics import engine_sampler
from devsim_tui.sim.traffic import TrafficModel
if TYPE_CHECKING:
    from devsim_tui.sim.predictive import PredictiveScaler
from devsim_tui.sim.snapshot import (
    CRASHED, DRAINING, EVICTED, NOTREADY, PENDING, READY, Aggregates, Snapshot,
)

DAY = 86400.0
_max = np.maximum.reduce  # ndarray.max() without its Python wrapper
HOUR = 3600.0
HPA_METRIC_WINDOW_S = 30.0  # a fresh pod's CPU sample must post-date its readiness by this


class Engine:
    """The whole estate of one profile. Drive it with `submit()` and `step()`."""

    def __init__(self, profile: Profile, seed: int | None = None, *, alerting: bool = True):
        """`alerting=False`: no alert rules at all (a detector's warm-start shadow, whose
        alerts nobody sees; nothing in a tick depends on them)."""
        self.profile = profile
        self.seed = profile.simulation.seed if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.dt = profile.simulation.tick_seconds
        self.tick = 0
        self.t = 0.0
        self.t0_abs = profile.simulation.start_hour * HOUR
        self.speed: float | str = 1.0
        self.paused = False
        self.events = EventLog(profile.simulation.event_history)
        self._queue: deque[C.Command] = deque()
        self.versions: list[str] = [profile.app.version]
        self.current_version = 0

        sim = profile.simulation
        self.fleet = Fleet(profile.app.server, profile.app.regions, profile.app.service,
                           self.rng, min(sim.history_ticks, 600), profile.app.variation,
                           profile.app.load_balancing, self.seed, self.dt)
        self.db = Database.build(profile.database, self.rng, self.emit, self.t0_abs,
                                 profile.app.server.timeout_ms / 1000.0)
        self.cache = Cache.build(profile.cache, self.emit) if profile.cache.enabled else None
        self.scaler = profile.scaling.scaler
        self.hpa = HPAController(profile.scaling) if self.scaler != "manual" else None
        self.predictive: PredictiveScaler | None = None
        self.hpa_info: dict[str, Any] = {}
        self.desired = profile.scaling.initial
        self.alerts = AlertEngine(default_rules(profile) if alerting else [],
                                  profile.monitoring.evaluation_interval_seconds, self.emit,
                                  sampler=engine_sampler(self),
                                  scrape_interval_s=profile.monitoring.scrape_interval_seconds)
        self.history = History(sim.history_ticks)
        # A rollout in progress owns pod creation and deletion (releases.py): while set, the
        # hook runs in _reconcile's place and returns True when it handled the tick.
        self.reconcile_hook: Callable[[float], bool] | None = None
        self.memory_limit_mb = float(profile.app.server.memory_limit_mb
                                     or profile.app.server.memory_request_mb)
        load_builtin()
        self.controllers = [factory(self) for factory in ordered()]
        self._handlers = {cls: ctl for ctl in self.controllers for cls in ctl.commands}

        self.traffic_model = TrafficModel(profile.traffic, self.seed, self.t0_abs)
        if self.scaler == "predictive":
            # Imported only here: its forecasters (river.time_series) pull in scipy, about half
            # a second of a start for every profile that does not scale predictively.
            from devsim_tui.sim.predictive import PredictiveScaler

            self.predictive = PredictiveScaler(profile, self.traffic_model.level, self.seed,
                                               metric_window_s=HPA_METRIC_WINDOW_S)
        self._noise = 0.0
        self._burst_until = -1.0
        self._burst_mult = 1.0
        self.traffic_factor = 1.0  # chaos: traffic spike multiplier
        self.extra_latency_ms = 0.0  # chaos: dependency / network latency on every request
        self.extra_error = 0.0
        self.build_time_s: float | None = (
            profile.deployment.hot_reload.build_seconds if profile.deployment.hot_reload else None)

        self.offered_total = 0.0
        self.failed_total = 0.0
        self.served_total = 0.0
        self.kind_totals = [0.0, 0.0, 0.0]  # rejected, timed out, reset since the start
        self._reset_seen = 0.0  # fleet.reset_sum already counted
        self._rejecting_since: float | None = None  # rejections reported, last seen at
        self._rejected_at = 0.0
        self.p99_ok_ticks = 0
        self._last_rotate = math.floor(self.t0_abs / (profile.app.server.log_rotation_hours * HOUR))

        # Start warm: the initial replicas are already running, as in a live estate.
        self.fleet.add(0.0, self.desired, self.current_version, 0.0)
        self.fleet.lifecycle(0.0, 0.0)
        self.fleet.started_at = self.fleet.started_at - HOUR
        self.fleet.ready_at = self.fleet.ready_at - HOUR
        self.emit(0.0, "sim.started",
                  f"{profile.name}: {self.desired} x {profile.app.technology} "
                  f"({self._scaler_label()}), seed {self.seed}", "info",
                  profile=profile.name, seed=self.seed, scaler=self.scaler)
        self.agg = self._aggregate(None, None)
        self.last_events: tuple[Event, ...] = self.events.take_pending()
        self._snapshot: Snapshot | None = None

    # ------------------------------------------------------------------ public interface

    def emit(self, t: float, type_: str, message: str, severity: str = "info",
             subject: str | None = None, **data: Any) -> Event:
        return self.events.emit(t, type_, message, severity, subject, **data)

    def submit(self, command: C.Command) -> None:
        """Queue a command; it applies at the start of the next tick.

        Pause and speed act at once: they steer the clock, not the world (a paused engine has
        no next tick), and leave the trajectory unchanged.
        """
        if isinstance(command, (C.Pause, C.SetSpeed)):
            self._apply(command)
        else:
            self._queue.append(command)

    def attach(self, controller: Any) -> None:
        """Add a controller to this engine only (a drill belongs to one world), after the
        built-in ones so it sees their effects of each tick."""
        self.controllers.append(controller)
        for cls in controller.commands:
            self._handlers[cls] = controller

    def prepare(self) -> None:
        """Run the start-up work kept out of the constructor (the fleet's queueing table, the
        detector's warm start) now instead of in the first tick; the trajectory is the same
        either way."""
        self.fleet.table  # noqa: B018 - built on first use: now, not in the first tick
        anomaly = self.controller(ANOMALY)
        if anomaly is not None:
            anomaly.prepare()

    def controller(self, key: str) -> Any | None:
        """The controller publishing under `key` (sim/extensions.py's names), if it runs here."""
        return next((c for c in self.controllers if c.state_key == key), None)

    def apply_now(self, command: C.Command) -> tuple[Event, ...]:
        """Apply a command at the current instant, not at the next tick boundary (a scripted
        inject that is part of the world's own timeline); returns the events it caused."""
        before = self.events.last_seq
        self._apply(command)
        return tuple(self.events.since(before))

    def submit_line(self, line: str) -> None:
        """Queue a `:` command line; a bad line becomes a `command.rejected` event."""
        try:
            self.submit(C.parse_line(line))
        except C.CommandError as exc:
            self.emit(self.t, "command.rejected", str(exc), "error", line=line[:C.MAX_LINE_CHARS])

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot of the last tick, built on first access (fast-forwarding skips it)."""
        if self._snapshot is None:
            self._snapshot = self._build_snapshot(self.agg)
        return self._snapshot

    def step(self, ticks: int = 1) -> Snapshot:
        for _ in range(ticks):
            self._tick()
        return self.snapshot

    def advance(self) -> tuple[Aggregates, tuple[Event, ...]]:
        """One tick without building a snapshot: the aggregates and the tick's events."""
        self._tick()
        return self.agg, self.last_events

    def run_until(self, t: float) -> Snapshot:
        while self.t + self.dt <= t + 1e-9:
            self._tick()
        return self.snapshot

    def events_since(self, seq: int) -> list[Event]:
        return self.events.since(seq)

    def component_history(self, name: str) -> dict[str, np.ndarray]:
        """Recent per-tick values of one server or database node (oldest first)."""
        i = self.fleet.names.index(name) if name in self.fleet.names else None
        if i is not None:
            return self.fleet.history(i)
        return self.history.component(name)

    # ------------------------------------------------------------------ one tick

    def _tick(self) -> None:
        # Commands apply at the boundary, stamped with the time the tick starts from.
        while self._queue:
            self._apply(self._queue.popleft())
        self.tick += 1
        self.t = t = self.tick * self.dt
        dt = self.dt
        t_abs = self.t0_abs + t

        for ctl in self.controllers:
            ctl.before_tick(t)
        lam = self._traffic(t_abs)
        fleet = self.fleet
        changes = fleet.lifecycle(t, self.profile.app.server.startup_seconds)
        self._report_lifecycle(changes)

        # Database first: its latency and failures shape the app tier's responses this tick.
        tr = self.profile.traffic
        queries = lam * tr.queries_per_request
        reads = queries * tr.read_fraction
        writes = queries - reads
        if self.cache is not None:
            reads = self.cache.step(t, reads, dt)
        n_ready = fleet.ready_count()
        dbr = self.db.step(t, dt, t_abs, reads, writes, n_ready)
        writes_per_req = min(1.0, tr.queries_per_request * (1.0 - tr.read_fraction))
        reads_per_req = min(1.0, tr.queries_per_request * tr.read_fraction)
        db_err = min(1.0, dbr.write_fail * writes_per_req + dbr.read_fail * reads_per_req
                     + dbr.timeout_fail)
        db_ms = dbr.query_ms * tr.queries_per_request
        if self.cache is not None:
            db_ms = self.cache.spec.lookup_ms + db_ms * (1.0 - self.cache.hit_ratio * 0.5)
        rotate_period = self.profile.app.server.log_rotation_hours * HOUR
        rot = math.floor(t_abs / rotate_period)
        log_rotate = rot != self._last_rotate
        self._last_rotate = rot
        ft = fleet.step(t, dt, lam, db_ms + self.extra_latency_ms,
                        min(1.0, db_err + self.extra_error), log_rotate)
        oom = fleet.oom_kill(t, self.memory_limit_mb)
        if oom:
            self.emit(t, "server.oom_killed", _names_msg(oom, f"OOMKilled at the "
                      f"{self.memory_limit_mb:.0f} MiB memory limit"), "error",
                      oom[0] if len(oom) == 1 else None, servers=oom)
        self._report_rejections(t, ft)
        fleet.record_history()

        if self.predictive is not None:
            self.predictive.observe(ft.offered, ft.cpu, n_ready)
        if self.hpa is not None and self.hpa.due(t):
            self._hpa_sync(t)
        self._reconcile(t)
        gone = fleet.compact()
        if gone:
            self.emit(t, "server.terminated", _names_msg(gone, "terminated"), "info",
                      servers=gone)
        self._report_resets(t)

        agg = self._aggregate(ft, dbr)
        for ctl in self.controllers:
            ctl.after_tick(t, agg)
        self.history.record(t, agg, self.db.nodes, self.offered_total, self.failed_total)
        if self.alerts.due(t):
            self.alerts.evaluate(t, agg)
        self.agg = agg
        self.last_events = self.events.take_pending()
        self._snapshot = None

    def _traffic(self, t_abs: float) -> float:
        tr = self.profile.traffic
        base = self.traffic_model.level(self.t)
        # AR(1) noise: traffic wanders smoothly instead of jumping every tick.
        z = float(self.rng.standard_normal())
        self._noise = 0.95 * self._noise + math.sqrt(1 - 0.95 ** 2) * z
        u = float(self.rng.random())
        b = tr.bursts
        if self.t >= self._burst_until and u < b.per_hour * self.dt / HOUR:
            self._burst_until = self.t + b.duration_seconds
            self._burst_mult = b.multiplier
            self.emit(self.t, "traffic.burst", f"traffic burst x{b.multiplier:g} for "
                      f"{b.duration_seconds:.0f}s", "info", multiplier=b.multiplier)
        burst = self._burst_mult if self.t < self._burst_until else 1.0
        lam = base * (1.0 + tr.noise * self._noise) * burst
        return max(lam * self.traffic_factor, 0.0)

    def _report_lifecycle(self, changes: dict[str, list[str]]) -> None:
        if not changes:  # most ticks
            return
        labels = {"ready": ("server.ready", "ready", "info"),
                  "terminated": ("server.stopped", "stopped after draining", "info"),
                  "restarting": ("server.restarting", "restarting after a crash", "warning"),
                  "crashed": ("server.crashed", "crashed on start (CrashLoopBackOff)", "error")}
        for key, names in changes.items():
            type_, verb, sev = labels[key]
            self.emit(self.t, type_, _names_msg(names, verb), sev,
                      names[0] if len(names) == 1 else None, servers=names)

    def _report_resets(self, t: float) -> None:
        """One event per container death that took requests with it (kill, crash, OOM,
        restart, grace period over): their connections were reset."""
        for names, count in self.fleet.resets:
            n = round(count)
            if n == 0:
                continue  # idle containers (a queue's residue of 1e-8 is no connection)
            what = f"{n} in-flight and queued request{'s' if n != 1 else ''}"
            self.emit(t, "server.connections_reset",
                      _names_msg(names, f"died holding {what}: connections reset"), "error",
                      names[0] if len(names) == 1 else None, servers=names, requests=count)
        self.fleet.resets.clear()

    def _report_rejections(self, t: float, ft) -> None:
        """`requests.rejected` when servers start answering 503 (queue full, or no ready
        server), `requests.rejected.cleared` after a minute without any."""
        if ft.rejected * self.dt >= 1.0:
            if self._rejecting_since is None:
                self._rejecting_since = t
                full = ft.rejected / ft.offered if ft.offered > 0 else 1.0
                why = ("server queues full" if np.count_nonzero(self.fleet.state == READY)
                       else "no ready server")
                self.emit(t, "requests.rejected", f"{why}: {ft.rejected:.0f} req/s rejected "
                          f"with HTTP 503 ({full:.1%} of requests)", "warning",
                          rps=ft.rejected, share=full)
            self._rejected_at = t
        elif self._rejecting_since is not None and t - self._rejected_at >= 60.0:
            self.emit(t, "requests.rejected.cleared", "no request rejected for 60 s "
                      f"(rejections began at {self.clock(self._rejecting_since)})", "info")
            self._rejecting_since = None

    def _hpa_sync(self, t: float) -> None:
        fleet = self.fleet
        s = fleet.state
        # Every pod the ReplicaSet counts: Pending ones and those on NotReady nodes are unready
        # and have no metric (metrics-server cannot reach them).
        pods = fleet.active_mask()
        spec = self.profile.scaling
        server = self.profile.app.server
        age = t - fleet.started_at[pods]
        is_ready = s[pods] == READY
        # The Ready condition last changed when the pod became ready, or at its (re)start.
        since = np.where(is_ready, t - fleet.ready_at[pods], age)
        ready, hot = self.hpa.readiness_flags(age, is_ready, since, HPA_METRIC_WINDOW_S)
        has_metric = (s[pods] != CRASHED) & (s[pods] < PENDING) & (age >= METRIC_DELAY_SECONDS)
        usage = fleet.cpu[pods] * server.cpu_request_millicores
        advice = self.predictive.advise(self.desired) if self.predictive is not None else None
        try:
            d = self.hpa.sync(t, self.desired, float(server.cpu_request_millicores), usage,
                              ready, hot, has_metric,
                              floor=advice.floor if advice is not None else None,
                              pending=s[pods] == PENDING)
        except ValueError as exc:
            self.emit(t, "scale.hpa.error", f"HPA: {exc}", "warning")
            return
        self.hpa_info = {"utilization": d.utilization_percent, "raw_desired": d.raw_desired,
                         "reason": d.reason, "target": spec.targetCPUUtilizationPercentage}
        if advice is not None:
            self.predictive.note(t, d.hpa_desired, d.desired)
            self.hpa_info.update(self.predictive.info(), hpa_desired=d.hpa_desired)
            if d.desired > self.desired and d.hpa_desired is not None \
                    and d.desired > d.hpa_desired:
                fc = advice.forecast
                self.emit(t, "scale.ahead", f"ScaleAhead: {self.desired} -> {d.desired} "
                          f"replicas: forecast {fc.peak:,.0f} rps within {self.predictive.lead_s:.0f}"
                          f" s ({fc.model}, confidence {fc.confidence:.0%}) needs {advice.need} "
                          f"at {spec.targetCPUUtilizationPercentage}% CPU; the HPA alone: "
                          f"{d.hpa_desired}", "info", None, old=self.desired, new=d.desired,
                          hpa=d.hpa_desired, forecast_rps=fc.peak, confidence=fc.confidence,
                          model=fc.model)
                self.desired = d.desired
                return
        if d.desired != self.desired:
            self.emit(t, "scale.hpa", f"HPA: {self.desired} -> {d.desired} replicas (CPU "
                      f"{d.utilization_percent}% vs target {spec.targetCPUUtilizationPercentage}"
                      f"%, {d.reason})", "info", None, old=self.desired, new=d.desired,
                      utilization=d.utilization_percent, reason=d.reason)
            self.desired = d.desired

    def _reconcile(self, t: float) -> None:
        if self.reconcile_hook is not None and self.reconcile_hook(t):
            return
        fleet = self.fleet
        active = fleet.active_count()
        if active < self.desired:
            names = fleet.add(t, self.desired - active, self.current_version,
                              self.profile.app.server.startup_seconds)
            self.emit(t, "server.created", _names_msg(names, "starting"), "info",
                      names[0] if len(names) == 1 else None, servers=names)
        elif active > self.desired:
            victims = fleet.pick_victims(active - self.desired)
            names = [fleet.names[i] for i in np.flatnonzero(victims)]
            # A Pending pod has nothing to drain; one on a NotReady node cannot be reached, and
            # its deletion hangs (Terminating) until the node returns, as an eviction's does.
            pending = victims & (fleet.state == PENDING)
            lost = victims & (fleet.state == NOTREADY)
            fleet.terminate(pending)
            fleet.set_state(lost, EVICTED)
            fleet.set_state(victims & ~pending & ~lost, DRAINING, t + 5.0)
            self.emit(t, "server.draining", _names_msg(names, "draining"), "info",
                      names[0] if len(names) == 1 else None, servers=names)

    # ------------------------------------------------------------------ commands

    def _apply(self, cmd: C.Command) -> None:
        ctl = self._handlers.get(type(cmd))
        handler = ctl.apply if ctl is not None else getattr(
            self, "_cmd_" + cmd.name.replace("-", "_"), None)
        try:
            error = handler(cmd) if handler is not None else "not supported by this engine"
        except Exception as exc:  # noqa: BLE001 - a command never stops the simulation
            # Validation should have refused whatever gets here; if it did not, the command is
            # rejected like any other rather than ending the run (the UI, a hosted drill, MQTT).
            error = f"could not be applied ({type(exc).__name__}: {str(exc)[:200]})"
        if error:
            self.emit(self.t, "command.rejected", f"{cmd.describe()}: {error}", "error",
                      command=cmd.name, args=cmd.args())
        else:
            self.emit(self.t, "command.applied", cmd.describe(), "info", command=cmd.name,
                      args=cmd.args())

    def _cmd_scale(self, cmd: C.Scale) -> str | None:
        spec = self.profile.scaling
        if cmd.replicas > spec.maxReplicas:
            return f"above maxReplicas ({spec.maxReplicas})"
        if self.hpa is not None and cmd.replicas < spec.minReplicas:
            return f"below minReplicas ({spec.minReplicas}) of the HPA"
        self.desired = cmd.replicas
        if self.hpa is not None:
            self.emit(self.t, "scale.manual", f"scaled to {cmd.replicas}; the HPA will "
                      "re-evaluate at its next sync", "warning", replicas=cmd.replicas)
        return None

    def _cmd_set_speed(self, cmd: C.SetSpeed) -> str | None:
        self.speed = cmd.speed
        return None

    def _cmd_pause(self, cmd: C.Pause) -> str | None:
        self.paused = (not self.paused) if cmd.paused is None else cmd.paused
        return None

    def _cmd_backup(self, cmd: C.Backup) -> str | None:
        return self.db.start_backup(self.t, cmd.node, "requested")

    def _cmd_restart_node(self, cmd: C.RestartNode) -> str | None:
        return self.db.restart(self.t, cmd.node)

    def _cmd_crash_node(self, cmd: C.CrashNode) -> str | None:
        return self.db.crash(self.t, cmd.node)

    def _cmd_failover(self, cmd: C.Failover) -> str | None:
        return self.db.switchover(self.t, cmd.target)

    def _cmd_ack_alert(self, cmd: C.AckAlert) -> str | None:
        done = self.alerts.acknowledge(cmd.alert)
        return None if done else f"no unacknowledged firing alert matches '{cmd.alert}'"

    # ------------------------------------------------------------------ aggregates & snapshot

    def _scaler_label(self) -> str:
        mode = self.profile.scaling.mode
        if self.predictive is not None:
            return self.predictive.label()
        if self.scaler == "hpa":
            return "HPA" + (" (predictive mode: set scaler: predictive)" if mode == "predictive"
                            else "")
        return "manual"

    def _aggregate(self, ft, dbr) -> Aggregates:
        fleet = self.fleet
        server = self.profile.app.server
        ready = fleet.ready_count()
        total = len(fleet)
        dt = self.dt
        queued = fleet.queue_total()
        if ft is not None:
            reset = (fleet.reset_sum - self._reset_seen) / dt
            self._reset_seen = fleet.reset_sum
            failed = (ft.errored + ft.timed_out + ft.rejected + reset) * dt
            self.offered_total += ft.offered * dt
            self.failed_total += failed
            self.served_total += ft.served * dt
            kt = self.kind_totals
            kt[0] += ft.rejected * dt
            kt[1] += ft.timed_out * dt
            kt[2] += reset * dt
            offered, served, errored = ft.offered, ft.served, ft.errored
            timed_out, rejected, capacity = ft.timed_out, ft.rejected, ft.capacity
            p50, p99, mean = ft.p50_ms, ft.p99_ms, ft.mean_ms
            cpu, mem_mb = ft.cpu, ft.memory_mb
            if p99 <= self.profile.slo.p99_latency_ms:
                self.p99_ok_ticks += 1
        else:
            offered = served = errored = timed_out = rejected = reset = capacity = 0.0
            p50 = p99 = mean = cpu = mem_mb = 0.0
        bad = errored + timed_out + rejected + reset
        err_rate = min(1.0, bad / offered) if offered > 0 else (1.0 if bad > 0 else 0.0)
        slo = self.profile.slo
        budget_requests = slo.error_budget * self.profile.traffic.baseline_rps * slo.window_days \
            * DAY
        burned = self.failed_total / budget_requests if budget_requests > 0 else 0.0
        hour_off, hour_fail = self.history.window_totals(HOUR, self.offered_total,
                                                         self.failed_total)
        burn = (hour_fail / hour_off) / slo.error_budget if hour_off > 0 else 0.0
        availability = 1.0 - self.failed_total / self.offered_total if self.offered_total else 1.0
        db = self.db
        primary = db.primary()
        nodes = db.nodes
        # The lag maxima in one pass over the nodes (the comparisons max() makes, in order).
        lag_b = lag_s = None
        for n in nodes:
            if n.up:
                v = n.lag_bytes
                if lag_b is None or v > lag_b:
                    lag_b = v
                v = n.lag_seconds
                if lag_s is None or v > lag_s:
                    lag_s = v
        t = self.t
        # Positional, in the field order of Aggregates (keywords cost ~40% more to match).
        return Aggregates(
            ready, total, self.desired,
            offered, served, errored, timed_out, rejected, reset,
            p50, p99, mean, err_rate,
            cpu, mem_mb * 100.0 / server.memory_request_mb,
            float(_max(fleet.disk_gb)) * 100.0 / server.disk_gb if total else 0.0,
            offered * server.request_kb_in * 8.0,
            served * server.response_kb_out * 8.0,
            primary.name if primary is not None and primary.up else None,
            bool(db.writable(t)),
            0.0 if lag_b is None else lag_b,
            0.0 if lag_s is None else lag_s,
            sum([n.connections for n in nodes]), sum([n.qps for n in nodes]),
            self.cache.hit_ratio if self.cache is not None else None,
            self.build_time_s,
            availability, burned, burn,
            db.lost_writes,
            db.restore_point_age(t),
            self.offered_total, self.failed_total, self.served_total, queued, capacity,
            self.kind_totals[0], self.kind_totals[1], self.kind_totals[2],
            self.predictive.forecast_rps if self.predictive is not None else None,
        )

    def clock(self, t: float | None = None) -> str:
        t_abs = self.t0_abs + (self.t if t is None else t)
        day = int(t_abs // DAY) + 1
        rem = int(t_abs % DAY)
        return f"Day {day} {rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}"

    def health(self, agg: Aggregates | None = None) -> str:
        """ok, degraded or critical: what the header's health light shows."""
        agg = self.agg if agg is None else agg
        firing = [a for a in self.alerts.views if a.state == "firing"]
        if not agg.db_writable or agg.ready == 0 or any(a.severity == "critical"
                                                           for a in firing) \
                or agg.error_rate > 0.05:
            return "critical"
        if firing or agg.p99_ms > self.profile.slo.p99_latency_ms or agg.error_rate > 0.01:
            return "degraded"
        return "ok"

    def _build_snapshot(self, agg: Aggregates) -> Snapshot:
        return Snapshot(
            tick=self.tick, t=self.t, clock=self.clock(), profile=self.profile.name,
            environment=self.profile.environment, scaler=self._scaler_label(),
            scaling_mode=self.profile.scaling.mode, agg=agg, fleet=self.fleet.view(self.t),
            versions=tuple(self.versions), regions=tuple(self.profile.app.regions),
            db=self.db.views(self.t, self.profile.database.max_connections),
            cache=self.cache.view() if self.cache is not None else None,
            alerts=self.alerts.views, events=self.last_events,
            extensions={c.state_key: c.state() for c in self.controllers},
            last_event_seq=self.events.last_seq, hpa=dict(self.hpa_info),
            health=self.health(agg),
        )


def _names_msg(names: list[str], verb: str) -> str:
    if len(names) == 1:
        return f"{names[0]} {verb}"
    shown = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
    return f"{len(names)} servers {verb}: {shown}"
