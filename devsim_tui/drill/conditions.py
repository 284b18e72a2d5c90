"""The drill condition language: small boolean expressions over the engine's ground truth.

    p99_ms > 800 for 2m
    error_rate < 1% and ready >= 10 for 5m
    alert:HighErrorRate or detector_findings > 0
    inject:cert == 0
    not db_writable

Grammar (`and` binds tighter than `or`; parentheses group; `for` applies to the whole
condition and means "true at every tick for at least that long"):

    condition  := expr [ "for" DURATION ]
    expr       := conj { "or" conj }
    conj       := unary { "and" unary }
    unary      := "not" unary | "(" expr ")" | compare
    compare    := SIGNAL [ OP NUMBER[%] ]        (a bare signal means "!= 0")
    OP         := < | <= | > | >= | == | !=

Signals are the engine's per-tick aggregates (the `sim.history.SERIES` names) plus a few views of
the controllers (see `SIGNALS`), and parameterised ones written `kind:argument`
(`alert:NAME`, `fault:TYPE`, `inject:ID`). PromQL (sim/promql.py) was the other candidate; it
needs the alert engine's scrape store, which only keeps the series its rules use, at scrape
resolution, so drill conditions would silently depend on the profile's rule files. These
conditions read the engine directly, every tick, and are checked by name when a scenario loads.
Never imports the UI.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from devsim_tui.config.durations import parse_duration
from devsim_tui.sim import extensions
from devsim_tui.sim.history import SERIES

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine

#: Signals beyond the aggregates, with what they mean (shown by `drill show --signals`, docs).
SIGNALS: dict[str, str] = {
    "t": "drill time in seconds since the drill started",
    "consumer_lag_s": "Kafka consumer lag in seconds of consumption (0 without Kafka)",
    "lost_events": "events Kafka producers dropped after delivery.timeout.ms",
    "data_age_s": "age in seconds of the derived data the app serves (Kafka derived-data groups)",
    "stale_responses": "responses served with derived data past streaming.stale_after_seconds",
    "late_notifications": "notifications sent past streaming.notification_slo_seconds",
    "faults": "active chaos faults",
    "alerts_firing": "firing alerts, decoys included",
    "alerts_unacked": "firing alerts not yet acknowledged",
    "detector_findings": "anomaly-detector findings so far",
    "anomaly": "1 while the anomaly detector has an open episode",
    "bad_pods": "app pods (not draining) running a bad release version",
    "rollout_active": "1 while a rollout, canary or hot reload is in progress",
    "db_nodes_down": "database nodes not running",
    "cache_nodes_down": "cache nodes not running",
    "table_dropped": "1 while a table a drop-table fault dropped is missing (until a restore "
                     "to a time before the drop)",
    "restoring": "1 while a point-in-time restore runs (the database is down)",
    "hints_revealed": "hints revealed so far",
    "root_cause_declared": "1 once a root-cause declaration matched the scenario's cause",
    "intrusions": "attacker sessions inside the estate (docs/security.md)",
    "records_exposed": "records an exfiltration copied out in plaintext so far",
    "records_exfiltrated": "records an exfiltration copied out so far (encrypted or not)",
    "security_score": "security posture score, 0-100",
    "policy_denials": "calls per second denied by the zero-trust policy",
}
#: Parameterised signals: `kind:argument`.
PARAMETRISED: dict[str, str] = {
    "alert": "firing instances of the named alert (decoys included)",
    "fault": "active chaos faults of the named type (chaos list)",
    "inject": "active chaos faults created by the named inject (0 once it is stopped or over)",
    "remedy": "times the named remedy has been applied",
}
AGGREGATES = tuple(n for n in SERIES if n not in ("t",)) + ("restore_point_age_s",)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
}
_TOKEN = re.compile(r"\s*(?:(?P<op><=|>=|==|!=|<|>)|(?P<paren>[()])|"
                    r"(?P<num>-?\d+(?:\.\d+)?%?)|(?P<word>[A-Za-z_][A-Za-z0-9_.:-]*))")


MAX_CONDITION_CHARS = 2000
#: Parentheses and `not`s nest at most this deep (the parser and the evaluator recurse).
MAX_NESTING = 50


class ConditionError(ValueError):
    """A condition that does not parse; the message says where."""


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Compare:
    signal: str
    arg: str | None
    op: str
    value: float

    def eval(self, get: Callable[[str, str | None], float]) -> bool:
        v = get(self.signal, self.arg)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return False  # a signal without a value (no cache, no build) is never true
        return _OPS[self.op](float(v), self.value)

    def text(self) -> str:
        name = self.signal if self.arg is None else f"{self.signal}:{self.arg}"
        return f"{name} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Not:
    inner: Any

    def eval(self, get) -> bool:
        return not self.inner.eval(get)


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    parts: tuple[Any, ...]

    def eval(self, get) -> bool:
        if self.op == "and":
            return all(p.eval(get) for p in self.parts)
        return any(p.eval(get) for p in self.parts)


@dataclass(frozen=True)
class Condition:
    """A parsed condition: the expression and its `for` hold time (0 = true at once)."""

    source: str
    expr: Any
    hold_s: float

    def signals(self) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []

        def walk(node: Any) -> None:
            if isinstance(node, Compare):
                out.append((node.signal, node.arg))
            elif isinstance(node, Not):
                walk(node.inner)
            else:
                for p in node.parts:
                    walk(p)

        walk(self.expr)
        return out


def parse(text: str) -> Condition:
    """Parse a condition or raise ConditionError naming the offending word."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("empty condition")
    if len(text) > MAX_CONDITION_CHARS:
        raise ConditionError(f"too long ({len(text)} characters, at most "
                             f"{MAX_CONDITION_CHARS})")
    body, hold = text, 0.0
    m = re.search(r"\s+for\s+(\S+)\s*$", text)
    if m:
        try:
            hold = parse_duration(m.group(1))
        except ValueError as exc:
            raise ConditionError(f"after 'for': {exc}") from None
        body = text[:m.start()]
    tokens = _tokenize(body)
    parser = _Parser(tokens)
    expr = parser.expr()
    if parser.pos != len(tokens):
        raise ConditionError(f"unexpected {tokens[parser.pos][1]!r}")
    cond = Condition(text.strip(), expr, hold)
    for name, arg in cond.signals():
        check_signal(name, arg)
    return cond


def check_signal(name: str, arg: str | None) -> None:
    if arg is not None:
        if name not in PARAMETRISED:
            raise ConditionError(f"unknown signal '{name}:{arg}' (parameterised signals: "
                                 + ", ".join(f"{k}:NAME" for k in PARAMETRISED) + ")")
        if not arg:
            raise ConditionError(f"'{name}:' needs a name after the colon")
        return
    if name in AGGREGATES or name in SIGNALS:
        return
    import difflib

    close = difflib.get_close_matches(name, [*AGGREGATES, *SIGNALS, *PARAMETRISED], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConditionError(f"unknown signal '{name}'{hint}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"cannot read {text[pos:].strip()!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens, self.pos = tokens, 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ConditionError("the condition ends too early")
        self.pos += 1
        return tok

    def expr(self) -> Any:
        parts = [self.conj()]
        while self.peek() == ("word", "or"):
            self.pos += 1
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def conj(self) -> Any:
        parts = [self.unary()]
        while self.peek() == ("word", "and"):
            self.pos += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def unary(self) -> Any:
        kind, word = self.take()
        if (kind, word) in (("word", "not"), ("paren", "(")):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise ConditionError(f"nested too deeply (at most {MAX_NESTING} levels of "
                                     "parentheses and 'not')")
            try:
                if word == "not":
                    return Not(self.unary())
                inner = self.expr()
                if self.peek() != ("paren", ")"):
                    raise ConditionError("missing ')'")
                self.pos += 1
                return inner
            finally:
                self.depth -= 1
        if kind != "word" or word in ("and", "or", "for"):
            raise ConditionError(f"expected a signal name, got {word!r}")
        name, _, arg = word.partition(":")
        arg_or_none = arg if ":" in word else None
        nxt = self.peek()
        if nxt is None or nxt[0] != "op":
            return Compare(name, arg_or_none, "!=", 0.0)
        op = self.take()[1]
        if self.peek() is None:
            raise ConditionError(f"expected a number after {op!r}")
        kind, num = self.take()
        if kind != "num":
            raise ConditionError(f"expected a number after {op!r}, got {num!r}")
        value = float(num[:-1]) / 100.0 if num.endswith("%") else float(num)
        if not abs(value) <= 1e12:
            raise ConditionError(f"{num[:20]}...: a number must be between -1e12 and 1e12"
                                 if len(num) > 20 else
                                 f"{num}: a number must be between -1e12 and 1e12")
        return Compare(name, arg_or_none, op, value)


# --------------------------------------------------------------------------- evaluation


class Tracker:
    """A condition's state over ticks: true now, true since when, and whether it has held."""

    def __init__(self, cond: Condition):
        self.cond = cond
        self.since: float | None = None  # start of the current run of true ticks

    def update(self, t: float, get: Callable[[str, str | None], float]) -> bool:
        """Evaluate at drill time t; True once the expression has been true for hold_s."""
        if self.cond.expr.eval(get):
            if self.since is None:
                self.since = t
            return t - self.since >= self.cond.hold_s - 1e-9
        self.since = None
        return False

    @property
    def now(self) -> bool:
        """The expression is true at the last update (whether or not it has held long enough)."""
        return self.since is not None


def engine_getter(engine: Engine, drill: Any) -> Callable[[str, str | None], float]:
    """Signal values read from a live engine (and the drill controller's own counters)."""
    chaos = engine.controller(extensions.CHAOS)
    releases = engine.controller(extensions.RELEASES)
    anomaly = engine.controller(extensions.ANOMALY)

    def get(name: str, arg: str | None) -> float:
        # The controller's copy: inside after_tick the engine has not yet published this tick's
        # aggregates as `engine.agg`; after the tick both are the same object.
        agg = drill.agg
        if arg is None and name in AGGREGATES:
            v = getattr(agg, name, None) if name not in ("offered_total", "failed_total") \
                else getattr(engine, name)
            return math.nan if v is None else float(v)
        if name == "t":
            return drill.drill_t
        if name == "alert":
            return float(sum(1 for a in engine.alerts.views
                             if a.state == "firing" and a.name == arg))
        if name == "alerts_firing":
            return float(sum(1 for a in engine.alerts.views if a.state == "firing"))
        if name == "alerts_unacked":
            return float(sum(1 for a in engine.alerts.views
                             if a.state == "firing" and not a.acknowledged))
        if name == "fault":
            return float(sum(1 for f in chaos.active if f.type.name == arg)) if chaos else 0.0
        if name == "inject":
            ids = drill.fault_ids(arg)
            return float(sum(1 for f in chaos.active if f.id in ids)) if chaos else 0.0
        if name == "remedy":
            return float(sum(1 for r in drill.remedies_applied if r["name"] == arg))
        if name == "faults":
            return float(len(chaos.active)) if chaos else 0.0
        if name in ("consumer_lag_s", "lost_events", "data_age_s", "stale_responses",
                    "late_notifications"):
            s = chaos.stream if chaos is not None else None
            if s is None:
                return 0.0
            return float({"consumer_lag_s": s.lag_seconds, "lost_events": s.lost,
                          "data_age_s": s.data_age, "stale_responses": s.stale_responses,
                          "late_notifications": s.late_notifications}[name])
        if name == "detector_findings":
            return float(anomaly.findings) if anomaly else 0.0
        if name == "anomaly":
            return 1.0 if anomaly is not None and anomaly.episode is not None else 0.0
        if name == "bad_pods":
            if releases is None:
                return 0.0
            bad = [v.code for v in releases.versions.values() if v.kind != "good"]
            fleet = engine.fleet
            return float((fleet.active_mask() & _isin(fleet.version, bad)).sum()) if bad \
                else 0.0
        if name == "rollout_active":
            return 1.0 if releases is not None and releases.rollout is not None else 0.0
        if name == "db_nodes_down":
            return float(sum(1 for n in engine.db.nodes if not n.up))
        if name == "table_dropped":
            return 1.0 if engine.db.backups.dropped_at is not None else 0.0
        if name == "restoring":
            return 1.0 if engine.db.restoring else 0.0
        if name == "cache_nodes_down":
            c = engine.cache
            return float(sum(1 for n in c.nodes if n.state != "running")) if c else 0.0
        if name == "hints_revealed":
            return float(len(drill.revealed))
        if name == "root_cause_declared":
            return 1.0 if drill.root_cause_found_at is not None else 0.0
        if name in ("intrusions", "records_exposed", "records_exfiltrated", "security_score",
                    "policy_denials"):
            sec = engine.controller(extensions.SECURITY)
            if sec is None:
                return 0.0
            if name == "intrusions":
                return float(sec.intrusions())
            if name == "security_score":
                return float(sec.score(sec.controls()))
            if name == "policy_denials":
                return float(sec.denials_rps)
            return float(getattr(sec, name))
        raise KeyError(name)  # parse() rejects unknown names, so this is a programming error

    return get


def _isin(column, codes):
    import numpy as np

    return np.isin(column, np.asarray(codes, dtype=column.dtype))
