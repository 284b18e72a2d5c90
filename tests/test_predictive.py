"""The predictive scaler: its forecaster, the confidence gate, desired = max(HPA, forecast) and
what it shows (label, ScaleAhead, forecast series and gauge)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devsim_tui.config.loader import load_profile
from devsim_tui.sim.autoscale import HPAController
from devsim_tui.sim.engine import Engine
from devsim_tui.sim.metrics import SnapshotView, collect
from devsim_tui.sim.predictive import DEFAULT_MIN_CONFIDENCE, Forecaster, PredictiveScaler

SEASON = 48


def seasonal(k: int) -> float:
    return 1000.0 + 600.0 * math.sin(2 * math.pi * k / SEASON)


def test_forecaster_learns_a_season_and_is_confident():
    f = Forecaster(horizon=4, season_steps=SEASON)
    for k in range(5 * SEASON):
        f.learn(seasonal(k))
    fc = f.forecast()
    assert fc.model == "holt-winters"
    assert fc.confidence > 0.95
    expected = [seasonal(5 * SEASON + h) for h in range(4)]
    assert np.allclose(fc.path, expected, rtol=0.03)
    # Persistence would be wrong by the season's slope: the ensemble picked the better model.
    assert f.recent_error("holt-winters") < f.recent_error("persistence")


def test_gate_closes_when_recent_forecasts_miss():
    f = Forecaster(horizon=4, season_steps=SEASON)
    for k in range(4 * SEASON):
        f.learn(seasonal(k))
    assert f.forecast().confidence >= DEFAULT_MIN_CONFIDENCE
    rng = np.random.default_rng(0)
    for _ in range(20):  # unannounced crowds: 1x-4x jumps no model can see coming
        f.learn(1000.0 * rng.choice([1.0, 4.0]))
    assert f.forecast().confidence < DEFAULT_MIN_CONFIDENCE


def profile(**overrides):
    base = {"scaling.scaler": "predictive", "monitoring.detector.enabled": False,
            "traffic.bursts.per_hour": 0}
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_profile("experimental", overrides=base)


def test_advice_is_gated_below_min_confidence_and_acts_above():
    p = profile(traffic__shape="morning-ramp", traffic__time_scale=24)
    scaler = PredictiveScaler(p, lambda t: 1000.0, seed=1)
    assert scaler.last is None and scaler.label() == "predictive (warming)"
    # Pre-trained on a flat history: confident; a flat forecast of 1000 rps.
    for _ in range(15):
        scaler.observe(1000.0, 0.5, 20)
    advice = scaler.advise(20)
    assert not advice.gated and advice.forecast.confidence > 0.9
    assert "HPA fallback" not in scaler.label()
    low = PredictiveScaler(p, lambda t: 1000.0, seed=1, min_confidence=1.01)
    for _ in range(15):
        low.observe(1000.0, 0.5, 20)
    gated = low.advise(20)
    assert gated.gated and gated.floor is None and "HPA fallback" in low.label()


def test_need_converts_forecast_to_replicas_inside_the_hpa_band():
    p = profile()
    scaler = PredictiveScaler(p, lambda t: 2000.0, seed=1)
    # CPU 0.5 with 20 ready pods at 2000 rps: beta = (0.5 - idle) * 20 / 2000.
    for _ in range(15):
        scaler.observe(2000.0, 0.5, 20)
    idle = p.app.server.cpu_idle_fraction
    beta = (0.5 - idle) * 20 / 2000.0
    advice = scaler.advise(10)  # far too few pods for the forecast
    top = p.scaling.targetCPUUtilizationPercentage / 100 * (1 + p.scaling.tolerance)
    assert advice.need == math.ceil(beta * advice.forecast.peak / (top - idle))
    assert scaler.advise(40).need is None  # plenty: no need, the HPA's band holds


def hpa(**behavior):
    return HPAController(profile().scaling)


def sync(ctl, now, current, util, floor=None):
    n = current
    usage = np.full(n, util * 2000.0)
    ones = np.ones(n, bool)
    return ctl.sync(now, current, 2000.0, usage, ones, np.zeros(n, bool), ones, floor=floor)


def test_desired_is_max_of_hpa_and_forecast_need_with_behavior_limits():
    ctl = hpa()
    d = sync(ctl, 0.0, 20, 0.65, floor=26)  # the HPA is content, the forecast needs 26
    assert d.hpa_desired == 20 and d.desired == 26 and d.floor == 26
    ctl2 = hpa()
    d = sync(ctl2, 0.0, 20, 0.98, floor=22)  # the HPA asks for more than the forecast
    assert d.desired == d.hpa_desired == math.ceil(20 * 98 / 65)
    ctl3 = hpa()
    d = sync(ctl3, 0.0, 10, 0.65, floor=60)  # scale-up policy: max(+8 pods, +100%) per 15 s
    assert d.desired == 20 and d.hpa_desired == 10


def test_scale_down_after_a_forecast_honours_the_stabilization_window():
    ctl = hpa()
    assert sync(ctl, 0.0, 20, 0.65, floor=30).desired == 30
    # The forecast passes; utilisation is low, but the 300 s window keeps the recommendation.
    for now in range(15, 300, 15):
        d = sync(ctl, float(now), 30, 0.2)
        assert d.desired == 30, now
    d = sync(ctl, 315.0, 30, 0.2)
    # Past the window the scale-down policy (Min of 20% per 60 s) limits the step.
    assert d.desired == 24


def run_predictive(seed: int, seconds: int):
    e = Engine(profile(traffic__shape="morning-ramp", traffic__time_scale=24,
                       traffic__diurnal_amplitude=0.6, simulation__start_hour=5), seed=seed)
    e.step(seconds)
    return e


def test_engine_scales_ahead_of_a_ramp_and_shows_it():
    e = run_predictive(3, 600)  # 05:00 -> 09:00 of pattern: the morning ramp
    ahead = [ev for ev in e.events if ev.type == "scale.ahead"]
    assert ahead, "no ScaleAhead before the morning ramp"
    assert ahead[0].message.startswith("ScaleAhead: ")
    assert "the HPA alone" in ahead[0].message
    assert ahead[0].data["new"] > ahead[0].data["hpa"]
    snap = e.snapshot
    assert snap.scaler.startswith("predictive ") and "%" in snap.scaler
    assert snap.agg.forecast_rps is not None and snap.agg.forecast_rps > 0
    assert snap.hpa["hpa_desired"] is not None and "confidence" in snap.hpa
    series = e.history.series("forecast_rps", 100)
    assert np.isfinite(series).all()
    samples = collect(SnapshotView(snap, e.profile.app.service))
    assert samples["devsim_forecast_requests_per_second"][1][0] == pytest.approx(
        snap.agg.forecast_rps)


def test_predictive_run_is_deterministic():
    a, b = run_predictive(5, 300), run_predictive(5, 300)
    assert [(ev.t, ev.message) for ev in a.events] == [(ev.t, ev.message) for ev in b.events]
    assert np.array_equal(a.history.series("forecast_rps", 300),
                          b.history.series("forecast_rps", 300), equal_nan=True)


def test_hpa_profiles_have_no_forecast():
    e = Engine(load_profile("production"), seed=1)
    e.step(20)
    assert e.snapshot.agg.forecast_rps is None and e.predictive is None
