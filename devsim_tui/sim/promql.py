"""A small, honest subset of PromQL, parsed and evaluated over the engine's metrics.

Supported (semantics follow Prometheus 2.42, the version `promtool` in CI runs; see
docs/alerting.md for the full list and what is deliberately left out):

* selectors `name{l="v", l!="v", l=~"re", l!~"re"}`, range selectors `name[5m]`, `offset 5m`;
  an instant selector returns the newest sample at or before the evaluation time within the
  5-minute lookback; a series missing from a scrape is stale (as Prometheus marks it), so it
  vanishes at once rather than 5 minutes later;
* number literals, parentheses, unary minus;
* arithmetic `+ - * / % ^`, comparisons `== != > < >= <=` (filtering, or `bool`), set operators
  `and or unless`, with `on(...)` / `ignoring(...)` one-to-one matching;
* aggregations `sum avg min max count` with `by (...)` / `without (...)` before or after;
* functions `rate increase delta irate` (Prometheus' extrapolation, counter resets),
  `avg_over_time min_over_time max_over_time sum_over_time count_over_time`, `absent`,
  `absent_over_time`, `abs clamp_min clamp_max`, `scalar vector time`.

Not supported: group_left/group_right, topk/bottomk/quantile/stddev, histograms, subqueries,
`@`, string functions. Pure and deterministic; never imports the UI.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Union

LOOKBACK_S = 300.0

Labels = tuple[tuple[str, str], ...]  # sorted; may include __name__
Series = tuple[Labels, float]
Vector = list[Series]
Matrix = list[tuple[Labels, list[tuple[float, float]]]]
Value = Union[float, Vector, Matrix]


class PromQLError(ValueError):
    """A parse or evaluation error; the message says where (column) and what."""


# --------------------------------------------------------------------------- durations

_DUR = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """Prometheus duration (`90s`, `5m`, `1h30m`) to seconds."""
    pos, total = 0, 0.0
    if not text:
        raise PromQLError("empty duration")
    for m in _DUR.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise PromQLError(f"bad duration {text!r} (use e.g. 30s, 5m, 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    """Seconds to the shortest Prometheus duration string (`300` -> `5m`)."""
    s = int(round(seconds))
    if s == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out += f"{s // size}{unit}"
            s %= size
    return out


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str

    def matches(self, v: str) -> bool:
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        ok = re.fullmatch(self.value, v) is not None
        return ok if self.op == "=~" else not ok


@dataclass(frozen=True)
class NumberLit:
    value: float


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[Matcher, ...]
    range_s: float | None = None
    offset_s: float = 0.0


@dataclass(frozen=True)
class Unary:
    expr: object


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: object
    rhs: object
    bool_mod: bool = False
    on: tuple[str, ...] | None = None
    ignoring: tuple[str, ...] = ()


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: object
    by: tuple[str, ...] | None = None
    without: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[object, ...]


@dataclass(frozen=True)
class Parens:
    expr: object


AGGREGATIONS = ("sum", "avg", "min", "max", "count")
RANGE_FUNCS = ("rate", "increase", "delta", "irate", "avg_over_time", "min_over_time",
               "max_over_time", "sum_over_time", "count_over_time", "absent_over_time")
FUNCS: dict[str, tuple[str, ...]] = {  # argument kinds: v vector, m matrix, s scalar
    **{f: ("m",) for f in RANGE_FUNCS},
    "absent": ("v",), "abs": ("v",), "clamp_min": ("v", "s"), "clamp_max": ("v", "s"),
    "scalar": ("v",), "vector": ("s",), "time": (),
}
COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")
SET_OPS = ("and", "or", "unless")
PRECEDENCE = {"or": 1, "and": 2, "unless": 2, **{c: 3 for c in COMPARISONS},
              "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}

# --------------------------------------------------------------------------- lexer

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<dur>\d+(?:ms|s|m|h|d|w|y)(?:\d+(?:ms|s|m|h|d|w|y))*(?![a-zA-Z_\d]))
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![a-zA-Z_\d.])|[Nn]a[Nn]\b|[Ii]nf\b)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^<>=(){}\[\],])
""", re.VERBOSE)


@dataclass
class Tok:
    kind: str
    text: str
    pos: int


def _lex(src: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise PromQLError(f"col {pos + 1}: unexpected character {src[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(Tok("eof", "", pos))
    return out


def _unquote(s: str) -> str:
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = _lex(src)
        self.i = 0

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, msg: str, tok: Tok | None = None) -> PromQLError:
        t = tok or self.tok
        near = t.text or "end of expression"
        return PromQLError(f"col {t.pos + 1}: {msg} (at {near!r})")

    def expect(self, text: str) -> Tok:
        if self.tok.text != text:
            raise self.error(f"expected {text!r}")
        return self.next()

    def parse(self) -> object:
        e = self.expr(0)
        if self.tok.kind != "eof":
            raise self.error("unexpected token")
        return e

    def _binop(self) -> str | None:
        t = self.tok
        if t.kind == "op" and t.text in PRECEDENCE:
            return t.text
        if t.kind == "ident" and t.text in SET_OPS:
            return t.text
        return None

    def expr(self, min_prec: int) -> object:
        lhs = self.unary()
        while True:
            op = self._binop()
            if op is None or PRECEDENCE[op] < min_prec:
                break
            prec = PRECEDENCE[op]
            self.next()
            bool_mod = False
            if self.tok.text == "bool":
                if op not in COMPARISONS:
                    raise self.error("bool only applies to comparisons")
                self.next()
                bool_mod = True
            on, ignoring = None, ()
            if self.tok.text in ("on", "ignoring"):
                which = self.next().text
                labels = self.label_list()
                if which == "on":
                    on = labels
                else:
                    ignoring = labels
            if self.tok.text in ("group_left", "group_right"):
                raise self.error("group_left/group_right are not supported")
            # ^ is right-associative, everything else left-associative
            rhs = self.expr(prec if op == "^" else prec + 1)
            lhs = Binary(op, lhs, rhs, bool_mod, on, ignoring)
        return lhs

    def unary(self) -> object:
        if self.tok.text in ("-", "+"):
            sign = self.next().text
            e = self.expr(PRECEDENCE["^"])  # only ^ binds tighter than a unary minus
            return Unary(e) if sign == "-" else e
        return self.postfix(self.primary())

    def postfix(self, e: object) -> object:
        if self.tok.text == "[":
            if not isinstance(e, Selector) or e.range_s is not None:
                raise self.error("a range [..] only follows a metric selector")
            self.next()
            t = self.next()
            if t.kind not in ("dur",):
                raise self.error("expected a duration like 5m", t)
            self.expect("]")
            e = Selector(e.name, e.matchers, parse_duration(t.text), e.offset_s)
        if self.tok.text == "offset":
            if not isinstance(e, Selector):
                raise self.error("offset only follows a selector")
            self.next()
            t = self.next()
            if t.kind != "dur":
                raise self.error("expected a duration after offset", t)
            e = Selector(e.name, e.matchers, e.range_s, parse_duration(t.text))
        return e

    def label_list(self) -> tuple[str, ...]:
        self.expect("(")
        out: list[str] = []
        while self.tok.text != ")":
            t = self.next()
            if t.kind != "ident":
                raise self.error("expected a label name", t)
            out.append(t.text)
            if self.tok.text == ",":
                self.next()
            elif self.tok.text != ")":
                raise self.error("expected ',' or ')'")
        self.next()
        return tuple(out)

    def primary(self) -> object:
        t = self.tok
        if t.kind == "num":
            self.next()
            return NumberLit(float(t.text))
        if t.kind == "dur" and t.text.isdigit():
            self.next()
            return NumberLit(float(t.text))
        if t.text == "(":
            self.next()
            e = self.expr(0)
            self.expect(")")
            return Parens(e)
        if t.text == "{":
            return self.selector(None)
        if t.kind == "ident":
            name = t.text
            if name in AGGREGATIONS:
                return self.aggregate()
            if self.toks[self.i + 1].text == "(":
                if name not in FUNCS:
                    raise self.error(f"unknown or unsupported function {name!r}")
                return self.call()
            if name in ("bool", "on", "ignoring", "by", "without", "offset") or name in SET_OPS:
                raise self.error("unexpected keyword")
            self.next()
            return self.selector(name)
        raise self.error("expected an expression")

    def selector(self, name: str | None) -> Selector:
        matchers: list[Matcher] = []
        if self.tok.text == "{":
            self.next()
            while self.tok.text != "}":
                lt = self.next()
                if lt.kind != "ident":
                    raise self.error("expected a label name", lt)
                op = self.next()
                if op.text not in ("=", "!=", "=~", "!~"):
                    raise self.error("expected =, !=, =~ or !~", op)
                v = self.next()
                if v.kind != "str":
                    raise self.error("expected a quoted label value", v)
                value = _unquote(v.text)
                if op.text in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as exc:
                        raise self.error(f"bad regex: {exc}", v) from None
                matchers.append(Matcher(lt.text, op.text, value))
                if self.tok.text == ",":
                    self.next()
                elif self.tok.text != "}":
                    raise self.error("expected ',' or '}'")
            self.next()
        if name is None:
            name_m = [m for m in matchers if m.name == "__name__" and m.op == "="]
            if not name_m and not any(m.op == "=" and m.value or m.op == "=~" for m in matchers):
                raise self.error("a selector needs a metric name or a non-empty matcher")
            if name_m:
                name = name_m[0].value
                matchers = [m for m in matchers if m is not name_m[0]]
        return Selector(name, tuple(matchers))

    def aggregate(self) -> Aggregate:
        op = self.next().text
        by = without = None
        if self.tok.text in ("by", "without"):
            which = self.next().text
            labels = self.label_list()
            by, without = (labels, None) if which == "by" else (None, labels)
        self.expect("(")
        e = self.expr(0)
        self.expect(")")
        if self.tok.text in ("by", "without"):
            if by is not None or without is not None:
                raise self.error("by/without given twice")
            which = self.next().text
            labels = self.label_list()
            by, without = (labels, None) if which == "by" else (None, labels)
        return Aggregate(op, e, by, without)

    def call(self) -> Call:
        name = self.next().text
        self.expect("(")
        args: list[object] = []
        while self.tok.text != ")":
            args.append(self.expr(0))
            if self.tok.text == ",":
                self.next()
            elif self.tok.text != ")":
                raise self.error("expected ',' or ')'")
        self.next()
        kinds = FUNCS[name]
        if len(args) != len(kinds):
            raise self.error(f"{name}() takes {len(kinds)} argument(s), got {len(args)}")
        for kind, a in zip(kinds, args):
            got = _static_type(a)
            want = {"v": "vector", "m": "matrix", "s": "scalar"}[kind]
            if got != want:
                raise self.error(f"{name}() expects a {want} argument, got a {got}")
        return Call(name, tuple(args))


def _static_type(e: object) -> str:
    if isinstance(e, NumberLit):
        return "scalar"
    if isinstance(e, Selector):
        return "matrix" if e.range_s is not None else "vector"
    if isinstance(e, Parens):
        return _static_type(e.expr)
    if isinstance(e, Unary):
        return _static_type(e.expr)
    if isinstance(e, Call):
        return {"scalar": "scalar", "time": "scalar"}.get(e.func, "vector")
    if isinstance(e, Binary):
        lt, rt = _static_type(e.lhs), _static_type(e.rhs)
        if "matrix" in (lt, rt):
            raise PromQLError("binary operators need instant vectors or scalars, not ranges")
        return "scalar" if lt == rt == "scalar" else "vector"
    return "vector"


def parse(src: str) -> object:
    """Parse an expression; raise PromQLError naming the column of the problem."""
    tree = _Parser(src).parse()
    _check(tree)
    return tree


def _check(e: object) -> None:
    t = _static_type(e)
    if t == "matrix":
        raise PromQLError("a range vector cannot be the result of an expression")
    if isinstance(e, Binary):
        if e.op in SET_OPS and "scalar" in (_static_type(e.lhs), _static_type(e.rhs)):
            raise PromQLError(f"'{e.op}' needs vectors on both sides")
        if e.op in COMPARISONS and not e.bool_mod and \
                _static_type(e.lhs) == _static_type(e.rhs) == "scalar":
            raise PromQLError("comparisons between scalars must use bool")
        _check(e.lhs)
        _check(e.rhs)
    elif isinstance(e, (Unary, Parens)):
        _check(e.expr)
    elif isinstance(e, Aggregate):
        if _static_type(e.expr) != "vector":
            raise PromQLError(f"{e.op}() expects an instant vector")
        _check(e.expr)
    elif isinstance(e, Call):
        for a in e.args:
            if not (isinstance(a, Selector) and a.range_s is not None):
                _check(a)


def selectors(e: object) -> Iterable[Selector]:
    """Every selector in an expression (to know which metrics to scrape and for how long)."""
    if isinstance(e, Selector):
        yield e
    elif isinstance(e, Binary):
        yield from selectors(e.lhs)
        yield from selectors(e.rhs)
    elif isinstance(e, (Unary, Parens, Aggregate)):
        yield from selectors(e.expr)
    elif isinstance(e, Call):
        for a in e.args:
            yield from selectors(a)


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class RangeSummary:
    """What rate/increase/delta need of a range: sample count, ends, counter-reset correction."""

    n: int
    first_t: float
    first_v: float
    last_t: float
    last_v: float
    resets: float  # sum of the values just before each counter reset inside the range


class Store(Protocol):
    def instant(self, name: str | None, t: float) -> list[tuple[Labels, float]]:
        """Series of `name` visible at t (newest sample within the lookback, not stale)."""

    def range(self, name: str | None, start: float, end: float) -> Matrix:
        """Samples of `name` with start <= ts <= end, per series, oldest first."""


# --------------------------------------------------------------------------- evaluation

_NAME = "__name__"


def _drop_name(labels: Labels) -> Labels:
    return tuple(p for p in labels if p[0] != _NAME)


def _get(labels: Labels, name: str) -> str:
    for k, v in labels:
        if k == name:
            return v
    return ""


def _match(sel: Selector, labels: Labels) -> bool:
    return all(m.matches(_get(labels, m.name)) for m in sel.matchers)


# (operator's functions are the same comparisons and arithmetic as the lambdas they replaced,
# called without a Python frame: a rule over every server calls them thousands of times)
_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "/": lambda a, b: a / b if b != 0 else (math.nan if a == 0 or math.isnan(a)
                                           else math.copysign(math.inf, a) * math.copysign(1, b)),
    "%": lambda a, b: math.fmod(a, b) if b != 0 else math.nan,
    "^": lambda a, b: _pow(a, b),
}
_CMP: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt,
    "<": operator.lt, ">=": operator.ge, "<=": operator.le,
}


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.nan if a < 0 else math.inf


@dataclass
class Evaluator:
    store: Store
    t: float
    _cache: dict = field(default_factory=dict)

    def eval(self, e: object) -> Value:
        if isinstance(e, NumberLit):
            return e.value
        if isinstance(e, Parens):
            return self.eval(e.expr)
        if isinstance(e, Unary):
            v = self.eval(e.expr)
            if isinstance(v, float):
                return -v
            return [(_drop_name(lb), -x) for lb, x in v]  # type: ignore[misc]
        if isinstance(e, Selector):
            return self.select(e)
        if isinstance(e, Binary):
            return self.binary(e)
        if isinstance(e, Aggregate):
            return self.aggregate(e)
        if isinstance(e, Call):
            return self.call(e)
        raise PromQLError(f"cannot evaluate {e!r}")

    def select(self, sel: Selector) -> Value:
        at = self.t - sel.offset_s
        if sel.range_s is None:
            found = self.store.instant(sel.name, at)
            if not sel.matchers:  # a bare name: every series matches (the common, big case)
                return found
            return [(lb, v) for lb, v in found if _match(sel, lb)]
        return [(lb, pts) for lb, pts in self.store.range(sel.name, at - sel.range_s, at)
                if _match(sel, lb)]

    # --- binary operators

    def binary(self, e: Binary) -> Value:
        lhs, rhs = self.eval(e.lhs), self.eval(e.rhs)
        op = e.op
        if isinstance(lhs, float) and isinstance(rhs, float):
            if op in COMPARISONS:
                return 1.0 if _CMP[op](lhs, rhs) else 0.0
            return _ARITH[op](lhs, rhs)
        if op in SET_OPS:
            return self.set_op(e, lhs, rhs)  # type: ignore[arg-type]
        if isinstance(rhs, float) or isinstance(lhs, float):
            swap = isinstance(lhs, float)
            vec, scalar = (rhs, lhs) if swap else (lhs, rhs)
            if op in COMPARISONS:
                cmp = _CMP[op]
                if e.bool_mod:
                    return [(_drop_name(lb), 1.0 if (cmp(scalar, v) if swap else cmp(v, scalar))
                             else 0.0) for lb, v in vec]  # type: ignore[union-attr]
                # a filter keeps the series as they are: one pass, no label rewriting
                if swap:
                    return [(lb, v) for lb, v in vec if cmp(scalar, v)]  # type: ignore[union-attr]
                return [(lb, v) for lb, v in vec if cmp(v, scalar)]  # type: ignore[union-attr]
            fn = _ARITH[op]
            return [(_drop_name(lb), fn(scalar, v) if swap else fn(v, scalar))
                    for lb, v in vec]  # type: ignore[union-attr]
        return self.vector_op(e, lhs, rhs)  # type: ignore[arg-type]

    @staticmethod
    def _signature(e: Binary, lb: Labels) -> Labels:
        if e.on is not None:
            return tuple(p for p in lb if p[0] in e.on)
        return tuple(p for p in lb if p[0] != _NAME and p[0] not in e.ignoring)

    def vector_op(self, e: Binary, lhs: Vector, rhs: Vector) -> Vector:
        right: dict[Labels, Series] = {}
        for s in rhs:
            sig = self._signature(e, s[0])
            if sig in right:
                raise PromQLError("many-to-many matching not allowed: the right side has "
                                  f"several series for {dict(sig)}")
            right[sig] = s
        seen: set[Labels] = set()
        out: Vector = []
        op = e.op
        for lb, lv in lhs:
            sig = self._signature(e, lb)
            r = right.get(sig)
            if r is None:
                continue
            if sig in seen:
                raise PromQLError("many-to-many matching not allowed: the left side has "
                                  f"several series for {dict(sig)}")
            seen.add(sig)
            rv = r[1]
            if op in COMPARISONS:
                ok = _CMP[op](lv, rv)
                if not e.bool_mod and not ok:
                    continue
                value = (1.0 if ok else 0.0) if e.bool_mod else lv
                drop = e.bool_mod
            else:
                value = _ARITH[op](lv, rv)
                drop = True
            out_lb = _drop_name(lb) if drop else lb
            if e.on is not None:
                out_lb = tuple(p for p in out_lb if p[0] in e.on)
            elif e.ignoring:
                out_lb = tuple(p for p in out_lb if p[0] not in e.ignoring)
            out.append((out_lb, value))
        return out

    def set_op(self, e: Binary, lhs: Vector, rhs: Vector) -> Vector:
        rsigs = {self._signature(e, lb) for lb, _ in rhs}
        if e.op == "and":
            return [s for s in lhs if self._signature(e, s[0]) in rsigs]
        if e.op == "unless":
            return [s for s in lhs if self._signature(e, s[0]) not in rsigs]
        lsigs = {self._signature(e, lb) for lb, _ in lhs}
        return list(lhs) + [s for s in rhs if self._signature(e, s[0]) not in lsigs]

    # --- aggregation

    def aggregate(self, e: Aggregate) -> Vector:
        vec = self.eval(e.expr)
        groups: dict[Labels, list[float]] = {}
        for lb, v in vec:  # type: ignore[union-attr]
            if e.by is not None:
                key = tuple(p for p in lb if p[0] in e.by)
            elif e.without is not None:
                key = tuple(p for p in lb if p[0] != _NAME and p[0] not in e.without)
            else:
                key = ()
            groups.setdefault(key, []).append(v)
        out: Vector = []
        for key, vals in groups.items():
            if e.op == "sum":
                acc = 0.0
                for v in vals:
                    acc += v
            elif e.op == "count":
                acc = float(len(vals))
            elif e.op == "avg":
                acc, n = 0.0, 0
                for v in vals:  # Prometheus 2.42's incremental mean
                    n += 1
                    acc += v / n - acc / n
            elif e.op == "max":
                acc = vals[0]
                for v in vals[1:]:
                    if acc < v or math.isnan(acc):
                        acc = v
            else:
                acc = vals[0]
                for v in vals[1:]:
                    if acc > v or math.isnan(acc):
                        acc = v
            out.append((key, acc))
        return out

    # --- functions

    def call(self, e: Call) -> Value:
        f = e.func
        if f == "time":
            return float(self.t)
        if f == "vector":
            return [((), float(self.eval(e.args[0])))]  # type: ignore[arg-type]
        if f == "scalar":
            v = self.eval(e.args[0])
            return v[0][1] if len(v) == 1 else math.nan  # type: ignore[index,arg-type]
        if f in ("absent", "absent_over_time"):
            arg = e.args[0]
            v = self.eval(arg)
            if v:
                return []
            labels: list[tuple[str, str]] = []
            if isinstance(arg, Selector):
                seen_eq: dict[str, int] = {}
                for m in arg.matchers:
                    if m.op == "=" and m.name != _NAME:
                        seen_eq[m.name] = seen_eq.get(m.name, 0) + 1
                        labels.append((m.name, m.value))
                labels = [p for p in labels if seen_eq[p[0]] == 1]
            return [(tuple(sorted(labels)), 1.0)]
        if f == "abs":
            return [(_drop_name(lb), abs(v)) for lb, v in self.eval(e.args[0])]  # type: ignore
        if f in ("clamp_min", "clamp_max"):
            bound = float(self.eval(e.args[1]))  # type: ignore[arg-type]
            pick = max if f == "clamp_min" else min
            return [(_drop_name(lb), pick(v, bound))
                    for lb, v in self.eval(e.args[0])]  # type: ignore[union-attr]
        sel = e.args[0]
        assert isinstance(sel, Selector) and sel.range_s is not None
        out: Vector = []
        end = self.t - sel.offset_s
        summary = getattr(self.store, "range_summary", None)
        if f in ("rate", "increase", "delta") and summary is not None:
            for lb, rs in summary(sel.name, end - sel.range_s, end):
                if not _match(sel, lb):
                    continue
                v = _extrapolated_rate(rs, end, sel.range_s, f != "delta", f == "rate")
                if v is not None:
                    out.append((_drop_name(lb), v))
            return out
        for lb, pts in self.select(sel):  # type: ignore[union-attr]
            v = _range_func(f, pts, end, sel.range_s)
            if v is not None:
                out.append((_drop_name(lb), v))
        return out


def _range_func(f: str, pts: list[tuple[float, float]], end: float,
                range_s: float) -> float | None:
    if not pts:
        return None
    vals = [v for _, v in pts]
    if f == "avg_over_time":
        mean, n = 0.0, 0
        for v in vals:
            n += 1
            mean += v / n - mean / n
        return mean
    if f == "sum_over_time":
        acc = 0.0
        for v in vals:
            acc += v
        return acc
    if f == "min_over_time":
        return min(vals)
    if f == "max_over_time":
        return max(vals)
    if f == "count_over_time":
        return float(len(vals))
    if f == "irate":
        if len(pts) < 2:
            return None
        (t0, v0), (t1, v1) = pts[-2], pts[-1]
        d = v1 if v1 < v0 else v1 - v0
        dt_ms = _ms(t1) - _ms(t0)
        return d / (dt_ms / 1000.0) if dt_ms else None
    resets = 0.0
    if f != "delta":
        prev = vals[0]
        for v in vals[1:]:
            if v < prev:
                resets += prev
            prev = v
    rs = RangeSummary(len(pts), pts[0][0], pts[0][1], pts[-1][0], pts[-1][1], resets)
    return _extrapolated_rate(rs, end, range_s, f != "delta", f == "rate")


def _ms(t: float) -> int:
    return int(round(t * 1000.0))


def _extrapolated_rate(rs: RangeSummary, end: float, range_s: float, is_counter: bool,
                       is_rate: bool) -> float | None:
    """Prometheus 2.42 `extrapolatedRate`, step by step, in integer milliseconds like Go."""
    if rs.n < 2:
        return None
    range_end = _ms(end)
    range_start = range_end - _ms(range_s)
    first_t, first_v = _ms(rs.first_t), rs.first_v
    last_t = _ms(rs.last_t)
    result = rs.last_v - first_v
    if is_counter:
        result += rs.resets
    to_start = (first_t - range_start) / 1000.0
    to_end = (range_end - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg_between = sampled / (rs.n - 1)
    if is_counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = avg_between * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else avg_between / 2
    interval += to_end if to_end < threshold else avg_between / 2
    factor = interval / sampled
    if is_rate:
        factor /= range_s
    return result * factor


def evaluate(tree: object, store: Store, t: float) -> Vector:
    """Evaluate a parsed expression at t; a scalar result becomes one series without labels."""
    v = Evaluator(store, t).eval(tree)
    if isinstance(v, float):
        return [((), v)]
    return v  # type: ignore[return-value]
