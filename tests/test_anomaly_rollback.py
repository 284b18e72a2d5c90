"""Anomaly-driven rollback: the detector's verdict as an analysis check of canaries and rolling
updates. Bad releases that no threshold rule catches are rolled back with the finding named in
the reason; a good release is not."""

from __future__ import annotations

import pytest

from devsim_tui.config.loader import load_profile
from devsim_tui.sim.anomaly import AnomalyController
from devsim_tui.sim.engine import Engine

ARMED_AT = 2700.0  # past the detector's warm-up (150 updates x 15 s)


def release(profile: str, seed: int, version: str, seconds: float = 1500.0, **overrides):
    ov = {"traffic.bursts.per_hour": 0, "monitoring.detector.enabled": True, **overrides}
    e = Engine(load_profile(profile, overrides=ov), seed=seed)
    e.run_until(ARMED_AT)
    ctl = next(c for c in e.controllers if isinstance(c, AnomalyController))
    assert not ctl.state()["warming_up"]
    start = e.events.last_seq
    e.submit_line(f"deploy {version}")
    e.run_until(ARMED_AT + seconds)
    return e, e.events_since(start)


def failures(events):
    return [ev for ev in events if ev.type in ("release.rollback", "release.canary.aborted")]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", ["subtle-latency", "slow-leak"])
def test_canary_of_a_subtle_bad_release_fails_on_the_detector_finding(kind, seed):
    e, events = release("experimental", seed, f"bad:{kind}")
    failed = failures(events)
    assert failed, [ev.message for ev in events if ev.type.startswith("release")]
    assert "anomaly detector finding E" in failed[0].message
    assert "on the new version" in failed[0].message
    # No threshold rule saw it: every metric check of the new version passed.
    assert not any("error rate" in ev.message and "above" in ev.message for ev in events
                   if ev.type.startswith("release.analysis"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_good_canary_is_not_rolled_back(seed):
    e, events = release("experimental", seed, "v3.1.0")
    assert not failures(events), [ev.message for ev in failures(events)]
    assert any(ev.type == "release.rollout.complete" for ev in events)


def test_rolling_update_of_a_subtle_bad_release_is_rolled_back_by_the_detector():
    e, events = release("production", 1, "bad:subtle-latency")
    failed = failures(events)
    assert failed and "anomaly detector finding" in failed[0].message


def test_detector_check_is_off_when_the_profile_says_so():
    e, events = release("experimental", 1, "bad:subtle-latency",
                        **{"monitoring.detector.rollback": False})
    assert not any("anomaly detector" in ev.message for ev in failures(events))
