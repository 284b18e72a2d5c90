"""Rollout strategies: how a new version replaces the running one, tick by tick.

- `RollingUpdate`: Kubernetes Deployment semantics (kubernetes.io Deployments; the controller's
  rolling.go and ResolveFenceposts): maxSurge rounded up,
  maxUnavailable rounded down (both 0 -> maxUnavailable 1), minReadySeconds, progress deadline,
  unhealthy old pods removed first; total <= R + surge and available >= R - unavailable hold at
  every tick while the spec replicas R (which the HPA may change) stay put.
- `Canary`: Argo Rollouts steps (setWeight by replica counts rounded up, pause with a duration or
  until `promote`, analysis), background analysis, abort (weight 0, stable scaled up, canary pods
  deleted after abortScaleDownDelaySeconds). `AnalysisRun` assesses measurements as Argo's
  analysis controller does (count, failureLimit, inconclusiveLimit, consecutiveErrorLimit).
- `HotReload`: Docker Compose hot reload: rebuild (may fail), unit tests, process restart with a
  short gap.

`AnalysisRun` and `version_stats` are the shared measuring tools; `ReleaseController` (releases.py)
decides what to do with their verdicts. Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from devsim_tui.sim.fleet import DRAIN_SECONDS, KNOBS, NEUTRAL
from devsim_tui.sim.snapshot import DRAINING, READY, STARTING

if TYPE_CHECKING:
    from devsim_tui.sim.releases import ReleaseController

SUCCESSFUL, FAILED, INCONCLUSIVE, RUNNING = "Successful", "Failed", "Inconclusive", "Running"
ERROR, PENDING = "Error", "Pending"
#: Argo Rollouts' analysisStatusOrder (utils/analysis/helpers.go), best to worst.
PHASE_ORDER = (SUCCESSFUL, RUNNING, PENDING, INCONCLUSIVE, ERROR, FAILED)


def worst(a: str, b: str) -> str:
    """The worse of two phases (Argo's analysisutil.Worst)."""
    return b if PHASE_ORDER.index(b) > PHASE_ORDER.index(a) else a

TERMINATION_GRID_S = 10.0  # draining pods of a rollout exit together on this grid
# Memory growth is measured over this long (deriv() of a pod's working set over 2 minutes):
# long enough that a pod's share of the traffic wandering is small against a leak
MEMORY_GROWTH_WINDOW_S = 120.0


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class VersionStats:
    """What the fleet columns say about one version's pods right now."""

    pods: int  # replicas (starting, ready or crashed)
    ready: int
    available: int  # ready for at least minReadySeconds
    rps: float
    error_rate: float  # request-weighted over ready pods
    p99_ms: float  # request-weighted over ready pods
    memory_mb: float  # mean over ready pods
    # Load-independent latency (request-weighted over ready pods), for comparing versions whose
    # pods run at different loads (`p99_at`): the workers' busy share read from the CPU gauge,
    # the mean service time it implies (Little's law on the workers: busy workers = completions
    # per second x service time) and the p99 left over once the pod's own queueing at its utilisation is
    # accounted for (a latency regression that holds no CPU, e.g. a slower downstream call).
    utilisation: float = 0.0
    service_ms: float = 0.0
    excess_ms: float = 0.0
    # Computes `memory_growth` when asked: rollouts build these stats every tick, but only the
    # detector's version check reads the growth, at an analysis measurement.
    growth_of: Callable[[], float] | None = field(default=None, compare=False, repr=False)

    @property
    def memory_growth(self) -> float:
        """Median memory growth (MiB per minute over MEMORY_GROWTH_WINDOW_S, beyond the
        peers' memory-vs-traffic line) of these pods ready all that time; 0 when none is. A
        leak grows without more load; a good version's pods move with their traffic."""
        return self.growth_of() if self.growth_of is not None else 0.0

    @property
    def has_data(self) -> bool:
        return self.ready > 0 and self.rps > 0

    def p99_at(self, table, utilisation: float) -> float:
        """The p99 these pods would show with their workers busy `utilisation` of the time:
        their service time x the M/M/c/K p99 there (in service times, `table`:
        QueueTable.p99_at_utilisation) + the latency queueing does not explain."""
        return self.service_ms * float(table.p99_at_utilisation(utilisation)) + self.excess_ms


def pods_stats(engine, mine: np.ndarray, t: float) -> VersionStats:
    """VersionStats of the pods in the boolean mask `mine`."""
    f = engine.fleet
    act = mine & f.active_mask()
    ready = mine & (f.state == READY)
    min_ready = engine.profile.deployment.minReadySeconds
    avail = ready & (t - f.ready_at >= min_ready)
    n_ready = int(np.count_nonzero(ready))
    rps = f.rps[ready]
    total = float(rps.sum())
    util = service = excess = 0.0
    if n_ready and total > 0:
        err = float((f.error_rate[ready] * rps).sum() / total)
        p99s = f.p99_ms[ready]
        p99 = float((p99s * rps).sum() / total)
        mem = float(f.memory_mb[ready].mean())
        idle = f.spec.cpu_idle_fraction
        u = np.clip((f.cpu[ready] - idle) / max(1.0 - idle, 1e-9), 0.0, 1.0)
        # completions, not arrivals: a pod whose queue fills or overflows completes fewer
        # requests than it is sent (failed completions are left out: the service time is
        # overstated by at most the error share)
        done = f.served_rps[ready]
        svc = np.where(done > 0, 1000.0 * f.c * u / np.maximum(done, 1e-12), 0.0)
        left = p99s - svc * f.table.p99_at_utilisation(u)
        share = rps / total
        util, service, excess = float(u @ share), float(svc @ share), float(left @ share)
    else:
        err = p99 = mem = 0.0

    def growth() -> float:
        g = f.memory_growth(t, int(round(MEMORY_GROWTH_WINDOW_S / engine.dt)), engine.dt)[ready]
        g = g[g == g]
        return float(np.median(g)) if len(g) else 0.0

    return VersionStats(int(np.count_nonzero(act)), n_ready, int(np.count_nonzero(avail)),
                        total, err, p99, mem, util, service, excess,
                        growth if n_ready else None)


def version_stats(engine, codes: int | tuple[int, ...], t: float) -> VersionStats:
    return pods_stats(engine, np.isin(engine.fleet.version, codes), t)


#: A check looks at the new version (and the stable one, when both run) and returns
#: (phase, reason) or None when it has no opinion. `ReleaseController.analysis_checks` holds the
#: checks every measurement runs: append one (e.g. the anomaly detector's verdict) to extend it.
Check = Callable[["VersionStats", "VersionStats | None", "ReleaseController"],
                 "tuple[str, str] | None"]


def metric_check(new: VersionStats, stable: VersionStats | None,
                 ctl: ReleaseController) -> tuple[str, str] | None:
    """Error rate and p99 of the new version against the profile's thresholds, and against the
    stable version when it runs alongside (so an estate-wide problem is not blamed on it). The
    stable version's p99 is taken at the new version's utilisation (`VersionStats.p99_at`):
    pods that run hotter than the stable ones during a rollout's churn (new pods carrying the
    load of the old ones being replaced) queue more whatever their code."""
    if not new.has_data:
        return None
    dep = ctl.engine.profile.deployment
    err_limit = dep.rollback_error_rate
    p99_limit = dep.rollback_p99_ms or 2.0 * ctl.engine.profile.slo.p99_latency_ms
    if stable is not None and stable.has_data:
        err_limit = max(err_limit, 2.0 * stable.error_rate)
        like = stable.p99_at(ctl.engine.fleet.table, new.utilisation)
        p99_limit = max(p99_limit, 1.5 * max(stable.p99_ms, like))
    problems = []
    if new.error_rate > err_limit:
        problems.append(f"error rate {new.error_rate:.1%} above {err_limit:.1%}")
    if new.p99_ms > p99_limit:
        problems.append(f"p99 {new.p99_ms:.0f} ms above {p99_limit:.0f} ms")
    if problems:
        return FAILED, " and ".join(problems)
    return SUCCESSFUL, f"error rate {new.error_rate:.2%}, p99 {new.p99_ms:.0f} ms"


class AnalysisRun:
    """An Argo Rollouts AnalysisRun with one metric (the checks of `analysis_checks` together).

    A measurement every `interval`. Its phase is the worst of the checks' answers (Argo's order
    Successful < Inconclusive < Error < Failed); a measurement without data (no ready pod of the
    version yet) is not taken, like a metric still in its `initialDelay`. The counters and the
    assessment are Argo's (analysis/analysis.go: runMeasurements, assessMetricStatus,
    assessMetricFailureInconclusiveOrError):

    * Successful, Failed and Inconclusive measurements add to `count` and reset the consecutive
      error counter; an Error measurement adds to `error` and `consecutive_error` only;
    * Failed when failed > failureLimit (default 0), Inconclusive when inconclusive >
      inconclusiveLimit (default 0), Error when consecutive errors > consecutiveErrorLimit
      (default 4), checked in that order, the later one winning;
    * otherwise Successful once `count` measurements were taken (a run with `count: None` runs
      until it is terminated, which makes it Successful).
    """

    def __init__(self, name: str, t: float, interval: float, count: int | None,
                 failure_limit: int = 0, inconclusive_limit: int = 0,
                 consecutive_error_limit: int = 4):
        self.name = name
        self.interval = interval
        self.count = count
        self.failure_limit = failure_limit
        self.inconclusive_limit = inconclusive_limit
        self.consecutive_error_limit = consecutive_error_limit
        self.next_at = t + interval
        self.measured = self.successful = self.failed = self.inconclusive = 0
        self.error = self.consecutive_error = 0
        self.phase = RUNNING
        self.last = ""  # what the last measurement found
        self.message = ""  # why the run completed the way it did (Argo's wording)

    @classmethod
    def from_spec(cls, name: str, t: float, spec, count: int | None,
                  args: dict | None = None) -> AnalysisRun:
        """A run from `deployment.analysis`, with a canary step's `analysis` keys on top."""
        args = args or {}
        interval = args.get("interval", spec.interval_seconds)
        return cls(name, t, _parse_seconds(interval), count,
                   int(args.get("failureLimit", spec.failureLimit)),
                   int(args.get("inconclusiveLimit", spec.inconclusiveLimit)),
                   int(args.get("consecutiveErrorLimit", spec.consecutiveErrorLimit)))

    @property
    def taken(self) -> int:
        """Every measurement taken, errors included (Argo's len(Measurements))."""
        return self.measured + self.error

    def due(self, t: float) -> bool:
        return self.phase == RUNNING and t >= self.next_at - 1e-9

    def record(self, t: float, results: list[tuple[str, str]]) -> str:
        """Take one measurement from the checks' (phase, reason) answers; returns the phase."""
        self.next_at = t + self.interval
        if not results or self.phase != RUNNING:
            return self.phase
        phase = SUCCESSFUL
        for p, _ in results:
            phase = worst(phase, p)
        self.last = "; ".join(r for p, r in results if p == phase)
        self.add(phase)
        return self.phase

    def add(self, phase: str) -> str:
        """Count one completed measurement of `phase` and assess the run (runMeasurements)."""
        if phase == ERROR:
            self.error += 1
            self.consecutive_error += 1
        else:
            self.measured += 1
            self.consecutive_error = 0
            if phase == FAILED:
                self.failed += 1
            elif phase == INCONCLUSIVE:
                self.inconclusive += 1
            else:
                self.successful += 1
        self.phase = self.assess()
        return self.phase

    def limits_phase(self) -> tuple[str | None, str]:
        """Argo's assessMetricFailureInconclusiveOrError: (phase or None, message)."""
        phase, message = None, ""
        if self.failure_limit >= 0 and self.failed > self.failure_limit:
            phase, message = FAILED, f"failed ({self.failed}) > failureLimit ({self.failure_limit})"
        if self.inconclusive > self.inconclusive_limit:
            phase, message = INCONCLUSIVE, (f"inconclusive ({self.inconclusive}) > "
                                            f"inconclusiveLimit ({self.inconclusive_limit})")
        if self.consecutive_error > self.consecutive_error_limit:
            phase, message = ERROR, (f"consecutiveErrors ({self.consecutive_error}) > "
                                     f"consecutiveErrorLimit ({self.consecutive_error_limit})")
        return phase, message

    def assess(self, terminating: bool = False) -> str:
        """Argo's assessMetricStatus for this run's counters."""
        if self.taken == 0:
            return SUCCESSFUL if terminating else PENDING
        phase, message = self.limits_phase()
        if phase is not None:
            self.message = message
            return phase
        if self.count is not None and self.measured >= self.count:
            self.message = f"count ({self.count}) reached"
            return SUCCESSFUL
        if terminating:
            self.message = "run terminated"
            return SUCCESSFUL
        return RUNNING

    def terminate(self) -> str:
        """Stop the run (the rollout it watched is over): a running run ends Successful."""
        if self.phase in (RUNNING, PENDING):
            self.phase = self.assess(terminating=True)
        return self.phase

    def view(self) -> dict:
        return {"name": self.name, "phase": self.phase, "measurements": self.measured,
                "successful": self.successful, "failed": self.failed,
                "inconclusive": self.inconclusive, "errors": self.error,
                "consecutive_errors": self.consecutive_error,
                "failure_limit": self.failure_limit,
                "inconclusive_limit": self.inconclusive_limit,
                "consecutive_error_limit": self.consecutive_error_limit,
                "count": self.count, "last": self.last, "message": self.message}


# --------------------------------------------------------------------------- replica sets


def resolve_fenceposts(dep, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as Kubernetes' ResolveFenceposts computes them."""
    def value(v, up: bool) -> int:
        if isinstance(v, str) and v.endswith("%"):
            x = replicas * float(v[:-1]) / 100.0
            return int(math.ceil(x - 1e-9)) if up else int(math.floor(x + 1e-9))
        return int(v)

    surge = value(dep.rollingUpdate.maxSurge, True)
    unavail = value(dep.rollingUpdate.maxUnavailable, False)
    if surge == 0 and unavail == 0:
        unavail = 1
    return surge, unavail


def _victims(f, mask: np.ndarray, avail: np.ndarray, count: int) -> np.ndarray:
    """ReplicaSet scale-down order within `mask`: unavailable pods first, then the newest."""
    idx = np.flatnonzero(mask)
    order = np.lexsort((-f.started_at[idx], avail[idx].astype(np.int8)))
    out = np.zeros(len(f), bool)
    out[idx[order[:count]]] = True
    return out


class Rollout:
    """What every strategy shares: the version it brings, removal/creation of pods, events."""

    strategy = "rollout"

    def __init__(self, ctl: ReleaseController, t: float, new: int, stable: int, reason: str):
        self.ctl = ctl
        self.engine = ctl.engine
        self.new = new
        self.stable = stable
        self.reason = reason
        self.started_t = t
        self.paused = False
        self.pause_reason = ""
        self.done = False
        dep = self.engine.profile.deployment
        a = dep.analysis
        self.background = (AnalysisRun.from_spec("background", t, a, None)
                           if a.background else None)
        self.last_progress_t = t
        self.deadline_exceeded = False
        self._progress_key: tuple = ()
        self._announced_ready = 0

    # pods ---------------------------------------------------------------

    def _remove(self, t: float, mask: np.ndarray, why: str) -> None:
        if not mask.any():
            return
        f = self.engine.fleet
        names = [f.names[i] for i in np.flatnonzero(mask)]
        # Pods finish draining on a TERMINATION_GRID_S grid: a rollout removes a few pods nearly
        # every tick, and batching their exits lets the fleet compact (a copy of every column
        # and of the per-server history) once per grid step instead of once per tick.
        end = t + DRAIN_SECONDS
        f.set_state(mask, DRAINING, end + (-end % TERMINATION_GRID_S))
        self.engine.emit(t, "server.draining", _names(names, f"draining ({why})"), "info",
                         names[0] if len(names) == 1 else None, servers=names)

    def _add(self, t: float, code: int, count: int) -> None:
        e = self.engine
        names = e.fleet.add(t, count, code, e.profile.app.server.startup_seconds)
        e.emit(t, "server.created", _names(names, f"starting {e.versions[code]}"), "info",
               names[0] if len(names) == 1 else None, servers=names, version=e.versions[code])

    def reconcile_sets(self, t: float, new_target: int, old_target: int) -> None:
        """Move the new and old pods toward their targets within maxSurge / maxUnavailable,
        in the order of Kubernetes' rolling.go: scale the new ReplicaSet up first; else clean up
        unhealthy old pods, then scale old ones down as far as availability allows."""
        e = self.engine
        f = e.fleet
        R = e.desired
        dep = e.profile.deployment
        surge, unavail = resolve_fenceposts(dep, R)
        act = f.active_mask()
        new = act & (f.version == self.new)
        old = act & ~new
        avail = act & (f.state == READY) & (t - f.ready_at >= dep.minReadySeconds)
        n_new, n_old = int(new.sum()), int(old.sum())
        n_all = n_new + n_old
        max_total = max(R + surge, new_target + old_target)
        if n_all > max_total:  # the spec shrank (HPA): trim old pods first, then new ones
            extra = n_all - max_total
            k = min(extra, n_old)
            self._remove(t, _victims(f, old, avail, k), "scaled down")
            if extra - k > 0:
                self._remove(t, _victims(f, new, avail, extra - k), "scaled down")
            return
        if n_new > new_target:
            self._remove(t, _victims(f, new, avail, n_new - new_target), "scaled down")
            return
        up = min(new_target - n_new, max_total - n_all)
        if up > 0:
            self._add(t, self.new, up)
            return
        excess = n_old - old_target
        if excess > 0:
            min_avail = R - unavail
            new_unavail = n_new - int((new & avail).sum())
            max_down = n_all - min_avail - new_unavail
            if max_down <= 0:
                return
            unhealthy = old & ~avail
            k = min(max_down, excess, int(unhealthy.sum()))
            victims = _victims(f, unhealthy, avail, k)
            can = int(avail.sum()) - min_avail
            k2 = min(excess - k, can, int((old & avail).sum()))
            if k2 > 0:
                victims |= _victims(f, old & avail, avail, k2)
            self._remove(t, victims, "replaced by " + e.versions[self.new])
            return
        if n_old < old_target:
            up = min(old_target - n_old, max_total - n_all)
            if up > 0:
                self._add(t, self.stable, up)

    def scale_paused(self, t: float) -> None:
        """A paused rollout still follows scaling (the HPA): add or remove pods in proportion to
        the new and old ReplicaSets' sizes, as Kubernetes' proportional scaling does."""
        e = self.engine
        f = e.fleet
        act = f.active_mask()
        new = act & (f.version == self.new)
        n_new, n_all = int(new.sum()), int(act.sum())
        R = e.desired
        surge, _ = resolve_fenceposts(e.profile.deployment, R)
        if n_all < R:
            add_new = int(round((R - n_all) * n_new / n_all)) if n_all else R
            if add_new:
                self._add(t, self.new, add_new)
            if R - n_all - add_new:
                self._add(t, self.stable, R - n_all - add_new)
        elif n_all > R + surge:
            avail = f.state == READY
            self._remove(t, _victims(f, act & ~new, avail, min(n_all - R - surge,
                                                               n_all - n_new)), "scaled down")

    # progress -----------------------------------------------------------

    def track_progress(self, t: float, key: tuple) -> None:
        """Kubernetes' progress: any change of the ReplicaSets' sizes or availability. No
        progress for progressDeadlineSeconds sets Progressing=False (ProgressDeadlineExceeded);
        the deadline is not tracked while paused, and nothing is rolled back because of it."""
        if key != self._progress_key or self.paused:
            self._progress_key = key
            self.last_progress_t = t
            return
        deadline = self.engine.profile.deployment.progressDeadlineSeconds
        if not self.deadline_exceeded and t - self.last_progress_t >= deadline:
            self.deadline_exceeded = True
            self.engine.emit(t, "release.progress_deadline_exceeded",
                             f"{self.label()}: Progressing=False (ProgressDeadlineExceeded): no "
                             f"progress for {deadline}s; the rollout is not stopped",
                             "warning", version=self.engine.versions[self.new])

    def announce_ready(self, t: float, stats: VersionStats, target: int) -> None:
        if stats.available > self._announced_ready:
            self._announced_ready = stats.available
            self.engine.emit(t, "release.pods_available",
                             f"{self.label()}: {stats.available}/{target} pods available",
                             "info", available=stats.available, target=target)

    def label(self) -> str:
        return f"{self.engine.profile.app.service} {self.engine.versions[self.new]}"

    def view(self) -> dict:
        return {"strategy": self.strategy, "version": self.engine.versions[self.new],
                "from": self.engine.versions[self.stable], "reason": self.reason,
                "started_t": self.started_t, "paused": self.paused,
                "pause_reason": self.pause_reason,
                "progressing": not self.deadline_exceeded,
                "analysis": self.background.view() if self.background else None}


# --------------------------------------------------------------------------- rolling update


class RollingUpdate(Rollout):
    strategy = "rolling-update"

    def reconcile(self, t: float) -> bool:
        if self.paused:
            self.scale_paused(t)
        else:
            self.reconcile_sets(t, self.engine.desired, 0)
        return True

    def observe(self, t: float) -> None:
        e = self.engine
        new = version_stats(e, self.new, t)
        old_codes = tuple(int(v) for v in np.unique(e.fleet.version[e.fleet.active_mask()])
                          if v != self.new)
        old = version_stats(e, old_codes, t) if old_codes else None
        R = e.desired
        self.announce_ready(t, new, R)
        self.track_progress(t, (new.pods, new.available, old.pods if old else 0))
        if new.pods == R and new.available == R and old is None:
            self.done = True
            return
        self.ctl.judge(t, self, new, old)


# --------------------------------------------------------------------------- canary


def _parse_seconds(value) -> float:
    from devsim_tui.config.durations import parse_duration

    return parse_duration(value)


class Canary(Rollout):
    """Argo Rollouts' basic canary (no traffic router): weights become replica counts."""

    strategy = "canary"

    def __init__(self, ctl, t, new, stable, reason):
        super().__init__(ctl, t, new, stable, reason)
        self.steps = list(self.engine.profile.deployment.canary_steps)
        self.index = 0
        self.step_t = t
        self.weight = 0
        self.promoting = not self.steps
        self.step_run: AnalysisRun | None = None
        self._step_started = False

    def targets(self) -> tuple[int, int]:
        R = self.engine.desired
        if self.promoting:
            return R, 0
        if self.weight <= 0:
            return 0, R
        canary = math.ceil(R * self.weight / 100.0 - 1e-9)
        stable = math.ceil(R * (100 - self.weight) / 100.0 - 1e-9)
        return canary, stable

    def reconcile(self, t: float) -> bool:
        # A paused canary holds its weight: the targets still follow the spec's size (HPA).
        new_t, old_t = self.targets()
        self.reconcile_sets(t, new_t, old_t)
        return True

    def promote(self, t: float, full: bool) -> str:
        if full:
            self.promoting = True
            self.paused = False
            return "full promotion: skipping the remaining steps"
        if self.paused:
            self.paused = False
            self.pause_reason = ""
            if self.index < len(self.steps) and (self.steps[self.index].pause is not None
                                                 or self.steps[self.index].analysis is not None):
                self._next(t)  # a pause step, or an analysis step that paused Inconclusive
            return "resumed"
        self._next(t)
        return f"skipped to step {self.index + 1}"

    def _next(self, t: float) -> None:
        self.index += 1
        self.step_t = t
        self._step_started = False
        self.step_run = None
        if self.index >= len(self.steps):
            self.promoting = True
            self.engine.emit(t, "release.canary.promoting",
                             f"{self.label()}: all steps passed; promoting to 100%", "info")

    def observe(self, t: float) -> None:
        e = self.engine
        new = version_stats(e, self.new, t)
        stable = version_stats(e, self.stable, t)
        new_t, old_t = self.targets()
        self.announce_ready(t, new, new_t)
        self.track_progress(t, (new.pods, new.available, stable.pods, self.index))
        if self.promoting:
            if new.pods == e.desired and new.available == e.desired and \
                    self._others(self.new) == 0:
                self.done = True
            else:
                self.ctl.judge(t, self, new, stable)
            return
        if self.ctl.judge(t, self, new, stable) or self.paused:
            return
        step = self.steps[self.index]
        if not self._step_started:
            self._step_started = True
            self.step_t = t
            self._announce_step(t, step)
        if step.setWeight is not None:
            self.weight = step.setWeight
            new_t, old_t = self.targets()
            if new.available >= new_t and self._others(self.new) <= old_t:
                self._next(t)
        elif step.pause is not None:
            if "duration" in step.pause:
                if t - self.step_t >= _parse_seconds(step.pause["duration"]):
                    self._next(t)
            else:
                self.paused = True
                self.pause_reason = "pause step: waiting for promote"
        elif step.analysis is not None:
            self._step_analysis(t, step, new, stable)
        else:
            self._next(t)

    def _others(self, code: int) -> int:
        f = self.engine.fleet
        return int((f.active_mask() & (f.version != code)).sum())

    def _announce_step(self, t: float, step) -> None:
        what = ("setWeight " + str(step.setWeight) if step.setWeight is not None else
                "pause " + str(step.pause.get("duration", "until promote"))
                if step.pause is not None else "analysis")
        if step.setWeight is not None:
            new_t, old_t = (math.ceil(self.engine.desired * step.setWeight / 100 - 1e-9),
                            math.ceil(self.engine.desired * (100 - step.setWeight) / 100 - 1e-9))
            what += f"% (canary {new_t} pods, stable {old_t})"
        self.engine.emit(t, "release.canary.step", f"{self.label()}: step {self.index + 1}/"
                         f"{len(self.steps)}: {what}", "info", step=self.index + 1)

    def _step_analysis(self, t, step, new, stable) -> None:
        a = self.engine.profile.deployment.analysis
        if self.step_run is None:
            args = step.analysis or {}
            self.step_run = AnalysisRun.from_spec(str(args.get("templateName", "analysis")), t,
                                                  a, int(args.get("count", a.count)), args)
        run = self.step_run
        if not run.due(t):
            return
        phase = run.record(t, self.ctl.measure(new, stable))
        if phase == SUCCESSFUL:
            self.engine.emit(t, "release.analysis.successful",
                             f"{self.label()}: analysis {run.name} Successful after "
                             f"{run.measured} measurements, {run.failed} failed "
                             f"({run.message}; last: {run.last})", "info")
            self._next(t)
        elif phase in (FAILED, ERROR):
            # Argo aborts the rollout on a Failed or Error analysis.
            self.ctl.verdict_failed(t, self, f"analysis {run.name} {phase}: {run.message} "
                                    f"({run.last})")
        elif phase == INCONCLUSIVE:
            self.paused = True
            self.pause_reason = f"analysis {run.name} Inconclusive: {run.message} ({run.last})"
            self.engine.emit(t, "release.analysis.inconclusive",
                             f"{self.label()}: {self.pause_reason}; paused for a human "
                             "(promote or abort)", "warning")

    def view(self) -> dict:
        out = super().view()
        out.update(weight=100 if self.promoting else self.weight,
                   step=min(self.index + 1, len(self.steps)), steps=len(self.steps),
                   promoting=self.promoting,
                   step_analysis=self.step_run.view() if self.step_run else None)
        return out


# --------------------------------------------------------------------------- hot reload


class HotReload:
    """Development: rebuild -> unit tests -> the process restarts on the new code."""

    strategy = "hot-reload"

    def __init__(self, ctl: ReleaseController, t: float, new: int, stable: int, reason: str,
                 run_tests: bool = True):
        self.ctl = ctl
        self.engine = ctl.engine
        self.new = new
        self.stable = stable
        self.reason = reason
        self.started_t = t
        self.run_tests = run_tests
        hr = self.engine.profile.deployment.hot_reload
        rng = self.engine.rng
        # Build times vary around the profile's mean (cache hits, cold dependencies).
        self.build_s = float(hr.build_seconds * rng.uniform(0.7, 1.4))
        self.fails = bool(rng.random() < hr.build_failure_probability)
        self.phase = "building"
        self.phase_until = t + self.build_s
        self.done = False
        self.failed = False
        self.paused = False
        self.engine.emit(t, "build.started", f"{reason}: rebuilding "
                         f"{self.engine.versions[new]}", "info",
                         version=self.engine.versions[new])

    def reconcile(self, t: float) -> bool:
        return False  # the engine keeps the single instance; the restart is in `step`

    def step(self, t: float) -> None:
        if t < self.phase_until or self.done:
            return
        e = self.engine
        hr = e.profile.deployment.hot_reload
        name = e.versions[self.new]
        if self.phase == "building":
            e.build_time_s = round(self.build_s, 1)
            if self.fails:
                self.failed = self.done = True
                e.emit(t, "build.failed", f"build of {name} failed after {self.build_s:.0f}s "
                       f"(compile error); {e.versions[self.stable]} keeps running", "error",
                       version=name, build_seconds=round(self.build_s, 1))
                return
            e.emit(t, "build.succeeded", f"build of {name} succeeded in {self.build_s:.0f}s",
                   "info", version=name, build_seconds=round(self.build_s, 1))
            if self.run_tests and hr.test_seconds > 0:
                self.phase, self.phase_until = "testing", t + hr.test_seconds
                return
            self.phase = "testing"
        if self.phase == "testing":
            if self.run_tests:
                e.emit(t, "tests.passed", f"unit tests passed for {name}", "info", version=name)
            self._restart(t)
            self.phase, self.done = "restarted", True

    def _restart(self, t: float) -> None:
        """The app process restarts on the new code: the same container, gone for the restart
        gap, then starting up (no request is served until it is Ready again)."""
        e = self.engine
        f = e.fleet
        hr = e.profile.deployment.hot_reload
        mask = f.active_mask()
        traits = f.version_traits.get(self.new, {})
        startup = e.profile.app.server.startup_seconds * traits.get("startup_factor", 1.0)
        ready_at = np.inf if traits.get("fails_readiness") else t + hr.restart_gap_seconds + \
            startup
        f.version = np.where(mask, np.int16(self.new), f.version)
        f.started_at = np.where(mask, t, f.started_at)
        f.ready_at = np.where(mask, ready_at, f.ready_at)
        f.leak_mb = np.where(mask, 0.0, f.leak_mb)
        f.backlog = np.where(mask, 0.0, f.backlog)
        for knob in KNOBS:
            value = traits.get(knob, NEUTRAL.get(knob, 0))
            setattr(f, knob, np.where(mask, value, getattr(f, knob)).astype(getattr(f, knob).dtype))
        f.set_state(mask, STARTING)
        f.refresh_flags()
        e.current_version = self.new
        names = [f.names[i] for i in np.flatnonzero(mask)]
        e.emit(t, "release.reloaded", _names(names, f"restarting on {e.versions[self.new]} "
               f"(gap {hr.restart_gap_seconds:.0f}s + start-up)"), "info",
               names[0] if len(names) == 1 else None, servers=names,
               version=e.versions[self.new])

    def view(self) -> dict:
        return {"strategy": self.strategy, "version": self.engine.versions[self.new],
                "from": self.engine.versions[self.stable], "reason": self.reason,
                "phase": self.phase, "phase_until": self.phase_until,
                "build_seconds": round(self.build_s, 1), "started_t": self.started_t}


def _names(names: list[str], verb: str) -> str:
    if len(names) == 1:
        return f"{names[0]} {verb}"
    shown = ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
    return f"{len(names)} servers {verb}: {shown}"
