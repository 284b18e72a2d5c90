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
