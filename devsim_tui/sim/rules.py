"""Alerting rule files: Prometheus' own format, validated with FILE:LINE errors, compiled once.

A rule file is what Prometheus reads (`groups: - name, interval, rules: - alert, expr, for,
keep_firing_for, labels, annotations`), with `expr` in the PromQL subset of `sim.promql` over the
metric names of `sim.metrics` (the names the exporter serves). Each profile's rules come from
`monitoring.rules` (a path), or else the built-in file for its environment
(`profiles/rules/<environment>.yaml`). `export_rules` writes them back as a file `promtool check
rules` accepts. Recording rules are not supported. Never imports the UI.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, field_validator

from devsim_tui.config.schema import Profile, Strict
from devsim_tui.config.yamlsrc import load_yaml, validate
from devsim_tui.errors import ConfigError
from devsim_tui.sim import metrics as _metrics
from devsim_tui.sim import promql
from devsim_tui.sim.metrics import NAMES

SEVERITIES = ("info", "warning", "critical")
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
_TEMPLATE_PARTS = re.compile(
    r"""^\s*(?:
        (?P<value>\$value)(?:\s*\|\s*(?P<fn>humanize|humanizePercentage|humanizeDuration))?
      | \$labels\.(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)
      | printf\s+"(?P<fmt>%[-+ 0#]*\d*(?:\.\d+)?[dfegs%])"\s+\$value
    )\s*$""", re.X)


def _check_duration(v: str) -> str:
    promql.parse_duration(v)
    return v


class AlertRuleSpec(Strict):
    alert: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="Alert name")
    expr: str = Field(description="PromQL (the subset in docs/alerting.md)")
    for_: str = Field("0s", alias="for", description="Pending time before firing")
    keep_firing_for: str = Field("0s", description="Keep firing after the condition clears")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("expr")
    @classmethod
    def _expr(cls, v: str) -> str:
        tree = promql.parse(v)
        unknown = sorted({s.name for s in promql.selectors(tree) if s.name not in NAMES})
        if unknown:
            import difflib

            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name or "", sorted(NAMES), n=1, cutoff=0.6)
                hints.append(f"{name!r}" + (f" (did you mean '{close[0]}'?)" if close else ""))
            raise ValueError("unknown metric " + ", ".join(hints)
                             + "; see docs/exporter.md for the metric names")
        return v

    @field_validator("for_", "keep_firing_for")
    @classmethod
    def _dur(cls, v: str) -> str:
        return _check_duration(v)

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k) or k.startswith("__"):
                raise ValueError(f"invalid label name {k!r}")
        sev = v.get("severity")
        if sev is not None and sev not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {sev!r}")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, v: dict[str, str]) -> dict[str, str]:
        for text in v.values():
            for m in _TEMPLATE.finditer(text):
                if not _TEMPLATE_PARTS.match(m.group(1)):
                    raise ValueError(
                        f"unsupported template {m.group(0)!r}; use {{{{ $value }}}}, "
                        "{{ $value | humanize }}, humanizePercentage, humanizeDuration, "
                        "{{ $labels.NAME }} or {{ printf \"%.2f\" $value }}")
        return v


class RuleGroupSpec(Strict):
    name: str = Field(min_length=1)
    interval: str | None = Field(None, description="Defaults to the evaluation interval")
    rules: list[AlertRuleSpec] = Field(min_length=1)

    @field_validator("interval")
    @classmethod
    def _dur(cls, v: str | None) -> str | None:
        return None if v is None else _check_duration(v)


class RuleFileSpec(Strict):
    groups: list[RuleGroupSpec] = Field(min_length=1)

    @field_validator("groups")
    @classmethod
    def _unique(cls, v: list[RuleGroupSpec]) -> list[RuleGroupSpec]:
        names = [g.name for g in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"group names must be unique; repeated: {', '.join(dup)}")
        return v


@dataclass(frozen=True)
class Rule:
    """One compiled alerting rule."""

    alert: str
    expr: str
    tree: object
    for_s: float
    keep_firing_for_s: float
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    group: str
    interval_s: float

    @property
    def severity(self) -> str:
        return dict(self.labels).get("severity", "warning")


@dataclass(frozen=True)
class RuleSet:
    source: str
    groups: tuple[tuple[str, float, tuple[Rule, ...]], ...]

    @property
    def rules(self) -> list[Rule]:
        return [r for _, _, rules in self.groups for r in rules]


def builtin_rules_path(environment: str) -> Path:
    from devsim_tui.config.loader import builtin_profiles_dir

    return builtin_profiles_dir() / "rules" / f"{environment}.yaml"


def rules_path(profile: Profile) -> Path:
    ref = getattr(profile.monitoring, "rules", None)
    if ref:
        return Path(os.path.expanduser(ref))
    return builtin_rules_path(profile.environment)


def load_rules(path: str | os.PathLike[str], default_interval_s: float,
               shipped: bool = False) -> RuleSet:
    """Read, validate and compile a rule file; ConfigError lists every FILE:LINE problem.

    `shipped`: a built-in file (held valid by the test-suite) is read from the cache of validated
    shipped files when an earlier start stored it, else with PyYAML's C loader (same SafeLoader
    values, without the line bookkeeping); should that ever fail, it is read again the careful
    way, which says where."""
    spec = None
    if shipped:
        from devsim_tui.config import profile_cache

        checks = (promql.__file__, _metrics.__file__)  # what the validators call into
        try:
            raw = Path(path).read_bytes()
            # validated by an earlier start (config/profile_cache.py), else read quickly
            spec = profile_cache.load(raw, RuleFileSpec, checks)
            if spec is None:
                spec = RuleFileSpec.model_validate(yaml.load(raw.decode("utf-8"),
                                                             Loader=yaml.CSafeLoader))
                profile_cache.store(raw, spec, checks)
        except Exception:  # noqa: BLE001 - the careful read below reports it
            spec = None
    if spec is None:
        data, locator = load_yaml(path)
        spec = validate(RuleFileSpec, data, locator)
    seen: dict[str, int] = {}
    groups = []
    for g in spec.groups:
        interval = promql.parse_duration(g.interval) if g.interval else float(default_interval_s)
        if interval <= 0:
            raise ConfigError([f"{os.fspath(path)}: group {g.name}: interval must be > 0"])
        rules = []
        for r in g.rules:
            seen[r.alert] = seen.get(r.alert, 0) + 1
            rules.append(Rule(
                alert=r.alert, expr=r.expr, tree=promql.parse(r.expr),
                for_s=promql.parse_duration(r.for_),
                keep_firing_for_s=promql.parse_duration(r.keep_firing_for),
                labels=tuple(sorted(r.labels.items())),
                annotations=tuple(r.annotations.items()), group=g.name, interval_s=interval))
        groups.append((g.name, interval, tuple(rules)))
    return RuleSet(os.fspath(path), tuple(groups))


def rules_for(profile: Profile) -> RuleSet:
    shipped = not getattr(profile.monitoring, "rules", None)
    return load_rules(rules_path(profile), profile.monitoring.evaluation_interval_seconds,
                      shipped=shipped)


# --------------------------------------------------------------------------- templates


def _humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    if abs(v) >= 1:
        for prefix in ("", "k", "M", "G", "T", "P", "E"):
            if abs(v) < 1000:
                return f"{v:.4g}{prefix}"
            v /= 1000.0
        return f"{v:.4g}Z"
    for prefix in ("", "m", "u", "n", "p", "f", "a"):
        if abs(v) >= 1:
            return f"{v:.4g}{prefix}"
        v *= 1000.0
    return f"{v:.4g}z"


def _humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    if v == 0:
        return "0s"
    sign = "-" if v < 0 else ""
    v = abs(v)
    if v >= 1:
        s = int(v)
        d, h, m, sec = s // 86400, s // 3600 % 24, s // 60 % 60, s % 60
        if d:
            return f"{sign}{d}d {h}h {m}m {sec}s"
        if h:
            return f"{sign}{h}h {m}m {sec}s"
        if m:
            return f"{sign}{m}m {sec}s"
        return f"{sign}{v:.4g}s"
    return f"{sign}{v * 1000:.4g}ms"


def render(template: str, value: float, labels: dict[str, str]) -> str:
    """Expand the Go-template subset allowed in annotations (validated at load)."""

    def one(m: re.Match[str]) -> str:
        p = _TEMPLATE_PARTS.match(m.group(1))
        if p is None:
            return m.group(0)
        if p.group("label"):
            return labels.get(p.group("label"), "")
        if p.group("fmt"):
            fmt = p.group("fmt")
            return fmt % (int(value) if fmt.endswith("d") else value)
        fn = p.group("fn")
        if fn == "humanize":
            return _humanize(value)
        if fn == "humanizePercentage":
            return _humanize(value * 100) + "%"
        if fn == "humanizeDuration":
            return _humanize_duration(value)
        return repr(value) if not value.is_integer() else str(int(value))

    return _TEMPLATE.sub(one, template)


# --------------------------------------------------------------------------- export


def export_rules(ruleset: RuleSet, annotations: bool = True,
                 duration: Any = promql.format_duration) -> str:
    """The rules as a Prometheus rule file (what `promtool check rules` reads); `duration`
    formats seconds (export/prometheus_config.py passes a millisecond-precise one)."""
    groups = []
    for name, interval, rules in ruleset.groups:
        out_rules = []
        for r in rules:
            d: dict[str, Any] = {"alert": r.alert, "expr": r.expr}
            if r.for_s:
                d["for"] = duration(r.for_s)
            if r.keep_firing_for_s:
                d["keep_firing_for"] = duration(r.keep_firing_for_s)
            if r.labels:
                d["labels"] = dict(r.labels)
            if annotations and r.annotations:
                d["annotations"] = dict(r.annotations)
            out_rules.append(d)
        groups.append({"name": name, "interval": duration(interval),
                       "rules": out_rules})
    header = (f"# Prometheus alerting rules exported by devsim-tui from {Path(ruleset.source).name}"
              "\n# Metric names are the exporter's (docs/exporter.md); check with\n"
              "#   promtool check rules FILE\n")
    return header + yaml.safe_dump({"groups": groups}, sort_keys=False, allow_unicode=True,
                                   width=100)
