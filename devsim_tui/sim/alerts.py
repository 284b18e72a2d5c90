"""Alert rules with Prometheus semantics over the engine's aggregates.

inactive -> pending -> firing -> resolved, evaluated every `evaluation_interval_seconds` of
simulated time; `for` counts from the first true evaluation; `keep_firing_for` holds a firing
alert after its condition clears; resolved alerts are kept for 15 minutes (sim_semantics.md §3).
Never imports the UI.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

from devsim_tui.config.schema import Profile
from devsim_tui.sim.snapshot import Aggregates, AlertView

RESOLVED_RETENTION_S = 15 * 60.0

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}


@dataclass(frozen=True)
class Rule:
    alert: str
    metric: str  # an Aggregates field
    op: str
    threshold: float
    for_s: float
    severity: str
    summary: str  # may use {value} and {threshold}
    keep_firing_for_s: float = 0.0
    runbook: str = ""

    def value(self, agg: Aggregates) -> float | None:
        v = getattr(agg, self.metric)
        if v is None:
            return None
        return float(v)


def default_rules(profile: Profile) -> list[Rule]:
    """A useful rule set for the profile: symptoms first (errors, latency, budget), then causes."""
    slo = profile.slo
    rules = [
        Rule("HighErrorRate", "error_rate", ">", 0.05, 120, "critical",
             "{value:.1%} of requests failing (threshold {threshold:.0%})"),
        Rule("LatencyP99AboveSLO", "p99_ms", ">", slo.p99_latency_ms, 300, "warning",
             "p99 {value:.0f} ms above the SLO of {threshold:.0f} ms"),
        Rule("ErrorBudgetFastBurn", "burn_rate_1h", ">", 14.4, 120, "critical",
             "error budget burning {value:.1f}x faster than sustainable"),
        Rule("DatabaseNotWritable", "db_writable", "==", 0, 0, "critical",
             "no database node accepts writes"),
        Rule("AppServersUnavailable", "ready", "==", 0, 30, "critical",
             "no app server is ready"),
        Rule("FleetDiskFilling", "disk_pct", ">", 85, 300, "warning",
             "app server disks {value:.0f}% full"),
        Rule("HighCPU", "cpu", ">", 0.9, 300, "warning", "mean CPU {value:.0%}"),
    ]
    if profile.database.topology != "single":
        rules.append(Rule("ReplicationLagHigh", "db_max_lag_s", ">", 30, 120, "warning",
                          "replication lag {value:.0f} s"))
    if profile.database.backup.mode == "daily":
        rules.append(Rule("BackupTooOld", "restore_point_age_s", ">", 26 * 3600, 0, "warning",
                          "last backup {value:.0f} s ago"))
    if profile.cache.enabled:
        rules.append(Rule("CacheHitRatioCollapse", "cache_hit_ratio", "<",
                          profile.cache.hit_ratio * 0.5, 60, "critical",
                          "cache hit ratio {value:.0%}"))
    return rules


@dataclass
class AlertState:
    rule: Rule
    id: str
    state: str  # pending | firing | resolved
    active_at: float
    value: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_true_at: float = 0.0
    acknowledged: bool = False

    def view(self) -> AlertView:
        r = self.rule
        return AlertView(
            id=self.id, name=r.alert, state=self.state, severity=r.severity,
            summary=r.summary.format(value=self.value, threshold=r.threshold),
            active_at=self.active_at, fired_at=self.fired_at, resolved_at=self.resolved_at,
            acknowledged=self.acknowledged, value=self.value,
            labels=(("severity", r.severity),),
        )


class AlertEngine:
    def __init__(self, rules: list[Rule], interval_s: float, emit: Callable[..., object]):
        self.rules = rules
        self.interval = interval_s
        self.emit = emit
        self.active: dict[str, AlertState] = {}  # by rule name (one series per rule)
        self.resolved: list[AlertState] = []
        self._next_eval = 0.0
        self._counter = 0
        self._views: tuple[AlertView, ...] = ()

    def due(self, t: float) -> bool:
        return t >= self._next_eval

    def evaluate(self, t: float, agg: Aggregates) -> None:
        self._next_eval = t + self.interval
        for rule in self.rules:
            v = rule.value(agg)
            true = v is not None and OPS[rule.op](v, rule.threshold)
            st = self.active.get(rule.alert)
            if true:
                assert v is not None
                if st is None:
                    self._counter += 1
                    st = AlertState(rule, f"A{self._counter}", "pending", t, v)
                    self.active[rule.alert] = st
                st.value = v
                st.last_true_at = t
                if st.state == "pending" and t - st.active_at >= rule.for_s:
                    st.state, st.fired_at = "firing", t
                    self.emit(t, "alert.firing", f"{rule.alert}: {st.view().summary}",
                              rule.severity, None, alert=rule.alert, id=st.id)
            elif st is not None:
                if st.state == "pending":
                    del self.active[rule.alert]  # never fired: dropped silently
                elif t - st.last_true_at >= rule.keep_firing_for_s:
                    st.state, st.resolved_at = "resolved", t
                    del self.active[rule.alert]
                    self.resolved.append(st)
                    self.emit(t, "alert.resolved", f"{rule.alert} resolved", "info", None,
                              alert=rule.alert, id=st.id)
        self.resolved = [a for a in self.resolved
                         if a.resolved_at is not None and t - a.resolved_at < RESOLVED_RETENTION_S]
        self._views = tuple(a.view() for a in list(self.active.values()) + self.resolved)

    def acknowledge(self, key: str) -> list[str]:
        """Acknowledge by id, alert name or 'all' (firing only). Returns the ids acknowledged."""
        done = []
        for st in self.active.values():
            if st.state == "firing" and key in ("all", st.id, st.rule.alert) \
                    and not st.acknowledged:
                st.acknowledged = True
                done.append(st.id)
        if done:
            self._views = tuple(a.view() for a in list(self.active.values()) + self.resolved)
        return done

    @property
    def views(self) -> tuple[AlertView, ...]:
        return self._views
