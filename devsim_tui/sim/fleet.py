"""The app server fleet as numpy columns: one array per attribute, one row per server.

A tick is a fixed handful of array operations whatever the fleet size. Arrays are never
modified in place after a tick publishes them: every update builds new arrays, so snapshots can
hold them by reference. Never imports the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devsim_tui.config.schema import ServerSpec
from devsim_tui.sim.queueing import RHO_MAX, LatencyTable
from devsim_tui.sim.snapshot import CRASHED, DRAINING, READY, STARTING, TERMINATED, FleetView

DRAIN_SECONDS = 5.0
CRASH_BACKOFF_SECONDS = 10.0
METRIC_DELAY_SECONDS = 15.0  # metrics-server has no sample for a pod younger than this
MIX_GROUPS = 16  # servers binned by p99 for the fleet-wide percentile mixture
MIX_GRID = 96  # log-spaced points: ~4% apart, linear interpolation between them
HISTORY_FIELDS = ("cpu", "memory_mb", "rps", "p99_ms", "error_rate")

# Columns that carry per-server state (all have one row per server, same order).
STATE_COLUMNS = (
    "ids", "state", "version", "region", "started_at", "ready_at", "until", "backlog",
    "disk_gb", "leak_mb", "served_total", "errors_total", "restarts",
    # fault knobs (chaos sets them; neutral values here)
    "cap_factor", "err_extra", "lat_extra_ms", "cpu_extra", "leak_rate_mb_s", "crash_loop",
    "disk_fill_gb",  # chaos: a filler file that log rotation does not remove
)
# The knobs a release's version sets on its pods (releases.py); chaos adds to them.
KNOBS = ("cap_factor", "err_extra", "lat_extra_ms", "cpu_extra", "leak_rate_mb_s", "crash_loop")
# Columns each tick recomputes from the state.
OUTPUT_COLUMNS = ("cpu", "memory_mb", "rps", "served_rps", "p99_ms", "error_rate")
DTYPES = {"ids": np.int64, "state": np.int8, "version": np.int16, "region": np.int16,
          "restarts": np.int32, "crash_loop": np.bool_}
NEUTRAL = {"cap_factor": 1.0, "disk_gb": 1.5}


@dataclass
class FleetTick:
    """Fleet totals of one tick (requests per second)."""

    offered: float
    served: float
    errored: float
    dropped: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu: float  # mean over ready servers, 0..1
    memory_mb: float  # mean over ready servers


class Fleet:
    def __init__(self, spec: ServerSpec, regions: list[str], prefix: str,
                 rng: np.random.Generator, history_ticks: int):
        self.spec = spec
        self.regions = regions
        self.prefix = prefix
        self.rng = rng
        self.c = spec.workers
        self.mu = spec.capacity_rps / spec.workers  # per worker
        self.table = LatencyTable(self.c)
        self.next_id = 1
        self._has_terminated = False
        self.hist_len = history_ticks
        self.hist_pos = 0
        self._empty()
        self._names: tuple[str, ...] = ()
        self._faulted = False
        self._backlogged = False
        self._dirty = True  # lifecycle states changed since the caches below were computed
        self._next_transition = 0.0
        self._active = 0
        # Per version code: knob values and start-up behaviour its pods get when created
        # (releases.py fills it; a missing version is a healthy one).
        self.version_traits: dict[int, dict[str, float]] = {}
        self.regions_down: set[int] = set()  # chaos region outage: nothing is scheduled there

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
        # Spread over regions: fill the least populated first, as a topology spread would.
        live = self.state != TERMINATED
        counts = np.bincount(self.region[live], minlength=len(self.regions)).astype(np.int64)
        if self.regions_down and len(self.regions_down) < len(self.regions):
            counts[list(self.regions_down)] = np.iinfo(np.int64).max // 2
        regions = np.empty(count, np.int16)
        for k in range(count):
            r = int(np.argmin(counts))
            regions[k] = r
            counts[r] += 1
        jitter = self.rng.uniform(0.8, 1.2, count)
        traits = self.version_traits.get(version, {})
        # A version that fails its readiness probe never becomes Ready (ready_at = inf).
        ready_at = (np.full(count, np.inf) if traits.get("fails_readiness")
                    else t + startup_s * traits.get("startup_factor", 1.0) * jitter)
        cols = {
            "ids": new_ids, "state": np.full(count, STARTING), "version": np.full(count, version),
            "region": regions, "started_at": np.full(count, t), "ready_at": ready_at,
        }
        for knob in KNOBS:
            if knob in traits:
                cols[knob] = np.full(count, traits[knob])
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
        self.state = np.where(mask, np.int8(state), self.state)
        self.until = np.where(mask, until, self.until)
        self._dirty = True

    def _refresh(self) -> None:
        """Recompute the cached replica count and the time of the next lifecycle transition."""
        s = self.state
        pending = np.where(s == STARTING, self.ready_at,
                           np.where((s == DRAINING) | (s == CRASHED), self.until, np.inf))
        self._next_transition = float(pending.min()) if len(s) else np.inf
        self._active = int(np.count_nonzero(self.active_mask()))
        self._dirty = False

    def active_count(self) -> int:
        if self._dirty:
            self._refresh()
        return self._active

    def active_mask(self) -> np.ndarray:
        """Servers that count as replicas (everything not draining away)."""
        s = self.state
        return (s == STARTING) | (s == READY) | (s == CRASHED)

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
        self.backlog = np.where(mask, 0.0, self.backlog)

    def refresh_flags(self) -> None:
        """Recompute whether any server deviates from the healthy default (faults, leaks).

        Call after changing fault knobs. Healthy fleets take the uniform path in `step`: every
        ready server gets the same load and behaves identically, so per-server figures are
        computed once as scalars and broadcast.
        """
        self._faulted = bool(
            (self.cap_factor != 1.0).any() or self.err_extra.any() or self.lat_extra_ms.any()
            or self.cpu_extra.any() or self.leak_rate_mb_s.any() or self.leak_mb.any()
            or self.crash_loop.any())

    def step(self, t: float, dt: float, offered: float, extra_ms: float, extra_err: float,
             log_rotate: bool) -> FleetTick:
        spec = self.spec
        ready = self.state == READY
        n_ready = int(np.count_nonzero(ready))
        if n_ready == 0:
            self._idle(ready, dt)
            return FleetTick(offered, 0.0, 0.0, offered, 0.0, 0.0, 0.0, 0.0, 0.0)
        ready_f = ready.astype(np.float64)
        uniform = not (self._faulted or self._backlogged)
        # Round-robin balancing over ready servers. On the uniform path the per-server values
        # below are scalars; otherwise arrays. The same formulas serve both.
        if uniform:
            rps = offered / n_ready
            cap_factor, backlog = 1.0, 0.0
            err_extra = lat_extra = cpu_extra = 0.0
        else:
            rps = ready_f * (offered / n_ready)
            cap_factor, backlog = self.cap_factor, self.backlog
            err_extra, lat_extra, cpu_extra = self.err_extra, self.lat_extra_ms, self.cpu_extra
        cap = self.c * self.mu * cap_factor  # requests/s each server can complete
        arrivals = rps * dt
        work = backlog + arrivals
        processed = np.minimum(cap * dt, work)
        queue = work - processed
        dropped = np.maximum(queue - spec.max_queue, 0.0)
        queue = queue - dropped
        rho = np.minimum(rps / cap, RHO_MAX)
        mean_u, p50_u, p99_u = self.table.lookup(rho)
        svc_ms = 1000.0 / (self.mu * cap_factor)
        add_ms = 1000.0 * queue / cap + lat_extra + extra_ms
        mean_ms = mean_u * svc_ms + add_ms
        p50 = p50_u * svc_ms + add_ms
        p99 = p99_u * svc_ms + add_ms
        # Requests whose response would exceed the client timeout fail (tail of R ~ wait + Exp).
        tail = np.exp(-np.maximum(spec.timeout_ms - add_ms, 0.0)
                      / np.maximum(mean_u * svc_ms, 1e-6))
        err_p = np.minimum(spec.base_error_rate + err_extra + extra_err + tail, 1.0)
        accepted = arrivals - dropped
        errored = accepted * err_p
        served = accepted - errored
        util = np.minimum(spec.cpu_idle_fraction + (1.0 - spec.cpu_idle_fraction) * processed
                          / (self.c * self.mu * dt) + cpu_extra, 1.0)
        err_rate = np.where(arrivals > 0, (errored + dropped) / np.maximum(arrivals, 1e-12), 0.0)

        if uniform:
            if queue > 0:
                self._backlogged = True
            self.backlog = ready_f * queue
            totals = (float(arrivals) * n_ready, float(served) * n_ready,
                      float(errored) * n_ready, float(dropped) * n_ready)
            f_p50, f_p99, f_mean = float(p50), float(p99), float(mean_ms)
        else:
            queue = ready_f * queue
            self.backlog = queue
            self._backlogged = bool(queue.any())
            totals = (float(arrivals.sum()), float(served.sum()), float(errored.sum()),
                      float(dropped.sum()))
            f_p50, f_p99, f_mean = self._fleet_latency(ready, rps, rho, mean_ms, p50, p99,
                                                       svc_ms, add_ms)
        starting = self.state == STARTING
        self.rps = rps_a = ready_f * rps
        self.served_rps = served_a = ready_f * (served / dt)
        self.p99_ms = ready_f * p99
        self.error_rate = ready_f * err_rate
        self.cpu = np.where(starting, 0.35, ready_f * util)
        if self._faulted:
            self.leak_mb = self.leak_mb + self.leak_rate_mb_s * dt
        alive = self.state != CRASHED
        self.memory_mb = alive * (spec.memory_base_mb + self.leak_mb) + (
            spec.memory_per_rps_mb * rps_a + 0.05 * self.backlog)
        log_gb = served_a * (dt * spec.log_mb_per_1k_requests / 1000.0 / 1024.0)
        self.disk_gb = (NEUTRAL["disk_gb"] + self.disk_fill_gb if log_rotate else self.disk_gb) \
            + log_gb
        self.served_total = self.served_total + served_a * dt
        self.errors_total = self.errors_total + ready_f * (errored + dropped)

        n_r = float(n_ready)
        cpu_mean = float(util) if uniform else float((ready_f * util).sum()) / n_r
        mem_mean = float((ready_f * self.memory_mb).sum()) / n_r
        tot_in, tot_served, tot_err, tot_drop = totals
        return FleetTick(tot_in / dt, tot_served / dt, tot_err / dt, tot_drop / dt,
                         f_p50, f_p99, f_mean, cpu_mean, mem_mean)

    def _idle(self, ready: np.ndarray, dt: float) -> None:
        zeros = np.zeros(len(self))
        self.rps = self.served_rps = self.p99_ms = self.error_rate = zeros
        self.cpu = np.where(self.state == STARTING, 0.35, self.spec.cpu_idle_fraction * ready)
        self.leak_mb = self.leak_mb + self.leak_rate_mb_s * dt
        self.memory_mb = (self.state != CRASHED) * (self.spec.memory_base_mb + self.leak_mb)
        self.backlog = zeros
        self._backlogged = False

    def _fleet_latency(self, ready, rps, rho, mean_ms, p50, p99, svc_ms, add_ms):
        """Fleet-wide latency percentiles: the load-weighted mixture of the servers' distributions.

        Servers are grouped into at most MIX_GROUPS bins of similar p99 (log-spaced), each bin
        represented by its load-weighted parameters; the mixture's survival function is then
        solved on a grid. Cost is independent of the fleet size, error a few percent at most.
        """
        idx = np.flatnonzero(ready)
        w = rps[idx]
        total = w.sum()
        if total <= 0:
            return 0.0, 0.0, 0.0
        mean = float((mean_ms[idx] * w).sum() / total)
        p99r = p99[idx]
        lo, hi = float(p99r.min()), float(p99r.max())
        if hi - lo <= 1e-6 * max(hi, 1.0):
            return float(p50[idx[0]]), hi, mean
        span = np.log(hi) - np.log(max(lo, 1e-9))
        g = np.minimum(((np.log(np.maximum(p99r, 1e-9)) - np.log(max(lo, 1e-9))) / span
                        * MIX_GROUPS).astype(np.int64), MIX_GROUPS - 1)
        wg = np.bincount(g, w, MIX_GROUPS)
        keep = wg > 0
        wg = wg[keep]

        def rep(values: np.ndarray) -> np.ndarray:
            return np.bincount(g, w * values[idx], MIX_GROUPS)[keep] / wg

        r, svc, shift = rep(rho), rep(svc_ms), rep(add_ms)
        pwait = self.table.wait_probability(r)
        k = self.c * (1.0 - r)
        grid = np.geomspace(max(float(p50[idx].min()), 1e-3) * 0.25, hi * 1.5, MIX_GRID)
        x = np.maximum(grid[None, :] - shift[:, None], 0.0) / svc[:, None]
        kk = np.where(np.abs(k - 1.0) < 1e-9, 1.0 + 1e-6, k)[:, None]
        hypo = (kk * np.exp(-x) - np.exp(-kk * x)) / (kk - 1.0)
        surv = (1.0 - pwait[:, None]) * np.exp(-x) + pwait[:, None] * hypo
        surv = np.where(grid[None, :] < shift[:, None], 1.0, surv)
        mix = (wg / wg.sum()) @ surv
        # mix decreases along the grid: interpolate where it crosses 0.5 and 0.01
        q50 = float(np.interp(-0.5, -mix, grid))
        q99 = float(np.interp(-0.01, -mix, grid))
        return q50, q99, mean

    def record_history(self) -> None:
        pos = self.hist_pos % self.hist_len
        if len(self):
            for k, name in enumerate(HISTORY_FIELDS):
                self.hist[k, pos] = getattr(self, name)
        self.hist_pos += 1

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
