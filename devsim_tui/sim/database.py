"""The database layer: PostgreSQL nodes, replication, Patroni-like failover and backups.

A handful of nodes, so plain Python floats (cheaper than numpy at this size). Timings follow
Patroni's defaults and rules (https://patroni.readthedocs.io/en/latest/dynamic_configuration.html,
.../replication_modes.html): the leader renews its key on every HA loop, so a dead leader's key
expires between ttl - loop_wait and ttl after the crash; with a watching DCS (etcd3, Kubernetes)
the replicas are woken by the key's deletion (`dcs_watch`), else they notice on their own next
loop; only a replica within `maximum_lag_on_failover` (in synchronous_mode: only the synchronous
standby) may be promoted; writes fail from the crash until promotion plus rerouting; WAL the
promoted replica had not received is lost. While the DCS is unreachable the leader retries
its key for `retry_timeout`, then demotes itself to read-only (split-brain fence) until the DCS
is back and a node wins the leader race (Patroni, dynamic_configuration: "DCS or network issues
shorter than this will not cause Patroni to demote the leader"). Under synchronous_mode a crashed synchronous standby
stalls commits until the leader's next HA loop names another one (or, unless
synchronous_mode_strict, turns synchronous replication off).

Replication lag is the network transit to the replica plus WAL apply, which queues as the write
load approaches the replica's apply rate, plus any backlog. The data disk holds the live rows
(inserts, minus the rows a retention job purges), dead-tuple space autovacuum makes reusable
(files never shrink), and WAL (max_wal_size, plus what replication slots keep for a replica
that is down). Never imports the UI.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from devsim_tui.config.schema import DatabaseSpec
from devsim_tui.sim.backup import Backups
from devsim_tui.sim.mesh import Mesh
from devsim_tui.sim.queryplan import QueryPlanner
from devsim_tui.sim.snapshot import DBNodeView

LAN_RTT_S = 0.0002  # round trip between two nodes in the same region (zone)
LAG_JITTER_SIGMA = 0.25  # log-normal spread of the per-tick transit and apply delay
RESTART_SECONDS = 20.0  # crash recovery of a restarted node
PROMOTE_MIN_SECONDS = 0.5
PROMOTE_MAX_SECONDS = 2.0
SWITCHOVER_SECONDS = 3.0  # planned: checkpoint, demote, promote
WAL_BYTES_PER_KB = 1024.0
GB = 1024.0 ** 3
KB_PER_GB = 1024.0 ** 2
SEED_ROWS = 250_000  # seed_test_data's fixture dataset (1 KiB rows by default: 244 MB)
PURGE_MAX_S = 3600.0  # the retention job runs hourly (more often for retentions under a day)
AUTOVACUUM_THRESHOLD_ROWS = 50  # autovacuum_vacuum_threshold's default

Emit = Callable[..., object]


@dataclass
class Node:
    name: str
    role: str  # primary | replica | multi-master
    region: str
    state: str = "running"  # running | crashed | restarting
    lag_bytes: float = 0.0  # WAL the node has not replayed (backlog + in flight)
    lag_seconds: float = 0.0  # how far behind the primary its data is
    backlog_bytes: float = 0.0  # WAL waiting beyond the normal flow (down, or apply too slow)
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
    apply_delay_s: float = 0.0  # WAL apply queueing + backlog: what a write waits to be applied
    held_bytes: float = 0.0  # split brain: the other side's WAL it cannot receive yet
    rejoined_at: float | None = None  # multi-master: back, replaying what it missed (no writes)

    @property
    def up(self) -> bool:
        return self.state == "running"

    @property
    def shown_lag_seconds(self) -> float | None:
        """The lag a monitor sees: none for a node that is down (no replication connection,
        no pg_last_xact_replay_timestamp to read)."""
        return self.lag_seconds if self.up else None

    @property
    def shown_lag_bytes(self) -> float | None:
        return self.lag_bytes if self.up else None


@dataclass
class FailoverState:
    crashed_at: float
    old_primary: str
    expires_at: float
    lag_at_crash: dict[str, float]
    sync_at_crash: str | None = None
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
    seeded_rows: int = 0  # seed_test_data's fixture rows
    backups: Backups | None = None  # archiving, base backups, retention, restore (backup.py)
    planner: QueryPlanner | None = None  # plans and the optimiser (queryplan.py)
    backup_running_until: float | None = None
    backup_started_t: float = 0.0
    lost_writes: float = 0.0
    failed_writes: float = 0.0
    wal_rate_bps: float = 0.0
    partitioned: bool = False  # app tier cannot reach the database (chaos)
    client_timeout_s: float = math.inf  # the app gives up on a query after this
    # synchronous_mode: the standby named in synchronous_standby_names, and a commit stall
    sync_name: str | None = None
    sync_lost_at: float | None = None  # the named standby died: commits wait from here
    sync_resume_at: float | None = None  # when the leader's HA loop re-points (None: not yet)
    sync_stalls: list = field(default_factory=list)  # (started, seconds) of finished stalls
    stalled_writes: float = 0.0  # commits that timed out waiting for a standby
    # disk: live rows, dead tuples and file size (GB), the same on every node
    static_gb: float = 0.0
    rolling_bins: deque = field(default_factory=deque)  # GB inserted per purge interval
    rolling_gb: float = 0.0
    dead_gb: float = 0.0
    file_gb: float = 0.0
    purged_gb: float = 0.0
    vacuums: int = 0
    _bin_index: int | None = None
    # DCS outage (chaos dcs-outage): the leader cannot renew its key
    dcs_down_since: float | None = None
    demote_at: float | None = None  # the leader's retries run out here (None: not scheduled)
    demoted: str | None = None  # the ex-leader, read-only until a leader race is won
    demoted_at: float = 0.0
    race_after: float | None = None  # the DCS came back here: the next HA loops race
    race_promote_at: float | None = None
    race_winner: str | None = None
    mesh: Mesh | None = None  # multi-master: conflicts, split brain, geo-redundancy (mesh.py)

    @classmethod
    def build(cls, spec: DatabaseSpec, rng: np.random.Generator, emit: Emit,
              start_t_abs: float, client_timeout_s: float = math.inf) -> Database:
        db = cls(spec=spec, rng=rng, emit=emit, client_timeout_s=client_timeout_s)
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
        # Then a stream of its own (spawning does not advance the engine's): the database's
        # per-tick noise never shifts the random draws of the fleet or the releases.
        db.rng = rng = rng.spawn(1)[0]
        if spec.failover.synchronous_mode and spec.topology == "primary-replica":
            db.sync_name = db.nodes[1].name
        if spec.topology == "multi-master":
            db.mesh = Mesh(spec, db.nodes, rng.spawn(1)[0], emit, db._one_way)
        sf = spec.autovacuum_vacuum_scale_factor
        # Start in the steady state of autovacuum: files sized for live + the dead-tuple
        # headroom, the dead space somewhere in its cycle.
        db.file_gb = spec.data_gb * (1.0 + sf)
        db.dead_gb = spec.data_gb * sf * float(rng.uniform(0.0, 1.0))
        db.static_gb = spec.data_gb
        for n in db.nodes:
            n.data_gb = db.file_gb + spec.max_wal_size_gb
        if spec.seed_test_data:
            db.seed_test_data(0.0)
        # Restore points at start: the scheduled base backups of the retention window (daily,
        # continuous; continuous also has its WAL archived up to t=0), none for manual.
        db.planner = QueryPlanner(spec.query_optimization, emit)
        db.backups = Backups(spec, emit)
        db.backups.seed_history(start_t_abs, db.live_gb)
        db.backups.archive_points.append((0.0, 0.0))
        return db

    def seed_test_data(self, t: float) -> None:
        """Development's `seed_test_data`: a fixture dataset loaded at start (like a
        `db:seed` task), so the tables the app reads are not empty."""
        gb = SEED_ROWS * self.spec.row_kb / KB_PER_GB
        self.seeded_rows = SEED_ROWS
        self.static_gb += gb
        self.file_gb += gb
        for n in self.nodes:
            n.data_gb += gb
        self.emit(t, "db.seeded", f"test data seeded: {SEED_ROWS:,} rows ({gb * 1024:.0f} MB)",
                  "info", rows=SEED_ROWS, gb=gb)

    # ------------------------------------------------------------------ queries

    def node(self, name: str) -> Node | None:
        if name == "primary":
            return self.primary()
        return next((n for n in self.nodes if n.name == name), None)

    def primary(self) -> Node | None:
        return next((n for n in self.nodes if n.role == "primary"), None)

    def writable(self, t: float) -> list[Node]:
        if self.partitioned or t < self.write_pause_until or self.restoring:
            return []
        if self.spec.topology == "multi-master":
            # A rejoined node takes writes once caught up: writes on stale rows would conflict.
            nodes = [n for n in self.nodes if n.up and not n.unreachable
                     and n.rejoined_at is None]
            return self.mesh.quorate(nodes) if self.mesh is not None else nodes
        p = self.primary()
        if p is None or not p.up or p.unreachable:
            return []
        if self.failover is not None and self.failover.reroute_at is not None:
            return []  # promoted but the proxy still points at the old primary
        return [p]

    def readable(self) -> list[Node]:
        if self.partitioned or self.restoring:
            return []
        return [n for n in self.nodes if n.up and not n.unreachable]

    def sync_standby(self) -> Node | None:
        """Patroni's synchronous standby (synchronous_mode): the node named in
        synchronous_standby_names, while it is running."""
        if self.sync_name is None:
            return None
        n = self.node(self.sync_name)
        return n if n is not None and n.up and n.role == "replica" else None

    @property
    def commits_stalled(self) -> bool:
        return self.sync_lost_at is not None

    def restore_point_age(self, t: float) -> float | None:
        """Age of the newest point the data can be recovered to: the end of the newest
        archived WAL segment (continuous), else of the newest base backup."""
        rp = self.backups.restore_point_t()
        return None if rp is None else t - rp

    @property
    def restoring(self) -> bool:
        return self.backups.restore is not None

    # ------------------------------------------------------------------ commands

    def crash(self, t: float, name: str) -> str | None:
        """Crash a node. Returns an error message, or None."""
        node = self.node(name)
        if node is None:
            return f"no database node '{name}'"
        if not node.up:
            return f"{node.name} is already {node.state}"
        if self.mesh is not None:
            self.mesh.node_down(t, node)
        node.state = "crashed"
        node.rejoined_at = None
        node.qps = node.read_qps = node.write_qps = node.cpu = 0.0
        node.connections = 0
        self.emit(t, "db.node.crashed", f"{node.name} ({node.role}) crashed", "critical",
                  node.name, role=node.role)
        if node.role == "primary" and self.spec.topology == "primary-replica":
            self._start_failover(t, node)
        elif node.name == self.sync_name and self.sync_lost_at is None:
            self._lose_sync_standby(t, node)
        return None

    def _next_loop(self, node: Node, after: float) -> float:
        """The first run of `node`'s Patroni HA loop strictly after `after`."""
        lw = self.spec.failover.loop_wait
        return node.loop_phase + (math.floor((after - node.loop_phase) / lw + 1e-9) + 1) * lw

    def _lose_sync_standby(self, t: float, node: Node) -> None:
        """The synchronous standby died without warning: every commit waits for it until the
        leader's next HA loop re-points synchronous_standby_names (Patroni docs, synchronous
        mode: "commits will block until next iteration of Patroni runs")."""
        primary = self.primary()
        if primary is None or not primary.up or self.failover is not None:
            return
        self.sync_lost_at = t
        self.sync_resume_at = None
        loop = self._next_loop(primary, t)
        self.emit(t, "db.sync.standby_lost",
                  f"synchronous standby {node.name} lost: commits on {primary.name} wait until "
                  f"Patroni's next HA loop ({loop - t:.0f}s)", "critical", node.name,
                  leader_loop_at=round(loop, 1))

    def _pick_sync(self, exclude: str | None = None) -> Node | None:
        """The running replica furthest ahead (Patroni: "the cluster members available for
        sync that are furthest ahead in replication are picked")."""
        cands = [n for n in self.nodes if n.role == "replica" and n.up and n.name != exclude]
        return min(cands, key=lambda n: (n.lag_bytes, n.name)) if cands else None

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
            # Only a standby published in /sync while commits were being acknowledged may be
            # promoted in synchronous_mode (a stall means the /sync one is gone).
            sync_at_crash=self.sync_name if self.sync_lost_at is None else None,
        )
        self.sync_lost_at = self.sync_resume_at = None

    def restart(self, t: float, name: str) -> str | None:
        node = self.node(name)
        if node is None:
            return f"no database node '{name}'"
        if node.state == "restarting":
            return f"{node.name} is already restarting"
        was_up = node.up
        if was_up and self.mesh is not None:
            self.mesh.node_down(t, node)
        node.state = "restarting"
        node.restart_until = t + RESTART_SECONDS
        self.emit(t, "db.node.restarting", f"{node.name} restarting (crash recovery)", "info",
                  node.name)
        if was_up and node.name == self.sync_name and self.sync_lost_at is None:
            # A standby shut down on purpose first asks the leader to release it from
            # synchronous duty: no commit waits (Patroni docs, synchronous mode).
            new = self._pick_sync(exclude=node.name)
            if new is None and self.spec.failover.synchronous_mode_strict:
                self._lose_sync_standby(t, node)
            else:
                self._set_sync(t, new, f"{node.name} restarting")
        return None

    def _set_sync(self, t: float, new: Node | None, why: str) -> None:
        old = self.sync_name
        self.sync_name = new.name if new is not None else None
        if new is not None:
            new.backlog_bytes = 0.0
            new.lag_bytes = 0.0
        if self.sync_name == old:
            return
        if new is None:
            self.emit(t, "db.sync.standalone", f"synchronous replication off ({why}): no "
                      "standby to wait for; commits are no longer replicated synchronously",
                      "warning")
        else:
            self.emit(t, "db.sync.standby_changed", f"{new.name} is the synchronous standby "
                      f"({why})", "info", new.name, previous=old)

    def switchover(self, t: float, target: str | None) -> str | None:
        if self.spec.topology != "primary-replica":
            return f"switchover needs a primary-replica cluster, this one is {self.spec.topology}"
        if self.failover is not None:
            return "a failover is in progress"
        if self.dcs_down_since is not None or self.demoted is not None:
            return "the DCS is unreachable or no leader holds the key: no switchover"
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
        self._dcs_progress(t)
        self._failover_progress(t)
        self._sync_progress(t, dt)
        self._backups(t, t_abs, dt)

        readable = self.readable()
        writable = self.writable(t)
        read_fail = 0.0 if readable else 1.0
        write_fail = 0.0 if writable else 1.0
        if writable and self.backups.dropped_at is not None:
            # Writes to the dropped table fail (relation does not exist) until a restore.
            write_fail = self.backups.dropped_share
            self.failed_writes += write_qps * dt * write_fail
        if not writable and write_qps > 0:
            self.failed_writes += write_qps * dt
        stall_fail, stall_wait_s = 0.0, 0.0
        if writable and self.commits_stalled:
            stall_fail, stall_wait_s = self._stall_effect(t, dt)
            write_fail = stall_fail
            self.stalled_writes += write_qps * dt * stall_fail
            self.failed_writes += write_qps * dt * stall_fail

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
        # The plans the queries run on: a regressed plan multiplies every node's work per query.
        self.planner.step(t, dt, (read_qps if readable else 0.0)
                          + (write_qps if writable else 0.0),
                          write_qps if writable else 0.0,
                          self.live_gb * KB_PER_GB / spec.row_kb)
        plan = self.planner.cost_factor
        pool_total = app_servers * spec.pool_size
        up_nodes = max(len(readable), 1)
        for n in self.nodes:
            if not n.up:
                continue
            n.qps = n.read_qps + n.write_qps
            load = n.qps * n.slow_factor * plan
            rho = load / spec.capacity_qps + (0.1 if n.backup_until else 0.0)
            n.cpu = min(rho, 1.0)
            worst_rho = max(worst_rho, rho)
            q_ms = spec.query_ms * n.slow_factor * plan / max(1.0 - min(rho, 0.98), 0.02)
            if total > 0:
                mean_ms += q_ms * n.qps / total
            active = n.qps * q_ms / 1000.0  # Little's law: connections busy at once
            n.connections = int(min(spec.max_connections,
                                    max(active, pool_total / up_nodes * 0.25)))
        if self.mesh is not None and writable and total > 0:
            # majority commit scope: each commit waits for the nearest majority of the nodes
            mean_ms += 1000.0 * self.mesh.quorum_wait_s(writable) * write_qps / total
        sync = self.sync_standby()
        if sync is not None and writable and write_qps > 0 and total > 0:
            # Each commit waits one round trip to the synchronous standby.
            mean_ms += 1000.0 * self._rtt_s(writable[0], sync) * write_qps / total
        if stall_wait_s > 0 and total > 0:
            # Commits that outlive the stall return late (the others time out, above).
            mean_ms += 1000.0 * stall_wait_s * write_qps / total
        timeout_fail = max(0.0, 1.0 - 1.0 / worst_rho) if worst_rho > 1.0 else 0.0
        committed = write_qps * (1.0 - write_fail) if writable else 0.0
        self.backups.step(t, dt, committed,
                          committed * spec.wal_kb_per_write * WAL_BYTES_PER_KB)
        self._replication(t, dt, write_qps if writable else 0.0)
        if self.mesh is not None:
            self.mesh.step(t, dt, self.live_gb * KB_PER_GB / spec.row_kb)
        self._disk(t, dt, write_qps if writable else 0.0)
        return DBTickResult(read_fail, write_fail, mean_ms or spec.query_ms, timeout_fail)

    # ------------------------------------------------------------------ regions

    def region_down(self, t: float, region: str) -> list[str]:
        """A region (cloud) outage takes its nodes down; a multi-master mesh first settles
        their unshipped writes (kept with geo_redundancy, else lost). Returns the nodes."""
        lost = self.mesh.region_down(t, region) if self.mesh is not None else 0.0
        self.lost_writes += lost
        crashed = []
        for node in self.nodes:
            if node.region == region and node.up:
                self.crash(t, node.name)
                crashed.append(node.name)
        if self.mesh is not None and not self.spec.geo_redundancy:
            for name in crashed:  # gone with the region: nothing of theirs left to merge
                self.mesh.stranded.pop(name, None)
        return crashed

    def region_up(self, t: float, names: list[str]) -> None:
        for name in names:
            n = self.node(name)
            if n is not None and not n.up:
                self.restart(t, name)

    def mesh_partition(self, t: float, region: str | None, cut: bool) -> str | None:
        """Cut the multi-master mesh between `region` and the rest, or heal it."""
        if self.mesh is None:
            return (f"a mesh partition needs a multi-master database, this one is "
                    f"{self.spec.topology}")
        if cut:
            return self.mesh.partition(t, region or self.nodes[-1].region)
        self.mesh.heal(t)
        for n in self.nodes:  # each side now replays what the other wrote meanwhile
            n.backlog_bytes += n.held_bytes
            n.held_bytes = 0.0
        return None

    # ------------------------------------------------------------------ DCS outage

    def dcs_outage(self, t: float, down: bool) -> str | None:
        """The DCS (etcd, Consul, ...) becomes unreachable (down) or reachable again. Returns
        an error message, or None."""
        if down:
            if self.spec.topology != "primary-replica":
                return (f"a DCS outage needs a Patroni primary-replica cluster, this one is "
                        f"{self.spec.topology}")
            if self.dcs_down_since is not None:
                return None
            self.dcs_down_since = t
            self.race_after = None
            rt = self.spec.failover.retry_timeout
            self.emit(t, "db.dcs.unreachable",
                      f"DCS unreachable: the leader retries its key for retry_timeout ({rt} s) "
                      "before it demotes itself", "warning", retry_timeout=rt)
            self._dcs_progress(t)
            return None
        if self.dcs_down_since is None:
            return None
        seconds = t - self.dcs_down_since
        self.dcs_down_since = self.demote_at = None
        if self.demoted is not None:
            self.race_after = t
        self.emit(t, "db.dcs.reachable",
                  f"DCS reachable again after {seconds:.0f} s" + (
                      f"; {self.demoted} is read-only until a node wins the leader race"
                      if self.demoted is not None else
                      "; the failover can take the leader lock" if self.failover is not None
                      else "; the leader kept its key"),
                  "info", seconds=round(seconds, 1))
        return None

    def _dcs_progress(self, t: float) -> None:
        """The leader's HA loop retries the leader key for retry_timeout from its first loop in
        the outage, then demotes itself (no failsafe_mode); once the DCS is back, the first HA
        loop of a running, caught-up node takes the key and it is promoted."""
        f = self.spec.failover
        if self.dcs_down_since is not None:
            p = self.primary()
            if p is None or not p.up or self.failover is not None:
                self.demote_at = None
                return
            if self.demote_at is None:
                start = max(self.dcs_down_since, t)
                self.demote_at = self._next_loop(p, start - 1e-6) + f.retry_timeout
            if t >= self.demote_at - 1e-9:
                self.demote_at = None
                p.role = "replica"  # Patroni restarts PostgreSQL read-only (a standby)
                self.demoted, self.demoted_at = p.name, t
                self.sync_lost_at = self.sync_resume_at = None
                self.emit(t, "db.leader.demoted",
                          f"{p.name} could not renew the leader key for retry_timeout "
                          f"({f.retry_timeout} s, {t - self.dcs_down_since:.0f} s into the DCS "
                          "outage): demoted to read-only to avoid split brain; writes fail "
                          "until the DCS is back and a leader race is won", "critical", p.name,
                          retry_timeout=f.retry_timeout,
                          seconds=round(t - self.dcs_down_since, 1))
            return
        if self.race_after is not None:
            if self.failover is not None or self.primary() is not None:
                self.race_after, self.demoted = None, None  # settled another way
                return
            # The healthiest nodes race: running and caught up with the read-only ex-leader.
            eligible = [n for n in self.nodes if n.up and n.role == "replica"
                        and n.lag_bytes <= min(1.0, f.maximum_lag_on_failover)]
            if not eligible:
                return
            first = min(eligible, key=lambda n: (self._next_loop(n, self.race_after), n.name))
            at = self._next_loop(first, self.race_after)
            if t < at - 1e-9:
                return
            self.race_after = None
            self.race_winner = first.name
            self.race_promote_at = at + float(self.rng.uniform(PROMOTE_MIN_SECONDS,
                                                               PROMOTE_MAX_SECONDS))
        if self.race_winner is not None and t >= self.race_promote_at:
            node = self.node(self.race_winner)
            old = self.demoted
            self.race_winner = self.race_promote_at = self.demoted = None
            if node is None or not node.up:
                return
            node.role = "primary"
            node.lag_bytes = node.lag_seconds = node.backlog_bytes = 0.0
            self.write_pause_until = t + f.reroute_seconds  # the proxy's health check
            self.emit(t, "db.leader.promoted",
                      f"{node.name} won the leader race and is primary"
                      f"{' again' if node.name == old else ''}; writes flow "
                      f"after the proxy check ({f.reroute_seconds:g} s), "
                      f"{t + f.reroute_seconds - self.demoted_at:.0f} s after the demotion",
                      "warning", node.name, old_primary=old,
                      write_outage_seconds=round(t + f.reroute_seconds - self.demoted_at, 1))

    # ------------------------------------------------------------------ synchronous standby

    def _stall_end(self) -> float:
        """When stalled commits will be released: the known resume time, else the leader's
        next HA loop (never, in strict mode with no standby to name)."""
        if self.sync_resume_at is not None:
            return self.sync_resume_at
        primary = self.primary()
        assert self.sync_lost_at is not None and primary is not None
        if self._pick_sync(exclude=self.sync_name) is None and \
                self.spec.failover.synchronous_mode_strict:
            return math.inf
        return self._next_loop(primary, self.sync_lost_at)

    def _stall_effect(self, t: float, dt: float) -> tuple[float, float]:
        """(share of this tick's commits that time out waiting, mean extra wait of the rest)
        for commits arriving spread over (t - dt, t]."""
        end = self._stall_end()
        k = 8
        fails, waits = 0, []
        for i in range(k):
            s = t - dt + (i + 0.5) * dt / k
            w = max(0.0, end - s)
            if w > self.client_timeout_s:
                fails += 1
            else:
                waits.append(w)
        return fails / k, (sum(waits) / len(waits) if waits else 0.0)

    def _sync_progress(self, t: float, dt: float) -> None:
        f = self.spec.failover
        if not f.synchronous_mode or self.spec.topology != "primary-replica":
            return
        primary = self.primary()
        if primary is None or not primary.up or self.failover is not None:
            return
        if self.sync_lost_at is not None:
            if self.sync_resume_at is None:
                loop = self._next_loop(primary, self.sync_lost_at)
                while loop + self.spec.failover.loop_wait <= t:
                    loop += self.spec.failover.loop_wait
                if t < loop:
                    return
                back = self.node(self.sync_name) if self.sync_name else None
                if back is not None and back.up and back.role == "replica":
                    new = back  # it came back and reconnected as the synchronous standby
                else:
                    new = self._pick_sync(exclude=self.sync_name)
                if new is not None:
                    apply = self.spec.replication_bandwidth_mb_s * 1024 * 1024 * new.lag_factor
                    catch_up = new.backlog_bytes / apply if apply > 0 else 0.0
                    self.sync_resume_at = loop + catch_up
                    self._set_sync(t, new, f"named by {primary.name}'s HA loop")
                elif not f.synchronous_mode_strict:
                    self.sync_resume_at = loop
                    self._set_sync(t, None, "no replica left")
                else:
                    return  # strict: commits wait until a standby streams again
            if t >= self.sync_resume_at - 1e-9:
                stall = self.sync_resume_at - self.sync_lost_at
                self.sync_stalls.append((self.sync_lost_at, stall))
                self.emit(t, "db.sync.commits_resumed", f"commits on {primary.name} flow again "
                          f"after a {stall:.1f}s synchronous-replication stall", "warning",
                          primary.name, stall_seconds=round(stall, 2))
                self.sync_lost_at = self.sync_resume_at = None
            return
        if self.sync_standby() is None:
            # Standalone (or the named one is gone quietly): the leader names the furthest-ahead
            # streaming replica on its next HA loop.
            loop = self._next_loop(primary, t - dt)
            if loop <= t + 1e-9:
                new = self._pick_sync()
                if new is not None:
                    self._set_sync(t, new, f"named by {primary.name}'s HA loop")

    # ------------------------------------------------------------------ network and disk

    def _rtt_s(self, a: Node, b: Node) -> float:
        """Round trip between two nodes: a LAN's within a region, or everywhere when the
        nodes run `local`ly (one host or docker network); `replication_rtt_ms` between
        regions of a `managed` service or between clouds (`multi-cloud`)."""
        if a.region == b.region or self.spec.location == "local":
            return LAN_RTT_S
        return self.spec.replication_rtt_ms / 1000.0

    def _disk(self, t: float, dt: float, write_qps: float) -> None:
        """Live rows grow with inserts and shrink by the retention job's purges; updates and
        purges leave dead tuples that autovacuum makes reusable once they pass
        autovacuum_vacuum_scale_factor x live; files never shrink; WAL needs max_wal_size, and
        the primary keeps the WAL a down replica's replication slot still needs."""
        spec = self.spec
        row_gb = spec.row_kb / KB_PER_GB
        ins = write_qps * spec.insert_fraction * row_gb * dt
        self.dead_gb += write_qps * (1.0 - spec.insert_fraction) * row_gb * dt
        if spec.data_retention_days is None:
            self.rolling_gb += ins
        else:
            keep_s = spec.data_retention_days * 86400.0
            every = min(PURGE_MAX_S, keep_s / 24.0)
            nbins = max(1, math.ceil(keep_s / every - 1e-9))
            idx = math.floor(t / every)
            if self._bin_index is None:
                # Start in the steady state of the retention window at the starting insert rate.
                full = min(spec.data_gb, write_qps * spec.insert_fraction * row_gb * keep_s)
                self.rolling_bins = deque([full / nbins] * nbins)
                self.rolling_gb = full
                self.static_gb -= full  # (plus any seeded test data)
                self._bin_index = idx
            if idx != self._bin_index:
                self._bin_index = idx
                self.rolling_bins.append(0.0)
                while len(self.rolling_bins) > nbins:
                    old = self.rolling_bins.popleft()
                    self.rolling_gb -= old
                    self.dead_gb += old  # DELETEd rows are dead tuples until vacuumed
                    self.purged_gb += old
            self.rolling_bins[-1] += ins
            self.rolling_gb += ins
        live = self.static_gb + self.rolling_gb
        if self.dead_gb > AUTOVACUUM_THRESHOLD_ROWS * row_gb + \
                spec.autovacuum_vacuum_scale_factor * live:
            self.dead_gb = 0.0  # vacuumed: the space is reused, the files keep their size
            self.vacuums += 1
        self.file_gb = max(self.file_gb, live + self.dead_gb)
        slots = max((n.backlog_bytes for n in self.nodes if n.role == "replica" and not n.up),
                    default=0.0) / GB
        # WAL not yet archived stays in pg_wal on the node(s) that wrote it.
        writers = [n for n in self.nodes if n.role in ("primary", "multi-master")]
        unarchived = self.backups.pending_bytes / GB / max(len(writers), 1)
        for n in self.nodes:
            if n.up:
                n.data_gb = self.file_gb + spec.max_wal_size_gb + (
                    slots if n.role == "primary" else 0.0) + (
                    unarchived if n.role in ("primary", "multi-master") else 0.0)

    @property
    def live_gb(self) -> float:
        return self.static_gb + self.rolling_gb

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
                elif n.role == "multi-master":
                    # Every other master is its peer: it catches up from them and takes writes;
                    # the writes it had not shipped merge with theirs (mesh.py).
                    n.backlog_bytes = max(n.backlog_bytes, self.wal_rate_bps * RESTART_SECONDS)
                    peers = sum(1 for m in self.nodes if m is not n and m.up)
                    found = self.mesh.rejoin(t, n) if self.mesh is not None else 0
                    n.rejoined_at = t
                    merged = (f"; {found:,} of its unshipped writes conflicted with newer ones "
                              "and were discarded (last-update-wins)") if found else ""
                    self.emit(t, "db.node.recovered",
                              f"{n.name} rejoined the mesh ({peers} peers up), catching up "
                              f"{n.backlog_bytes / 2**20:.0f} MB{merged}", "info",
                              n.name, peers=peers, catch_up_bytes=round(n.backlog_bytes),
                              conflicts=found)
                else:
                    n.backlog_bytes = max(n.backlog_bytes, self.wal_rate_bps * RESTART_SECONDS)
                    self.emit(t, "db.node.recovered",
                              f"{n.name} rejoined as replica of "
                              f"{primary.name if primary else '?'}", "info", n.name)

    def _failover_progress(self, t: float) -> None:
        fo = self.failover
        if fo is None:
            return
        f = self.spec.failover
        if fo.candidate is None and self.dcs_down_since is not None:
            return  # no replica can take the leader lock while the DCS is unreachable
        if fo.candidate is None and t >= fo.expires_at:
            # Each replica acts on its own loop after the key has expired; the first loop to
            # run with an eligible candidate takes the lock.
            eligible = [n for n in self.nodes if n.role == "replica" and n.up
                        and fo.lag_at_crash.get(n.name, n.lag_bytes) <= f.maximum_lag_on_failover]
            if f.synchronous_mode:
                # Only the synchronous standby may be promoted, so no acknowledged commit is lost.
                eligible = [n for n in eligible if n.name == fo.sync_at_crash]
            if not eligible:
                if not fo.blocked_reported:
                    fo.blocked_reported = True
                    self.emit(t, "db.failover.blocked",
                              "leader key expired but no replica is within "
                              f"maximum_lag_on_failover ({f.maximum_lag_on_failover} B): "
                              "writes fail until the primary is restarted", "critical")
                return
            best = min(eligible, key=lambda n: (fo.lag_at_crash.get(n.name, n.lag_bytes), n.name))
            if f.dcs_watch:
                # etcd3/Kubernetes/ZooKeeper: the watch on the leader key wakes every replica's
                # HA loop when the expired key is deleted.
                first_loop = fo.expires_at
            else:
                # No watch: each replica notices on its own next loop after the expiry.
                first_loop = min(
                    n.loop_phase + math.ceil((fo.expires_at - n.loop_phase) / f.loop_wait)
                    * f.loop_wait for n in eligible)
            if t < first_loop:
                return
            fo.candidate = best.name
            fo.promote_at = first_loop + float(self.rng.uniform(PROMOTE_MIN_SECONDS,
                                                                PROMOTE_MAX_SECONDS))
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
                    n.backlog_bytes = max(0.0, fo.lag_at_crash.get(n.name, n.lag_bytes)
                                          - lost_bytes)
                    n.lag_bytes = n.backlog_bytes
            node.lag_bytes = node.lag_seconds = node.backlog_bytes = 0.0
            if f.synchronous_mode:
                # The new leader names its own synchronous standby as it takes over.
                self.sync_name = None
                self._set_sync(t, self._pick_sync(exclude=old.name),
                               f"new leader {node.name}")
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

    def _backups(self, t: float, t_abs: float, dt: float = 1.0) -> None:
        b = self.spec.backup
        bk = self.backups
        if self.backup_running_until is not None and t >= self.backup_running_until:
            self.backup_running_until = None
            for n in self.nodes:
                n.backup_until = None
            if bk.target_full:
                self.emit(t, "db.backup.failed", "base backup failed: the backup target is "
                          "full (no space left on device)", "error")
            else:
                bk.add_backup(self.backup_started_t, t, self.live_gb)
                self.emit(t, "db.backup.completed",
                          f"base backup completed ({self.live_gb:.0f} GB, restore point "
                          f"{t:.0f}s); {len(bk.kept)} backups kept", "info",
                          kept=len(bk.kept))
        expired = bk.prune(t)
        if expired:
            self.emit(t, "db.backup.expired", f"retention ({b.retention_days:g} days): "
                      f"{len(expired)} backup{'s' if len(expired) != 1 else ''} expired; "
                      f"{len(bk.kept)} kept, the oldest {bk.oldest_age(t) / 86400.0:.1f} days "
                      "old", "info", expired=len(expired), kept=len(bk.kept))
        self._restore_progress(t)
        if b.mode in ("daily", "continuous"):
            day_t = t_abs % 86400.0
            at = b.schedule_hour * 3600.0
            if at <= day_t < at + dt and self.backup_running_until is None:
                self.start_backup(t, None, "daily schedule")

    # ------------------------------------------------------------------ restore (PITR)

    def start_restore(self, t: float, target: float | None) -> str | None:
        plan = self.backups.plan_restore(t, target, self.live_gb)
        if isinstance(plan, str):
            return plan
        self.backups.restore = plan
        self.emit(t, "db.restore.started",
                  f"restore to {plan.label} started from the base backup of "
                  f"{plan.base.done_t:.0f}s: the cluster is down for ~{plan.until - t:.0f} s; "
                  f"{plan.writes_lost:,.0f} writes after the target will be lost", "warning",
                  target=plan.label, target_t=plan.target_t, duration_s=plan.until - t,
                  writes_lost=plan.writes_lost)
        return None

    def _restore_progress(self, t: float) -> None:
        bk = self.backups
        r = bk.restore
        if r is None or t < r.until:
            return
        bk.restore = None
        bk.restores += 1
        self.lost_writes += r.writes_lost
        bk.writes = r.writes_kept
        recovered = bk.dropped_at is not None and r.target_t < bk.dropped_at
        if recovered:
            self.static_gb += bk.dropped_gb
            bk.dropped_at, bk.dropped_share, bk.dropped_gb = None, 0.0, 0.0
        # The timeline forks here (a new history): archiving restarts from the target.
        bk.archived_t, bk.archived_writes = t, bk.writes
        bk.archive_points.append((t, bk.writes))
        bk.clear_queue()
        bk.seg_bytes, bk.seg_opened_t, bk.ship_budget = 0.0, t, 0.0
        for n in self.nodes:
            n.backlog_bytes = n.lag_bytes = n.lag_seconds = 0.0
        rto = t - r.started_t
        note = "; the dropped table is back" if recovered else (
            "; the table is still missing (the DROP was replayed: restore to a time before "
            "it)" if bk.dropped_at is not None else "")
        self.emit(t, "db.restore.completed",
                  f"restore to {r.label} completed in {rto:.0f} s: RPO {r.rpo_s:.0f} s, "
                  f"{r.writes_lost:,.0f} writes lost{note}", "warning" if r.writes_lost else "info",
                  target=r.label, rto_seconds=round(rto, 1), rpo_seconds=round(r.rpo_s, 1),
                  writes_lost=r.writes_lost, recovered_table=recovered)

    def drop_table(self, t: float, share: float) -> str | None:
        bk = self.backups
        if bk.dropped_at is not None:
            return "a table is already dropped"
        bk.dropped_at, bk.dropped_share = t, share
        bk.dropped_gb = self.live_gb * share
        keep = 1.0 - share
        self.static_gb *= keep
        self.rolling_gb *= keep
        self.rolling_bins = deque(x * keep for x in self.rolling_bins)
        self.dead_gb += bk.dropped_gb  # the files keep their size until vacuum reuses it
        return None

    def _one_way_s(self, n: Node, writers: list[Node]) -> float:
        """WAL's network transit to `n` from the node(s) it replicates from (the furthest of
        `writers`, the running primary or masters)."""
        return max((self._one_way(m, n) for m in writers if m is not n),
                   default=LAN_RTT_S / 2.0)

    def _one_way(self, a: Node, b: Node) -> float:
        return self._rtt_s(a, b) / 2.0

    def _replication(self, t: float, dt: float, write_qps: float) -> None:
        """Per replica: backlog grows while WAL arrives faster than it applies (or while the
        node is down) and drains otherwise; on top, the normal flow's delay is the network
        transit plus WAL apply, which queues as the write rate nears the apply rate (an M/M/1
        sojourn of one commit's WAL), with log-normal jitter (fsync, checkpoints)."""
        spec = self.spec
        wal = write_qps * spec.wal_kb_per_write * WAL_BYTES_PER_KB
        self.wal_rate_bps = wal
        apply = spec.replication_bandwidth_mb_s * 1024 * 1024
        per_commit = spec.wal_kb_per_write * WAL_BYTES_PER_KB
        writers = [m for m in self.nodes if m.up and m.role in ("primary", "multi-master")]
        # a read-only ex-leader still streams WAL
        primary_up = bool(writers) or any(n.up for n in self.nodes if n.name == self.demoted)
        sync = None if self.commits_stalled else self.sync_standby()
        for n in self.nodes:
            if n.role == "primary" or n.name == self.demoted:
                n.lag_bytes = n.lag_seconds = n.backlog_bytes = 0.0
                continue
            if not n.up:
                if primary_up:
                    n.backlog_bytes += wal * dt  # falls behind while down
                    n.lag_bytes = n.backlog_bytes
                    n.lag_seconds += dt
                continue
            if not primary_up:
                continue  # nothing new to receive; keeps what it had
            a = apply * n.lag_factor
            rho = wal / a if a > 0 else math.inf
            n.backlog_bytes = max(0.0, n.backlog_bytes + (wal - a) * dt)
            if self.mesh is not None and self.mesh.split is not None:
                # Split brain: the other side's writes cannot reach it; they wait there.
                n.held_bytes += wal * self.mesh.other_side_share(n) * dt
            apply_s = per_commit / a / max(1.0 - rho, 0.02) if a > 0 else 0.0
            jitter = math.exp(float(self.rng.normal(0.0, LAG_JITTER_SIGMA)))
            n.apply_delay_s = apply_s * jitter + (n.backlog_bytes / wal if wal > 0 else 0.0)
            if n.rejoined_at is not None and n.backlog_bytes <= 0.0:
                self.emit(t, "db.node.caught_up", f"{n.name} caught up with the mesh "
                          f"{t - n.rejoined_at:.0f}s after rejoining; it takes writes again",
                          "info", n.name, seconds=round(t - n.rejoined_at, 1))
                n.rejoined_at = None
            if n is sync:
                # Every acknowledged commit is on its disk already; only replay trails.
                n.backlog_bytes = n.lag_bytes = 0.0
                n.lag_seconds = apply_s * jitter
                continue
            transit = (self._one_way_s(n, writers) + apply_s) * jitter
            behind = n.backlog_bytes + n.held_bytes
            n.lag_bytes = behind + wal * transit
            n.lag_seconds = transit + (behind / wal if wal > 0 else 0.0)

    def views(self, t: float, max_connections: int) -> tuple[DBNodeView, ...]:
        out = []
        for i, n in enumerate(self.nodes):
            state = n.state
            if n.up and n.backup_until is not None:
                state = "backing-up"
            if n.up and (self.failover and self.failover.candidate == n.name
                         or self.race_winner == n.name):
                state = "promoting"
            if n.up and n.name == self.demoted and self.race_winner is None:
                state = "demoted"
            if n.up and n.role == "multi-master" and (n.rejoined_at is not None or (
                    n.backlog_bytes > 0 and self.mesh is not None and self.mesh.split is None)):
                state = "catch-up"  # rejoined the mesh, replaying what it missed
            age = self.restore_point_age(t)
            if self.restoring:
                state = "restoring"
            out.append(DBNodeView(
                name=n.name, role=n.role, state=state, region=n.region,
                connections=n.connections, max_connections=max_connections, qps=n.qps,
                read_qps=n.read_qps, write_qps=n.write_qps, cpu=n.cpu,
                disk_pct=100.0 * n.data_gb / self.spec.disk_gb, lag_bytes=n.shown_lag_bytes,
                lag_seconds=n.shown_lag_seconds, last_backup_age_s=age,
                conflicts=int(self.mesh.conflicts[i]) if self.mesh is not None else 0,
            ))
        return tuple(out)
