"""Releases: each service's version history (like git tags), what each version does when it
runs, and the controller that deploys, judges and rolls back.

A version is good or bad in one specific way (KINDS): the pods it creates carry the matching
fleet knobs (error rate, added latency, memory leak, crash loop on start, slow start, failing
readiness), so its badness shows only through the metrics, the way a real regression does.
The profile's deployment method picks the strategy (rollout.py): rolling update (production),
hot reload (development), canary (experimental). Revisions follow Kubernetes: each template
change is a revision, `rollback --to-revision N` copies the old template back as the newest one,
and at most revisionHistoryLimit old revisions are kept.

Every judgement goes through `ReleaseController.analysis_checks`, a list of callables; append one
(the anomaly detector's verdict, say) to add it to every measurement. Never imports the UI.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import field_validator

from devsim_tui.sim import commands as C
from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register
from devsim_tui.sim.rollout import (
    ERROR, FAILED, INCONCLUSIVE, AnalysisRun, Canary, Check, HotReload, RollingUpdate, VersionStats,
    metric_check, version_stats,
)
from devsim_tui.sim.snapshot import DRAINING, STARTING

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

#: What each kind of version does to the pods running it (fleet knobs and start-up traits).
KINDS: dict[str, dict[str, Any]] = {
    "good": {},
    "error-rate": {"err_extra": 0.15},
    "latency": {"lat_extra_ms": 800.0},
    "subtle-latency": {"lat_extra_ms": 80.0},
    "memory-leak": {"leak_rate_mb_s": 4.0},
    "slow-leak": {"leak_rate_mb_s": 0.5},
    "crash-loop": {"crash_loop": True},
    "slow-start": {"startup_factor": 8.0},
    "fails-readiness": {"fails_readiness": True},
}
DESCRIPTIONS = {
    "good": "a healthy release",
    "error-rate": "error-rate regression: 15% of its requests fail",
    "latency": "latency regression: +800 ms on every request",
    "subtle-latency": "subtle latency regression: +80 ms on every request (about twice a "
                      "healthy pod's p99, still inside the SLO: no threshold rule fires)",
    "memory-leak": "memory leak: +4 MiB/s until the OOM killer restarts the pod",
    "slow-leak": "slow memory leak: +0.5 MiB/s, an hour before the OOM killer notices",
    "crash-loop": "crash loop on start (CrashLoopBackOff)",
    "slow-start": "slow start: 8x the normal start-up time",
    "fails-readiness": "fails its readiness probe: never becomes Ready",
}
#: Bad kinds no threshold rule catches: only the anomaly detector's analysis check does
#: (sim/anomaly.py, AnomalyController.release_check).
DETECTOR_ONLY_KINDS = ("subtle-latency", "slow-leak")
KIND_ALIASES = {"error": "error-rate", "errors": "error-rate", "leak": "memory-leak",
                "crash": "crash-loop", "crashloop": "crash-loop", "slow": "slow-start",
                "readiness": "fails-readiness", "unready": "fails-readiness",
                "latency-regression": "latency", "slow-requests": "latency"}
PREVIOUS_TAGS = 3  # earlier tags seeded into each service's history


def normalise_kind(kind: str) -> str:
    k = KIND_ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if k not in KINDS:
        raise ValueError(f"unknown release kind {kind!r}; one of: {', '.join(KINDS)}")
    return k


# --------------------------------------------------------------------------- commands


class Deploy(C.Command):
    name = "deploy"
    positional = ("version",)
    summary = ("Deploy a version by name, or a bad one for drills: bad:error-rate, bad:latency, "
               "bad:memory-leak, bad:crash-loop, bad:slow-start, bad:fails-readiness")
    version: str
    kind: str | None = None  # how a new tag behaves (default good)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        return None if v is None else normalise_kind(v)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v.startswith("bad:"):
            return "bad:" + normalise_kind(v[4:])
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", v):
            raise ValueError(f"not a version name: {v!r}")
        return v


class Rollback(C.Command):
    name = "rollback"
    positional = ("to",)
    summary = ("Roll back to the previous revision that did not fail its checks, or to a "
               "revision number / version name")
    hurts = True
    to: str | None = None

    @field_validator("to")
    @classmethod
    def _to(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9]{1,9}|[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", v):
            raise ValueError(f"expected a revision number or a version name, got {v!r}")
        return v


class Promote(C.Command):
    name = "promote"
    positional = ("full",)
    summary = "Canary: continue past the current pause or step ('promote full' skips all steps)"
    full: bool = False

    @field_validator("full", mode="before")
    @classmethod
    def _full(cls, v: Any) -> Any:
        return True if isinstance(v, str) and v.lower() == "full" else v


class Abort(C.Command):
    name = "abort"
    summary = "Abort the rollout in progress: back to the stable version"
    hurts = True


class PauseRollout(C.Command):
    name = "pause-rollout"
    summary = "Pause the rollout in progress (scaling still applies)"


class ResumeRollout(C.Command):
    name = "resume-rollout"
    summary = "Resume a paused rollout"


class CodeChange(C.Command):
    name = "code-change"
    positional = ("kind",)
    summary = "Development: save a code change (rebuild, unit tests, hot reload); kind for drills"
    kind: str = "good"
    version: str | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        return normalise_kind(v)


for _cls in (Deploy, Rollback, Promote, Abort, PauseRollout, ResumeRollout, CodeChange):
    C.register(_cls)
C.ALIASES.setdefault("undo", "rollback")


# --------------------------------------------------------------------------- history


@dataclass
class Version:
    name: str
    kind: str
    code: int  # index into engine.versions (the fleet's `version` column)
    created_t: float


@dataclass
class Revision:
    number: int
    code: int
    created_t: float


class Watch:
    """The post-rollout bake: the new version stays under analysis for bake_seconds."""

    def __init__(self, code: int, t: float, until: float, run):
        self.code = code
        self.started_t = t
        self.until = until
        self.background = run


class ReleaseController:
    """Deploys, judges and rolls back the service's versions (engine extension)."""
    state_key = extensions.RELEASES

    commands = (Deploy, Rollback, Promote, Abort, PauseRollout, ResumeRollout, CodeChange)

    def __init__(self, engine: Engine):
        self.engine = engine
        dep = engine.profile.deployment
        self.method = dep.method
        self.auto = dep.rollback == "auto"
        self.analysis_checks: list[Check] = [metric_check]
        self.versions: dict[str, Version] = {}
        self.revisions: list[Revision] = []
        self.next_revision = 1
        self.rollout: RollingUpdate | Canary | HotReload | None = None
        self.watch: Watch | None = None
        self.crashes = 0  # crash / OOM events of the watched version's pods
        self.status = "Healthy"
        self.last_outcome: dict[str, Any] | None = None
        self._warned = False
        self._crash_reason = ""
        current = engine.profile.app.version
        self.versions[current] = Version(current, "good", 0, 0.0)
        # Seed the history with earlier tags (all good) so a rollback has somewhere to go.
        earlier = []
        name = current
        for _ in range(PREVIOUS_TAGS):
            name = self._previous_name(name, len(earlier))
            if name is None or name in self.versions:
                break
            earlier.append(name)
        for name in reversed(earlier):
            self._revision(self._version(name, "good", -86400.0).code, -86400.0)
        self._revision(0, 0.0)
        for rel in dep.releases:
            if rel.version not in self.versions:
                self._version(rel.version, rel.kind, 0.0)
        self.stable = 0
        self.completed = [0]
        #: Versions (codes) that failed a check: a bare `rollback` never goes back to one.
        self.failed: set[int] = set()

    # ------------------------------------------------------------------ history

    def _version(self, name: str, kind: str, t: float) -> Version:
        e = self.engine
        e.versions.append(name)
        v = Version(name, kind, len(e.versions) - 1, t)
        self.versions[name] = v
        if KINDS[kind]:
            e.fleet.version_traits[v.code] = dict(KINDS[kind])
        return v

    def _revision(self, code: int, t: float) -> Revision:
        """A template change: reusing an old template moves it to the newest revision."""
        self.revisions = [r for r in self.revisions if r.code != code]
        rev = Revision(self.next_revision, code, t)
        self.next_revision += 1
        self.revisions.append(rev)
        limit = self.engine.profile.deployment.revisionHistoryLimit
        if len(self.revisions) > limit + 1:
            self.revisions = self.revisions[-(limit + 1):]
        return rev

    def _previous_name(self, name: str, k: int) -> str | None:
        if self._is_hash_name(name):
            return self._hash_name(-1 - k)
        m = list(re.finditer(r"\d+", name))
        if not m or int(m[-1].group()) == 0:
            return None
        last = m[-1]
        return f"{name[:last.start()]}{int(last.group()) - 1}{name[last.end():]}"

    def _is_hash_name(self, name: str) -> bool:
        return re.fullmatch(r"[a-z]+-[0-9a-f]{7}", name) is not None

    def _hash_name(self, n: int) -> str:
        """A git-like short hash, derived from the seed (no wall clock, no global random)."""
        prefix = self.engine.profile.app.version.rsplit("-", 1)[0]
        digest = hashlib.sha1(f"{self.engine.seed}:{n}".encode()).hexdigest()[:7]
        return f"{prefix}-{digest}"

    def next_name(self) -> str:
        newest = self.engine.versions[-1]
        names = [v for v in self.engine.versions if not self._is_hash_name(v)]
        if self._is_hash_name(self.engine.profile.app.version):
            n = len(self.engine.versions)
            while self._hash_name(n) in self.versions:
                n += 1
            return self._hash_name(n)
        base = max(names, key=_version_key) if names else newest
        m = list(re.finditer(r"\d+", base))
        if not m:
            candidate, k = f"{base}-1", 1
            while candidate in self.versions:
                k += 1
                candidate = f"{base}-{k}"
            return candidate
        last = m[-1]
        k = int(last.group()) + 1
        while f"{base[:last.start()]}{k}{base[last.end():]}" in self.versions:
            k += 1
        return f"{base[:last.start()]}{k}{base[last.end():]}"

    def resolve(self, target: str, kind: str | None) -> Version:
        """A version by name (created as a new tag when unknown), or `bad:<kind>`."""
        if target.startswith("bad:"):
            return self._version(self.next_name(), target[4:], self.engine.t)
        v = self.versions.get(target)
        if v is None:
            return self._version(target, kind or "good", self.engine.t)
        return v

    # ------------------------------------------------------------------ commands

    def apply(self, cmd: C.Command) -> str | None:
        t = self.engine.t
        if isinstance(cmd, Deploy):
            return self._deploy(t, cmd)
        if isinstance(cmd, CodeChange):
            if self.method != "compose-hot-reload":
                return "code-change needs hot reload (the development profile); use deploy"
            name = cmd.version or self.next_name()
            v = self.versions.get(name) or self._version(name, cmd.kind, t)
            return self._start(t, v.code, f"code change ({DESCRIPTIONS[v.kind]})"
                               if v.kind != "good" else "code change")
        if isinstance(cmd, Rollback):
            return self._rollback(t, cmd.to)
        if isinstance(cmd, Promote):
            if not isinstance(self.rollout, Canary):
                return "nothing to promote: no canary in progress"
            what = self.rollout.promote(t, cmd.full)
            self._fresh_background(t, self.rollout)
            self.engine.emit(t, "release.canary.promoted_step", f"{self.rollout.label()}: "
                             f"promote: {what}", "info")
            return None
        if isinstance(cmd, Abort):
            ro = self.rollout
            if ro is None:
                return "no rollout in progress"
            if isinstance(ro, HotReload):
                self.rollout = None
                self.engine.emit(t, "build.cancelled", f"build of "
                                 f"{self.engine.versions[ro.new]} cancelled", "info")
                return None
            self.verdict_failed(t, ro, "aborted by the operator", force=True)
            return None
        if isinstance(cmd, (PauseRollout, ResumeRollout)):
            ro = self.rollout
            if ro is None or isinstance(ro, HotReload):
                return "no rollout in progress"
            pause = isinstance(cmd, PauseRollout)
            if ro.paused == pause and not (not pause and ro.pause_reason):
                return "already paused" if pause else "not paused"
            ro.paused = pause
            ro.pause_reason = "paused by the operator" if pause else ""
            if not pause:
                self._fresh_background(t, ro)
            self.status = "Paused" if pause else "Progressing"
            self.engine.emit(t, "release.paused" if pause else "release.resumed",
                             f"{ro.label()}: rollout {'paused' if pause else 'resumed'}", "info")
            return None
        return "not a release command"

    def _deploy(self, t: float, cmd: Deploy) -> str | None:
        current = self.rollout.new if self.rollout is not None else self.engine.current_version
        if cmd.version == self.engine.versions[current]:
            return f"{cmd.version} is already running"
        v = self.resolve(cmd.version, cmd.kind)
        if v.code == current:
            return f"{v.name} is already running"
        return self._start(t, v.code, "deploy" + (f" (drill: {DESCRIPTIONS[v.kind]})"
                                                  if cmd.version.startswith("bad:") else ""))

    def _rollback(self, t: float, to: str | None) -> str | None:
        dep = self.engine.profile.deployment
        current = self.rollout.new if self.rollout is not None else self.engine.current_version
        if to is None:
            older = [r for r in self.revisions if r.code != current]
            if dep.revisionHistoryLimit == 0 or not older:
                return "no earlier revision kept (revisionHistoryLimit)"
            good = [r for r in older if r.code not in self.failed]
            if not good:
                kept = ", ".join(f"{r.number} {self.engine.versions[r.code]}" for r in older)
                return (f"every earlier revision kept failed its checks ({kept}); name one "
                        "to go back to it anyway (rollback N)")
            target = good[-1].code
        elif re.fullmatch(r"[0-9]+", to):
            rev = next((r for r in self.revisions if r.number == int(to)), None)
            if rev is None:
                kept = ", ".join(str(r.number) for r in self.revisions)
                return f"no revision {to} (kept: {kept})"
            target = rev.code
        else:
            v = self.versions.get(to)
            if v is None:
                return f"unknown version {to!r}"
            target = v.code
        if target == current:
            return f"{self.engine.versions[target]} is already the current revision"
        return self._start(t, target, "manual rollback", fast=True)

    # ------------------------------------------------------------------ rollouts

    def _start(self, t: float, code: int, reason: str, fast: bool = False) -> str | None:
        e = self.engine
        old = self.rollout
        from_code = self.stable  # a canary keeps the last completed version as its stable
        shown_from = old.new if isinstance(old, (RollingUpdate, Canary)) else e.current_version
        if isinstance(old, Canary) and not fast:
            # A new template mid-canary replaces the canary; its pods leave with the old one.
            # (A rollback keeps them: its rolling update replaces them within maxUnavailable.
            # During a promotion they are most of the serving pods; deleting them at once left
            # no ready pod for the rollback's start-up time.)
            self._drain_version(t, old.new, 0.0, "superseded canary")
        if self.method == "compose-hot-reload":
            self.rollout = HotReload(self, t, code, e.current_version, reason,
                                     run_tests=not fast)
            self.status = "Building"
            return None
        rev = self._revision(code, t)
        self.crashes = 0
        self.watch = None
        self._warned = False
        if self.method == "canary" and not fast:
            ro: RollingUpdate | Canary = Canary(self, t, code, from_code, reason)
        else:
            # Production, and every rollback (like Argo's rollbackWindow): a rolling update.
            ro = RollingUpdate(self, t, code, from_code, reason)
            if self.method == "canary":
                ro.strategy = "rollback"
        self.rollout = ro
        self.status = "Progressing"
        e.reconcile_hook = ro.reconcile
        R = e.desired
        from devsim_tui.sim.rollout import resolve_fenceposts

        surge, unavail = resolve_fenceposts(e.profile.deployment, R)
        how = (f"canary, {len(ro.steps)} steps" if isinstance(ro, Canary) else
               f"rolling update, maxSurge {surge}, maxUnavailable {unavail}")
        e.emit(t, "release.rollout.started",
               f"{reason}: {e.profile.app.service} {e.versions[shown_from]} -> "
               f"{e.versions[code]} (revision {rev.number}; {how}; {R} replicas)", "info",
               version=e.versions[code], revision=rev.number, strategy=ro.strategy,
               reason=reason)
        return None

    def _drain_version(self, t: float, code: int, delay: float, why: str) -> None:
        f = self.engine.fleet
        mask = f.active_mask() & (f.version == code)
        if mask.any():
            names = [f.names[i] for i in np.flatnonzero(mask)]
            f.set_state(mask, DRAINING, t + max(delay, 0.0) + 5.0)
            self.engine.emit(t, "server.draining", f"{len(names)} {self.engine.versions[code]} "
                             f"pods out of rotation ({why}), deleted in {delay + 5:.0f}s",
                             "info", servers=names)

    def _complete(self, t: float, ro) -> None:
        e = self.engine
        e.reconcile_hook = None
        e.current_version = ro.new
        self.rollout = None
        self.stable = ro.new
        if not self.completed or self.completed[-1] != ro.new:
            self.completed.append(ro.new)
        self.status = "Healthy"
        took = t - ro.started_t
        if isinstance(ro, HotReload):
            msg = f"{e.versions[ro.new]} reloaded"
        else:
            msg = (f"rollout of {e.profile.app.service} {e.versions[ro.new]} complete: "
                   f"{e.desired}/{e.desired} available after {took:.0f}s")
        e.emit(t, "release.rollout.complete", msg, "info", version=e.versions[ro.new],
               seconds=round(took, 1), reason=ro.reason)
        self.last_outcome = {"outcome": "complete", "version": e.versions[ro.new], "t": t,
                             "reason": ro.reason}
        a = e.profile.deployment.analysis
        from devsim_tui.sim.rollout import AnalysisRun

        bake = e.profile.deployment.bake_seconds
        if bake > 0 and "rollback" not in ro.reason:
            self.watch = Watch(ro.new, t, t + bake,
                               AnalysisRun.from_spec("bake", t, a, None))

    def verdict_failed(self, t: float, ro, reason: str, force: bool = False) -> None:
        """The new version failed a check: roll back (auto), abort (canary) or tell the user."""
        e = self.engine
        name = e.versions[ro.new]
        self.failed.add(ro.new)
        stable = self._rollback_target(ro.new)
        if isinstance(ro, Canary) and not ro.promoting:
            # Argo aborts on a failed analysis whatever the rollback policy.
            delay = e.profile.deployment.analysis.abortScaleDownDelaySeconds
            self.rollout = None
            e.reconcile_hook = None
            e.current_version = ro.stable
            self._drain_version(t, ro.new, delay, "canary aborted")
            self.status = "Degraded"
            e.emit(t, "release.canary.aborted",
                   f"canary {name} aborted: {reason}; weight 0, stable "
                   f"{e.versions[ro.stable]} scaled back to {e.desired}, canary pods deleted "
                   f"after {delay:.0f}s", "critical", version=name, reason=reason)
            self.last_outcome = {"outcome": "aborted", "version": name, "t": t,
                                 "reason": reason}
            return
        if not (self.auto or force) or self.method == "compose-hot-reload":
            if not self._warned:
                self._warned = True
                self.status = "Degraded"
                hint = (f"roll back manually (`rollback {e.versions[stable]}`)"
                        if stable is not None else "fix forward")
                e.emit(t, "release.unhealthy", f"{name} is unhealthy: {reason}; {hint}",
                       "critical", version=name, reason=reason)
            return
        if stable is None:
            e.emit(t, "release.unhealthy", f"{name} is unhealthy ({reason}) and no earlier "
                   "version is kept to roll back to", "critical", version=name, reason=reason)
            self._warned = True
            return
        e.emit(t, "release.rollback", f"auto-rollback of {name} -> {e.versions[stable]}: "
               f"{reason}" if not force else f"rollback of {name} -> {e.versions[stable]}: "
               f"{reason}", "critical", version=name, to=e.versions[stable], reason=reason)
        self.last_outcome = {"outcome": "rolled back", "version": name, "t": t,
                             "reason": reason}
        self._start(t, stable, f"rollback ({reason})", fast=True)
        self.status = "RollingBack"

    def _rollback_target(self, bad: int) -> int | None:
        for code in reversed(self.completed):
            if code != bad:
                return code
        return None

    def measure(self, new: VersionStats, stable: VersionStats | None) -> list[tuple[str, str]]:
        """Every check's answer; a check that raises is an Error measurement, as a metric
        provider's failed query is in Argo Rollouts."""
        out = []
        for check in self.analysis_checks:
            try:
                r = check(new, stable, self)
            except Exception as exc:  # noqa: BLE001 - any failing check is an Error measurement
                name = getattr(check, "__name__", type(check).__name__)
                r = (ERROR, f"{name} failed: {exc}")
            if r is not None:
                out.append(r)
        return out

    def judge(self, t: float, ro, new: VersionStats, stable: VersionStats | None) -> bool:
        """Readiness, crashes and the background analysis of the version being watched;
        returns True when it failed (and the rollout was rolled back or aborted)."""
        e = self.engine
        dep = e.profile.deployment
        f = e.fleet
        code = ro.new if ro is not None else self.watch.code
        stuck = (f.state == STARTING) & (f.version == code) & (
            t - f.started_at > dep.readiness_timeout_seconds)
        reason = None
        if stuck.any():
            reason = (f"{int(stuck.sum())} pods not Ready {dep.readiness_timeout_seconds:.0f}s "
                      "after start (startup too slow or readiness probe failing)")
        elif self.crashes >= min(dep.restart_limit, max(new.pods, 1)):
            # Every pod of a small canary crashing is as damning as restart_limit crashes.
            reason = self._crash_reason
        else:
            run = ro.background if ro is not None else self.watch.background
            if run is not None and run.due(t):
                results = self.measure(new, stable)
                failed_before = run.failed
                phase = run.record(t, results)
                if run.failed > failed_before and phase != FAILED:
                    e.emit(t, "release.analysis.measurement", f"{e.versions[code]}: "
                           f"measurement failed ({run.last}); {run.failed} failed, "
                           f"failureLimit {run.failure_limit}", "warning",
                           version=e.versions[code])
                elif run.measured == 1 and results and run.failed == 0 and \
                        not getattr(run, "_said_ok", False):
                    run._said_ok = True
                    e.emit(t, "release.analysis.passing", f"{e.versions[code]}: health check "
                           f"passing ({run.last})", "info", version=e.versions[code])
                if phase in (FAILED, ERROR):
                    reason = f"analysis {phase}: {run.message} ({run.last})"
                elif phase == INCONCLUSIVE:
                    self._inconclusive(t, ro, code, run)
        if reason is None:
            return False
        if ro is None:
            self.watch = None
            self._fail_after_completion(t, code, reason)
        else:
            self.verdict_failed(t, ro, reason)
        return True

    def _inconclusive(self, t: float, ro, code: int, run) -> None:
        """An Inconclusive background analysis pauses the rollout for a human (Argo); after
        completion (the bake) there is nothing to pause: say so and stop watching."""
        e = self.engine
        why = f"analysis {run.name} Inconclusive: {run.message} ({run.last})"
        if ro is None:
            self.watch = None
            e.emit(t, "release.analysis.inconclusive", f"{e.versions[code]}: {why}; the bake "
                   "stops without a verdict", "warning", version=e.versions[code])
            return
        ro.paused = True
        ro.pause_reason = why
        self.status = "Paused"
        e.emit(t, "release.analysis.inconclusive", f"{ro.label()}: {why}; paused for a human "
               "(promote or abort)", "warning", version=e.versions[code])

    def _fresh_background(self, t: float, ro) -> None:
        """A human let an Inconclusive rollout go on: judge it with a new background run."""
        if ro.background is not None and ro.background.phase == INCONCLUSIVE:
            ro.background = AnalysisRun.from_spec("background", t,
                                                  self.engine.profile.deployment.analysis, None)

    def _fail_after_completion(self, t: float, code: int, reason: str) -> None:
        """The bake caught it after the rollout completed: roll back like a new rollout."""
        ro = RollingUpdate(self, t, code, code, "bake")
        self.verdict_failed(t, ro, reason + " (after the rollout completed)")

    # ------------------------------------------------------------------ tick

    def before_tick(self, t: float) -> None:
        ro = self.rollout
        if ro is None or not isinstance(ro, HotReload):
            return
        ro.step(t)
        if ro.done:
            self.rollout = None
            if ro.failed:
                self.status = "BuildFailed"
                self.last_outcome = {"outcome": "build failed",
                                     "version": self.engine.versions[ro.new], "t": t,
                                     "reason": ro.reason}
            else:
                self._complete(t, ro)

    def after_tick(self, t: float, agg: Aggregates) -> None:
        ro = self.rollout
        if (ro is None or isinstance(ro, HotReload)) and self.watch is None:
            return
        code = ro.new if ro is not None and not isinstance(ro, HotReload) else (
            self.watch.code if self.watch is not None else None)
        if code is None:
            return
        self._count_crashes(code)
        if ro is not None and not isinstance(ro, HotReload):
            ro.observe(t)
            if ro.done and self.rollout is ro:
                self._complete(t, ro)
            return
        w = self.watch
        if t >= w.until:
            self.watch = None
            self.engine.emit(t, "release.verified", f"{self.engine.versions[w.code]} healthy "
                             f"through the {t - w.started_t:.0f}s bake", "info",
                             version=self.engine.versions[w.code])
            return
        self.judge(t, None, version_stats(self.engine, w.code, t), None)

    def _count_crashes(self, code: int) -> None:
        pending = self.engine.events.pending
        if not pending:
            return
        f = self.engine.fleet
        index = None
        for ev in pending:
            if ev.type not in ("server.crashed", "server.oom_killed"):
                continue
            if index is None:
                index = {n: i for i, n in enumerate(f.names)}
            hits = [n for n in ev.data.get("servers", ()) if n in index
                    and f.version[index[n]] == code]
            if hits:
                self.crashes += len(hits)
                what = ("OOMKilled at the memory limit" if ev.type == "server.oom_killed"
                        else "crashed on start (CrashLoopBackOff)")
                self._crash_reason = f"{self.crashes} pod crashes: {what}"

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        e = self.engine
        ro = self.rollout
        current = e.current_version
        return {
            "service": e.profile.app.service, "method": self.method,
            "rollback_policy": e.profile.deployment.rollback,
            "current": e.versions[current], "stable": e.versions[self.stable],
            "status": self.status,
            "rollout": ro.view() if ro is not None else None,
            "bake": ({"version": e.versions[self.watch.code], "until": self.watch.until,
                      "analysis": self.watch.background.view()} if self.watch else None),
            "revisions": [{"revision": r.number, "version": e.versions[r.code],
                           "failed": r.code in self.failed,
                           "current": r.code == (ro.new if ro is not None and
                                                 not isinstance(ro, HotReload) else current)}
                          for r in self.revisions],
            "versions": [{"name": v.name, "kind": v.kind, "created_t": v.created_t}
                         for v in self.versions.values()],
            "last": self.last_outcome,
            "build_time_s": e.build_time_s,
        }


def _version_key(name: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", name))


register(lambda engine: ReleaseController(engine))
