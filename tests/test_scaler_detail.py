"""The scaler's detail view: the predictive scaler's record of syncs and what the view says.

Engine state first (the record the engine keeps per HPA sync), then the pure `scaler_view`, then
Enter on the metrics pane in a real app. The look is in tests/test_ui_snapshots.py.
"""

from __future__ import annotations

import math

import numpy as np

from devsim_tui.config.loader import load_profile
from devsim_tui.sim.engine import Engine
from devsim_tui.sim.predictive import RECORD_FIELDS


def _engine(profile: str, ticks: int, seed: int = 3) -> Engine:
    e = Engine(load_profile(profile), seed=seed)
    e.run_until(float(ticks))
    return e


def test_record_keeps_one_row_per_sync_with_the_hpa_counterfactual():
    e = _engine("experimental", 1800)
    rec = e.snapshot.hpa["record"]
    assert set(rec) == set(RECORD_FIELDS)
    t = np.asarray(rec["t"])
    step = e.profile.scaling.syncPeriodSeconds
    assert len(t) >= 1800 / step - 2
    assert np.allclose(np.diff(t), step)
    ours, alone = np.asarray(rec["replicas"]), np.asarray(rec["hpa_replicas"])
    both = np.isfinite(ours) & np.isfinite(alone)
    assert both.all()
    # max(HPA, forecast): the forecast can only raise what the HPA alone would set
    assert (ours[both] >= alone[both]).all()
    ahead = [ev for ev in e.events if ev.type == "scale.ahead"]
    assert ahead, "seed 3 scales ahead in its first half hour"
    for ev in ahead:
        i = int(np.argmin(abs(t - ev.t)))
        assert t[i] == ev.t and ours[i] == ev.data["new"] and alone[i] == ev.data["hpa"]
        assert ours[i] > alone[i]


def test_forecast_column_is_the_forecast_made_one_lead_earlier():
    e = _engine("experimental", 900)
    ps = e.predictive
    h = ps.forecaster.horizon
    rec = e.snapshot.hpa["record"]
    made = rec["forecast_rps"]
    assert all(math.isnan(v) for v in made[:h])  # nothing was forecast for the first syncs
    # the forecast at lead made at sync i is the one recorded for sync i + h
    e2 = _engine("experimental", 900)  # same seed: same trajectory
    assert e2.snapshot.hpa["record"]["forecast_rps"] == made
    at_lead = []
    e3 = Engine(load_profile("experimental"), seed=3)
    orig = e3.predictive.note

    def spy(t, hpa, replicas):
        orig(t, hpa, replicas)
        at_lead.append(e3.predictive.last.forecast.at_lead)

    e3.predictive.note = spy
    e3.run_until(900.0)
    assert list(made[h:]) == at_lead[: len(made) - h]


def test_view_of_the_predictive_scaler_names_gate_counterfactual_and_models():
    from devsim_tui.ui.scaler import CHARTS, scaler_view

    view = scaler_view(_engine("experimental", 1800).snapshot)
    assert view.title.startswith("scaler predictive ")
    assert "gate open" in view.title or "gate closed" in view.title
    assert set(view.charts) == set(CHARTS)
    assert view.scales["replicas"] == view.scales["hpa_replicas"]
    assert view.scales["actual_rps"] == view.scales["forecast_rps"]
    assert view.lines[0].startswith("Counterfactual, last ")
    assert "the HPA alone" in view.lines[0]
    assert "holt-winters" in view.lines[1]


def test_view_of_the_plain_hpa_says_there_is_no_counterfactual():
    from devsim_tui.ui.scaler import scaler_view

    view = scaler_view(_engine("production", 120).snapshot)
    assert view.charts == {}
    assert "plain HPA" in view.lines[0]
    assert view.title.startswith("scaler HPA")


async def test_enter_on_the_metrics_pane_opens_the_scaler_detail(make_app):
    from devsim_tui.ui.scaler import ScalerDetailScreen

    app = make_app("experimental")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ScalerDetailScreen)
        assert "scaler predictive" in str(app.screen.query_one("#detail-title").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ScalerDetailScreen)


def test_a_remote_viewer_gets_the_same_scaler_view():
    """The bridge's snapshot (JSON, NaN as null, rounded) carries the record: a seat's scaler
    detail shows what the presenter's does."""
    import json

    from devsim_tui.bridge import payloads as P
    from devsim_tui.ui.scaler import scaler_view

    snap = _engine("experimental", 900).snapshot
    body = json.loads(P.encode(P.snapshot_body(snap, speed=1.0, paused=True, run="r")))
    remote = P.snapshot_from_body(body)
    here, there = scaler_view(snap), scaler_view(remote)
    assert there.title == here.title and there.lines == here.lines
    for key, values in here.charts.items():
        assert np.allclose(there.charts[key], values, rtol=1e-5, equal_nan=True), key
