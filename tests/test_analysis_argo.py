"""Argo Rollouts analysis semantics: `count`, `failureLimit`, `inconclusiveLimit`,
`consecutiveErrorLimit`, and what the rollout does with each outcome.

The unit cases are transcribed from Argo Rollouts' own tests, github.com/argoproj/argo-rollouts
(commit 9f8d111d8), analysis/analysis_test.go: TestAssessMetricStatusNoMeasurements,
TestAssessMetricStatusFailureLimit, TestAssessMetricStatusInconclusiveLimit,
TestAssessMetricStatusConsecutiveErrors, TestAssessMetricStatusCountReached,
TestAssessMetricFailureInconclusiveOrError, TestRunMeasurementsResetConsecutiveErrorCounter and
TestAssessRunStatus (the worst phase wins, utils/analysis/helpers.go analysisStatusOrder). Argo's
MetricResult fields map to AnalysisRun's: Count -> measured, Successful/Failed/Inconclusive ->
successful/failed/inconclusive, Error -> error, ConsecutiveError -> consecutive_error; a metric
with `interval` and no `count` is `count=None` (it runs until terminated).
"""

from __future__ import annotations

import pytest
from helpers import engine

from devsim_tui.sim.releases import Deploy, ReleaseController
from devsim_tui.sim.rollout import (
    ERROR, FAILED, INCONCLUSIVE, PENDING, RUNNING, SUCCESSFUL, AnalysisRun, worst,
)


def run(count=None, failure_limit=0, inconclusive_limit=0, consecutive_error_limit=4, **state):
    r = AnalysisRun("success-rate", 0.0, 60.0, count, failure_limit, inconclusive_limit,
                    consecutive_error_limit)
    for k, v in state.items():
        setattr(r, k, v)
    return r


# ----------------------------------------------------------------------------- Argo's unit cases


def test_no_measurements_is_pending_and_successful_when_terminated():
    """TestAssessMetricStatusNoMeasurements."""
    r = run()
    assert r.assess() == PENDING
    assert r.assess(terminating=True) == SUCCESSFUL


@pytest.mark.parametrize("kind,limit,outcome", [("failure", "failure_limit", FAILED),
                                                 ("inconclusive", "inconclusive_limit",
                                                  INCONCLUSIVE)])
def test_failure_and_inconclusive_limits(kind, limit, outcome):
    """TestAssessMetricStatusFailureLimit / ...InconclusiveLimit: a limit of 2 with 3 such
    measurements of 3 ends the metric so (also when terminating); with a limit of 3 the metric
    keeps running (interval, no count) and a terminated run is Successful."""
    r = run(**{limit: 2, kind if kind == "inconclusive" else "failed": 3, "measured": 3})
    assert r.assess() == outcome
    assert r.assess(terminating=True) == outcome
    setattr(r, limit, 3)
    assert r.assess() == RUNNING
    assert r.assess(terminating=True) == SUCCESSFUL


def test_consecutive_errors():
    """TestAssessMetricStatusConsecutiveErrors: 5 consecutive errors exceed the default limit
    of 4; 4 do not."""
    r = run(consecutive_error=5, measured=5, error=5)
    assert r.assess() == ERROR
    assert r.assess(terminating=True) == ERROR
    r.consecutive_error = 4
    assert r.assess(terminating=True) == SUCCESSFUL
    assert r.assess() == RUNNING


def test_count_reached():
    """TestAssessMetricStatusCountReached: count 10 with 10 successes is Successful; 5
    successes and 5 inconclusive is Inconclusive (inconclusiveLimit 0)."""
    r = run(count=10, successful=10, measured=10)
    assert r.assess() == SUCCESSFUL
    r.successful, r.inconclusive = 5, 5
    assert r.assess() == INCONCLUSIVE


def test_failure_inconclusive_or_error_messages_with_default_limits():
    """TestAssessMetricFailureInconclusiveOrError: a metric with no limits set."""
    r = run(failed=1, measured=1)
    assert r.limits_phase() == (FAILED, "failed (1) > failureLimit (0)")
    assert r.assess(terminating=True) == FAILED
    r = run(inconclusive=1, measured=1)
    assert r.limits_phase() == (INCONCLUSIVE, "inconclusive (1) > inconclusiveLimit (0)")
    assert r.assess(terminating=True) == INCONCLUSIVE
    r = run(consecutive_error=5, error=5)
    assert r.limits_phase() == (ERROR, "consecutiveErrors (5) > consecutiveErrorLimit (4)")
    assert r.assess(terminating=True) == ERROR


@pytest.mark.parametrize("phase", [ERROR, SUCCESSFUL, INCONCLUSIVE, FAILED])
def test_a_measurement_resets_or_extends_the_consecutive_error_counter(phase):
    """TestRunMeasurementsResetConsecutiveErrorCounter (its active Error case, and the other
    three phases its commented-out loop and else-branch describe): from ConsecutiveError 4,
    Count 4, Error 4, an Error makes 5/5/4; anything else resets to 0 and counts (0/4/5)."""
    r = run(consecutive_error=4, measured=4, error=4, failure_limit=10, inconclusive_limit=10)
    r.add(phase)
    if phase == ERROR:
        assert (r.consecutive_error, r.error, r.measured) == (5, 5, 4)
    else:
        assert (r.consecutive_error, r.error, r.measured) == (0, 4, 5)


def test_the_worst_phase_wins():
    """TestAssessRunStatus: one Successful and one Failed metric make a Failed run; our checks
    are combined into one measurement the same way (analysisStatusOrder)."""
    assert worst(SUCCESSFUL, FAILED) == FAILED
    assert worst(FAILED, SUCCESSFUL) == FAILED
    assert worst(INCONCLUSIVE, ERROR) == ERROR
    assert worst(ERROR, FAILED) == FAILED
    assert worst(SUCCESSFUL, INCONCLUSIVE) == INCONCLUSIVE
    r = run(count=3)
    r.record(10.0, [(SUCCESSFUL, "p99 fine"), (FAILED, "error rate 9%")])
    assert (r.failed, r.phase, r.last) == (1, FAILED, "error rate 9%")


# ----------------------------------------------------------------------------- the cases


@pytest.mark.parametrize("phases", [
    [SUCCESSFUL, FAILED, SUCCESSFUL],
    [SUCCESSFUL, SUCCESSFUL, FAILED],  # the last measurement failed, still within the limit
    [FAILED, SUCCESSFUL, SUCCESSFUL],
])
def test_reaching_count_within_the_failure_limit_is_successful(phases):
    r = run(count=3, failure_limit=1)
    for i, p in enumerate(phases):
        assert r.phase == RUNNING
        r.record(10.0 * (i + 1), [(p, p)])
    assert r.phase == SUCCESSFUL and r.message == "count (3) reached"


def test_default_failure_limit_is_zero_and_a_second_failure_fails_a_limit_of_one():
    r = run(count=6)
    assert r.record(10.0, [(FAILED, "bad")]) == FAILED
    r = run(count=6, failure_limit=1)
    assert r.record(10.0, [(FAILED, "bad")]) == RUNNING
    assert r.record(20.0, [(FAILED, "bad")]) == FAILED
    assert r.message == "failed (2) > failureLimit (1)"


def test_errors_in_a_row_past_the_limit_end_in_error_but_a_success_between_resets():
    r = run(count=20)
    for i in range(4):
        r.record(i, [(ERROR, "query failed")])
    r.record(5, [(SUCCESSFUL, "ok")])
    for i in range(4):
        assert r.record(6 + i, [(ERROR, "query failed")]) == RUNNING
    assert r.record(11, [(ERROR, "query failed")]) == ERROR
    assert (r.error, r.measured) == (9, 1)


def test_schema_defaults_are_argos():
    a = engine("experimental").profile.deployment.analysis
    assert (a.failureLimit, a.inconclusiveLimit, a.consecutiveErrorLimit) == (0, 0, 4)


# ----------------------------------------------------------------------------- in the rollout


def releases(e) -> ReleaseController:
    return next(c for c in e.controllers if isinstance(c, ReleaseController))


def _canary(steps=None, **kw):
    kw.setdefault("traffic__bursts__per_hour", 0)
    if steps is not None:
        kw["deployment__canary_steps"] = steps
    return engine("experimental", **kw)


def test_a_check_that_keeps_erroring_aborts_the_canary_after_the_error_limit():
    e = _canary()

    def broken(new, stable, ctl):
        raise ConnectionError("prometheus unreachable")

    releases(e).analysis_checks.append(broken)
    e.step(30)
    e.submit(Deploy(version="v3.1.0"))
    e.step(120)
    ab = [ev for ev in e.events if ev.type == "release.canary.aborted"]
    assert len(ab) == 1
    assert "consecutiveErrors (5) > consecutiveErrorLimit (4)" in ab[0].message
    assert "prometheus unreachable" in ab[0].message
    # five errors 10 s apart: the fifth measurement at 50 s aborts
    assert ab[0].t == pytest.approx(30 + 50, abs=1.01)


def test_an_inconclusive_step_analysis_pauses_until_promote():
    steps = [{"setWeight": 50}, {"analysis": {"count": 3, "inconclusiveLimit": 1}},
             {"setWeight": 100}]
    e = _canary(steps, deployment__analysis__background=False)
    rc = releases(e)
    rc.analysis_checks.append(
        lambda new, stable, ctl: (INCONCLUSIVE, "too little traffic") if new.has_data else None)
    e.step(30)
    e.submit(Deploy(version="v3.1.0"))
    e.step(300)
    st = e.snapshot.extensions["ReleaseController"]["rollout"]
    assert st["paused"] and st["step"] == 2
    assert st["step_analysis"]["phase"] == INCONCLUSIVE
    assert st["step_analysis"]["inconclusive"] == 2  # the second one exceeds the limit of 1
    assert "inconclusive (2) > inconclusiveLimit (1)" in st["pause_reason"]
    assert [ev for ev in e.events if ev.type == "release.analysis.inconclusive"]
    assert not [ev for ev in e.events if ev.type == "release.canary.aborted"]
    e.submit_line("promote")
    e.step(400)
    assert not [ev for ev in e.events if ev.type == "release.canary.aborted"]
    assert e.snapshot.extensions["ReleaseController"]["current"] == "v3.1.0"


def test_a_step_analysis_with_one_tolerated_failure_succeeds_at_count():
    steps = [{"setWeight": 50}, {"analysis": {"count": 4, "failureLimit": 1}},
             {"setWeight": 100}]
    e = _canary(steps, deployment__analysis__background=False)
    rc = releases(e)
    calls = []

    def flaky(new, stable, ctl):
        if not new.has_data:
            return None
        calls.append(1)
        return (FAILED, "one bad scrape") if len(calls) == 4 else None

    rc.analysis_checks.append(flaky)
    e.step(30)
    e.submit(Deploy(version="v3.1.0"))
    e.step(400)
    ok = [ev for ev in e.events if ev.type == "release.analysis.successful"]
    assert ok and "4 measurements, 1 failed" in ok[0].message
    assert not [ev for ev in e.events if ev.type == "release.canary.aborted"]
