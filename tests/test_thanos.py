"""Thanos (experimental): Prometheus blocks, sidecar uploads and their lag, the store-outage
fault, blocks lost to the local retention, and the metrics pane's long windows."""

from __future__ import annotations

import numpy as np
import pytest

from devsim_tui.config.loader import load_profile
from devsim_tui.sim.thanos import (
    BLOCK_S, LOCAL_RETENTION_S, SIDECAR_SYNC_S, UPLOAD_S, ThanosController, available_mask,
)
from tests.helpers import engine

H = 3600.0


class _Engine:
    """Just what the controller reads: profile, clock, emit."""

    def __init__(self, profile: str = "experimental"):
        self.profile = load_profile(profile)
        self.t = 0.0
        self.events: list[tuple[float, str, str]] = []

    def emit(self, t, type_, message, severity="info", subject=None, **data):
        self.events.append((t, type_, severity))


def _run(ctl: ThanosController, until: float, outage: tuple[float, float] | None = None):
    e = ctl.engine
    while e.t < until:
        e.t += 1.0
        if outage is not None:
            ctl.set_store(e.t, not (outage[0] <= e.t < outage[1]))
        ctl.after_tick(e.t, None)


def test_only_profiles_with_thanos_keep_long_term_storage():
    assert ThanosController(_Engine("experimental")).enabled
    assert not ThanosController(_Engine("production")).enabled
    assert ThanosController(_Engine("production")).state() == {"enabled": False}


def test_blocks_are_cut_at_one_and_a_half_ranges_and_uploaded_at_the_next_sync():
    ctl = ThanosController(_Engine())
    _run(ctl, 1.5 * BLOCK_S - 1)
    assert ctl.persisted == 0 and ctl.upload_lag(ctl.engine.t) == pytest.approx(3 * H - 1)
    _run(ctl, 1.5 * BLOCK_S)  # the head spans 3 h: block [0, 2h) goes to disk
    assert ctl.persisted == 1 and ctl.uploaded == []
    _run(ctl, 1.5 * BLOCK_S + SIDECAR_SYNC_S + UPLOAD_S)
    assert ctl.uploaded == [0]
    # The lag is measured from the end of the newest uploaded block: 2 h behind at best.
    assert ctl.upload_lag(ctl.engine.t) == pytest.approx(H + SIDECAR_SYNC_S + UPLOAD_S)
    assert ctl.local_from(ctl.engine.t) == 0.0
    _run(ctl, BLOCK_S + LOCAL_RETENTION_S)  # block 0 leaves Prometheus' disk
    assert ctl.local_from(ctl.engine.t) == BLOCK_S and ctl.lost == []
    t = np.arange(0, ctl.engine.t, 60.0)
    assert ctl.available(t).all()  # older data now comes from the bucket


def test_a_store_outage_blanks_what_only_the_bucket_holds_and_recent_data_stays():
    ctl = ThanosController(_Engine())
    _run(ctl, 4.5 * H)
    t = np.arange(0, ctl.engine.t, 60.0)
    ctl.set_store(ctl.engine.t, False)
    ok = ctl.available(t)
    assert not ok[t < BLOCK_S].any() and ok[t >= BLOCK_S].all()
    assert ("thanos.store_down" in [e[1] for e in ctl.engine.events])
    state = ctl.state()
    np.testing.assert_array_equal(available_mask(state, t), ok)  # what the UI computes
    ctl.set_store(ctl.engine.t, True)
    assert ctl.available(t).all()


def test_an_outage_past_the_local_retention_loses_the_block_for_good():
    ctl = ThanosController(_Engine())
    # Block 0 is on disk at 3 h; the bucket is away from 2h50m to 4h10m; Prometheus deletes
    # block 0 at 4 h (its end is then past the 2 h retention): never uploaded, lost.
    _run(ctl, 6 * H, outage=(2 * H + 50 * 60, 4 * H + 10 * 60))
    assert ctl.lost == [0]
    lost = [e for e in ctl.engine.events if e[1] == "thanos.block_lost"]
    assert len(lost) == 1 and lost[0][0] == pytest.approx(4 * H) and lost[0][2] == "error"
    assert ctl.failed_uploads > 0
    assert 1 in ctl.uploaded  # later blocks upload again once the bucket is back
    t = np.arange(0, ctl.engine.t, 60.0)
    ok = ctl.available(t)
    assert not ok[t < BLOCK_S].any() and ok[t >= BLOCK_S].all()


@pytest.fixture(scope="module")
def outage_world():
    from devsim_tui.sim.world import LocalWorld

    e = engine("experimental", seed=1, **{"monitoring__detector__enabled": False})
    e.run_until(4.5 * H)
    e.submit_line("chaos store-outage 30m")
    e.step(60)
    return LocalWorld(e)


def test_the_chaos_fault_drives_the_engines_thanos(outage_world):
    e = outage_world.engine
    th = e.snapshot.extensions["ThanosController"]
    assert th["enabled"] and not th["store_up"] and th["local_from"] == BLOCK_S
    assert th["uploaded"] == [0]
    assert any(ev.type == "chaos.injected" and ev.data.get("fault") == "store-outage"
               for ev in e.events.since(0))
    prod = engine("production")
    prod.submit_line("chaos store-outage")
    prod.step(1)
    assert any(ev.type == "command.rejected" and "Thanos" in ev.message
               for ev in prod.events.since(0))


async def test_the_metrics_panes_long_windows_are_blank_before_the_local_data(
        outage_world, make_app, settle):
    from devsim_tui.ui.metrics import MetricsPane

    app = make_app(world=outage_world)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        pane = app.query_one(MetricsPane)
        assert not any("Thanos" in str(line) for line in pane._lines)  # 5 min: local only
        for window in ("1h", "24h"):
            await pilot.press("w")  # the next window, as a user switches
            await settle(pilot)
            assert app.window == window
            status = str(pane._lines[-1])
            assert status.startswith("Thanos: store DOWN") and "blank" in status, status
            cpu = pane._lines[0]
            t = outage_world.series("t", len(cpu.values))
            if window == "1h":  # the last hour is local: nothing blank
                assert np.isfinite(cpu.values).all()
            else:
                assert np.isnan(cpu.values[t < BLOCK_S]).all()
                assert np.isfinite(cpu.values[t >= BLOCK_S]).all()
