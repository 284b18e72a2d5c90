"""Anomaly-driven rollback: the detector's verdict as an analysis check of canaries and rolling
updates. Bad releases that no threshold rule catches are rolled back with the finding named in
the reason; a good release is not."""

from __future__ import annotations

import numpy as np
import pytest

from devsim_tui.config.loader import load_profile
from devsim_tui.sim.anomaly import BLAME_FACTOR, AnomalyController
from devsim_tui.sim.engine import Engine
from devsim_tui.sim.releases import DETECTOR_ONLY_KINDS, KINDS

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


# ----------------------------------------------------------------------------- like with like


def canary_through_high_weight(seed: int, version: str):
    """A canary of `version` in experimental (heterogeneous fleet: capacity spread, wander,
    balancer noise) through its 60% step, where the stable version is scaled down before the
    new pods are ready so the ready pods of both versions run hot. The detector's own rollback
    is off; instead its check is asked at every tick as if a finding on the service's p99,
    error rate and memory were open. Returns (worst raw p99 ratio new/stable, verdicts)."""
    from devsim_tui.sim.rollout import version_stats

    e = Engine(load_profile("experimental", overrides={
        "traffic.bursts.per_hour": 0, "monitoring.detector.rollback": False}), seed=seed)
    ctl = next(c for c in e.controllers if isinstance(c, AnomalyController))
    svc = ctl.service
    e.step(30)
    e.submit_line(f"deploy {version}")
    worst = 0.0
    verdicts = []
    for _ in range(600):
        e.advance()
        f = e.fleet
        codes = np.unique(f.version[f.active_mask()])
        if len(codes) < 2:
            continue
        new_code = int(codes.max())
        new = version_stats(e, new_code, e.t)
        stable = version_stats(e, tuple(int(c) for c in codes if c != new_code), e.t)
        if not (new.has_data and stable.has_data):
            continue
        worst = max(worst, new.p99_ms / stable.p99_ms)
        saved = ctl.episode, ctl.anomalous
        ctl.episode = {"id": "E0", "sentence": "forced"}
        ctl.anomalous = {f"{svc}.p99": 1.0, f"{svc}.max_server_p99": 1.0,
                         f"{svc}.error_rate": 1.0, f"{svc}.memory": 1.0}
        try:
            verdict = ctl.release_check(new, stable, None)
        finally:
            ctl.episode, ctl.anomalous = saved
        if verdict is not None:
            verdicts.append((e.t, verdict[1]))
    assert np.std(e.fleet.het) > 0  # the fleet is heterogeneous
    return worst, verdicts


def test_good_canary_joined_at_high_weight_is_not_blamed():
    """Seed 7: at the 60% step one of the six canary pods (a slow one, capacity factor 0.94)
    carries ~110 req/s for a while and the new version's request-weighted p99 reaches more than
    BLAME_FACTOR x the stable's, so the old rule (raw p99 against raw p99) failed this good
    release. Compared at the same utilisation the two versions agree within a few percent."""
    worst, verdicts = canary_through_high_weight(7, "v3.1.0")
    assert worst > BLAME_FACTOR, worst  # the situation the old rule blamed
    assert not verdicts, verdicts[:3]


@pytest.mark.parametrize("seed", [2, 7])
def test_good_canary_deployed_at_once_passes_its_bake(seed):
    """Deployed one minute in (warm detector, seeds where it mattered): the earlier raw-p99
    comparisons rolled this good release back during the churn of the 60% step or of the
    promotion (seed 2: p99 505 ms above 500 ms; seed 7: 534 ms above 1.5 x the stable's
    339 ms). Now it is promoted and verified through its bake."""
    e = Engine(load_profile("experimental", overrides={"traffic.bursts.per_hour": 0}),
               seed=seed)
    e.run_until(60.0)
    e.submit_line("deploy v3.1.0")
    e.run_until(60.0 + 1300.0)
    assert not failures(e.events), [ev.message for ev in failures(e.events)]
    assert any(ev.type == "release.verified" for ev in e.events)


def test_the_same_check_still_blames_a_subtle_latency_canary():
    """The harness above can fail: the same forced finding on a +80 ms release blames it at
    every measurement, naming the like-with-like latency."""
    worst, verdicts = canary_through_high_weight(7, "bad:subtle-latency")
    assert verdicts and "busy" in verdicts[0][1] and "on the stable version" in verdicts[0][1]


# Experimental's canary: since its regions have their own network latency (docs/cloud.md: GCP
# +12, Azure +18, DigitalOcean +25 ms), a 2-pod canary at the 10% step no longer stands out of
# the fleet's p99 and the detector names it at the 30% step (seed 7: 290 s after the deploy,
# 310 s with the one-sided signals) instead of at the 10% step (70 s before); the bound is the
# end of that step's 2-minute pause (388 s at seed 7), so a release that slips past it still
# fails the test.
BOUND_AFTER_DEPLOY = {"production": 300.0, "experimental": 390.0}


@pytest.mark.parametrize("profile,kind", [
    *[("production", k) for k in KINDS if k != "good"],
    *[("experimental", k) for k in KINDS if k != "good"]])
def test_every_bad_kind_is_still_rolled_back_automatically(kind, profile):
    """With the detector warm from t=0 and the like-with-like rule, every bad kind is rolled
    back (production rolling update) or aborted (experimental canary) within five minutes of
    the deploy, and the old version serves alone afterwards."""
    e = Engine(load_profile(profile, overrides={"traffic.bursts.per_hour": 0}), seed=7)
    e.run_until(60.0)
    old = e.snapshot.extensions["ReleaseController"]["current"]
    e.submit_line(f"deploy bad:{kind}")
    e.run_until(60.0 + 900.0)
    failed = failures(e.events)
    assert len(failed) == 1, (kind, [ev.message for ev in failed])
    assert failed[0].t - 60.0 <= BOUND_AFTER_DEPLOY[profile], (kind, failed[0].t)
    if kind in DETECTOR_ONLY_KINDS or kind == "memory-leak":
        assert "anomaly detector finding" in failed[0].message
    f = e.fleet
    running = {e.versions[v] for v in np.unique(f.version[f.active_mask()])}
    assert running == {old}
