"""The anomaly detector inside the engine: findings become alerts, events and AI notifications."""

from __future__ import annotations

from devsim_tui.sim.anomaly import AnomalyController
from tests.helpers import engine


def controller(e) -> AnomalyController:
    return next(c for c in e.controllers if isinstance(c, AnomalyController))


def test_on_in_every_profile_alerts_by_profile_channel():
    for name in ("production", "development", "experimental"):
        assert controller(engine(name)).enabled, name
    assert controller(engine("experimental")).alerting
    assert not controller(engine("production")).alerting
    assert controller(engine("production", monitoring__detector__alerts=True)).alerting
    assert not controller(engine("production", monitoring__detector__enabled=False)).enabled


def test_warm_up_is_declared_and_quiet():
    e = engine("experimental", monitoring__detector__warmup_updates=40,
               monitoring__detector__every_ticks=5, monitoring__detector__warm_start=False)
    state = e.snapshot.extensions["AnomalyController"]
    assert state["warming_up"] and state["warmup_seconds"] == 200
    e.step(199)
    assert e.snapshot.extensions["AnomalyController"]["warming_up"]
    e.step(1)
    assert not e.snapshot.extensions["AnomalyController"]["warming_up"]
    assert not [ev for ev in e.events if ev.type == "detector.finding"]


def test_a_fault_becomes_a_detector_alert_event_and_ai_notification():
    e = engine("experimental", seed=5, monitoring__detector__warmup_updates=100,
               monitoring__detector__every_ticks=5, traffic__bursts__per_hour=0)
    e.step(1200)
    e.submit_line("chaos cache-flush")
    e.step(120)
    found = [ev for ev in e.events if ev.type == "detector.finding" and ev.t >= 1200]
    assert found, "the cache flush was not detected"
    f = found[0]
    assert f.t - 1200 <= 60
    assert f.data["signals"] and 0.5 <= f.data["score"] <= 1.0
    assert "since Day 1" in f.message  # the sentence names when it began
    alerts = [a for a in e.snapshot.alerts if a.source == "detector"]
    assert alerts and alerts[0].name == "AnomalyDetected"
    ann = dict(alerts[0].annotations)
    assert {"signals", "score", "began_at", "explanation"} <= set(ann)
    state = e.snapshot.extensions["AnomalyController"]
    assert set(state["series_of"]) >= set(state["anomalous"])
    notes = [ev for ev in e.events if ev.type == "notify.ai-analysis"]
    assert notes and "AnomalyDetected" in notes[0].message


def test_detector_keeps_the_engine_deterministic():
    def trace(seed):
        e = engine("experimental", seed=seed, monitoring__detector__warmup_updates=50,
                   monitoring__detector__every_ticks=5)
        e.step(900)
        e.submit_line("chaos traffic-spike")
        e.step(300)
        return [(ev.t, ev.type, ev.message) for ev in e.events]

    assert trace(3) == trace(3)


# Faults whose only trace is in security, backup or monitoring telemetry (no request fails):
# the detector watches those streams too, so each is flagged within two updates of confirmation.
SILENT_FAULTS = {
    "production": ("brute-force-login", "credential-leak", "debug-port-scan", "data-exfiltration"),
    "experimental": ("archive-stall", "storage-full", "store-outage", "data-exfiltration",
                     "brute-force-login"),
}
SILENT_SIGNALS = {"auth.login_failures", "auth.intrusions", "mesh.denials",
                  "db.anomalous_queries", "net.egress", "net.scan_probes", "db.archive_pending",
                  "monitoring.store_up"}


def test_faults_seen_only_in_security_backup_or_monitoring_telemetry_are_flagged():
    import pytest

    for name, faults in SILENT_FAULTS.items():
        for fault in faults:
            e = engine(name, seed=5, traffic__bursts__per_hour=0)
            e.step(600)
            calm = controller(e)
            watched = set(calm.signals) & SILENT_SIGNALS
            assert watched, name
            e.submit_line(f"chaos {fault}")
            e.step(120)
            found = [ev for ev in e.events if ev.type == "detector.finding" and ev.t > 600]
            if not found:
                pytest.fail(f"{name}: {fault} not flagged within 2 minutes")
            assert set(found[0].data["signals"]) & SILENT_SIGNALS, (name, fault, found[0].data)


def test_the_security_backup_and_monitoring_signals_are_flat_in_normal_running():
    for name in ("production", "experimental"):
        e = engine(name, seed=3)
        c = controller(e)
        sources = [s for s in e.controllers if s is not c and hasattr(s, "signals")]
        seen: dict[str, set[float]] = {}
        for _ in range(1800):
            e.advance()
            for s in sources:
                for k, v in s.signals().items():
                    if k in SILENT_SIGNALS:
                        seen.setdefault(k, set()).add(round(v, 9))
        assert seen, name
        for k, values in seen.items():
            assert len(values) == 1, (name, k, sorted(values)[:5])
        assert not [ev for ev in e.events if ev.type == "detector.finding"
                    and set(ev.data["signals"]) & SILENT_SIGNALS], name


def test_memory_growth_per_pod_measures_a_leak_and_skips_young_pods():
    import numpy as np

    e = engine("production", seed=4, traffic__bursts__per_hour=0)
    e.step(400)
    e.submit_line("chaos memory-leak 1 10m 2")  # one server, +2 MiB/s
    e.step(200)
    f = e.fleet
    g = f.memory_growth(e.t, 120, e.dt)
    leaking = np.flatnonzero(f.leak_rate_mb_s > 0)
    assert len(leaking) == 1
    others = np.delete(g, leaking)
    # 2 MiB/s = 120 MiB/min beyond its peers (each end compared with the pods' memory-vs-
    # traffic line, which the leaker itself lifts a little), and the peers move together
    assert abs(g[leaking[0]] - np.median(others) - 120.0) < 10.0, (g[leaking[0]], others)
    assert np.ptp(others) < 2.0, others
    e.submit_line("scale 30")
    e.step(60)  # the new pods are ready, but not for the whole window yet
    g = e.fleet.memory_growth(e.t, 120, e.dt)
    young = e.fleet.ready_at > e.t - 120
    assert young.any() and np.isnan(g[young]).all()
    c = controller(e)
    assert f"{c.service}.memory_growth" in c.signals
