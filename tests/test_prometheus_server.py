"""A real Prometheus server scraping `simulate --speed 20 --metrics-port` with the exported rules.

The test does what docs/exporter.md tells a user to do: `rules export --speed 20
--prometheus-config DIR --target ...`, `prometheus --config.file DIR/prometheus.yml`, then the
run. A fault (a third-party outage: 30 % of requests fail for 3 simulated minutes, and slow WAL
replay on the replicas) makes the engine fire alerts; Prometheus must fire the same ones (same
names, same labels) and resolve them again, each transition within one evaluation interval of the
engine's, mapped onto wall time through the scrape timeline Prometheus itself stored
(`devsim_simulated_time_seconds` at each scrape's timestamp). Plus one scrape and one measuring
slack: see `tolerance()`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import REPO, run_cli
from tests.mosquitto import free_port
from tests.prometheus_server import PrometheusServer, skip_without_prometheus

SPEED = 20.0
DURATION = "14m"
FAULTS = [
    {"at": "4m", "command": "chaos",
     "args": {"type": "dependency-outage", "duration": "3m", "intensity": 0.3}},
    {"at": "4m", "command": "chaos",
     "args": {"type": "replication-lag", "scope": "db", "duration": "6m"}},
]
# No condition may last about as long as a rule's `for:` (within two evaluation intervals): the
# engine and Prometheus may then rightly disagree on whether it fired. The outage's p99 lasts
# 3 minutes against LatencyP99AboveSLO's `for: 5m`; the error ratio over 5m stays above 5 %
# for about 7 minutes against HighErrorRate's `for: 2m`.
POLL_S = 0.25
# The profile's intervals, mapped onto wall time at SPEED (what the exported config uses).
EVAL_WALL_S = 60.0 / SPEED  # the production rule groups' `interval: 1m`
SCRAPE_WALL_S = 15.0 / SPEED
PUBLISH_WALL_S = 0.2  # simulate --metrics-port publishes a snapshot at most 5 times a second


# The longest look-back among the rules that fire here: a 5m rate window and HighErrorRate's
# `for: 2m` (ReplicationLagHigh: `for: 2m` on a gauge), in simulated seconds.
LOOKBACK_SIM_S = 7 * 60.0


def tolerance(drift: float = 0.0) -> float:
    """How far apart the engine's and Prometheus' transitions may be, in wall seconds.

    Both evaluate on a grid of one evaluation interval, with unrelated phases: a transition lands
    on the next evaluation after the condition changes, so the two can be up to one interval
    apart. The rule reads data up to one scrape old (the engine samples at its scrape instants
    too, but the two scrape grids have unrelated phases). Measuring adds one poll of
    /api/v1/alerts and twice the exporter's publishing period (5 per wall second): once in the
    data Prometheus scraped, once in the scrape timeline that maps simulated onto wall time.

    `drift` is measured, not allowed for blindly: Prometheus' rate windows and `for:` are wall
    durations (simulated ones divided by the run's speed), the engine's are simulated. When a
    loaded machine makes the run fall behind its pace, the wall time the engine's look-back
    covered differs from Prometheus' by that much (`pace_drift`), and the transitions with it.
    """
    return EVAL_WALL_S + SCRAPE_WALL_S + POLL_S + 2 * PUBLISH_WALL_S + drift


def pace_drift(sim_t: np.ndarray, wall: np.ndarray, t: float) -> float:
    """Wall seconds the look-back window ending at simulated `t` took, minus what it should."""
    start = max(float(sim_t[0]), t - LOOKBACK_SIM_S)
    took = float(np.interp(t, sim_t, wall) - np.interp(start, sim_t, wall))
    return abs(took - (t - start) / SPEED)


def _key(labels: dict[str, str], target: str) -> tuple[tuple[str, str], ...]:
    """Alert identity without the scrape target's own labels (the engine has no target)."""
    drop = {"job"} | ({"instance"} if labels.get("instance") == target else set())
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


@pytest.fixture(scope="module")
def alert_run(tmp_path_factory):
    skip_without_prometheus()
    d = tmp_path_factory.mktemp("prometheus-alerts")
    port = free_port()
    target = f"127.0.0.1:{port}"
    out = run_cli("rules", "export", "--profile", "production", "--speed", f"{SPEED:g}",
                  "--prometheus-config", str(d / "cfg"), "--target", target)
    assert out.returncode == 0, out.stderr
    (d / "faults.yaml").write_text(yaml.safe_dump(FAULTS), encoding="utf-8")
    prom = PrometheusServer(d / "cfg" / "prometheus.yml", d).start()
    sim = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "simulate", "--profile", "production",
         "--duration", DURATION, "--speed", f"{SPEED:g}", "--metrics-port", str(port),
         "--out", str(d / "run.jsonl"), "--commands", str(d / "faults.yaml")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    polls: list[tuple[float, set]] = []
    try:
        t0 = time.time()
        deadline = time.monotonic() + 14 * 60 / SPEED * 4 + 60
        while sim.poll() is None and time.monotonic() < deadline:
            now = time.time()
            firing = {_key(a["labels"], target) for a in prom.alerts()
                      if a["state"] == "firing"}
            polls.append((now, firing))
            time.sleep(POLL_S)
        assert sim.wait(30) == 0, sim.stderr.read()
        end = time.time()
        # The scrape timeline: each scrape's wall timestamp and the simulated time it served.
        span = int(end - t0) + 5
        series = prom.query(f"devsim_simulated_time_seconds[{span}s]", at=end)
        assert series, "Prometheus never scraped the run"
        timeline = np.array([(float(ts), float(v)) for ts, v in series[0]["values"]])
        yield {"polls": polls, "timeline": timeline, "target": target,
               "jsonl": (d / "run.jsonl").read_text(encoding="utf-8").splitlines(),
               "rules": (d / "cfg" / "devsim-production.rules.yml").read_text()}
    finally:
        if sim.poll() is None:
            sim.terminate()
            sim.wait(10)
        prom.stop()


def _engine_intervals(lines: list[str]) -> dict[tuple, list[list[float | None]]]:
    out: dict[tuple, list[list[float | None]]] = {}
    for line in lines:
        rec = json.loads(line)
        if rec.get("kind") != "event" or rec["type"] not in ("alert.firing", "alert.resolved"):
            continue
        key = tuple(sorted(rec["data"]["labels"].items()))
        if rec["type"] == "alert.firing":
            out.setdefault(key, []).append([rec["t"], None])
        else:
            out[key][-1][1] = rec["t"]
    return out


def _prom_intervals(polls: list[tuple[float, set]]) -> dict[tuple, list[list[float | None]]]:
    out: dict[tuple, list[list[float | None]]] = {}
    before: set = set()
    for wall, firing in polls:
        for key in firing - before:
            out.setdefault(key, []).append([wall, None])
        for key in before - firing:
            out[key][-1][1] = wall
        before = firing
    return out


def test_exported_config_is_scaled_to_the_run_speed(alert_run):
    text = alert_run["rules"]
    assert "interval: 3s" in text  # 1m / 20
    assert "[15s]" in text and "[5m]" not in text  # rate windows: 5m / 20
    assert "for: 6s" in text  # for: 2m / 20


def test_prometheus_fires_the_engines_alerts_with_the_same_labels_and_timing(alert_run):
    timeline = alert_run["timeline"]
    wall, sim_t = timeline[:, 0], timeline[:, 1]
    # Measured pace of the run: simulated seconds per wall second over the scrape timeline.
    pace = (sim_t[-1] - sim_t[0]) / (wall[-1] - wall[0])
    assert SPEED * 0.8 < pace < SPEED * 1.05, f"run paced at {pace:.1f}x, asked {SPEED}x"
    # Each scrape saw a fresh moment: the exporter publishes up to 5 times a wall second and
    # Prometheus scrapes every 0.75 s, so consecutive scrapes serve different simulated times
    # (a loaded machine may stall the run past one scrape now and then: at most 1 in 20). How
    # far the pace itself wavers is measured, and allowed for, by `pace_drift`.
    fresh = float(np.mean(np.diff(sim_t) > 0))
    assert np.all(np.diff(sim_t) >= 0), "simulated time went backwards between scrapes"
    assert fresh >= 0.95, f"only {fresh:.0%} of scrapes saw a new simulated moment"

    def to_wall(t: float) -> float:
        return float(np.interp(t, sim_t, wall))

    tol = tolerance()
    # Only while Prometheus has the run's data: before the first scrape and after the run
    # ends, `absent()` rules (PrimaryDown) fire in Prometheus for want of any data, which the
    # engine, always holding its own data, cannot see; they resolve at the first evaluation
    # after the first scrape (within one tolerance), so skip two.
    polls = [(w, f) for w, f in alert_run["polls"] if wall[0] + 2 * tol <= w <= wall[-1]]
    engine = _engine_intervals(alert_run["jsonl"])
    prom = _prom_intervals(polls)
    first_poll, last_poll = polls[0][0], polls[-1][0]
    assert engine, "the fault fired nothing in the engine"
    names = {dict(k)["alertname"] for k in engine}
    assert {"HighErrorRate", "ReplicationLagHigh"} <= names, names
    assert set(prom) == set(engine), (
        f"only in the engine: {sorted(set(engine) - set(prom))}; "
        f"only in Prometheus: {sorted(set(prom) - set(engine))}")
    report = []
    for key, spans in engine.items():
        got = prom[key]
        assert len(got) == len(spans), (key, spans, got)
        for (e_on, e_off), (p_on, p_off) in zip(spans, got):
            w_on = to_wall(e_on)
            assert w_on > first_poll + tol
            tol_on = tolerance(pace_drift(sim_t, wall, e_on))
            report.append((dict(key)["alertname"], f"on (tol {tol_on:.2f})", p_on - w_on))
            assert abs(p_on - w_on) <= tol_on, (key, "fired", p_on - w_on, tol_on)
            if e_off is not None and to_wall(e_off) >= last_poll - tol:
                report.append((dict(key)["alertname"], "off(unchecked, before end)",
                               last_poll - to_wall(e_off)))
            if e_off is not None and to_wall(e_off) < last_poll - tol:
                assert p_off is not None, (key, "still firing in Prometheus")
                tol_off = tolerance(pace_drift(sim_t, wall, e_off))
                report.append((dict(key)["alertname"], f"off (tol {tol_off:.2f})",
                               p_off - to_wall(e_off)))
                assert abs(p_off - to_wall(e_off)) <= tol_off, (key, "resolved",
                                                                 p_off - to_wall(e_off), tol_off)
    print("\nPrometheus - engine transition (wall s):",
          ", ".join(f"{n} {w} {d:+.2f}" for n, w, d in report))


# --------------------------------------------------------------------------- Grafana dashboards

GRAFANA = REPO / "contrib" / "grafana"
PROFILES = ("production", "development", "experimental")
RATE_INTERVAL = "5s"  # Grafana's $__rate_interval: at least 4 scrape intervals (4 x 750 ms)


@pytest.fixture(scope="module")
def dashboard_run(tmp_path_factory):
    """One Prometheus scraping a paced run of every profile, each as its own job."""
    skip_without_prometheus()
    d = tmp_path_factory.mktemp("prometheus-dashboards")
    ports = {p: free_port() for p in PROFILES}
    cfg = {"global": {"scrape_interval": "750ms", "evaluation_interval": "3s"},
           "scrape_configs": [{"job_name": f"devsim-{p}", "honor_labels": True,
                               "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                              for p, port in ports.items()]}
    (d / "prometheus.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    # A third-party outage makes every engine fire alerts (the alerts panel reads them); the
    # development database has manual backups only: take one so the panel has a value.
    outage = {"at": "5s", "command": "chaos",
              "args": {"type": "dependency-outage", "duration": "10m", "intensity": 0.5}}
    (d / "faults.yaml").write_text(yaml.safe_dump([outage]))
    (d / "dev.yaml").write_text(yaml.safe_dump([outage, {"at": "5s", "command": "backup"}]))
    prom = PrometheusServer(d / "prometheus.yml", d).start()
    sims = []
    try:
        for p, port in ports.items():
            extra = ["--commands", str(d / ("dev.yaml" if p == "development" else "faults.yaml"))]
            sims.append(subprocess.Popen(
                [sys.executable, "-m", "devsim_tui", "simulate", "--profile", p, "--duration",
                 "10m", "--speed", f"{SPEED:g}", "--metrics-port", str(port), "--out",
                 "/dev/null", *extra], cwd=REPO, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = prom.query("count by (job) (count_over_time("
                             "devsim_simulated_time_seconds[30s]) >= 12)")
            firing = prom.query('count by (job) (devsim_alerts{alertstate="firing"})')
            if len(got) == len(PROFILES) and len(firing) == len(PROFILES):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"Prometheus did not get 12 scrapes and a firing alert of each run: "
                        f"{got} {firing}")
        yield prom
    finally:
        for s in sims:
            if s.poll() is None:
                s.terminate()
                s.wait(10)
        prom.stop()


def _dashboards() -> list[Path]:
    return sorted(GRAFANA.glob("*.json"))


def test_one_dashboard_per_profile_generated_from_the_exporter_names(tmp_path):
    from devsim_tui.export.grafana import write_all

    assert [p.name for p in _dashboards()] == sorted(f"devsim-{p}.json" for p in PROFILES)
    for fresh in write_all(tmp_path):
        assert fresh.read_text() == (GRAFANA / fresh.name).read_text(), (
            f"contrib/grafana/{fresh.name} is stale: python -m devsim_tui.export.grafana "
            "contrib/grafana")
    prov = yaml.safe_load((GRAFANA / "provisioning/dashboards/devsim.yaml").read_text())
    assert prov["providers"][0]["type"] == "file"
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/devsim.yaml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_dashboard_expression_returns_data_from_prometheus(dashboard_run, profile):
    import re

    from devsim_tui.export.grafana import expressions
    from devsim_tui.sim.metrics import NAMES

    prom = dashboard_run
    job = f"devsim-{profile}"
    dash = json.loads((GRAFANA / f"devsim-{profile}.json").read_text())
    titles = [p["title"] for p in dash["panels"]]
    for must in ("Request rate", "Error ratio", "Latency", "Saturation", "Replicas vs desired",
                 "Backups", "SLO burn rate (1h)", "Error budget"):
        assert any(t.startswith(must) for t in titles), (must, titles)
    served = {r["metric"]["__name__"] for r in prom.query(
        f'group by (__name__) ({{job="{job}", __name__=~"devsim_.+"}})')}
    assert "devsim_requests_total" in served, served
    empty, unknown = [], []
    for title, expr in expressions(dash):
        for name in set(re.findall(r"\bdevsim_[a-z0-9_]+", expr)):
            if name not in NAMES | {"devsim_info"} or name not in served:
                unknown.append((title, name))
        if title == "$job":  # a Grafana function over series, not PromQL
            sel = re.fullmatch(r"label_values\((.+), job\)", expr).group(1)
            jobs = {s["job"] for s in prom.get("/api/v1/series", **{"match[]": sel})}
            assert job in jobs, (expr, jobs)
            continue
        q = expr.replace("$job", job).replace("$__rate_interval", RATE_INTERVAL)
        if not prom.query(q):
            empty.append((title, q))
    assert not unknown and not empty, (
        f"metric names the exporter does not serve for {profile}: {unknown}; "
        f"expressions without data: {empty}")
