"""Alerting with Prometheus semantics: scrape the metrics, evaluate rule groups, track instances.

Simulated time only. Every `scrape_interval` the engine's metrics (the names the exporter serves)
are sampled into a small in-memory store; every group `interval` each rule's PromQL expression is
evaluated over it and each series it returns is its own alert instance, identified by its labels
plus the rule's labels and `alertname`. States follow Prometheus 2.42's `rules/alerting.go`
(sim_semantics.md §3): a new series is pending (`active_at`), fires once `t - active_at >= for`;
a pending alert whose series vanishes is dropped; a firing one resolves unless `keep_firing_for`
holds it (counted from the first evaluation the condition was false); resolved alerts are kept
for 15 minutes. Alerts raised by other parts of the engine (the anomaly detector) join the same
list through `raise_external`. Silences and acknowledgements mark alerts; notification routing
lives in `sim.notifications`. Never imports the UI.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from devsim_tui.config.schema import Profile
from devsim_tui.sim import promql
from devsim_tui.sim.metrics import Samples
from devsim_tui.sim.rules import Rule, RuleSet, render, rules_for
from devsim_tui.sim.snapshot import Aggregates, AlertView

RESOLVED_RETENTION_S = 15 * 60.0
Labels = tuple[tuple[str, str], ...]
#: sampler(t, agg, wanted metric names) -> samples of that moment
Sampler = Callable[[float, Aggregates, frozenset[str]], Samples]


def default_rules(profile: Profile) -> RuleSet:
    """The profile's rules: `monitoring.rules`, else the built-in file for its environment."""
    return rules_for(profile)


# --------------------------------------------------------------------------- sample store


class _SeriesLog:
    """One series' samples in time order, plus the running sum of counter-reset corrections
    (so `rate` over hours of samples costs two bisections, not a walk)."""

    __slots__ = ("ts", "vs", "corr")

    def __init__(self) -> None:
        self.ts: list[float] = []
        self.vs: list[float] = []
        self.corr: list[float] = []

    def add(self, t: float, v: float) -> None:
        c = self.corr[-1] if self.corr else 0.0
        if self.vs and v < self.vs[-1]:
            c += self.vs[-1]
        self.ts.append(t)
        self.vs.append(v)
        self.corr.append(c)

    def trim(self, before: float) -> None:
        k = bisect.bisect_left(self.ts, before)
        if k > 64 and k * 2 > len(self.ts):
            del self.ts[:k], self.vs[:k], self.corr[:k]


class SampleStore:
    """Scrapes kept in memory for as long as the rules' ranges need (a tiny Prometheus TSDB).

    A series missing from a scrape is stale from that scrape on, as Prometheus marks series that
    disappear from a target, so instant queries see exactly the newest scrape.
    """

    def __init__(self, retention_s: float, ranged: frozenset[str]):
        self.retention = retention_s
        self.ranged = ranged  # names queried over ranges or with offsets: kept in history
        self.latest_t: float | None = None
        self.latest: Samples = {}
        self.logs: dict[str, dict[Labels, _SeriesLog]] = {name: {} for name in ranged}
        self.scrape_times: list[float] = []  # of the history, for offset instant queries
        self._adds = 0
        self._named: dict[str, tuple[list[Labels], list[Labels]]] = {}

    def add(self, t: float, samples: Samples) -> None:
        self.latest_t, self.latest = t, samples
        if not self.ranged:
            return
        self.scrape_times.append(t)
        for name in self.ranged:
            s = samples.get(name)
            if s is None:
                continue
            logs = self.logs[name]
            for lb, v in zip(s[0], s[1]):
                log = logs.get(lb)
                if log is None:
                    log = logs[lb] = _SeriesLog()
                log.add(t, v)
        self._adds += 1
        if self._adds % 64 == 0:
            cut = t - self.retention
            for logs in self.logs.values():
                for lb in [lb for lb, log in logs.items() if log.ts[-1] < cut]:
                    del logs[lb]
                for log in logs.values():
                    log.trim(cut)
            k = bisect.bisect_left(self.scrape_times, cut)
            if k > 64:
                del self.scrape_times[:k]

    def instant(self, name: str | None, t: float) -> list[tuple[Labels, float]]:
        if name is None:
            return []
        head = (("__name__", name),)
        if self.latest_t is not None and self.latest_t <= t + 1e-9:
            if t - self.latest_t > promql.LOOKBACK_S or name not in self.latest:
                return []
            lbs, vs = self.latest[name]
            cached = self._named.get(name)
            if cached is None or cached[0] is not lbs:
                # Label lists are reused between scrapes while the fleet is unchanged, so the
                # named label sets can be too (10,000 tuples per query on a large fleet).
                cached = self._named[name] = (lbs, [head + lb for lb in lbs])
            return list(zip(cached[1], vs))
        # An offset query: the newest scrape at or before t; series without a sample there
        # were stale at that scrape.
        k = bisect.bisect_right(self.scrape_times, t + 1e-9) - 1
        if k < 0 or t - self.scrape_times[k] > promql.LOOKBACK_S:
            return []
        ts = self.scrape_times[k]
        out = []
        for lb, log in self.logs.get(name, {}).items():
            i = bisect.bisect_left(log.ts, ts - 1e-9)
            if i < len(log.ts) and abs(log.ts[i] - ts) < 1e-9:
                out.append((head + lb, log.vs[i]))
        return out

    def _bounds(self, log: _SeriesLog, start: float, end: float) -> tuple[int, int]:
        return (bisect.bisect_left(log.ts, start - 1e-9), bisect.bisect_right(log.ts, end + 1e-9))

    def range(self, name: str | None, start: float, end: float) -> promql.Matrix:
        out: promql.Matrix = []
        if name is None:
            return out
        head = (("__name__", name),)
        for lb, log in self.logs.get(name, {}).items():
            i, j = self._bounds(log, start, end)
            if j > i:
                out.append((head + lb, list(zip(log.ts[i:j], log.vs[i:j]))))
        return out

    def range_summary(self, name: str | None, start: float, end: float) -> list[
            tuple[Labels, promql.RangeSummary]]:
        """Per series: count, first and last sample and the counter-reset correction."""
        out: list[tuple[Labels, promql.RangeSummary]] = []
        if name is None:
            return out
        head = (("__name__", name),)
        for lb, log in self.logs.get(name, {}).items():
            i, j = self._bounds(log, start, end)
            if j > i:
                out.append((head + lb, promql.RangeSummary(
                    j - i, log.ts[i], log.vs[i], log.ts[j - 1], log.vs[j - 1],
                    log.corr[j - 1] - log.corr[i])))
        return out


# --------------------------------------------------------------------------- alert instances


@dataclass
class Alert:
    id: str
    name: str
    labels: Labels  # identity: series labels + rule labels + alertname
    state: str  # pending | firing | resolved
    active_at: float
    value: float
    severity: str
    source: str = "rules"
    rule: Rule | None = None
    summary: str = ""
    annotations: Labels = ()
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    acknowledged: bool = False
    silenced_until: float | None = None

    def render(self) -> None:
        if self.rule is None:
            return
        lb = dict(self.labels)
        self.annotations = tuple((k, render(v, self.value, lb)) for k, v in self.rule.annotations)
        ann = dict(self.annotations)
        self.summary = ann.get("summary") or ann.get("description") or self.name

    def view(self) -> AlertView:
        return AlertView(
            id=self.id, name=self.name, state=self.state, severity=self.severity,
            summary=self.summary, active_at=self.active_at, fired_at=self.fired_at,
            resolved_at=self.resolved_at, acknowledged=self.acknowledged, value=self.value,
            source=self.source, labels=self.labels, silenced_until=self.silenced_until,
            annotations=self.annotations)


@dataclass
class Silence:
    id: str
    matchers: Labels  # label = value, all must match
    starts_at: float
    ends_at: float
    comment: str = ""

    def matches(self, labels: Labels) -> bool:
        d = dict(labels)
        return all(d.get(k, "") == v for k, v in self.matchers)


@dataclass
class _Group:
    name: str
    interval: float
    rules: tuple[Rule, ...]
    next_eval: float = 0.0


class AlertEngine:
    def __init__(self, rules: RuleSet | list[Rule], interval_s: float, emit: Callable[..., Any],
                 sampler: Sampler | None = None, scrape_interval_s: float = 15.0):
        if isinstance(rules, RuleSet):
            groups = [_Group(n, i, r) for n, i, r in rules.groups]
        else:
            groups = [_Group("default", float(interval_s), tuple(rules))] if rules else []
        self.groups = groups
        self.rules = [r for g in groups for r in g.rules]
        self.interval = float(interval_s)
        self.emit = emit
        self.sampler = sampler
        self.scrape_interval = float(scrape_interval_s)
        sels = [s for r in self.rules for s in promql.selectors(r.tree)]
        self.wanted = frozenset(s.name for s in sels if s.name)
        ranged = frozenset(s.name for s in sels if s.name and (s.range_s or s.offset_s))
        reach = max([(s.range_s or 0.0) + s.offset_s + (0.0 if s.range_s else promql.LOOKBACK_S)
                     for s in sels if s.range_s or s.offset_s] or [0.0])
        self.store = SampleStore(reach + self.scrape_interval, ranged)
        self.alerts: dict[tuple[str, Labels], Alert] = {}  # (source rule, labels) -> alert
        self.silences: list[Silence] = []
        self._next_scrape = 0.0
        self._counter = 0
        self._silence_counter = 0
        self._views: tuple[AlertView, ...] = ()
        self.version = 0  # bumped whenever the views change (cheap change detection)
        self.last_eval_t: float | None = None
        self.phase: float | None = None  # time of the first evaluation
        self._due_at: float | None = None  # cached _next_due()

    # ------------------------------------------------------------------ timing

    def _next_due(self) -> float:
        nxt = min([g.next_eval for g in self.groups] + [self._next_scrape])
        ends = [s.ends_at for s in self.silences]
        return min([nxt] + ends)

    def due(self, t: float) -> bool:
        d = self._due_at
        if d is None:  # recomputed only after an evaluation or a change of silences
            d = self._due_at = self._next_due()
        return t >= d - 1e-9

    def _after(self, t: float, interval: float) -> float:
        k = math.floor((t - self.phase) / interval + 1e-9) + 1
        return self.phase + k * interval

    def evaluate(self, t: float, agg: Aggregates) -> None:
        """Scrape and/or evaluate whatever is due at t (call when `due(t)`).

        Scrapes and evaluations run at phase + k * interval, the phase being the first tick, so
        the first tick is both scraped and evaluated (as Prometheus does soon after start).
        """
        if self.phase is None:
            self.phase = t
        self._due_at = None
        if t >= self._next_scrape - 1e-9:
            self._next_scrape = self._after(t, self.scrape_interval)
            if self.sampler is not None and self.wanted:
                self.store.add(t, self.sampler(t, agg, self.wanted))
        changed = self._expire_silences(t)
        for g in self.groups:
            if t >= g.next_eval - 1e-9:
                g.next_eval = self._after(t, g.interval)
                for rule in g.rules:
                    self._eval_rule(rule, t)
                changed = True
        if changed:
            self.last_eval_t = t
            self._gc(t)
            self._refresh()

    # ------------------------------------------------------------------ rule evaluation

    def _new_id(self) -> str:
        self._counter += 1
        return f"A{self._counter}"

    def _eval_rule(self, rule: Rule, t: float) -> None:
        try:
            vector = promql.evaluate(rule.tree, self.store, t)
        except promql.PromQLError as exc:
            self.emit(t, "alert.rule_error", f"{rule.alert}: {exc}", "error", None,
                      alert=rule.alert)
            vector = []
        seen: set[Labels] = set()
        for labels, value in vector:
            d = {k: v for k, v in labels if k != "__name__"}
            d.update(rule.labels)
            d["alertname"] = rule.alert
            lb = tuple(sorted(d.items()))
            if lb in seen:
                self.emit(t, "alert.rule_error", f"{rule.alert}: vector contains metrics with "
                          "the same labelset after applying alert labels", "error", None,
                          alert=rule.alert)
                continue
            seen.add(lb)
            key = (rule.alert, lb)
            a = self.alerts.get(key)
            if a is not None and a.state != "resolved":
                a.value = value
                a.keep_firing_since = None
            else:
                a = Alert(self._new_id(), rule.alert, lb, "pending", t, value, rule.severity,
                          rule=rule)
                self.alerts[key] = a
                self._apply_silences(a)
            a.render()
        for key, a in list(self.alerts.items()):
            if key[0] != rule.alert or a.source != "rules" or a.labels in seen:
                continue
            keep = False
            if a.state == "firing" and rule.keep_firing_for_s > 0:
                if a.keep_firing_since is None:
                    a.keep_firing_since = t
                keep = t - a.keep_firing_since < rule.keep_firing_for_s
            if a.state == "pending":
                del self.alerts[key]  # never fired: dropped silently
                continue
            if a.state == "firing" and not keep:
                a.state, a.resolved_at = "resolved", t
                self.emit(t, "alert.resolved", f"{a.name} resolved{_inst(a.labels)}", "info",
                          None, alert=a.name, id=a.id, labels=dict(a.labels), source=a.source)
        for key, a in self.alerts.items():
            if key[0] == rule.alert and a.state == "pending" and t - a.active_at >= rule.for_s:
                a.state, a.fired_at = "firing", t
                self.emit(t, "alert.firing", f"{a.name}: {a.summary}", a.severity, None,
                          alert=a.name, id=a.id, labels=dict(a.labels), source=a.source,
                          value=a.value)

    def _gc(self, t: float) -> None:
        for key, a in list(self.alerts.items()):
            if a.state == "resolved" and a.resolved_at is not None \
                    and t - a.resolved_at > RESOLVED_RETENTION_S:
                del self.alerts[key]

    def _refresh(self) -> None:
        self._views = tuple(a.view() for a in self.alerts.values())
        self.version += 1

    # ------------------------------------------------------------------ external alerts

    def raise_external(self, t: float, source: str, name: str, labels: dict[str, str],
                       active: bool, value: float = 0.0, severity: str = "warning",
                       summary: str = "", annotations: dict[str, str] | None = None) -> None:
        """Fire (active) or resolve an alert owned by another component, e.g. the detector."""
        d = dict(labels)
        d["alertname"] = name
        d.setdefault("severity", severity)
        lb = tuple(sorted(d.items()))
        key = (f"{source}:{name}", lb)
        a = self.alerts.get(key)
        if active:
            if a is None or a.state == "resolved":
                a = Alert(self._new_id(), name, lb, "firing", t, value, severity, source=source,
                          fired_at=t)
                self.alerts[key] = a
                self._apply_silences(a)
                a.summary = summary or name
                a.annotations = tuple((annotations or {}).items())
                self.emit(t, "alert.firing", f"{name}: {a.summary}", severity, None, alert=name,
                          id=a.id, labels=d, source=source, value=value)
            a.value = value
            a.summary = summary or a.summary
            if annotations:
                a.annotations = tuple(annotations.items())
        elif a is not None and a.state == "firing":
            a.state, a.resolved_at = "resolved", t
            self.emit(t, "alert.resolved", f"{name} resolved", "info", None, alert=name,
                      id=a.id, labels=d, source=source)
        else:
            return
        self._gc(t)
        self._refresh()

    # ------------------------------------------------------------------ operator actions

    def _find(self, key: str) -> list[Alert]:
        return [a for a in self.alerts.values() if a.state != "resolved"
                and key in ("all", a.id, a.name)]

    def acknowledge(self, key: str) -> list[str]:
        """Acknowledge by id, alert name or 'all' (firing only). Returns the ids acknowledged."""
        done = []
        for a in self._find(key):
            if a.state == "firing" and not a.acknowledged:
                a.acknowledged = True
                done.append(a.id)
        if done:
            self._refresh()
        return done

    def silence(self, key: str, duration_s: float, t: float, comment: str = "") -> Silence | None:
        """Silence an alert name, an alert id (that instance's labels) or 'all' for a while.

        A name silences every current and future instance of that alert; an id silences the
        instance's exact label set (it also covers the instance if it comes back). Returns None
        when nothing matches a name or id that is neither held nor a rule.
        """
        if key == "all":
            matchers: Labels = ()
        else:
            by_id = [a for a in self.alerts.values() if a.id == key]
            if by_id:
                matchers = by_id[0].labels
            elif key in {r.alert for r in self.rules} or any(
                    a.name == key for a in self.alerts.values()):
                matchers = (("alertname", key),)
            else:
                return None
        self._silence_counter += 1
        s = Silence(f"S{self._silence_counter}", matchers, t, t + duration_s, comment)
        self.silences.append(s)
        self._due_at = None
        for a in self.alerts.values():
            self._apply_silences(a)
        self._refresh()
        return s

    def unsilence(self, key: str, t: float) -> list[str]:
        """Expire silences by silence id, alert name, alert id or 'all'. Returns silence ids."""
        ids = {a.id: a.labels for a in self.alerts.values()}
        gone = [s for s in self.silences if key in ("all", s.id)
                or s.matchers == (("alertname", key),)
                or (key in ids and s.matchers == ids[key])]
        if not gone:
            return []
        self.silences = [s for s in self.silences if s not in gone]
        self._due_at = None
        for a in self.alerts.values():
            self._apply_silences(a)
        self._refresh()
        return [s.id for s in gone]

    def _apply_silences(self, a: Alert) -> None:
        ends = [s.ends_at for s in self.silences if s.matches(a.labels)]
        a.silenced_until = max(ends) if ends else None

    def _expire_silences(self, t: float) -> bool:
        live = [s for s in self.silences if s.ends_at > t + 1e-9]
        if len(live) == len(self.silences):
            return False
        for s in self.silences:
            if s not in live:
                self.emit(t, "alert.silence_expired", f"silence {s.id} expired"
                          f" ({_matchers(s.matchers)})", "info", None, silence=s.id)
        self.silences = live
        self._due_at = None
        for a in self.alerts.values():
            self._apply_silences(a)
        return True

    @property
    def views(self) -> tuple[AlertView, ...]:
        return self._views


def _inst(labels: Labels) -> str:
    d = dict(labels)
    for k in ("instance", "node"):
        if k in d:
            return f" ({d[k]})"
    return ""


def _matchers(m: Labels) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in m) or "everything"
