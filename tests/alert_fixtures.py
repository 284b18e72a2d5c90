"""Helpers for the alerting tests: record an engine's scrapes and alerts, write promtool tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import yaml

from devsim_tui.sim.engine import Engine
from devsim_tui.sim.rules import export_rules

PROMTOOL = shutil.which("promtool")


@dataclass
class Recording:
    phase: float = 0.0
    scrape_interval: float = 15.0
    scrapes: list = field(default_factory=list)  # (t, samples)
    evals: list = field(default_factory=list)  # (t, {alertname: [labels dict]}) firing only


def record(engine: Engine, seconds: float, actions: dict[float, object] | None = None) -> Recording:
    """Run the engine, keeping every scrape and the firing alerts after each evaluation."""
    alerts = engine.alerts
    rec = Recording(scrape_interval=alerts.scrape_interval)
    inner = alerts.sampler

    def sampler(t, agg, wanted):
        out = inner(t, agg, wanted)
        rec.scrapes.append((t, out))
        return out

    alerts.sampler = sampler
    actions = dict(actions or {})
    end = engine.t + seconds
    while engine.t + engine.dt <= end + 1e-9:
        for at in [a for a in actions if a <= engine.t + engine.dt / 2]:
            actions.pop(at)(engine)
        before = alerts.last_eval_t
        engine.advance()
        if alerts.last_eval_t != before and alerts.last_eval_t == engine.t \
                and any(abs((engine.t - (alerts.phase or 0)) % g.interval) < 1e-9
                        for g in alerts.groups):
            firing: dict[str, list[dict]] = {}
            for a in alerts.views:
                if a.state == "firing" and a.source == "rules":
                    firing.setdefault(a.name, []).append(dict(a.labels))
            rec.evals.append((engine.t, firing))
    rec.phase = alerts.phase or 0.0
    return rec


def _fmt(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Inf" if v > 0 else "-Inf"
    return repr(float(v))


def promtool_test(rec: Recording, rule_names: list[str], rule_file: str,
                  eval_interval: float) -> dict:
    """A `promtool test rules` document: the recorded scrapes as input series, the engine's
    firing alerts at each evaluation as the expected alerts."""
    series: dict[tuple, dict[int, float]] = {}
    for t, samples in rec.scrapes:
        k = int(round((t - rec.phase) / rec.scrape_interval))
        for name, (labels, values) in samples.items():
            for lb, v in zip(labels, values):
                series.setdefault((name, lb), {})[k] = v
    n = max(int(round((t - rec.phase) / rec.scrape_interval)) for t, _ in rec.scrapes) + 1
    input_series = []
    for (name, lb), points in sorted(series.items()):
        first = min(points)
        vals = []
        for k in range(n):
            if k in points:
                vals.append(_fmt(points[k]))
            else:
                vals.append("_" if k < first else "stale")
        sel = name + "{" + ",".join(f'{k}="{v}"' for k, v in lb) + "}"
        input_series.append({"series": sel, "values": " ".join(vals)})
    tests = []
    for t, firing in rec.evals:
        at = t - rec.phase
        for name in rule_names:
            exp = [{"exp_labels": {k: v for k, v in sorted(lb.items()) if k != "alertname"}}
                   for lb in sorted(firing.get(name, []), key=lambda d: sorted(d.items()))]
            tests.append({"eval_time": f"{int(round(at))}s", "alertname": name,
                          "exp_alerts": exp})
    return {"rule_files": [rule_file],
            "evaluation_interval": f"{int(eval_interval)}s",
            "tests": [{"interval": f"{int(rec.scrape_interval)}s",
                       "input_series": input_series, "alert_rule_test": tests}]}


def write_promtool_files(tmp_path, engine: Engine, rec: Recording) -> list[tuple[str, str]]:
    """One (rules file, promtool test) pair per evaluation interval: promtool evaluates every
    group of a test at the test's `evaluation_interval`, so groups with different intervals
    (the database groups run every 15 s, the others every minute) are tested apart, each at
    its own interval against the engine's alerts at that interval's evaluations."""
    from devsim_tui.sim.alerts import default_rules
    from devsim_tui.sim.rules import RuleSet

    rs = default_rules(engine.profile)
    out = []
    for interval in sorted({iv for _, iv, _ in rs.groups}):
        sub = RuleSet(rs.source, tuple(g for g in rs.groups if g[1] == interval))
        tag = f"{int(interval)}s"
        rules_path = tmp_path / f"rules-{tag}.yaml"
        rules_path.write_text(export_rules(sub, annotations=False))
        evals = [(t, firing) for t, firing in rec.evals
                 if abs((t - rec.phase) % interval) < 1e-9]
        part = Recording(rec.phase, rec.scrape_interval, rec.scrapes, evals)
        doc = promtool_test(part, sorted({r.alert for r in sub.rules}), rules_path.name,
                            interval)
        test_path = tmp_path / f"test-{tag}.yaml"
        test_path.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
        out.append((str(rules_path), str(test_path)))
    return out
