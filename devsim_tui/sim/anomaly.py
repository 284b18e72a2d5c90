"""The anomaly detector as an engine controller: key signals in, findings out as alerts.

Signals, per service and per database node: request rate, p99 latency, error rate, CPU and
memory of the app tier; queries/s, CPU and replication lag of each PostgreSQL node;
the cache hit ratio when there is a cache. Every `every_ticks` ticks the controller feeds the
`devsim_tui.detect.Detector` the *mean* of each signal over those ticks (a window mean keeps a
short spike visible while dividing the detector's cost by k). A finding opens an episode: one
alert (source "detector", `AnomalyDetected`, labelled with its episode) and a `detector.finding`
event with a sentence explaining it; the episode ends after 10 quiet updates and the alert
resolves. `state()` (`Snapshot.anomaly`) says which signals are
anomalous now, their scores, the warm-up and the component/metric each signal belongs to, so the
UI can mark sparklines. Deterministic (the detector has no randomness); never imports the UI.
"""

from __future__ import annotations

import copy
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register
from devsim_tui.sim.rollout import FAILED, MEMORY_GROWTH_WINDOW_S, pods_stats

if TYPE_CHECKING:
    from devsim_tui.detect import Detector
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

QUIET_UPDATES_TO_CLOSE = 10  # the detector's own episode gap
#: A flagged app-tier signal is blamed on the new version when the new version's own value of
#: that metric is worse than the stable version's by this factor (canary against baseline);
#: latency is compared at the same utilisation (docs/deploys.md, "Comparing like with like").
BLAME_FACTOR = 1.2
#: A version's memory growth is blamed when it exceeds the stable version's by this much (MiB
#: per minute): a pod growing 6 MiB/min more than its peers fills 512 MiB of headroom in under
#: an hour and a half, while a healthy pod's growth wanders by a MiB or two a minute.
GROWTH_MARGIN_MB_MIN = 6.0
#: Growth beyond the median pod's below this (MiB per minute) is not reported: a healthy pod's
#: memory moves with its queue and, in a real runtime, with garbage collection; a leak worth
#: finding before the OOM killer (a 0.5 MiB/s leak is 30 MiB/min) is far above it.
GROWTH_NOISE_MB_MIN = 5.0
TYPICAL_RATE = 0.02  # EW mean of a signal's value outside episodes, for the explanation

UP, BOTH, DOWN = 1, 0, -1
# signal suffix -> (human name, unit formatter, the departures that count: Detector directions).
# Latency, errors, CPU, memory, disk, restarts and lags are one-sided: their fall is never a
# failure by itself (the fleet's memory per server falls after every scale-up, as the load
# spreads), while the traffic a service gets or a consumer drains may fail either way.
_LABELS = {
    "rps": ("request rate", lambda v: f"{v:.0f} req/s", BOTH),
    "p99": ("p99 latency", lambda v: f"{v:.0f} ms", UP),
    "error_rate": ("error rate", lambda v: f"{v:.2%}", UP),
    "cpu": ("CPU", lambda v: f"{v:.0%}", UP),
    "memory": ("memory", lambda v: f"{v:.0f}% of request", UP),
    "qps": ("queries/s", lambda v: f"{v:.0f} q/s", BOTH),
    "lag": ("replication lag", lambda v: f"{v:.1f} s", UP),
    "hit_ratio": ("hit ratio", lambda v: f"{v:.1%}", DOWN),
    "max_server_cpu": ("worst server CPU", lambda v: f"{v:.0%}", UP),
    "max_server_p99": ("worst server p99", lambda v: f"{v:.0f} ms", UP),
    "max_server_error_rate": ("worst server error rate", lambda v: f"{v:.2%}", UP),
    "max_server_memory": ("largest server memory", lambda v: f"{v:.0f} MiB", UP),
    "max_server_disk": ("fullest server disk", lambda v: f"{v:.0f}%", UP),
    "restarts": ("server restarts", lambda v: f"{v:.0f} per update", UP),
    "memory_growth": ("pod memory growth beyond its peers'", lambda v: f"{v:.1f} MiB/min", UP),
    "consumer_lag": ("consumer lag", lambda v: f"{v:.1f} s", UP),
    "consume_rate": ("events consumed", lambda v: f"{v:.0f}/s", BOTH),
    "archive_pending": ("WAL waiting for the archive", lambda v: f"{v:.0f} MiB", UP),
    "store_up": ("object store up", lambda v: f"{v:.0%} of the time", DOWN),
    "login_failures": ("failed logins", lambda v: f"{v:.1f}/s", UP),
    "intrusions": ("attacker sessions", lambda v: f"{v:.0f}", UP),
    "denials": ("calls denied by the mesh", lambda v: f"{v:.1f}/s", UP),
    "anomalous_queries": ("queries from unknown sources", lambda v: f"{v:.1f}/s", UP),
    "egress": ("outbound data", lambda v: f"{v / 1e6:.2f} MB/s", UP),
    "scan_probes": ("port-scan probes", lambda v: f"{v:.1f}/s", UP),
}


def direction_of(signal: str) -> int:
    """Which departures of a signal count (+1 rises, -1 falls, 0 both; unknown: both)."""
    entry = _LABELS.get(signal.rpartition(".")[2])
    return BOTH if entry is None else entry[2]


def enabled_for(profile: Any) -> bool:
    return bool(profile.monitoring.detector.enabled)


def alerts_for(profile: Any) -> bool:
    """Whether findings also become AnomalyDetected alerts (the AI-analysis channel)."""
    spec = profile.monitoring.detector
    if spec.alerts is not None:
        return bool(spec.alerts)
    return profile.monitoring.alert_channel == "ai-analysis" or bool(
        profile.security.anomaly_detection)


class AnomalyController:
    state_key = extensions.ANOMALY
    commands: tuple = ()

    def __init__(self, engine: Engine):
        self.engine = engine
        profile = engine.profile
        spec = profile.monitoring.detector
        self.enabled = enabled_for(profile)
        self.alerting = alerts_for(profile)
        self.every = spec.every_ticks
        self.severity = spec.severity
        self.service = profile.app.service
        self.nodes = [n.name for n in engine.db.nodes]
        svc = self.service
        #: signal -> (component, metric) for the UI's sparklines
        self.series_of: dict[str, tuple[str, str]] = {
            f"{svc}.rps": (svc, "offered_rps"), f"{svc}.p99": (svc, "p99_ms"),
            f"{svc}.error_rate": (svc, "error_rate"), f"{svc}.cpu": (svc, "cpu"),
            f"{svc}.memory": (svc, "memory_pct"),
            # the worst server: a fault on one server of many barely moves the fleet's means
            f"{svc}.max_server_cpu": (svc, "cpu"), f"{svc}.max_server_p99": (svc, "p99_ms"),
            f"{svc}.max_server_error_rate": (svc, "error_rate"),
            f"{svc}.max_server_memory": (svc, "memory_pct"),
            # a log-filling or crash-looping server shows in neither latency nor the means
            f"{svc}.max_server_disk": (svc, "disk_pct"), f"{svc}.restarts": (svc, "restarts"),
            # a leak on a few pods (a canary's): their memory grows while their peers' does not
            f"{svc}.memory_growth": (svc, "memory_pct"),
        }
        for n in self.nodes:
            # (connections are left out: they step with every HPA scale event, which is no
            # anomaly, and pool exhaustion shows in latency and errors anyway)
            self.series_of.update({f"{n}.qps": (n, "qps"), f"{n}.cpu": (n, "cpu"),
                                   f"{n}.lag": (n, "lag_seconds")})
        if engine.cache is not None:
            self.series_of["cache.hit_ratio"] = ("cache", "hit_ratio")
        self._spec = spec
        self._growth_ticks = int(round(MEMORY_GROWTH_WINDOW_S / engine.dt))
        # Other controllers' signals (the event stream...) are only known once every
        # controller exists, so the detector is built on the first tick.
        self.detector: Detector | None = None
        self._sources: list[Any] = []
        self.signals = list(self.series_of)
        self._sums = dict.fromkeys(self.signals, 0.0)
        # the sums' keys, built once (not as f-strings on every tick)
        self._svc_keys = tuple(f"{svc}.{m}" for m in ("rps", "p99", "error_rate", "cpu",
                                                       "memory"))
        self._node_keys = {n: (f"{n}.qps", f"{n}.cpu", f"{n}.lag") for n in self.nodes}
        self._restarts = 0
        self._n = 0
        self.updates = 0
        self.typical: dict[str, float] = {}
        #: The service's usual (utilisation, service time ms, p99 unexplained by queueing ms)
        #: over its ready pods, an EW mean outside episodes like `typical` (release_check).
        self._usual_load: tuple[float, float, float] | None = None
        self._load_now: tuple[float, float, float] | None = None
        self.anomalous: dict[str, float] = {}
        self.last_scores: dict[str, float] = {}
        self.episode: dict[str, Any] | None = None
        self._quiet = 0
        self._episodes = 0
        self.findings = 0
        self.warm_started = False
        self._warm: AnomalyController | None = None
        #: The warm start is still to pre-roll (`prepare`, else the first tick does it).
        self._warm_pending = bool(self.enabled and spec.warm_start and spec.warmup_updates > 0)

    def prepare(self) -> None:
        """Pre-roll the warm start's history now. It is a pure function of the profile and the
        seed, so when it runs changes nothing but who waits: the control room runs it in its
        start-up worker after the panes are up, and before the clock starts."""
        with _PREROLL_LOCK:  # the start-up worker and a first tick never both pre-roll
            if self._warm_pending:
                self._warm = _prerolled(self.engine.profile, self.engine.seed)
                self._warm_pending = False

    def _warmed(self) -> bool:
        """A warm start is coming or came (before the detector exists)."""
        return self._warm is not None or self._warm_pending

    # ------------------------------------------------------------------ controller

    def apply(self, cmd: Any) -> str | None:
        return "the detector has no commands"

    def before_tick(self, t: float) -> None:
        return None

    def _hook_releases(self) -> None:
        """Add the detector's verdict to every analysis measurement of the release controller
        (rollout.Check); a separate hook so the analysis semantics stay in rollout.py."""
        if not (self.enabled and self._spec.rollback):
            return
        for c in self.engine.controllers:
            checks = getattr(c, "analysis_checks", None)
            if checks is not None and self.release_check not in checks:
                checks.append(self.release_check)

    def release_check(self, new: Any, stable: Any, ctl: Any) -> tuple[str, str] | None:
        """An analysis check: Failed when an open finding's app-tier signals point at the new
        version: its own latency, error rate or memory worse than the stable version's by
        BLAME_FACTOR (with no stable version alongside, than the service's usual value before
        the finding). Latency is compared like with like: both at the same utilisation
        (`_latency_pair`), since a raw p99 is dominated by queueing, and pods that happen to
        run hotter (they joined at a higher weight, or are a little slower) show a higher p99
        with nothing wrong with their code. No opinion while warming up or without a
        finding, so a quiet detector never passes or fails a release on its own."""
        ep = self.episode
        if ep is None or not self.anomalous or not new.has_data:
            return None
        svc = self.service
        ours = {"p99": "p99_ms", "max_server_p99": "p99_ms", "error_rate": "error_rate",
                "max_server_error_rate": "error_rate", "memory": "memory_mb",
                "max_server_memory": "memory_mb", "memory_growth": "memory_growth"}
        alongside = stable is not None and stable.has_data
        where = "on the stable version" if alongside else "usually"
        blamed = []
        for signal in self.anomalous:
            comp, _, metric = signal.rpartition(".")
            field = ours.get(metric)
            if comp != svc or field is None:
                continue
            label = _LABELS.get(metric.replace("max_server_", ""), (metric,))[0]
            limit = None
            if field == "memory_growth":
                # a growth rate, near zero for a healthy version: compared by a margin
                mine = new.memory_growth
                theirs = stable.memory_growth if alongside else 0.0
                limit = theirs + GROWTH_MARGIN_MB_MIN
                text = (f"memory growth {mine:.1f} MiB/min vs {theirs:.1f} MiB/min "
                        f"{'on the stable version' if alongside else 'for a healthy pod'}")
            elif field == "p99_ms":
                pair = self._latency_pair(new, stable if alongside else None)
                if pair is None:
                    continue
                mine, theirs, u_ref = pair
                raw = (f"raw p99 {new.p99_ms:.0f} ms vs {stable.p99_ms:.0f} ms" if alongside
                       else f"raw p99 {new.p99_ms:.0f} ms")
                text = (f"{label} at {u_ref:.0%} busy {mine:.0f} ms vs {theirs:.0f} ms "
                        f"{where} ({raw})")
            else:
                mine = float(getattr(new, field))
                if alongside:
                    theirs = float(getattr(stable, field))
                else:
                    # Alone (a completed rollout under its bake): against the service's usual
                    # value before the finding.
                    usual = self._usual(field)
                    if usual is None:
                        continue
                    theirs = usual
                text = (f"{label} {_fmt_field(field, mine)} vs {_fmt_field(field, theirs)} "
                        f"{where}")
            if mine <= (theirs * BLAME_FACTOR if limit is None else limit):
                continue
            blamed.append(text)
        if not blamed:
            return None
        return FAILED, (f"anomaly detector finding {ep['id']} ({ep['sentence']}) on the new "
                        f"version: {'; '.join(dict.fromkeys(blamed))}")

    def _latency_pair(self, new: Any, stable: Any) -> tuple[float, float, float] | None:
        """(new, reference, utilisation): the p99 of the new version's pods and of the
        reference (the stable version's pods alongside, else the service's usual pods) had
        the workers of both been busy the service's usual share of the time
        (`VersionStats.p99_at`: service time x the M/M/c/K p99 at that utilisation + the
        latency queueing does not explain). A pod's speed and its latency beyond queueing are
        properties of its code; its utilisation is a property of where the load balancer and
        the rollout put it."""
        usual = self._usual_load
        if stable is None and usual is None:
            return None
        u_ref = usual[0] if usual is not None else stable.utilisation
        table = self.engine.fleet.table
        mine = new.p99_at(table, u_ref)
        if stable is not None:
            theirs = stable.p99_at(table, u_ref)
        else:
            _, service, excess = usual
            theirs = service * float(table.p99_at_utilisation(u_ref)) + excess
        return mine, theirs, u_ref

    def _usual(self, field: str) -> float | None:
        """The service's typical error rate or memory (a VersionStats field), from outside
        episodes (latency: `_usual_load`)."""
        svc = self.service
        if field == "error_rate":
            return self.typical.get(f"{svc}.error_rate")
        pct = self.typical.get(f"{svc}.memory")
        return None if pct is None else pct * self.engine.profile.app.server.memory_request_mb / 100

    def _build(self) -> None:
        self._sources = [c for c in self.engine.controllers
                         if c is not self and hasattr(c, "signals")]
        for c in self._sources:
            for name in c.signals():
                comp, _, metric = name.rpartition(".")
                self.series_of[name] = (comp, metric)
        self.signals = list(self.series_of)
        self._sums = dict.fromkeys(self.signals, 0.0)
        period = max(4, int(round(86400.0 / (self.engine.dt * self.every))))
        self.prepare()
        warm = self._warm
        self._warm = None
        if warm is not None and warm.detector is not None and warm.signals == self.signals:
            # The shadow's detector has seen the warm-up's worth of history ending at t=0.
            self.detector = copy.deepcopy(warm.detector)
            self.typical = dict(warm.typical)
            self._usual_load = warm._usual_load
            self.warm_started = True
        else:
            # Imported here, not with the engine: river (and through it narwhals) is a tenth
            # of a second of a start, which the control room's panes need not wait for.
            from devsim_tui.detect import Detector

            self.detector = Detector(self.signals, warmup=self._spec.warmup_updates,
                                     seasonal_period=period,
                                     directions={k: direction_of(k) for k in self.signals})
        self._hook_releases()

    def after_tick(self, t: float, agg: Aggregates) -> None:
        if not self.enabled:
            return
        if self.detector is None:
            self._build()
        s = self._sums
        svc = self.service
        self._n += 1
        k_rps, k_p99, k_err, k_cpu, k_mem = self._svc_keys
        s[k_rps] += agg.offered_rps
        s[k_p99] += agg.p99_ms
        s[k_err] += agg.error_rate
        s[k_cpu] += agg.cpu
        s[k_mem] += agg.memory_pct
        node_keys = self._node_keys
        for node in self.engine.db.nodes:
            keys = node_keys.get(node.name)
            if keys is None:
                continue
            s[keys[0]] += node.qps
            s[keys[1]] += node.cpu
            s[keys[2]] += node.lag_seconds if node.state == "running" else 0.0
        if agg.cache_hit_ratio is not None and "cache.hit_ratio" in s:
            s["cache.hit_ratio"] += agg.cache_hit_ratio
        for c in self._sources:
            for name, v in c.signals().items():
                s[name] += v
        if self._n < self.every:
            return
        values = {k: v / self._n for k, v in s.items()}
        for k in s:
            s[k] = 0.0
        fleet = self.engine.fleet
        self._load_now = None
        if len(fleet):
            # sampled at the update tick only (a max over servers costs a few numpy calls)
            values[f"{svc}.max_server_cpu"] = float(fleet.cpu.max())
            p99 = fleet.p99_ms[fleet.p99_ms == fleet.p99_ms]  # ready servers (others: NaN)
            values[f"{svc}.max_server_p99"] = float(p99.max()) if len(p99) else 0.0
            values[f"{svc}.max_server_error_rate"] = float(fleet.error_rate.max())
            values[f"{svc}.max_server_memory"] = float(fleet.memory_mb.max())
            values[f"{svc}.max_server_disk"] = float(fleet.disk_gb.max()) * 100.0 \
                / self.engine.profile.app.server.disk_gb
            g = fleet.memory_growth(t, self._growth_ticks, self.engine.dt)
            g = g[g == g]  # pods ready all the window
            spread = float(g.max() - np.median(g)) if len(g) > 1 else 0.0
            values[f"{svc}.memory_growth"] = max(spread - GROWTH_NOISE_MB_MIN, 0.0)
            restarts = int(fleet.restarts.sum())
            values[f"{svc}.restarts"] = float(max(restarts - self._restarts, 0))
            self._restarts = restarts
            now = pods_stats(self.engine, np.ones(len(fleet), bool), t)
            self._load_now = (now.utilisation, now.service_ms, now.excess_ms) \
                if now.has_data else None
        self._n = 0
        self._update(t, values)

    def _update(self, t: float, values: dict[str, float]) -> None:
        det = self.detector
        assert det is not None
        finding = det.update(t, values)
        self.updates += 1
        if finding is None:
            self.anomalous = {}
            for k, v in values.items():
                old = self.typical.get(k)
                self.typical[k] = v if old is None else old + TYPICAL_RATE * (v - old)
            now, usual = self._load_now, self._usual_load
            if now is not None:
                self._usual_load = now if usual is None else (
                    usual[0] + TYPICAL_RATE * (now[0] - usual[0]),
                    usual[1] + TYPICAL_RATE * (now[1] - usual[1]),
                    usual[2] + TYPICAL_RATE * (now[2] - usual[2]))
            if self.episode is not None:
                self._quiet += 1
                if self._quiet >= QUIET_UPDATES_TO_CLOSE:
                    self._close(t)
            return
        self.findings += 1
        self._quiet = 0
        self.last_scores = dict(finding.signal_scores)
        self.anomalous = {k: sc for k, sc in finding.signal_scores if sc >= 0.5}
        sentence = self._explain(finding, values)
        if self.episode is None:
            self._episodes += 1
            self.episode = {"id": f"E{self._episodes}", "began_at": finding.began_at,
                            "signals": list(finding.signals), "score": finding.score,
                            "sentence": sentence}
            self.engine.emit(t, "detector.finding", sentence, self.severity, None,
                             episode=self.episode["id"], began_at=finding.began_at,
                             score=round(finding.score, 4), signals=list(finding.signals))
        else:
            ep = self.episode
            ep["score"] = max(ep["score"], finding.score)
            grew = [k for k in finding.signals if k not in ep["signals"]]
            ep["signals"] = ep["signals"] + grew
            ep["sentence"] = sentence
            if grew:
                # A new departure inside an open episode (a fault during an overload, say)
                # is news too: said once per signal, not left inside an old episode.
                self.engine.emit(t, "detector.episode_grew",
                                 f"anomaly {ep['id']} spreads to {self._describe(grew, values)}",
                                 self.severity, None, episode=ep["id"],
                                 score=round(finding.score, 4), signals=grew)
        ep = self.episode
        if not self.alerting:
            return
        self.engine.alerts.raise_external(
            t, "detector", "AnomalyDetected", {"episode": ep["id"]}, True,
            value=finding.score, severity=self.severity, summary=sentence,
            annotations={"summary": sentence, "signals": ", ".join(ep["signals"]),
                         "score": f"{finding.score:.2f}",
                         "began_at": self.engine.clock(finding.began_at),
                         "explanation": sentence})

    def _close(self, t: float) -> None:
        ep = self.episode
        assert ep is not None
        if self.alerting:
            self.engine.alerts.raise_external(t, "detector", "AnomalyDetected",
                                              {"episode": ep["id"]}, False,
                                              severity=self.severity)
        self.engine.emit(t, "detector.episode_ended", f"anomaly {ep['id']} over "
                         f"({', '.join(ep['signals'][:3])})", "info", None, episode=ep["id"])
        self.episode = None
        self._quiet = 0

    def _describe(self, signals: list[str], values: dict[str, float]) -> str:
        """'COMPONENT LABEL NOW (usually USUAL)' of up to three signals."""
        parts = []
        for name in signals[:3]:
            comp, _, metric = name.rpartition(".")
            label, fmt, _ = _LABELS.get(metric, (metric, lambda v: f"{v:.3g}", BOTH))
            now = values.get(name, math.nan)
            usual = self.typical.get(name)
            txt = f"{comp} {label} {fmt(now)}"
            if usual is not None and math.isfinite(usual):
                txt += f" (usually {fmt(usual)})"
            parts.append(txt)
        more = len(signals) - 3
        return "; ".join(parts) + (f" and {more} more signal(s)" if more > 0 else "")

    def _explain(self, finding: Any, values: dict[str, float]) -> str:
        return (f"anomaly score {finding.score:.2f} since {self.engine.clock(finding.began_at)}: "
                + self._describe(list(finding.signals), values))

    def state(self) -> dict:
        det = self.detector
        warmup = self._spec.warmup_updates if self.enabled else 0
        return {
            "enabled": self.enabled, "every_ticks": self.every, "updates": self.updates,
            "warming_up": self.enabled and (det is None and not self._warmed()
                                            or det is not None and bool(det.warming_up)),
            "warm_started": self.warm_started or self._warmed(),
            "signals": list(self.signals),
            "warmup_updates": warmup,
            "warmup_seconds": warmup * self.every * self.engine.dt,
            "anomalous": dict(self.anomalous), "scores": dict(self.last_scores),
            "series_of": {k: list(v) for k, v in self.series_of.items()},
            "episode": dict(self.episode) if self.episode else None,
            "findings": self.findings, "alerts": self.alerting,
        }


#: Pre-rolled detectors by (profile, seed): every engine of a profile and seed starts from the
#: same history, so it is simulated once per process.
_PREROLLED: dict[tuple[str, int], AnomalyController] = {}
_PREROLL_LOCK = threading.RLock()
#: Seed stream of the shadow history (independent of the run's own draws).
_HISTORY_SEED = 0x5EED_0D57


def preroll_seconds(profile: Any) -> float:
    """Simulated seconds of history a warm start pre-rolls: exactly the detector's warm-up."""
    spec = profile.monitoring.detector
    return spec.warmup_updates * spec.every_ticks * profile.simulation.tick_seconds


def _prerolled(profile: Any, seed: int) -> AnomalyController | None:
    """The detector of a shadow run of the same profile over the `preroll_seconds` before t=0.

    The shadow starts that long earlier in the simulated day (so the detector's daily phase
    lines up with the real run), on its own seed stream, with no chaos, no drill and no warm
    start of its own; its detector is then copied into the real run (`_build`).
    """
    from devsim_tui.sim.engine import DAY, HOUR, Engine

    key = (profile.model_dump_json(), int(seed))
    cached = _PREROLLED.get(key)
    if cached is not None:
        return cached
    seconds = preroll_seconds(profile)
    sim = profile.simulation
    start = ((sim.start_hour * HOUR - seconds) % DAY) / HOUR
    # At max speed: one shadow tick per detector update (the window the real run averages),
    # so the history costs warmup_updates ticks, not warmup_updates x every_ticks.
    spec = profile.monitoring.detector
    coarse = min(60.0, spec.every_ticks * sim.tick_seconds)
    detector = spec.model_copy(update={"warm_start": False, "rollback": False,
                                       "every_ticks": max(1, round(spec.every_ticks
                                                                   * sim.tick_seconds / coarse))})
    shadow_profile = profile.model_copy(update={
        "monitoring": profile.monitoring.model_copy(update={"detector": detector}),
        "simulation": sim.model_copy(update={"start_hour": start, "tick_seconds": coarse}),
    })
    shadow = Engine(shadow_profile, seed=(int(seed) ^ _HISTORY_SEED) & 0x7FFFFFFF,
                    alerting=False)
    ctl = next((c for c in shadow.controllers if isinstance(c, AnomalyController)), None)
    if ctl is None or not ctl.enabled:
        return None
    ticks = int(round(seconds / shadow.dt))
    for _ in range(ticks):
        shadow.advance()
    if len(_PREROLLED) > 32:
        _PREROLLED.clear()
    _PREROLLED[key] = ctl
    return ctl


def _fmt_field(field: str, value: float) -> str:
    if field == "p99_ms":
        return f"{value:.0f} ms"
    if field == "memory_mb":
        return f"{value:.0f} MiB"
    return f"{value:.2%}"


register(AnomalyController)
