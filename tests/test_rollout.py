"""Releases: version history, rolling update (Kubernetes), canary (Argo Rollouts), hot reload,
auto-rollback of every bad release kind, revisions, and the event stream that tells the story."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import engine, events_of

from devsim_tui.sim.command_file import TimedCommand
from devsim_tui.sim import commands as C
from devsim_tui.sim.releases import DETECTOR_ONLY_KINDS, KINDS, Deploy, ReleaseController
from devsim_tui.sim.rollout import FAILED, resolve_fenceposts
from devsim_tui.sim.snapshot import DRAINING, READY


def releases(e) -> ReleaseController:
    return next(c for c in e.controllers if isinstance(c, ReleaseController))


def quiet(profile="production", **kw):
    kw.setdefault("traffic__bursts__per_hour", 0)
    return engine(profile, **kw)


def versions_running(e):
    f = e.fleet
    act = f.active_mask()
    return {e.versions[v] for v in np.unique(f.version[act])}


# ----------------------------------------------------------------------------- fenceposts


@pytest.mark.parametrize("R,surge,unavail,max_pods,min_avail", [
    (1, "25%", "25%", 2, 1), (4, "25%", "25%", 5, 3), (10, "25%", "25%", 13, 8),
    (20, "25%", "25%", 25, 15), (4, 0, 0, 4, 3), (10, 2, "0%", 12, 10),
])
def test_fenceposts_round_surge_up_and_unavailable_down(R, surge, unavail, max_pods, min_avail):
    e = quiet(deployment__rollingUpdate__maxSurge=surge,
              deployment__rollingUpdate__maxUnavailable=unavail)
    s, u = resolve_fenceposts(e.profile.deployment, R)
    assert (R + s, R - u) == (max_pods, min_avail)


# ----------------------------------------------------------------------------- history


def test_history_has_earlier_tags_and_revisions():
    e = quiet()
    st = e.snapshot.extensions["ReleaseController"]
    assert [r["version"] for r in st["revisions"]] == ["v2.14.0", "v2.14.1", "v2.14.2",
                                                        "v2.14.3"]
    assert st["revisions"][-1]["current"] and st["current"] == "v2.14.3"
    assert releases(e).next_name() == "v2.14.4"
    assert releases(quiet("development")).next_name().startswith("dev-")


def test_bad_version_syntax_and_unknown_kind_are_rejected():
    assert C.parse_line("deploy bad:leak") == Deploy(version="bad:memory-leak")
    with pytest.raises(C.CommandError, match="unknown release kind"):
        C.parse_line("deploy bad:nonsense")
    assert TimedCommand(at=10, command="deploy", args={"version": "bad:latency"})


# ----------------------------------------------------------------------------- rolling update


def run_rollout(e, ticks, R=None):
    """Advance, checking the Deployment invariants each tick; returns per-tick error rates."""
    dep = e.profile.deployment
    errs = []
    for _ in range(ticks):
        a, _ = e.advance()
        R_now = e.desired if R is None else R
        surge, unavail = resolve_fenceposts(dep, R_now)
        f = e.fleet
        act = f.active_mask()
        avail = act & (f.state == READY) & (e.t - f.ready_at >= dep.minReadySeconds)
        assert act.sum() <= R_now + surge
        assert avail.sum() >= R_now - unavail
        errs.append(a.error_rate)
    return errs


def test_good_release_rolls_out_with_zero_downtime():
    e = quiet(scaling__scaler="manual")
    e.step(60)
    e.submit(Deploy(version="v2.15.0"))
    errs = run_rollout(e, 400, R=16)
    assert max(errs) < 0.002  # nothing beyond the healthy base error rate
    assert versions_running(e) == {"v2.15.0"}
    done = events_of(e, "release.rollout.complete")
    assert len(done) == 1 and "16/16 available" in done[0].message
    assert not events_of(e, "release.rollback")
    st = e.snapshot.extensions["ReleaseController"]
    assert st["current"] == "v2.15.0" and st["revisions"][-1]["version"] == "v2.15.0"


EXPECTED_REASON = {
    "error-rate": "error rate", "latency": "p99",
    # The detector (on, warm-started, in production) sees the leaking pods' memory against the
    # stable pods' long before the OOM killer: 373 MiB vs 217 MiB 40 s after the deploy. The
    # OOMKilled path: test_memory_leak_is_rolled_back_on_oom_kills_without_the_detector.
    "memory-leak": "anomaly detector finding",
    "crash-loop": "CrashLoopBackOff", "slow-start": "not Ready",
    "fails-readiness": "not Ready",
}


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("good", *DETECTOR_ONLY_KINDS)])
def test_each_bad_kind_is_rolled_back_automatically_in_production(kind):
    e = quiet()
    e.step(60)
    e.submit_line(f"deploy bad:{kind}")
    e.step(900)
    rb = events_of(e, "release.rollback")
    assert len(rb) == 1, kind
    assert EXPECTED_REASON[kind] in rb[0].message and "v2.14.4 -> v2.14.3" in rb[0].message
    if kind == "memory-leak":
        assert "on the new version: memory" in rb[0].message
    assert versions_running(e) == {"v2.14.3"}
    assert e.agg.error_rate < 0.01
    types = [ev.type for ev in e.events if ev.type.startswith("release.")]
    # the story: started, ..., rollback with the reason, a new rollout back, complete
    assert types[0] == "release.rollout.started"
    i = types.index("release.rollback")
    assert types[i + 1] == "release.rollout.started" and types[-1] in (
        "release.rollout.complete", "release.analysis.passing")
    assert "release.rollout.complete" in types[i:]
    revs = e.snapshot.extensions["ReleaseController"]["revisions"]
    assert [r["version"] for r in revs[-2:]] == ["v2.14.4", "v2.14.3"]
    assert revs[-1]["revision"] == 6  # the rollback is a new revision copying the old template


def test_memory_leak_is_rolled_back_on_oom_kills_without_the_detector():
    e = quiet(monitoring__detector__rollback=False)
    e.step(60)
    e.submit_line("deploy bad:memory-leak")
    e.step(900)
    rb = events_of(e, "release.rollback")
    assert len(rb) == 1
    assert "OOMKilled" in rb[0].message and "v2.14.4 -> v2.14.3" in rb[0].message
    assert versions_running(e) == {"v2.14.3"}


@pytest.mark.parametrize("limit", [0, 1])
def test_bad_deploy_event_story_reads_in_order(limit):
    """With Argo's default failureLimit 0 the first failed measurement is the verdict; with 1
    the first one is reported and the second rolls back."""
    e = quiet(deployment__analysis__failureLimit=limit)
    e.step(60)
    e.submit_line("deploy bad:error-rate")
    e.step(300)
    story = [ev.type for ev in e.events if ev.type.startswith("release.")]
    assert story[0] == "release.rollout.started"
    assert "release.pods_available" in story
    i = story.index("release.rollback")
    assert story[:i].count("release.analysis.measurement") == limit
    rb = events_of(e, "release.rollback")[0]
    assert f"failed ({limit + 1}) > failureLimit ({limit})" in rb.message
    assert story[-1] in ("release.rollout.complete", "release.analysis.passing")


def test_old_unhealthy_pods_go_first_on_rollback():
    e = quiet(scaling__scaler="manual",
              deployment__rollingUpdate__maxUnavailable=2)
    e.step(60)
    e.submit_line("deploy bad:crash-loop")
    e.step(40)
    assert events_of(e, "release.rollback")
    f = e.fleet
    bad = e.versions.index("v2.14.4")
    drained = f.state == DRAINING
    # the crash-looping pods are the first to leave; no good pod was removed for them
    assert (f.version[drained] == bad).all()


def test_progress_deadline_sets_a_condition_but_does_not_roll_back():
    e = quiet(deployment__rollback="manual", deployment__progressDeadlineSeconds=200)
    e.step(30)
    e.submit_line("deploy bad:fails-readiness")
    e.step(400)
    pde = events_of(e, "release.progress_deadline_exceeded")
    assert len(pde) == 1 and "ProgressDeadlineExceeded" in pde[0].message
    assert not events_of(e, "release.rollback")
    assert events_of(e, "release.unhealthy")  # told, not acted on (rollback: manual)
    st = e.snapshot.extensions["ReleaseController"]
    assert st["rollout"]["progressing"] is False
    assert e.agg.ready >= 16  # old pods stay: maxUnavailable 0


def test_hpa_keeps_working_during_a_rollout():
    e = quiet(deployment__minReadySeconds=60)
    e.step(60)
    before = e.desired
    e.submit(Deploy(version="v2.15.0"))
    e.step(5)
    e.traffic_factor = 2.2
    e.step(240)
    assert e.desired > before
    assert events_of(e, "scale.hpa")
    e.step(600)
    assert versions_running(e) == {"v2.15.0"}
    assert e.agg.total == e.desired


def test_manual_rollback_to_revision_and_version_and_history_limit():
    e = quiet(deployment__revisionHistoryLimit=2)
    e.step(30)
    e.submit(Deploy(version="v2.15.0"))
    e.step(400)
    revs = e.snapshot.extensions["ReleaseController"]["revisions"]
    assert [r["revision"] for r in revs] == [3, 4, 5]  # current + 2 old ones kept
    e.submit_line("rollback 1")
    e.step(1)
    assert "no revision 1" in events_of(e, "command.rejected")[-1].message
    e.submit_line("rollback 3")
    e.step(400)
    assert versions_running(e) == {"v2.14.2"}
    revs = e.snapshot.extensions["ReleaseController"]["revisions"]
    assert revs[-1] == {"revision": 6, "version": "v2.14.2", "current": True, "failed": False}
    e.submit_line("rollback")  # undo: the previous revision again
    e.step(400)
    assert versions_running(e) == {"v2.15.0"}


def test_pause_and_resume_a_rolling_update():
    e = quiet(scaling__scaler="manual")
    e.step(30)
    e.submit(Deploy(version="v2.15.0"))
    e.step(40)
    e.submit_line("pause-rollout")
    e.step(1)
    mix = (e.fleet.version[e.fleet.active_mask()] == e.versions.index("v2.15.0")).sum()
    e.step(300)
    assert (e.fleet.version[e.fleet.active_mask()] == e.versions.index("v2.15.0")).sum() == mix
    assert not events_of(e, "release.progress_deadline_exceeded")
    e.submit_line("resume-rollout")
    e.step(400)
    assert versions_running(e) == {"v2.15.0"}


def test_analysis_hook_takes_extra_checks():
    """Where the anomaly detector's verdict plugs in: any callable in analysis_checks."""
    e = quiet()
    releases(e).analysis_checks.append(
        lambda new, stable, ctl: (FAILED, "anomaly detector: score 0.97") if new.has_data
        else None)
    e.step(30)
    e.submit(Deploy(version="v2.15.0"))
    e.step(200)
    rb = events_of(e, "release.rollback")
    assert rb and "anomaly detector" in rb[0].message


def test_profile_releases_declare_upcoming_tags():
    e = quiet(deployment__releases=[{"version": "v2.15.0", "kind": "latency"}])
    e.step(30)
    e.submit_line("deploy v2.15.0")
    e.step(200)
    assert "p99" in events_of(e, "release.rollback")[0].message


# ----------------------------------------------------------------------------- canary


def test_canary_promotes_a_good_release_step_by_step():
    e = quiet("experimental")
    e.step(30)
    e.submit(Deploy(version="v3.1.0"))
    e.step(70)
    f = e.fleet
    canary = f.active_mask() & (f.version == e.versions.index("v3.1.0"))
    assert canary.sum() == 2  # setWeight 10 of 20: ceil(2.0)
    assert len(set(f.region[canary].tolist())) == 2  # spread over the clouds
    st = e.snapshot.extensions["ReleaseController"]["rollout"]
    assert st["strategy"] == "canary" and st["weight"] == 10
    e.step(900)
    types = [ev.type for ev in e.events if ev.type.startswith("release.")]
    assert "release.analysis.successful" in types and "release.canary.promoting" in types
    assert types.count("release.canary.step") == 7
    assert versions_running(e) == {"v3.1.0"}
    assert not events_of(e, "release.canary.aborted")


@pytest.mark.parametrize("kind", ["error-rate", "latency", "memory-leak", "crash-loop"])
def test_canary_aborts_a_bad_release(kind):
    e = quiet("experimental")
    e.step(30)
    e.submit_line(f"deploy bad:{kind}")
    e.step(700)
    ab = events_of(e, "release.canary.aborted")
    assert len(ab) == 1, kind
    t_abort = ab[0].t
    drained = [ev for ev in events_of(e, "server.terminated") if ev.t > t_abort]
    assert drained and drained[0].t >= t_abort + 30  # abortScaleDownDelaySeconds
    assert versions_running(e) == {"v3.0.0-rc.2"}
    assert e.agg.total == e.desired
    assert e.snapshot.extensions["ReleaseController"]["status"] == "Degraded"


def test_canary_indefinite_pause_waits_for_promote_and_abort_command():
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}]
    e = quiet("experimental", deployment__canary_steps=steps)
    e.step(30)
    e.submit(Deploy(version="v3.1.0"))
    e.step(400)
    st = e.snapshot.extensions["ReleaseController"]["rollout"]
    assert st["paused"] and st["step"] == 2 and st["weight"] == 25
    e.submit_line("promote")
    e.step(60)
    st = e.snapshot.extensions["ReleaseController"]["rollout"]
    assert st["weight"] == 50
    e.submit_line("abort")
    e.step(100)
    assert events_of(e, "release.canary.aborted")[0].data["reason"] == "aborted by the operator"
    assert versions_running(e) == {"v3.0.0-rc.2"}


def test_promote_full_skips_all_steps():
    e = quiet("experimental")
    e.step(30)
    e.submit(Deploy(version="v3.1.0"))
    e.step(5)
    e.submit_line("promote full")
    e.step(400)
    assert versions_running(e) == {"v3.1.0"}
    e.submit_line("promote")
    e.step(1)
    assert "no canary" in events_of(e, "command.rejected")[-1].message


@pytest.mark.parametrize("command", ["rollback", "abort"])
def test_rollback_during_a_full_promotion_keeps_serving(command):
    """Mid-promotion the canary's pods are most of the serving pods (the stable ReplicaSet is
    already scaled down); going back replaces them under maxUnavailable like any rolling
    update instead of deleting them at once (which left no ready pod for 30 s: 100% errors)."""
    e = quiet("experimental", monitoring__detector__rollback=False)
    e.step(30)
    e.submit(Deploy(version="v3.1.0"))
    e.step(5)
    e.submit_line("promote full")
    e.step(75)
    e.submit_line(command)
    R = e.desired
    _, unavail = resolve_fenceposts(e.profile.deployment, R)
    for _ in range(300):
        a, _ = e.advance()
        assert a.ready >= R - unavail and a.error_rate < 0.01, (e.t, a.ready, a.error_rate)
    assert versions_running(e) == {"v3.0.0-rc.2"}
    assert events_of(e, "release.rollout.complete")[-1].data["version"] == "v3.0.0-rc.2"


# ----------------------------------------------------------------------------- hot reload


def test_hot_reload_rebuilds_tests_and_restarts_with_a_gap():
    e = quiet("development", deployment__hot_reload__build_failure_probability=0)
    e.step(30)
    e.submit_line("code-change")
    gaps = 0
    for _ in range(120):
        a, evs = e.advance()
        gaps += a.ready == 0
    types = [ev.type for ev in e.events]
    for t in ("build.started", "build.succeeded", "tests.passed", "release.reloaded"):
        assert t in types
    build = events_of(e, "build.succeeded")[0].data["build_seconds"]
    assert e.agg.build_time_s == build and 0.7 * 25 <= build <= 1.4 * 25
    hr = e.profile.deployment.hot_reload
    assert hr.restart_gap_seconds <= gaps <= hr.restart_gap_seconds + 6
    assert e.agg.ready == 1 and versions_running(e) == {releases(e).next_name() and
                                                        e.versions[-1]}


def test_hot_reload_build_failure_keeps_the_old_code():
    e = quiet("development", deployment__hot_reload__build_failure_probability=1)
    e.step(30)
    e.submit_line("code-change")
    e.step(60)
    assert events_of(e, "build.failed")
    assert versions_running(e) == {"dev-4f2c9a1"} and e.agg.build_time_s is not None
    assert e.snapshot.extensions["ReleaseController"]["status"] == "BuildFailed"


def test_development_rollback_is_manual_to_a_chosen_version():
    e = quiet("development", deployment__hot_reload__build_failure_probability=0)
    e.step(30)
    e.submit_line("code-change error-rate")
    e.step(150)
    unhealthy = events_of(e, "release.unhealthy")
    assert unhealthy and "rollback dev-4f2c9a1" in unhealthy[0].message
    assert not events_of(e, "release.rollback")  # manual rollback via Git
    earlier = e.snapshot.extensions["ReleaseController"]["revisions"][0]["version"]
    e.submit_line(f"rollback {earlier}")
    e.step(100)
    assert versions_running(e) == {earlier} and e.agg.error_rate < 0.01
