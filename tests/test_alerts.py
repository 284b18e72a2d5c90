"""Alert rules: the PromQL subset, rule files, Prometheus alert semantics, export and promtool."""

from __future__ import annotations

import math
import subprocess

import pytest

from devsim_tui.errors import ConfigError
from devsim_tui.sim import commands as C
from devsim_tui.sim import promql
from devsim_tui.sim.alerts import AlertEngine, SampleStore
from devsim_tui.sim.rules import export_rules, load_rules, render, rules_for
from tests.alert_fixtures import PROMTOOL, record, write_promtool_files
from tests.helpers import engine, run_cli

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; CI installs "
    "it through .ci/system-deps.sh)")


# ----------------------------------------------------------------------------- PromQL subset


def store_with(series: dict, interval: float = 15.0, points: int = 41) -> SampleStore:
    """series: {(name, labels): f(k) -> value|None}, scraped at k * interval."""
    names = frozenset(name for name, _ in series)
    st = SampleStore(3600, names)
    for k in range(points):
        samples: dict = {}
        for (name, lb), fn in series.items():
            v = fn(k)
            if v is not None:
                labels, values = samples.setdefault(name, ([], []))
                labels.append(lb)
                values.append(float(v))
        st.add(k * interval, samples)
    return st


def ev(expr: str, st, t: float):
    return sorted(promql.evaluate(promql.parse(expr), st, t))


def test_rate_matches_prometheus_extrapolation():
    # A counter growing 10/s scraped every 15 s: rate over 5m is exactly 10, increase 3000.
    st = store_with({("c_total", ()): lambda k: 100 + 150 * k})
    assert ev("rate(c_total[5m])", st, 600) == [((), pytest.approx(10.0))]
    assert ev("increase(c_total[5m])", st, 600) == [((), pytest.approx(3000.0))]
    # Only 3 samples since the start (t = 0, 15, 30) at t=30 in a 5m window: Prometheus
    # extrapolates to the zero point of the counter (100 / 10 = 10 s before the first sample),
    # so increase = 300 * (30 + 10) / 30.
    assert ev("increase(c_total[5m])", st, 30) == [((), pytest.approx(400.0))]
    # A counter reset adds the value before the reset: samples 20 30 40 | 0 10 in [30, 90]
    # give (10 - 20) + 40 = 30, with no extrapolation as the window is fully covered.
    st2 = store_with({("c_total", ()): lambda k: 10 * k if k < 5 else 10 * (k - 5)})
    assert ev("increase(c_total[1m])", st2, 90) == [((), pytest.approx(30.0))]
    assert ev("irate(c_total[1m])", st2, 90) == [((), pytest.approx(10 / 15))]


def test_selectors_aggregations_and_matching():
    lb = lambda node, role: (("node", node), ("role", role))  # noqa: E731
    st = store_with({
        ("lag_seconds", lb("pg-1", "primary")): lambda k: 0,
        ("lag_seconds", lb("pg-2", "replica")): lambda k: 40,
        ("lag_seconds", lb("pg-3", "replica")): lambda k: 5,
        ("conns", lb("pg-2", "replica")): lambda k: 95,
        ("max_conns", lb("pg-2", "replica")): lambda k: 100,
    })
    got = ev('lag_seconds{role="replica"} > 30', st, 60)
    assert got == [((("__name__", "lag_seconds"),) + lb("pg-2", "replica"), 40.0)]
    assert ev("max by (role) (lag_seconds)", st, 60) == [
        ((("role", "primary"),), 0.0), ((("role", "replica"),), 40.0)]
    assert ev("count(lag_seconds)", st, 60) == [((), 3.0)]
    assert ev("avg without (node) (lag_seconds{role=~\"rep.*\"})", st, 60) == [
        ((("role", "replica"),), 22.5)]
    assert ev("conns / max_conns > 0.9", st, 60) == [(lb("pg-2", "replica"), 0.95)]
    assert ev("lag_seconds > bool 30", st, 60)[1][1] == 1.0
    assert ev('absent(lag_seconds{node="pg-9"})', st, 60) == [((("node", "pg-9"),), 1.0)]
    assert ev("absent(lag_seconds)", st, 60) == []
    assert ev('absent(lag_seconds{role="primary"} == 1)', st, 60) == [((), 1.0)]
    assert len(ev("lag_seconds unless on(node) conns", st, 60)) == 2
    assert len(ev("lag_seconds and on(node) conns", st, 60)) == 1
    assert ev("max_over_time(lag_seconds{node=\"pg-3\"}[5m])", st, 60)[0][1] == 5.0
    assert ev("2 * 3 + 1", st, 60) == [((), 7.0)]
    assert ev("-lag_seconds{node=\"pg-2\"} ^ 2", st, 60)[0][1] == -1600.0


def test_stale_series_vanish_at_once():
    st = store_with({("up", (("i", "a"),)): lambda k: 1 if k < 10 else None})
    assert ev("up", st, 9 * 15) and not ev("up", st, 10 * 15)
    assert ev("absent(up)", st, 10 * 15) == [((), 1.0)]


@pytest.mark.parametrize("bad, message", [
    ("rate(x_total)", "expects a matrix"),
    ("sum(x[5m])", "instant vector"),
    ("1 > 2", "bool"),
    ("x{a=1}", "quoted label value"),
    ("histogram_quantile(0.9, x)", "unsupported function"),
    ("x * group_left y", "not supported"),
    ("x > ", "expected an expression"),
    ("x[5]", "duration"),
])
def test_parse_errors_say_where_and_what(bad, message):
    with pytest.raises(promql.PromQLError, match=message):
        promql.parse(bad)


def test_many_to_many_is_an_error():
    st = store_with({("a", (("x", "1"), ("y", "1"))): lambda k: 1,
                     ("a", (("x", "1"), ("y", "2"))): lambda k: 1,
                     ("b", (("x", "1"),)): lambda k: 1})
    with pytest.raises(promql.PromQLError, match="many-to-many"):
        ev("b / on(x) a", st, 60)


def test_templates():
    assert render("{{ $value | humanizePercentage }} on {{ $labels.node }}", 0.1234,
                  {"node": "pg-2"}) == "12.34% on pg-2"
    assert render("{{ $value | humanizeDuration }}", 151.0, {}) == "2m 31s"
    assert render('{{ printf "%.1f" $value }}', 2.26, {}) == "2.3"
    assert render("{{ $value | humanize }}", 1234567.0, {}) == "1.235M"


# ----------------------------------------------------------------------------- rule files


def test_builtin_rule_files_load_for_every_profile():
    from devsim_tui.config.loader import list_builtin, load_profile

    for name in list_builtin():
        rs = rules_for(load_profile(name))
        names = {r.alert for r in rs.rules}
        assert {"HighErrorRate", "LatencyP99AboveSLO", "ErrorBudgetFastBurn",
                "DatabaseNotWritable", "ConnectionPoolExhaustion"} <= names, name
        assert all(r.severity in ("warning", "critical") for r in rs.rules)


def test_rule_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "groups:\n"
        "  - name: g\n"
        "    rules:\n"
        "      - alert: A\n"
        "        expr: rate(devsim_requests_total) > 1\n"
        "      - alert: B\n"
        "        expr: devsim_request_duration_p99_second > 1\n"
        "        for: 5 minutes\n"
        "        labels: {severity: urgent}\n"
        "      - alert: C\n"
        "        expr: up\n"
        "        record: nope\n")
    with pytest.raises(ConfigError) as exc:
        load_rules(path, 60)
    text = str(exc.value)
    assert f"{path}:5: groups.0.rules.0.expr:" in text and "matrix" in text
    assert f"{path}:7: groups.0.rules.1.expr:" in text
    assert "did you mean 'devsim_request_duration_p99_seconds'" in text
    assert f"{path}:8: groups.0.rules.1.for:" in text
    assert f"{path}:9: groups.0.rules.1.labels:" in text
    assert f"{path}:12: groups.0.rules.2.record:" in text


def test_profile_can_point_at_its_own_rule_file(tmp_path):
    rules = tmp_path / "mine.yaml"
    rules.write_text("groups:\n  - name: mine\n    rules:\n"
                     "      - alert: AlwaysOn\n        expr: vector(1)\n"
                     "        labels: {severity: warning}\n")
    e = engine("development", monitoring__rules=str(rules))
    e.step(2)
    assert [a.name for a in e.snapshot.alerts] == ["AlwaysOn"]
    assert e.snapshot.alerts[0].state == "firing"


# ----------------------------------------------------------------------------- semantics


def _rules(tmp_path, body: str, interval: str = "1m"):
    path = tmp_path / "r.yaml"
    path.write_text(f"groups:\n  - name: t\n    interval: {interval}\n    rules:\n{body}")
    return load_rules(path, 60)


def _engine_with(tmp_path, body: str, series_fn):
    """An AlertEngine over a synthetic metric x{i=...} whose value at t is series_fn(t)."""
    events = []
    rs = _rules(tmp_path, body)

    def sampler(t, agg, wanted):
        vals = series_fn(t)
        return {"devsim_cpu_utilization_ratio": (
            [(("i", k),) for k in vals], [float(v) for v in vals.values()])}

    ae = AlertEngine(rs, 60, lambda *a, **k: events.append((a, k)), sampler=sampler,
                     scrape_interval_s=15)
    return ae, events


def _run(ae, until: float, start: float = 0.0, dt: float = 15.0):
    out = []
    t = start
    while t <= until:
        if ae.due(t):
            ae.evaluate(t, None)
        out.append((t, {(a.name, dict(a.labels).get("i")): a.state for a in ae.views}))
        t += dt
    return out


def test_for_pending_then_firing_per_series_then_resolved(tmp_path):
    body = ("      - alert: Hot\n        expr: devsim_cpu_utilization_ratio > 0.9\n"
            "        for: 2m\n        labels: {severity: warning}\n")
    # series a is hot from t=60 to t=400; series b only at t=120 (one evaluation: never fires)
    ae, events = _engine_with(tmp_path, body, lambda t: {
        "a": 1.0 if 60 <= t < 400 else 0.1, "b": 1.0 if 120 <= t < 150 else 0.1})
    states = dict(_run(ae, 1500))
    assert states[60][("Hot", "a")] == "pending"
    assert states[120][("Hot", "b")] == "pending"
    assert ("Hot", "b") not in states[180]  # pending and vanished: dropped silently
    assert states[120][("Hot", "a")] == "pending" and states[180][("Hot", "a")] == "firing"
    assert states[420][("Hot", "a")] == "resolved"
    assert ("Hot", "a") in states[420 + 900]  # resolved alerts are kept 15 minutes...
    assert ("Hot", "a") not in states[420 + 960]  # ...then dropped
    fired = [k for (a, k) in events if a[1] == "alert.firing"]
    assert len(fired) == 1 and fired[0]["labels"]["i"] == "a"


def test_keep_firing_for_counts_from_the_first_false_evaluation(tmp_path):
    body = ("      - alert: Hot\n        expr: devsim_cpu_utilization_ratio > 0.9\n"
            "        keep_firing_for: 2m\n        labels: {severity: warning}\n")
    ae, _ = _engine_with(tmp_path, body, lambda t: {"a": 1.0 if t < 130 else 0.1})
    states = dict(_run(ae, 600))
    assert states[0][("Hot", "a")] == "firing"  # no `for`: fires at the first evaluation
    assert states[180][("Hot", "a")] == "firing"  # first false at 180: kept until 180 + 120
    assert states[240][("Hot", "a")] == "firing"
    assert states[300][("Hot", "a")] == "resolved"


def test_silence_and_unsilence_commands():
    e = engine("development")
    e.submit(C.CrashNode())
    e.step(90)
    e.submit_line("silence DatabaseNotWritable 10m")
    e.step(1)
    a = next(a for a in e.snapshot.alerts if a.name == "DatabaseNotWritable")
    assert a.silenced_until == pytest.approx(e.t - 1 + 600, abs=1.5)
    e.submit_line("unsilence DatabaseNotWritable")
    e.step(1)
    a = next(a for a in e.snapshot.alerts if a.name == "DatabaseNotWritable")
    assert a.silenced_until is None
    # by id, and expiry in simulated time
    e.submit_line(f"silence {a.id} 2m")
    e.step(121)
    a = next(a for a in e.snapshot.alerts if a.name == "DatabaseNotWritable")
    assert a.silenced_until is None
    assert any(ev.type == "alert.silence_expired" for ev in e.events)
    e.submit_line("silence NoSuchAlert 5m")
    e.submit_line("silence DatabaseNotWritable forever")
    e.step(1)
    rejected = [ev.message for ev in e.events if ev.type == "command.rejected"]
    assert any("NoSuchAlert" in m for m in rejected) and any("forever" in m for m in rejected)


def test_replication_lag_is_one_alert_per_node():
    e = engine("production", traffic__bursts__per_hour=0)
    for n in e.db.nodes[1:]:
        n.lag_factor = 0.0  # replicas stop applying WAL: lag grows on both
    e.step(600)
    lag = [a for a in e.snapshot.alerts if a.name == "ReplicationLagHigh"]
    assert sorted(dict(a.labels)["node"] for a in lag) == ["pg-2", "pg-3"]
    assert all(a.state == "firing" for a in lag)


def test_alert_engine_costs_little_on_a_long_run():
    e = engine("production")
    e.step(7200)
    st = e.alerts.store
    kept = sum(len(log.ts) for logs in st.logs.values() for log in logs.values())
    # two fleet counters over the 6h window at 15 s, trimmed in batches
    assert kept <= 2 * (6 * 3600 / 15 + 128)


# ----------------------------------------------------------------------------- export, promtool


def test_rules_export_cli_writes_a_prometheus_rule_file(tmp_path):
    out = tmp_path / "prod.yaml"
    r = run_cli("rules", "export", "--profile", "production", "--out", str(out))
    assert r.returncode == 0, r.stderr
    import yaml

    doc = yaml.safe_load(out.read_text())
    rules = [rule for g in doc["groups"] for rule in g["rules"]]
    assert {"alert", "expr", "labels"} <= set(rules[0])
    assert any(rule.get("for") == "2m" for rule in rules)
    assert "devsim_requests_failed_total" in out.read_text()


@needs_promtool
@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
def test_promtool_check_rules_accepts_the_export(tmp_path, profile):
    out = tmp_path / f"{profile}.yaml"
    out.write_text(export_rules(rules_for(engine(profile).profile)))
    r = subprocess.run([PROMTOOL, "check", "rules", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@needs_promtool
def test_engine_alerts_agree_with_promtool(tmp_path):
    """Series from a headless run become a promtool unit test; promtool must see exactly the
    alerts the engine had firing at every evaluation."""
    e = engine("production", seed=11)

    def set_(attr, value):
        return lambda eng: setattr(eng, attr, value)

    actions = {
        300.0: set_("extra_error", 0.08),  # error rate and budget burn
        1200.0: set_("extra_error", 0.0),
        1500.0: lambda eng: eng.submit(C.CrashNode()),  # primary down, failover, lag
        2400.0: set_("traffic_factor", 3.0),  # overload: latency, CPU, errors
        3000.0: set_("traffic_factor", 1.0),
    }
    rec = record(e, 3600, actions)
    fired = {name for _, firing in rec.evals for name in firing}
    assert {"HighErrorRate", "ErrorBudgetFastBurn", "DatabaseNotWritable", "PrimaryDown",
            "LatencyP99AboveSLO"} <= fired, fired
    pairs = write_promtool_files(tmp_path, e, rec)
    assert len(pairs) == 2  # the 15 s database group and the 1 m groups
    for _rules_path, test_path in pairs:
        r = subprocess.run([PROMTOOL, "test", "rules", test_path], capture_output=True,
                           text=True, cwd=tmp_path, timeout=300)
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
        assert "SUCCESS" in r.stdout + r.stderr
