"""The database layer: PostgreSQL nodes, replication, Patroni-like failover and backups.

A handful of nodes, so plain Python floats (cheaper than numpy at this size). Timings follow
Patroni's defaults and rules (see shared/reference/sim_semantics.md §4): a dead leader's key
expires between ttl - loop_wait and ttl after its last renewal, replicas notice on their own loop,
only a replica within `maximum_lag_on_failover` may be promoted, writes fail from the crash until
promotion plus rerouting, and WAL the promoted replica had not received is lost.
Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from devsim_tui.config.schema import DatabaseSpec
from devsim_tui.sim.snapshot import DBNodeView

NETWORK_DELAY_S = 0.02  # WAL in flight to a healthy replica
SYNC_RTT_S = 0.001  # round trip to a synchronous standby in the same region
RESTART_SECONDS = 20.0  # crash recovery of a restarted node
PROMOTE_MAX_SECONDS = 2.0
SWITCHOVER_SECONDS = 3.0  # planned: checkpoint, demote, promote
WAL_BYTES_PER_KB = 1024.0

Emit = Callable[..., object]


@dataclass
class Node:
    name: str
    role: str  # primary | replica | multi-master
    region: str
    state: str = "running"  # running | crashed | restarting
    lag_bytes: float = 0.0
    lag_seconds: float = 0.0
    qps: float = 0.0
    read_qps: float = 0.0
    write_qps: float = 0.0
    cpu: float = 0.0
    connections: int = 0
    data_gb: float = 0.0
    restart_until: float = 0.0
    loop_phase: float = 0.0  # Patroni's HA loop runs at loop_phase + k * loop_wait
    backup_until: float | None = None
    lag_factor: float = 1.0  # < 1 slows WAL apply (replica faults)
    slow_factor: float = 1.0  # > 1 slows queries (lock contention, slow queries)
    unreachable: bool = False  # chaos: partitioned from the app tier (Patroni still sees it)

    @property
    def up(self) -> bool:
        return self.state == "running"


@dataclass
class FailoverState:
    crashed_at: float
    old_primary: str
    expires_at: float
    lag_at_crash: dict[str, float]
    candidate: str | None = None
    promote_at: float | None = None
    reroute_at: float | None = None
    blocked_reported: bool = False


@dataclass
class DBTickResult:
    """What the app tier sees of the database this tick."""

    read_fail: float  # fraction of reads that fail
    write_fail: float  # fraction of writes that fail
    query_ms: float  # mean query latency
    timeout_fail: float  # fraction of queries failing from saturation


@dataclass
class Database:
    spec: DatabaseSpec
    rng: np.random.Generator
    emit: Emit
    nodes: list[Node] = field(default_factory=list)
    failover: FailoverState | None = None
    write_pause_until: float = 0.0  # planned switchover gap
    last_backup_t: float | None = None
    backup_running_until: float | None = None
    backup_started_t: float = 0.0
    lost_writes: float = 0.0
    failed_writes: float = 0.0
    wal_rate_bps: float = 0.0
    partitioned: bool = False  # app tier cannot reach the database (chaos)

    @classmethod
    def build(cls, spec: DatabaseSpec, rng: np.random.Generator, emit: Emit,
              start_t_abs: float) -> Database:
        db = cls(spec=spec, rng=rng, emit=emit)
        regions = spec.regions or ["local"]
        prefix = "pg"
        for i in range(spec.nodes):
            if spec.topology == "multi-master":
                role = "multi-master"
            else:
                role = "primary" if i == 0 else "replica"
            db.nodes.append(Node(
                name=f"{prefix}-{i + 1}", role=role, region=regions[i % len(regions)],
                data_gb=spec.data_gb,
                loop_phase=float(rng.uniform(0, spec.failover.loop_wait)),
            ))
        # Restore point at start: the last scheduled daily backup, the archive for continuous,
        # none yet for manual backups.
        mode = spec.backup.mode
        if mode == "daily":
            since = (start_t_abs - spec.backup.schedule_hour * 3600.0) % 86400.0
            db.last_backup_t = -since
        elif mode == "continuous":
            db.last_backup_t = 0.0
        return db

    # ------------------------------------------------------------------ queries

    def node(self, name: str) -> Node | None:
        if name == "primary":
            return self.primary()
        return next((n for n in self.nodes if n.name == name), None)

    def primary(self) -> Node | None:
        return next((n for n in self.nodes if n.role == "primary"), None)

    def writable(self, t: float) -> list[Node]:
        if self.partitioned or t < self.write_pause_until:
            return []
        if self.spec.topology == "multi-master":
            return [n for n in self.nodes if n.up and not n.unreachable]
        p = self.primary()
        if p is None or not p.up or p.unreachable:
            return []
        if self.failover is not None and self.failover.reroute_at is not None:
            return []  # promoted but the proxy still points at the old primary
        return [p]

    def readable(self) -> list[Node]:
        if self.partitioned:
            return []
        return [n for n in self.nodes if n.up and not n.unreachable]

    def sync_standby(self) -> Node | None:
        """Patroni's synchronous standby (synchronous_mode): the first running replica."""
        if not self.spec.failover.synchronous_mode or self.spec.topology != "primary-replica":
            return None
        return next((n for n in self.nodes if n.role == "replica" and n.up), None)

    def restore_point_age(self, t: float) -> float | None:
        if self.spec.backup.mode == "continuous":
            step = self.spec.backup.archive_timeout_seconds or 60.0
            return t - math.floor(t / step) * step
        if self.last_backup_t is None:
            return None
        return t - self.last_backup_t

    # ------------------------------------------------------------------ commands

    def crash(self, t: float, name: str) -> str | None:
        """Crash a node. Returns an error message, or None."""
        node = self.node(name)
        if node is None:
            return f"no database node '{name}'"
        if not node.up:
            return f"{node.name} is already {node.state}"
        node.state = "crashed"
        node.qps = node.read_qps = node.write_qps = node.cpu = 0.0
        node.connections = 0
        self.emit(t, "db.node.crashed", f"{node.name} ({node.role}) crashed", "critical",
                  node.name, role=node.role)
        if node.role == "primary" and self.spec.topology == "primary-replica":
            self._start_failover(t, node)
        return None

    def _start_failover(self, t: float, node: Node) -> None:
        f = self.spec.failover
        if not f.enabled:
            self.emit(t, "db.failover.disabled", "failover disabled: writes fail until the "
                      "primary is restarted", "critical", node.name)
            return
        # The leader renewed its key on its last loop; the key expires ttl after that renewal.
        last_renew = node.loop_phase + math.floor((t - node.loop_phase) / f.loop_wait) * f.loop_wait
        expires = last_renew + f.ttl
        self.failover = FailoverState(
            crashed_at=t, old_primary=node.name, expires_at=expires,
            lag_at_crash={n.name: n.lag_bytes for n in self.nodes if n.role == "replica"},
        )

    def restart(self, t: float, name: str) -> str | None:
        node = self.node(name)
        if node is None:
            return f"no database node '{name}'"
        if node.state == "restarting":
            return f"{node.name} is already restarting"
        node.state = "restarting"
        node.restart_until = t + RESTART_SECONDS
        self.emit(t, "db.node.restarting", f"{node.name} restarting (crash recovery)", "info",
                  node.name)
        return None

    def switchover(self, t: float, target: str | None) -> str | None:
        if self.spec.topology != "primary-replica":
            return f"switchover needs a primary-replica cluster, this one is {self.spec.topology}"
        if self.failover is not None:
            return "a failover is in progress"
        primary = self.primary()
        if primary is None or not primary.up:
            return "no running primary to switch over from"
        candidates = [n for n in self.nodes if n.role == "replica" and n.up]
        if target is not None:
            candidates = [n for n in candidates if n.name == target]
            if not candidates:
                return f"'{target}' is not a running replica"
        if not candidates:
            return "no running replica to switch over to"
        new = min(candidates, key=lambda n: (n.lag_bytes, n.name))
        # Planned: the old primary stops taking writes, the target catches up, nothing is lost.
        primary.role, new.role = "replica", "primary"
        new.lag_bytes = new.lag_seconds = 0.0
        self.write_pause_until = t + SWITCHOVER_SECONDS
        self.emit(t, "db.switchover", f"switchover {primary.name} -> {new.name} (writes paused "
                  f"{SWITCHOVER_SECONDS:.0f}s, no data lost)", "warning", new.name,
                  old_primary=primary.name, new_primary=new.name)
        return None

    def start_backup(self, t: float, name: str | None, reason: str) -> str | None:
        if self.backup_running_until is not None:
            return "a backup is already running"
        node = self.node(name) if name else self._backup_source()
        if node is None or not node.up:
            return f"no running node to back up{f' named {name}' if name else ''}"
        self.backup_running_until = t + self.spec.backup.duration_seconds
        self.backup_started_t = t
        node.backup_until = self.backup_running_until
        self.emit(t, "db.backup.started", f"base backup of {node.name} started ({reason})",
                  "info", node.name, reason=reason)
        return None

    def _backup_source(self) -> Node | None:
        """Back up from a replica when there is one, to spare the primary."""
        up = [n for n in self.nodes if n.up]
        replicas = [n for n in up if n.role == "replica"]
        if replicas:
            return replicas[-1]
        return up[0] if up else None

    # ------------------------------------------------------------------ tick

    def step(self, t: float, dt: float, t_abs: float, read_qps: float, write_qps: float,
             app_servers: int) -> DBTickResult:
        spec = self.spec
        self._lifecycle(t)
        self._failover_progress(t)
        self._backups(t, t_abs)

        readable = self.readable()
        writable = self.writable(t)
        read_fail = 0.0 if readable else 1.0
        write_fail = 0.0 if writable else 1.0
        if not writable and write_qps > 0:
            self.failed_writes += write_qps * dt

        for n in self.nodes:
            n.read_qps = n.write_qps = 0.0
        if readable:
            # Reads prefer replicas; the primary serves reads only when it is alone.
            readers = [n for n in readable if n.role != "primary"] or readable
            per = read_qps / len(readers)
            for n in readers:
                n.read_qps = per
        if writable:
            per = write_qps / len(writable)
            for n in writable:
                n.write_qps = per
        worst_rho = 0.0
        mean_ms = 0.0
        total = read_qps + write_qps
        pool_total = app_servers * spec.pool_size
        up_nodes = max(len(readable), 1)
        for n in self.nodes:
            if not n.up:
                continue
            n.qps = n.read_qps + n.write_qps
            load = n.qps * n.slow_factor
            rho = load / spec.capacity_qps + (0.1 if n.backup_until else 0.0)
            n.cpu = min(rho, 1.0)
            worst_rho = max(worst_rho, rho)
            q_ms = spec.query_ms * n.slow_factor / max(1.0 - min(rho, 0.98), 0.02)
            if total > 0:
                mean_ms += q_ms * n.qps / total
            active = n.qps * q_ms / 1000.0  # Little's law: connections busy at once
            n.connections = int(min(spec.max_connections,
                                    max(active, pool_total / up_nodes * 0.25)))
            n.data_gb += n.write_qps * dt * 1.0e-6  # ~1 KB retained per write
        if self.sync_standby() is not None and write_qps > 0 and total > 0:
            # Each commit waits one extra round trip to the synchronous standby.
            mean_ms += 1000.0 * SYNC_RTT_S * write_qps / total
        timeout_fail = max(0.0, 1.0 - 1.0 / worst_rho) if worst_rho > 1.0 else 0.0
        self._replication(t, dt, write_qps)
        return DBTickResult(read_fail, write_fail, mean_ms or spec.query_ms, timeout_fail)

    def _lifecycle(self, t: float) -> None:
        for n in self.nodes:
            if n.state == "restarting" and t >= n.restart_until:
                n.state = "running"
                primary = self.primary()
                if n.role == "primary" and self.failover and self.failover.candidate:
                    n.role = "replica"  # a new leader exists: rejoin it (pg_rewind)
                if n.role == "primary":
                    self.failover = None  # came back before anyone was promoted
                    self.emit(t, "db.node.recovered", f"{n.name} back as primary", "info", n.name)
                else:
                    n.lag_bytes = max(n.lag_bytes, self.wal_rate_bps * RESTART_SECONDS)
                    self.emit(t, "db.node.recovered",
                              f"{n.name} rejoined as replica of "
                              f"{primary.name if primary else '?'}", "info", n.name)

    def _failover_progress(self, t: float) -> None:
        fo = self.failover
        if fo is None:
            return
        f = self.spec.failover
        if fo.candidate is None and t >= fo.expires_at:
            # Each replica acts on its own loop after the key has expired; the first loop to
            # run with an eligible candidate takes the lock.
            eligible = [n for n in self.nodes if n.role == "replica" and n.up
                        and fo.lag_at_crash.get(n.name, n.lag_bytes) <= f.maximum_lag_on_failover]
            if f.synchronous_mode:
                # Only the synchronous standby may be promoted, so no acknowledged commit is lost.
                eligible = [n for n in eligible if fo.lag_at_crash.get(n.name) == 0.0]
            if not eligible:
                if not fo.blocked_reported:
                    fo.blocked_reported = True
                    self.emit(t, "db.failover.blocked",
                              "leader key expired but no replica is within "
                              f"maximum_lag_on_failover ({f.maximum_lag_on_failover} B): "
                              "writes fail until the primary is restarted", "critical")
                return
            best = min(eligible, key=lambda n: (fo.lag_at_crash.get(n.name, n.lag_bytes), n.name))
            first_loop = min(
                n.loop_phase + math.ceil((fo.expires_at - n.loop_phase) / f.loop_wait) * f.loop_wait
                for n in eligible)
            if t < first_loop:
                return
            fo.candidate = best.name
            fo.promote_at = t + float(self.rng.uniform(0.5, PROMOTE_MAX_SECONDS))
            self.emit(t, "db.failover.leader_expired",
                      f"leader key of {fo.old_primary} expired; {best.name} takes the lock",
                      "warning", best.name)
        if fo.candidate is not None and fo.promote_at is not None and t >= fo.promote_at:
            node = self.node(fo.candidate)
            old = self.node(fo.old_primary)
            assert node is not None and old is not None
            lost_bytes = fo.lag_at_crash.get(node.name, 0.0)
            lost = lost_bytes / (self.spec.wal_kb_per_write * WAL_BYTES_PER_KB)
            self.lost_writes += lost
            old.role, node.role = "replica", "primary"
            for n in self.nodes:
                if n.role == "replica" and n is not old:
                    n.lag_bytes = max(0.0, fo.lag_at_crash.get(n.name, n.lag_bytes) - lost_bytes)
            node.lag_bytes = node.lag_seconds = 0.0
            fo.reroute_at = t + self.spec.failover.reroute_seconds
            fo.promote_at = None
            self.emit(t, "db.failover.promoted",
                      f"{node.name} promoted to primary {t - fo.crashed_at:.0f}s after the crash;"
                      f" {lost:.0f} unreplicated writes lost ({lost_bytes / 1024:.0f} KiB)",
                      "critical" if lost > 0 else "warning", node.name,
                      old_primary=fo.old_primary, lost_writes=round(lost, 1),
                      lost_bytes=round(lost_bytes), seconds=round(t - fo.crashed_at, 1))
        if fo.reroute_at is not None and t >= fo.reroute_at:
            self.emit(t, "db.failover.completed",
                      f"writes flowing to {fo.candidate} again; write outage "
                      f"{t - fo.crashed_at:.0f}s", "info", fo.candidate,
                      rto_seconds=round(t - fo.crashed_at, 1))
            self.failover = None

    def _backups(self, t: float, t_abs: float) -> None:
        b = self.spec.backup
        if self.backup_running_until is not None and t >= self.backup_running_until:
            self.backup_running_until = None
            self.last_backup_t = self.backup_started_t
            for n in self.nodes:
                n.backup_until = None
            self.emit(t, "db.backup.completed",
                      f"base backup completed (restore point {self.backup_started_t:.0f}s)",
                      "info")
        if b.mode == "daily":
            day_t = t_abs % 86400.0
            at = b.schedule_hour * 3600.0
            if at <= day_t < at + 1.0 and self.backup_running_until is None:
                self.start_backup(t, None, "daily schedule")

    def _replication(self, t: float, dt: float, write_qps: float) -> None:
        spec = self.spec
        wal = write_qps * spec.wal_kb_per_write * WAL_BYTES_PER_KB
        self.wal_rate_bps = wal
        apply = spec.replication_bandwidth_mb_s * 1024 * 1024
        primary_up = any(n.up for n in self.nodes if n.role in ("primary", "multi-master"))
        sync = self.sync_standby()
        for n in self.nodes:
            if n.role == "primary":
                n.lag_bytes = n.lag_seconds = 0.0
                continue
            if not n.up:
                if primary_up:
                    n.lag_bytes += wal * dt  # falls behind while down
                    n.lag_seconds += dt
                continue
            if not primary_up:
                continue  # nothing new to receive; keeps what it had
            if n is sync:
                # A commit returns only once the synchronous standby has it: it never lags.
                n.lag_bytes = n.lag_seconds = 0.0
                continue
            floor = wal * NETWORK_DELAY_S
            n.lag_bytes = max(floor, n.lag_bytes + (wal - apply * n.lag_factor) * dt)
            n.lag_seconds = n.lag_bytes / wal if wal > 0 else 0.0

    def views(self, t: float, max_connections: int) -> tuple[DBNodeView, ...]:
        out = []
        for n in self.nodes:
            state = n.state
            if n.up and n.backup_until is not None:
                state = "backing-up"
            if n.up and self.failover and self.failover.candidate == n.name:
                state = "promoting"
            age = self.restore_point_age(t)
            out.append(DBNodeView(
                name=n.name, role=n.role, state=state, region=n.region,
                connections=n.connections, max_connections=max_connections, qps=n.qps,
                read_qps=n.read_qps, write_qps=n.write_qps, cpu=n.cpu,
                disk_pct=100.0 * n.data_gb / self.spec.disk_gb, lag_bytes=n.lag_bytes,
                lag_seconds=n.lag_seconds, last_backup_age_s=age,
            ))
        return tuple(out)
