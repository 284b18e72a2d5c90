"""Immutable snapshots: what readers (the UI, the runner, exporters) see of one tick.

The engine never mutates an array after publishing it (every update builds a new array), so a
snapshot can hold the fleet's columns by reference, marked read-only, at no copying cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devsim_tui.sim import extensions as ext

# Server lifecycle codes (numpy int8 column `state`). PENDING: created, not scheduled (no
# region has room); NOTREADY: on a node gone NotReady (Ready=False, out of the endpoints, still
# a replica); EVICTED: evicted by the unreachable taint, Terminating on its unreachable node
# until the node returns (no longer a replica). sim/cloud.py drives the last three.
STARTING, READY, DRAINING, TERMINATED, CRASHED, PENDING, NOTREADY, EVICTED = range(8)
STATE_NAMES = ("starting", "ready", "draining", "terminated", "crashed", "pending", "notready",
               "evicted")


@dataclass(frozen=True, slots=True)
class FleetView:
    """The app servers as read-only numpy columns, one row per server."""

    ids: np.ndarray  # int64 serial numbers; names are f"{prefix}-{id}"
    names: tuple[str, ...]
    state: np.ndarray  # int8, see STATE_NAMES
    version: np.ndarray  # int16 index into Snapshot.versions
    region: np.ndarray  # int16 index into Snapshot.regions (len(regions): not scheduled)
    cpu: np.ndarray  # utilisation of the CPU request, 0..1
    memory_mb: np.ndarray
    memory_pct: np.ndarray  # of the memory request, 0..100+
    disk_pct: np.ndarray
    net_in_kbps: np.ndarray
    net_out_kbps: np.ndarray
    rps: np.ndarray  # requests/s routed to the server (offered)
    served_rps: np.ndarray
    p99_ms: np.ndarray  # NaN where the server is not ready (no latency to show)
    error_rate: np.ndarray  # (errored + timed out + rejected) / offered, 0..1
    served_total: np.ndarray
    errors_total: np.ndarray
    uptime_s: np.ndarray
    restarts: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, name: str) -> int | None:
        try:
            return self.names.index(name)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class DBNodeView:
    name: str
    role: str  # primary | replica | multi-master
    state: str  # running | crashed | restarting | promoting | demoted | backing-up
    region: str
    connections: int
    max_connections: int
    qps: float
    read_qps: float
    write_qps: float
    cpu: float  # 0..1
    disk_pct: float
    lag_bytes: float | None  # None: the node is down (no replication to measure)
    lag_seconds: float | None
    last_backup_age_s: float | None  # None = never backed up
    conflicts: int = 0  # multi-master: this node's writes discarded by last-update-wins


@dataclass(frozen=True, slots=True)
class CacheNodeView:
    name: str
    state: str
    role: str
    ops: float
    memory_pct: float


@dataclass(frozen=True, slots=True)
class CacheView:
    technology: str
    hit_ratio: float
    target_hit_ratio: float
    nodes: tuple[CacheNodeView, ...]


@dataclass(frozen=True, slots=True)
class AlertView:
    id: str
    name: str
    state: str  # pending | firing | resolved
    severity: str
    summary: str
    active_at: float
    fired_at: float | None
    resolved_at: float | None
    acknowledged: bool
    value: float
    source: str = "rules"
    labels: tuple[tuple[str, str], ...] = ()
    silenced_until: float | None = None  # simulated time a silence mutes it until
    annotations: tuple[tuple[str, str], ...] = ()  # summary, description, runbook_url...


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Fleet, database and SLO figures of one tick (also what the runner writes per tick)."""

    ready: int
    total: int
    desired: int
    offered_rps: float
    served_rps: float  # completed successfully (never above capacity_rps)
    errored_rps: float  # completed with an error (5xx, database errors)
    timed_out_rps: float  # completed after the client's timeout
    rejected_rps: float  # HTTP 503: queue full, or no ready server
    reset_rps: float  # in flight or queued when their server died (kill, crash, OOM)
    p50_ms: float
    p99_ms: float
    mean_ms: float
    error_rate: float
    cpu: float
    memory_pct: float
    disk_pct: float
    net_in_kbps: float
    net_out_kbps: float
    db_primary: str | None
    db_writable: bool
    db_max_lag_bytes: float
    db_max_lag_s: float
    db_connections: int
    db_qps: float
    cache_hit_ratio: float | None
    build_time_s: float | None
    availability: float  # since start
    error_budget_burned: float  # fraction of the window's budget used so far
    burn_rate_1h: float  # how fast the budget burns (1.0 = exactly on budget)
    lost_writes: float
    restore_point_age_s: float | None
    offered_total: float = 0.0  # requests offered since the start (a counter)
    failed_total: float = 0.0  # requests failed since the start (a counter)
    served_total: float = 0.0  # requests served since the start (a counter)
    queued: float = 0.0  # requests in the servers now (in service or queued), a state
    capacity_rps: float = 0.0  # completions/s the serving servers can make
    rejected_total: float = 0.0  # counters since the start, by failure kind
    timed_out_total: float = 0.0
    reset_total: float = 0.0
    forecast_rps: float | None = None  # predictive scaler: request rate forecast one lead ahead

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class Snapshot:
    tick: int
    t: float  # simulated seconds since start
    clock: str  # simulated wall clock "Day 1 14:03:22"
    profile: str
    environment: str
    scaler: str  # "hpa", "manual" (and which mode the profile asks for)
    scaling_mode: str
    agg: Aggregates
    fleet: FleetView
    versions: tuple[str, ...]
    regions: tuple[str, ...]
    db: tuple[DBNodeView, ...]
    cache: CacheView | None
    alerts: tuple[AlertView, ...]
    events: tuple[Any, ...]  # events emitted during this tick
    last_event_seq: int
    hpa: dict[str, Any] = field(default_factory=dict)
    health: str = "ok"  # ok | degraded | critical
    #: The controllers' states, by their declared `state_key` (sim/extensions.py); read them
    #: through the accessors below (None: that controller does not run in this engine).
    extensions: dict[str, Any] = field(default_factory=dict)

    def extension(self, key: str) -> dict[str, Any] | None:
        return self.extensions.get(key)

    @property
    def releases(self) -> dict[str, Any] | None:
        """Releases and rollouts (sim/releases.py)."""
        return self.extensions.get(ext.RELEASES)

    @property
    def chaos(self) -> dict[str, Any] | None:
        """Active faults, faulted servers, the event stream (sim/chaos.py)."""
        return self.extensions.get(ext.CHAOS)

    @property
    def cloud(self) -> dict[str, Any] | None:
        """Regions, clouds, evictions, Pending pods, cross-cloud egress (sim/cloud.py)."""
        return self.extensions.get(ext.CLOUD)

    @property
    def security(self) -> dict[str, Any] | None:
        """Security posture (sim/security.py)."""
        return self.extensions.get(ext.SECURITY)

    @property
    def anomaly(self) -> dict[str, Any] | None:
        """The anomaly detector's scores (sim/anomaly.py)."""
        return self.extensions.get(ext.ANOMALY)

    @property
    def thanos(self) -> dict[str, Any] | None:
        """Long-term metrics storage (sim/thanos.py)."""
        return self.extensions.get(ext.THANOS)

    @property
    def backup(self) -> dict[str, Any] | None:
        """Backups and restores (sim/backup.py)."""
        return self.extensions.get(ext.BACKUP)

    @property
    def query_plans(self) -> dict[str, Any] | None:
        """The database's query plans and optimiser (sim/queryplan.py)."""
        return self.extensions.get(ext.QUERY_PLANS)

    @property
    def mesh(self) -> dict[str, Any] | None:
        """Multi-master regions, write conflicts, split brain (sim/mesh.py); None unless the
        database is multi-master."""
        return self.extensions.get(ext.MESH)

    @property
    def drill(self) -> dict[str, Any] | None:
        """A hosted drill's state (drill/controller.py); None outside a drill."""
        return self.extensions.get(ext.DRILL)

    def with_extension(self, key: str, state: dict[str, Any]) -> Snapshot:
        """A copy with one controller's state replaced (a participant's filtered view)."""
        import dataclasses

        return dataclasses.replace(self, extensions={**self.extensions, key: state})
