"""The app server fleet as numpy columns: one array per attribute, one row per server.

A tick is a fixed handful of array operations whatever the fleet size. Arrays are never
modified in place after a tick publishes them: every update builds new arrays, so snapshots can
hold them by reference. Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from devsim_tui.config.schema import FleetVariation, ServerSpec
from devsim_tui.sim.queueing import QueueTable, queue_table
from devsim_tui.sim.snapshot import (
    CRASHED, DRAINING, EVICTED, NOTREADY, PENDING, READY, STARTING, TERMINATED, FleetView,
)

DRAIN_SECONDS = 5.0
CRASH_BACKOFF_SECONDS = 10.0
METRIC_DELAY_SECONDS = 15.0  # metrics-server has no sample for a pod younger than this
MIX_GROUPS = 16  # servers binned by p99 for the fleet-wide percentile mixture
MIX_GRID = 64  # log-spaced points, ~5% apart over a usual span; linear in between
MIX_SAMPLE = 1024  # servers the fleet percentiles are computed from, at most
HISTORY_FIELDS = ("cpu", "memory_mb", "rps", "p99_ms", "error_rate")
NOISE_TICKS = 4096  # length of the periodic noise bank (ticks); a power of two
NOISE_LANES = 64  # independent noise series in the bank
NEWTON_TOL = 1e-3  # requests: residual of the implicit queue step
SNAP_REQUESTS = 0.25  # a server whose step ends this close to its steady state lands on it
VARIATION_EVERY = 8  # ticks between refreshes of the slow per-server noise

# Columns that carry per-server state (all have one row per server, same order).
STATE_COLUMNS = (
    "ids", "state", "version", "region", "started_at", "ready_at", "until", "queue",
    "disk_gb", "leak_mb", "served_total", "errors_total", "restarts",
    "het", "wander_at", "balance_at",  # fleet variation: capacity factor, noise bank positions
    # fault knobs (chaos sets them; neutral values here)
    "cap_factor", "err_extra", "lat_extra_ms", "cpu_extra", "leak_rate_mb_s", "crash_loop",
    "disk_fill_gb",  # chaos: a filler file that log rotation does not remove
)
# The knobs a release's version sets on its pods (releases.py); chaos adds to them.
KNOBS = ("cap_factor", "err_extra", "lat_extra_ms", "cpu_extra", "leak_rate_mb_s", "crash_loop")
# Columns each tick recomputes from the state.
OUTPUT_COLUMNS = ("cpu", "memory_mb", "rps", "served_rps", "p99_ms", "error_rate")
DTYPES = {"ids": np.int64, "state": np.int8, "version": np.int16, "region": np.int16,
          "restarts": np.int32, "crash_loop": np.bool_, "wander_at": np.int64,
          "balance_at": np.int64}
NEUTRAL = {"cap_factor": 1.0, "disk_gb": 1.5, "het": 1.0, "p99_ms": np.nan}
_UNIT_GRID = np.linspace(0.0, 1.0, MIX_GRID)
_MIX_QUANTILES = np.array([-0.5, -0.01])  # minus the survival at p50 and p99
# ndarray.sum()/min()/max() without their Python-level wrappers (the same reductions)
_sum, _min, _max = np.add.reduce, np.minimum.reduce, np.maximum.reduce
# np.interp's compiled core: the same function and results without the Python wrapper's
# argument checks (about a microsecond a call, once a tick)
try:
    from numpy._core.multiarray import interp as _interp
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import interp as _interp
# (constructed, not validated: a constant, and a validator built at import costs every start)
NO_VARIATION = FleetVariation.model_construct(capacity_spread=0.0, capacity_wander=0.0,
                                              balance_noise=0.0, hot_per_hour=0.0)


@dataclass
class FleetTick:
    """Fleet totals of one tick (requests per second); every offered request is served,
    errored, timed out or rejected this tick, or still queued (`queued`, requests)."""

    offered: float
    served: float  # completed successfully
    errored: float  # completed with an error (5xx, database errors)
    timed_out: float  # completed after the client's timeout: the client saw a failure
    rejected: float  # HTTP 503: the server's queue was full, or no server was ready
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu: float  # mean over ready servers, 0..1
    memory_mb: float  # mean over ready servers
    capacity: float  # completions per second the serving servers can make


def _noise_bank(rng: np.random.Generator, ticks: float) -> np.ndarray:
    """Periodic, smooth, unit-variance noise: NOISE_TICKS x NOISE_LANES, flattened.

    White noise low-pass filtered in the frequency domain (a Gaussian filter whose correlation
    time is `ticks`), so every lane wraps around without a jump.
    """
    white = rng.standard_normal((NOISE_TICKS, NOISE_LANES))
    spec = np.fft.rfft(white, axis=0)
    k = np.arange(spec.shape[0])[:, None]
    spec *= np.exp(-0.5 * (2.0 * np.pi * k * max(ticks, 1.0) / NOISE_TICKS) ** 2)
    out = np.fft.irfft(spec, n=NOISE_TICKS, axis=0)
    out -= out.mean(axis=0)
    out /= np.maximum(out.std(axis=0), 1e-12)
    return out.ravel()


@dataclass
class _Masks:
    state: np.ndarray
    n_ready: int
    ready_f: np.ndarray
    serving_f: np.ndarray
    alive_f: np.ndarray
    alive_mb: np.ndarray
    nan_unready: np.ndarray  # 1 where ready, NaN elsewhere (no latency to show)
    starting_cpu: np.ndarray  # what a starting pod burns
    zeros: np.ndarray


class Fleet:
    @property
    def table(self) -> QueueTable:
        """The M/M/c/K table of these servers (shared per (c, K), see `queue_table`): built on
        first use, by `Engine.prepare` or else the first tick, not with the fleet; nothing
        before the first tick reads it, and a control room shows its panes without it."""
        table = self._table
        if table is None:
            table = self._table = queue_table(self.c, self.K)
        return table

    def __init__(self, spec: ServerSpec, regions: list[str], prefix: str,
                 rng: np.random.Generator, history_ticks: int,
                 variation: FleetVariation | None = None, balancing: str = "round-robin",
                 seed: int = 0, dt: float = 1.0):
        self.spec = spec
        self.regions = regions
        self.prefix = prefix
        self.rng = rng
        self.c = spec.workers
        self.mu = spec.capacity_rps / spec.workers  # per worker
        self.K = spec.workers + spec.max_queue
        self._table: QueueTable | None = None  # built on first use (see `table`)
        self.variation = var = variation or NO_VARIATION
        self.least_conn = balancing == "least-connections"
        # Fleet variation has its own generator (from the seed): the engine's other draws are
        # the same whether it is on or off.
        self.var_rng = np.random.default_rng([int(seed), 0x5EED])
        self._bank = _noise_bank(self.var_rng, var.wander_seconds / dt) \
            if var.capacity_wander or var.balance_noise else None
        self.hot_id = -1
        self.hot_until = 0.0
        self._var_cache: tuple[np.ndarray, np.ndarray | None] | None = None
        self._mask_cache: _Masks | None = None
        self._speed_cache: tuple | None = None
        self._weight_cache: tuple | None = None  # load balancer weights and their sum
        self._cap_cache: tuple | None = None  # (speeds, serving mask, total capacity)
        self._queue_sum: tuple[np.ndarray, float] | None = None  # (queue array, its sum)
        self.ticks = 0
        self.next_id = 1
        self._has_terminated = False
        self.hist_len = history_ticks
        self.hist_pos = 0
        self._empty()
        self._names: tuple[str, ...] = ()
        self._faulted = False
        self._dirty = True  # lifecycle states changed since the caches below were computed
        self._next_transition = 0.0
        self._active = 0
        # Per version code: knob values and start-up behaviour its pods get when created
        # (releases.py fills it; a missing version is a healthy one).
        self.version_traits: dict[int, dict[str, float]] = {}
        self.regions_down: set[int] = set()  # chaos region outage: nothing is scheduled there
        # Placement (sim/cloud.py sets both): pods each region's nodes hold (None: no limit),
        # and the latency added to requests routed to each region (None: none anywhere). The
        # region code len(regions) is "not scheduled" (a Pending pod).
        self.capacity: np.ndarray | None = None
        self.region_ms: np.ndarray | None = None
        self._net_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._pending = 0  # Pending pods (created, no region had room)
        # Requests whose connections were reset (kills, crashes, OOM, restarts) since the
        # start, and the resets not yet reported as events: (servers, requests).
        self.reset_sum = 0.0
        self.resets: list[tuple[list[str], float]] = []

    def _empty(self) -> None:
        for name in STATE_COLUMNS + OUTPUT_COLUMNS:
            setattr(self, name, np.zeros(0, DTYPES.get(name, np.float64)))
        # (field, tick, server): a tick writes one contiguous row per field.
        self.hist = np.zeros((len(HISTORY_FIELDS), self.hist_len, 0), np.float32)

    # ------------------------------------------------------------------ membership

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def _rename(self) -> None:
        width = max(3, len(str(self.next_id)))
        self._names = tuple(f"{self.prefix}-{i:0{width}d}" for i in self.ids.tolist())

    def add(self, t: float, count: int, version: int, startup_s: float) -> list[str]:
        """Create `count` servers in STARTING state; returns their names."""
        if count <= 0:
            return []
        n = len(self)
        new_ids = np.arange(self.next_id, self.next_id + count, dtype=np.int64)
        self.next_id += count
        regions = self._place(count)
        unplaced = regions == len(self.regions)
        traits = self.version_traits.get(version, {})
        ready_at = self._ready_at(t, count, traits, startup_s)
        state = np.full(count, STARTING, np.int8)
        if unplaced.any():
            state[unplaced] = PENDING
            ready_at[unplaced] = np.inf
        cols = {
            "ids": new_ids, "state": state, "version": np.full(count, version),
            "region": regions, "started_at": np.full(count, t), "ready_at": ready_at,
        }
        for knob in KNOBS:
            if knob in traits:
                cols[knob] = np.full(count, traits[knob])
        var, vr = self.variation, self.var_rng
        if var.capacity_spread:
            cols["het"] = np.exp(var.capacity_spread * vr.standard_normal(count))
        if self._bank is not None:
            lanes = NOISE_LANES
            cols["wander_at"] = (vr.integers(0, NOISE_TICKS, count) * lanes
                                 + vr.integers(0, lanes, count))
            cols["balance_at"] = (vr.integers(0, NOISE_TICKS, count) * lanes
                                  + vr.integers(0, lanes, count))
        for name in STATE_COLUMNS + OUTPUT_COLUMNS:
            old = getattr(self, name)
            new = cols.get(name)
            if new is None:
                new = np.full(count, NEUTRAL.get(name, 0), old.dtype)
            setattr(self, name, np.concatenate([old, new.astype(old.dtype)]))
        self.hist = np.concatenate(
            [self.hist, np.zeros((len(HISTORY_FIELDS), self.hist_len, count), np.float32)],
            axis=2)
        self._rename()
        self._dirty = True
        if traits:
            self.refresh_flags()
        return list(self._names[n:])

    def _ready_at(self, t: float, count: int, traits: dict, startup_s: float) -> np.ndarray:
        jitter = self.rng.uniform(0.8, 1.2, count)
        # A version that fails its readiness probe never becomes Ready (ready_at = inf).
        return (np.full(count, np.inf) if traits.get("fails_readiness")
                else t + startup_s * traits.get("startup_factor", 1.0) * jitter)

    def _place(self, count: int) -> np.ndarray:
        """Regions for `count` new pods: the least populated region with room first, as a
        topology spread would; regions down or full take none. A pod that fits nowhere gets
        len(regions) (Pending). Pods bound to a region's nodes (anything scheduled and not
        yet gone, evicted ones included) take its room."""
        nr = len(self.regions)
        s = self.state
        bound = (s != TERMINATED) & (s != PENDING)
        counts = np.bincount(self.region[bound], minlength=nr + 1)[:nr].astype(np.int64)
        big = np.iinfo(np.int64).max // 4
        room = (self.capacity - counts) if self.capacity is not None \
            else np.full(nr, big, np.int64)
        if self.regions_down:
            room[list(self.regions_down)] = 0
        out = np.full(count, nr, np.int16)
        for k in range(count):
            ok = room > 0
            if not ok.any():
                break
            r = int(np.argmin(np.where(ok, counts, big)))
            out[k] = r
            counts[r] += 1
            room[r] -= 1
        return out

    def schedule_pending(self, t: float, startup_s: float) -> np.ndarray:
        """Bind Pending pods (oldest first) to regions that have room now; they start.
        Returns the rows of the pods scheduled."""
        if not self.pending:
            return np.zeros(0, np.intp)
        idx = np.flatnonzero(self.state == PENDING)
        regions = self._place(len(idx))
        placed = regions < len(self.regions)
        if not placed.any():
            return np.zeros(0, np.intp)
        idx, regions = idx[placed], regions[placed]
        region = self.region.copy()
        region[idx] = regions
        ready_at = self.ready_at.copy()
        for v in np.unique(self.version[idx]).tolist():
            k = idx[self.version[idx] == v]
            ready_at[k] = self._ready_at(t, len(k), self.version_traits.get(v, {}), startup_s)
        started = self.started_at.copy()
        started[idx] = t
        mask = np.zeros(len(self), bool)
        mask[idx] = True
        self.region, self.ready_at, self.started_at = region, ready_at, started
        self.set_state(mask, STARTING)
        return idx

    def freeze(self, mask: np.ndarray) -> None:
        """No kubelet any more (its node is gone): a starting pod never reports Ready, a
        crashed one is never restarted, until the state is set anew."""
        s = self.state
        self.ready_at = np.where(mask & (s == STARTING), np.inf, self.ready_at)
        self.until = np.where(mask & (s == CRASHED), np.inf, self.until)
        self._dirty = True

    def terminate(self, mask: np.ndarray) -> None:
        """Gone at once (an evicted pod whose node came back and finished deleting it)."""
        if mask.any():
            self.set_state(mask, TERMINATED)
            self._has_terminated = True

    def version_base(self, knob: str) -> np.ndarray:
        """Each server's value of a knob as its version alone sets it (chaos adds on top)."""
        neutral = NEUTRAL.get(knob, 0)
        if not self.version_traits:
            return np.full(len(self), neutral, DTYPES.get(knob, np.float64))
        size = max(max(self.version_traits) + 1, int(self.version.max(initial=0)) + 1)
        table = np.full(size, neutral, DTYPES.get(knob, np.float64))
        for v, traits in self.version_traits.items():
            if knob in traits:
                table[v] = traits[knob]
        return table[self.version]

    def oom_kill(self, t: float, limit_mb: float) -> list[str]:
        """Crash servers whose resident memory reached the container limit (OOMKilled)."""
        if not self._faulted:
            return []
        over = (self.memory_mb >= limit_mb) & ((self.state == READY) | (self.state == STARTING))
        if not over.any():
            return []
        self.crash(over, t)
        # The restarted container starts with a fresh heap.
        self.leak_mb = np.where(over, 0.0, self.leak_mb)
        return [self._names[i] for i in np.flatnonzero(over)]

    def compact(self) -> list[str]:
        """Drop terminated servers; returns their names."""
        if not self._has_terminated:
            return []
        self._has_terminated = False
        gone = self.state == TERMINATED
        names = [self._names[i] for i in np.flatnonzero(gone)]
        keep = ~gone
        for name in STATE_COLUMNS + OUTPUT_COLUMNS:
            setattr(self, name, getattr(self, name)[keep])
        self.hist = self.hist[:, :, keep]
        self._rename()
        self._dirty = True
        self.refresh_flags()
        return names

    def set_state(self, mask: np.ndarray, state: int, until: float | np.ndarray = 0.0) -> None:
        """Move servers to a lifecycle state. A container that dies or restarts (CRASHED,
        STARTING, TERMINATED) resets the connections of every request in it, and a new
        container's counters start at 0; a DRAINING one finishes what it holds."""
        if state in (CRASHED, STARTING, TERMINATED):
            fresh = mask & (self.state != state)
            if fresh.any():
                self.reset(fresh)
                self.served_total = np.where(fresh, 0.0, self.served_total)
                self.errors_total = np.where(fresh, 0.0, self.errors_total)
        self.state = np.where(mask, np.int8(state), self.state)
        self.until = np.where(mask, until, self.until)
        self._dirty = True

    def reset(self, mask: np.ndarray) -> float:
        """Reset the connections of every request in (or queued at) the masked servers: they
        fail as `reset`. Returns how many."""
        total = self._count_reset(np.where(mask, self.queue, 0.0))
        self.queue = np.where(mask, 0.0, self.queue)
        return total

    def _count_reset(self, lost: np.ndarray) -> float:
        total = float(lost.sum())
        if total > 0:
            self.reset_sum += total
            self.resets.append(([self._names[i] for i in np.flatnonzero(lost > 0)], total))
        return total

    @property
    def backlog(self) -> np.ndarray:
        """Requests in each server (in service and queued)."""
        return self.queue

    @backlog.setter
    def backlog(self, value: np.ndarray) -> None:
        # Code that empties a server (a process restart) resets the requests that vanish.
        value = np.asarray(value, np.float64)
        self._count_reset(np.maximum(self.queue - value, 0.0))
        self.queue = value

    def _refresh(self) -> None:
        """Recompute the cached replica count and the time of the next lifecycle transition."""
        s = self.state
        pending = np.where(s == STARTING, self.ready_at,
                           np.where((s == DRAINING) | (s == CRASHED), self.until, np.inf))
        self._next_transition = float(pending.min()) if len(s) else np.inf
        self._active = int(np.count_nonzero(self.active_mask()))
        self._pending = int(np.count_nonzero(s == PENDING))
        self._dirty = False

    @property
    def pending(self) -> int:
        """Pods created that no region had room for (Pending)."""
        if self._dirty:
            self._refresh()
        return self._pending

    def active_count(self) -> int:
        if self._dirty:
            self._refresh()
        return self._active

    def active_mask(self) -> np.ndarray:
        """Servers that count as replicas (everything not draining, evicted or gone): what a
        ReplicaSet counts, Pending pods and pods on NotReady nodes included."""
        s = self.state
        return (s == STARTING) | (s == READY) | (s == CRASHED) | (s == PENDING) | (s == NOTREADY)

    def pick_victims(self, count: int) -> np.ndarray:
        """ReplicaSet deletion order: not-ready before ready, then the newest first."""
        active = np.flatnonzero(self.active_mask())
        not_ready = (self.state[active] != READY).astype(np.int64)
        order = np.lexsort((-self.ids[active], -self.started_at[active], -not_ready))
        mask = np.zeros(len(self), bool)
        mask[active[order[:count]]] = True
        return mask

    # ------------------------------------------------------------------ tick

    def lifecycle(self, t: float, startup_s: float) -> dict[str, list[str]]:
        """Advance lifecycle transitions; returns the names that changed, by transition."""
        if self._dirty:
            self._refresh()
        if t < self._next_transition:
            return {}
        self._dirty = True
        s = self.state
        out: dict[str, list[str]] = {}
        became_ready = (s == STARTING) & (t >= self.ready_at)
        crash_loop = became_ready & self.crash_loop
        became_ready &= ~self.crash_loop
        terminated = (s == DRAINING) & (t >= self.until)
        restarting = (s == CRASHED) & (t >= self.until)
        if not (became_ready.any() or terminated.any() or restarting.any() or crash_loop.any()):
            return out
        names = self._names
        if became_ready.any():
            out["ready"] = [names[i] for i in np.flatnonzero(became_ready)]
            s = np.where(became_ready, np.int8(READY), s)
        if terminated.any():
            self._has_terminated = True
            out["terminated"] = [names[i] for i in np.flatnonzero(terminated)]
            self.reset(terminated)  # still unfinished when the grace period ended: SIGKILL
            s = np.where(terminated, np.int8(TERMINATED), s)
        if restarting.any():
            out["restarting"] = [names[i] for i in np.flatnonzero(restarting)]
            s = np.where(restarting, np.int8(STARTING), s)
            self.restarts = self.restarts + restarting
            self.started_at = np.where(restarting, t, self.started_at)
            self.ready_at = np.where(restarting, t + startup_s, self.ready_at)
            self.leak_mb = np.where(restarting, 0.0, self.leak_mb)
        if crash_loop.any():
            out["crashed"] = [names[i] for i in np.flatnonzero(crash_loop)]
            self.state = s
            self.crash(crash_loop, t)
            return out
        self.state = s
        return out

    def crash(self, mask: np.ndarray, t: float) -> None:
        # Kubernetes restarts a crashed container with an exponential back-off (10 s, 20 s, ...).
        backoff = CRASH_BACKOFF_SECONDS * np.minimum(2.0 ** self.restarts, 30.0)
        self.set_state(mask, CRASHED, t + backoff)

    def refresh_flags(self) -> None:
        """Recompute whether any server deviates from the healthy default (faults, leaks).

        Call after changing fault knobs: memory leaks and the OOM check run only then.
        """
        self._faulted = bool(
            (self.cap_factor != 1.0).any() or self.err_extra.any() or self.lat_extra_ms.any()
            or self.cpu_extra.any() or self.leak_rate_mb_s.any() or self.leak_mb.any()
            or self.crash_loop.any())

    def _variation(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Each server's capacity factor from fleet variation (its drawn factor times the slow
        noise) and its load balancer weight noise. Both move slowly: refreshed every
        VARIATION_EVERY ticks, and when servers come or go."""
        vc = self._var_cache
        if vc is not None and vc[2] is self.ids and self.ticks % VARIATION_EVERY:
            return vc[0], vc[1]
        var = self.variation
        f = self.het
        bal = None
        if self._bank is not None:
            mask = NOISE_TICKS * NOISE_LANES - 1
            shift = self.ticks * NOISE_LANES
            if var.capacity_wander:
                f = f * np.maximum(1.0 + var.capacity_wander
                                   * self._bank[(self.wander_at + shift) & mask], 0.5)
            if var.balance_noise:
                bal = np.maximum(1.0 + var.balance_noise
                                 * self._bank[(self.balance_at + shift) & mask], 0.1)
        self._var_cache = (f, bal, self.ids)
        return f, bal

    def _hot(self, t: float, dt: float) -> None:
        """Now and then one ready server runs hot for a while (a noisy neighbour)."""
        var = self.variation
        if self.hot_id >= 0 and t >= self.hot_until:
            self.hot_id = -1
        u = float(self.var_rng.random())
        if self.hot_id < 0 and u < var.hot_per_hour * dt / 3600.0:
            ready = np.flatnonzero(self.state == READY)
            if len(ready):
                pick = ready[int(self.var_rng.integers(len(ready)))]
                self.hot_id = int(self.ids[pick])
                self.hot_until = t + var.hot_seconds * float(self.var_rng.uniform(0.5, 1.5))

    def step(self, t: float, dt: float, offered: float, extra_ms: float, extra_err: float,
             log_rotate: bool) -> FleetTick:
        """One tick of every server: M/M/c/K queues advanced by an implicit fluid step.

        Each server's state is x, the mean number of requests in it. Over the tick it moves
        towards the stationary value x* of its offered load by one backward-Euler step of the
        pointwise stationary fluid flow approximation

            dx/dt = lambda (1 - p_K(x)) - c mu U(x)

        (arrivals accepted minus completions, both from the M/M/c/K whose stationary mean is
        x). Completions never exceed c mu, a full queue rejects, a queue never overshoots its
        steady state, and in steady state every figure is the M/M/c/K one. Where the queue
        relaxes within the tick (most servers, most ticks) the step lands on x* directly and
        completions take up the difference; the others are solved by Newton's method.
        """
        spec = self.spec
        T = self.table
        self.ticks += 1
        m = self._masks()
        n_ready = m.n_ready
        het, bal = self._variation()
        if self.variation.hot_per_hour:
            self._hot(t, dt)
        faulted = self._faulted
        cmu = self.c * self.mu
        # Per-server speeds: they change only when the variation is refreshed, a server runs
        # hot or cools down, or a fault changes capacity.
        key = (het, self.hot_id, self.cap_factor if faulted else None, dt)
        sp = self._speed_cache
        if sp is None or sp[0][0] is not het or sp[0][1] != self.hot_id \
                or sp[0][2] is not key[2] or sp[0][3] != dt:
            if self.hot_id >= 0:
                het = het * np.where(self.ids == self.hot_id, self.variation.hot_capacity, 1.0)
            f = self.cap_factor * het if faulted else het
            C = np.maximum((cmu * dt) * f, 1e-9)  # completions each server can make per tick
            sp = self._speed_cache = (key, f, C, 1.0 / C, (1000.0 / self.mu) / f,
                                      ((1.0 - spec.cpu_idle_fraction) / (cmu * dt)) / het,
                                      float(f.min(initial=1.0)))
        _, f, C, inv_C, svc_ms, busy_k, f_min = sp
        # The load balancer's split over ready servers.
        if n_ready:
            # The weights change only with the speeds, the states or the balance noise.
            wc = self._weight_cache
            lc = C if self.least_conn else None
            if wc is None or wc[0] is not lc or wc[1] is not m.ready_f or wc[2] is not bal:
                w = C * m.ready_f if lc is not None else m.ready_f
                if bal is not None:
                    w = w * bal
                wc = self._weight_cache = (lc, m.ready_f, bal, w, w.sum())
            A = wc[3] * (offered * dt / wc[4])  # arrivals this tick
            no_server = 0.0
        else:
            A = m.zeros
            no_server = offered * dt  # no endpoint: the ingress answers 503
        x = self.queue
        x_top = T.x_top
        # Stationary state of the offered load, and the table there.
        ws = T.w_star(A * inv_C)
        xs = x_top * ws
        xs *= ws
        i, fr = T.cell(ws)
        # linear interpolation in the table: lo[i] + fr * (lo[i + 1] - lo[i])
        P = fr * T.dpk.take(i)
        P += T.pk.take(i)
        p99_u = fr * T.dp99.take(i)
        p99_u += T.p99.take(i)
        rejected = A * P
        accepted = A - rejected
        # Would the backward-Euler step land within SNAP_REQUESTS of x* (it stops short by
        # gap / (1 + C dU/dx)), and does the catch-up fit in the spare capacity? Then land on
        # x*: completions take up the difference.
        gap = x - xs
        limit = C * T.dudx.take(i)
        limit += 1.0
        limit *= SNAP_REQUESTS
        spare = C - accepted
        np.minimum(accepted, spare, out=spare)
        spare *= 0.5
        np.minimum(limit, spare, out=limit)
        over = np.abs(gap) > limit
        slow = np.flatnonzero(over) if over.any() else ()
        done = accepted + gap
        x1 = xs
        if len(slow):
            k = slow
            wk = self._solve(x[k], A[k], C[k], np.sqrt(x[k] * (1.0 / x_top)), ws[k])
            Pk, Uk, _, _, p99k, _ = T.at(wk)
            rk = A[k] * Pk
            dk = C[k] * Uk
            xk = x[k] + A[k] - rk - dk
            # Guards against the table's interpolation: never below 0, never above the top.
            dk = dk + np.minimum(xk, 0.0)
            rk = rk + np.maximum(xk - x_top, 0.0)
            x1[k] = np.clip(xk, 0.0, x_top)
            rejected[k] = rk
            done[k] = dk
            p99_u[k] = p99k
            ws[k] = wk
        self.queue = x1
        # Response times of this tick's completions (ms); the client gives up at the timeout.
        timeout = spec.timeout_ms
        net = self._net() if self.region_ms is not None else None
        if faulted:
            shift = self.lat_extra_ms + extra_ms
            if net is not None:
                shift = shift + net
            t_units = (timeout - shift) / svc_ms
            late = np.flatnonzero(t_units < T.cut.take(i))
        elif net is not None:
            # the network to each pod's region adds its latency (placement, sim/cloud.py)
            shift = net + extra_ms
            if (timeout - extra_ms - self._net_max) * (self.mu / 1000.0) * f_min < T.cut_top:
                t_units = (timeout - shift) / svc_ms
                late = np.flatnonzero(t_units < T.cut.take(i))
            else:
                late = ()
        elif (timeout - extra_ms) * (self.mu / 1000.0) * f_min < T.cut_top:
            # the longest response the table knows, at the slowest server: some may be late
            shift = extra_ms
            t_units = (timeout - shift) / svc_ms
            late = np.flatnonzero(t_units < T.cut.take(i))
        else:
            shift = extra_ms
            late = ()
        if len(late):
            p_to = np.zeros(len(self))
            p_to[late] = T.survival(ws[late], t_units[late])
            timed_out = done * p_to
            ok = done - timed_out
        else:
            timed_out, ok = None, done
        err_p = spec.base_error_rate + extra_err
        err_p = np.minimum(err_p + self.err_extra, 1.0) if faulted else min(err_p, 1.0)
        errored = ok * err_p
        served = ok - errored
        p99 = p99_u
        p99 *= svc_ms
        p99 += shift
        np.minimum(p99, timeout, out=p99)

        failed = rejected + errored
        if timed_out is not None:
            failed += timed_out
        inv = 1.0 / dt
        # (x * 1.0 is x: with 1 s ticks the per-tick arrays are already per second)
        self.rps = A if inv == 1.0 else A * inv
        self.served_rps = served if inv == 1.0 else served * inv
        self.p99_ms = p99 * m.nan_unready
        den = np.maximum(A, done)
        den += 1e-12
        self.error_rate = np.divide(failed, den, out=den)
        busy = done * busy_k
        busy += spec.cpu_idle_fraction
        if faulted:
            busy += self.cpu_extra
        np.minimum(busy, 1.0, out=busy)
        cpu = busy * m.serving_f
        cpu += m.starting_cpu
        self.cpu = cpu
        if faulted:
            self.leak_mb = self.leak_mb + self.leak_rate_mb_s * dt
            base = m.alive_f * (spec.memory_base_mb + self.leak_mb)
        else:
            base = m.alive_mb
        mem = (spec.memory_per_rps_mb * inv) * A
        mem += base
        mem += 0.05 * x1
        self.memory_mb = mem
        log_gb = served * (spec.log_mb_per_1k_requests / 1000.0 / 1024.0)
        self.disk_gb = (NEUTRAL["disk_gb"] + self.disk_fill_gb if log_rotate else self.disk_gb) \
            + log_gb
        self.served_total = self.served_total + served
        self.errors_total = self.errors_total + failed

        if n_ready:
            cpu_mean = float(busy @ m.ready_f) / n_ready
            mem_mean = float(self.memory_mb @ m.ready_f) / n_ready
        else:
            cpu_mean = mem_mean = 0.0
        total_done = float(_sum(done))
        q_sum = float(_sum(x1))
        self._queue_sum = (x1, q_sum)
        f_p50, f_p99, f_mean = self._fleet_latency(done, total_done, q_sum * dt,
                                                   ws, svc_ms, shift, p99, timeout)
        return FleetTick(offered, float(_sum(served)) * inv, float(_sum(errored)) * inv,
                         0.0 if timed_out is None else float(_sum(timed_out)) * inv,
                         (float(_sum(rejected)) + no_server) * inv,
                         f_p50, f_p99, f_mean, cpu_mean, mem_mean,
                         self._capacity(C, m.serving_f) * inv)

    def _net(self) -> np.ndarray:
        """Each server's added network latency (ms) from its region (cached by the identity
        of the region column, which is replaced whenever it changes)."""
        nc = self._net_cache
        if nc is None or nc[0] is not self.region:
            nc = self._net_cache = (self.region, self.region_ms[self.region])
        return nc[1]

    @property
    def _net_max(self) -> float:
        return float(self.region_ms.max())

    def _capacity(self, C: np.ndarray, serving_f: np.ndarray) -> float:
        """Completions per tick the serving servers can make (cached: speeds and states
        change far less often than every tick)."""
        cc = self._cap_cache
        if cc is None or cc[0] is not C or cc[1] is not serving_f:
            cc = self._cap_cache = (C, serving_f, float(C @ serving_f))
        return cc[2]

    def ready_count(self) -> int:
        """Servers in READY state (from the per-state cache, rebuilt only on a change)."""
        return self._masks().n_ready

    def queue_total(self) -> float:
        """Requests in all servers (in service and queued): the sum the last step computed,
        unless the queues changed since."""
        qs = self._queue_sum
        if qs is not None and qs[0] is self.queue:
            return qs[1]
        return float(self.queue.sum())

    def _masks(self) -> _Masks:
        """Per-state masks and constants, rebuilt only when the state column changes (the
        engine replaces it on every change, so its identity tells)."""
        mk = self._mask_cache
        if mk is not None and mk.state is self.state:
            return mk
        st = self.state
        ready = st == READY
        serving = ready | (st == DRAINING)
        # no container running (or none anyone can measure): no memory to show
        alive = ((st != CRASHED) & (st < PENDING)).astype(np.float64)
        mk = self._mask_cache = _Masks(
            state=st, n_ready=int(np.count_nonzero(ready)), ready_f=ready.astype(np.float64),
            serving_f=serving.astype(np.float64), alive_f=alive,
            alive_mb=alive * self.spec.memory_base_mb,
            nan_unready=np.where(ready, 1.0, np.nan),
            starting_cpu=np.where(st == STARTING, 0.35, 0.0), zeros=np.zeros(len(st)))
        return mk

    def _solve(self, x, A, C, w0, ws) -> np.ndarray:
        """The backward-Euler state of the given servers: the root w of

            h(w) = x_top w^2 - x - A (1 - p_K(w)) + C U(w)

        (h rises with w) between the start w0 and the steady state ws, by safeguarded Newton
        (a step leaving the bracket bisects it). Each server stops at its own convergence:
        the iterations run over the servers still unconverged (after a load step a whole
        fleet starts here, and most of it converges in a few steps)."""
        T = self.table
        x_top = T.x_top
        G1 = T.G - 1
        lo = np.minimum(w0, ws)
        hi = np.maximum(w0, ws)
        w = ws
        out = w
        idx = None  # the unconverged servers' positions in `out` (None: all of them)
        pk, ut = T.row_list[0], T.row_list[1]
        for _ in range(30):
            i, fr = T.cell(w)
            P0, U0 = pk[i], ut[i]
            dP, dU = pk[i + 1] - P0, ut[i + 1] - U0
            P = P0 + fr * dP
            U = U0 + fr * dU
            h = x_top * w * w - x - A * (1.0 - P) + C * U
            open_ = np.abs(h) > NEWTON_TOL
            if not open_.all():
                if idx is None:
                    out = w.copy()
                    idx = np.flatnonzero(open_)
                else:
                    out[idx] = w
                    idx = idx[open_]
                if not len(idx):
                    return out
                w, h, x, A, C, lo, hi, dP, dU = (
                    v[open_] for v in (w, h, x, A, C, lo, hi, dP, dU))
            dh = 2.0 * x_top * w + G1 * (A * dP + C * dU)
            lo = np.where(h < 0, w, lo)
            hi = np.where(h > 0, w, hi)
            step = w - h / np.maximum(dh, 1e-12)
            w = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        if idx is None:
            return w
        out[idx] = w
        return out

    def _fleet_latency(self, done, total, in_system_s, w, svc_ms, shift, p99, timeout):
        """Fleet-wide latency of this tick's completions: the mean by Little's law (time spent
        in the servers over requests completed, plus the added latency), p50/p99 from the
        mixture of the servers' response-time distributions weighted by completions.

        Servers are grouped into at most MIX_GROUPS bins of similar p99 (log-spaced), each bin
        represented by its completion-weighted state, service time and added latency; the
        mixture's survival function is then solved on a grid. Cost is independent of the fleet
        size, error a few percent at most. Capped at the client timeout. Fleets larger than
        MIX_SAMPLE are represented by an even sample of their servers.
        """
        if total <= 0:
            return 0.0, 0.0, 0.0
        scalar_shift = not isinstance(shift, np.ndarray)
        added = shift if scalar_shift else float(shift @ done) / total
        mean = min(1000.0 * in_system_s / total + added, timeout)
        if len(done) > MIX_SAMPLE:
            # Percentiles of a large fleet from an even sample of its servers (every k-th):
            # the mixture is over thousands of similar distributions, so a sample of
            # MIX_SAMPLE gives the same percentiles to well under a percent.
            k = -(-len(done) // MIX_SAMPLE)
            if done[::k].any():
                done, w, p99, svc_ms = done[::k], w[::k], p99[::k], svc_ms[::k]
                if not scalar_shift:
                    shift = shift[::k]
        lo, hi = float(_min(p99)), float(_max(p99))
        lo = max(lo, 1e-6)
        log_lo = math.log(lo)
        span = max(math.log(hi) - log_lo, 1e-9)
        gl = np.maximum(p99, lo)
        np.log(gl, out=gl)
        gl -= log_lo
        gl *= MIX_GROUPS / span
        g = gl.astype(np.intp)
        np.minimum(g, MIX_GROUPS - 1, out=g)
        wg = np.bincount(g, done, MIX_GROUPS)
        keep = wg > 0
        wg = wg[keep]

        def rep(values: np.ndarray) -> np.ndarray:
            r = np.bincount(g, done * values, MIX_GROUPS)[keep]
            r /= wg
            return r

        rw, svc = rep(w), rep(svc_ms)
        a, b = math.log(lo * 0.1), math.log(hi * 1.5)
        grid = (b - a) * _UNIT_GRID
        grid += a
        np.exp(grid, out=grid)
        if scalar_shift:
            # the same shift in every group: (grid - shift) / svc, one row per group
            y = (grid - shift)[None, :] / svc[:, None]
            nonpos = shift >= grid[0]  # no y <= 0 otherwise (the grid rises)
        else:
            y = grid[None, :] - rep(shift)[:, None]
            y /= svc[:, None]
            nonpos = True
        # one table row per group, broadcast over the grid (no repeat of the states)
        surv = self.table.survival(rw[:, None], y, nonpos)
        mix = (wg / _sum(wg)) @ surv
        # mix decreases along the grid: interpolate where it crosses 0.5 and 0.01
        np.negative(mix, out=mix)
        q50, q99 = _interp(_MIX_QUANTILES, mix, grid).tolist()
        return min(q50, timeout), min(q99, timeout), mean

    def record_history(self) -> None:
        pos = self.hist_pos % self.hist_len
        if len(self):
            for k, name in enumerate(HISTORY_FIELDS):
                self.hist[k, pos] = getattr(self, name)
        self.hist_pos += 1

    def memory_growth(self, t: float, window_ticks: int, dt: float) -> np.ndarray:
        """Each server's memory growth over the last `window_ticks` ticks beyond what its
        traffic explains (MiB per minute, from its history); NaN for a server not ready all
        that time (a new or restarted container fills its memory as it starts: no growth).

        A pod's memory rises and falls with the requests it holds, and its share of the
        traffic wanders; what a leak adds does not follow the traffic. So each end of the
        window is compared with the pods' peers at the same traffic: the memory left over
        after a least-squares line of memory against request rate across the ready pods (a
        peer comparison, as `memory / rps` on a dashboard but robust to idle memory)."""
        w = min(window_ticks, self.hist_len - 1, self.hist_pos - 1)
        if w <= 0 or not len(self):
            return np.full(len(self), np.nan)
        ok = (self.state == READY) & (self.ready_at <= t - w * dt)
        L = self.hist_len
        ends = []
        for pos in ((self.hist_pos - 1) % L, (self.hist_pos - 1 - w) % L):
            mem = self.hist[1, pos].astype(np.float64)  # HISTORY_FIELDS: memory_mb, rps
            rps = self.hist[2, pos].astype(np.float64)
            if np.count_nonzero(ok) >= 4:
                x, y = rps[ok], mem[ok]
                dx = x - x.mean()
                vx = float(dx @ dx)
                slope = max(float(dx @ (y - y.mean())) / vx, 0.0) if vx > 1e-9 else 0.0
                mem = mem - slope * rps - (y.mean() - slope * x.mean())
            ends.append(mem)
        g = (ends[0] - ends[1]) * (60.0 / (w * dt))
        return np.where(ok, g, np.nan)

    def history(self, index: int) -> dict[str, np.ndarray]:
        """The server's recent values per HISTORY_FIELDS, oldest first (a copy)."""
        n = min(self.hist_pos, self.hist_len)
        start = self.hist_pos - n
        order = (np.arange(start, self.hist_pos)) % self.hist_len
        return {name: self.hist[k, order, index].astype(np.float64)
                for k, name in enumerate(HISTORY_FIELDS)}

    def view(self, t: float) -> FleetView:
        spec = self.spec
        arrays = dict(
            memory_pct=self.memory_mb * (100.0 / spec.memory_request_mb),
            disk_pct=self.disk_gb * (100.0 / spec.disk_gb),
            net_in_kbps=self.rps * (spec.request_kb_in * 8.0),
            net_out_kbps=self.served_rps * (spec.response_kb_out * 8.0),
            ids=self.ids, state=self.state, version=self.version, region=self.region,
            cpu=self.cpu, memory_mb=self.memory_mb,
            rps=self.rps, served_rps=self.served_rps, p99_ms=self.p99_ms,
            error_rate=self.error_rate, served_total=self.served_total,
            errors_total=self.errors_total, uptime_s=t - self.started_at, restarts=self.restarts,
        )
        for a in arrays.values():
            a.flags.writeable = False
        return FleetView(names=self._names, **arrays)
