"""The HPA against Kubernetes' own test cases, the fact sheet's worked example and properties.

Case files: tests/data/hpa_cases.json is a copy of the shared reference set; hpa_cases_extra.json
holds further cases transcribed from kubernetes/kubernetes replica_calculator_test.go and
horizontal_test.go, each naming its source test. Expectations are Kubernetes' numbers, not ours.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devsim_tui.config.schema import HPABehavior, HPAPolicy, HPARules, ScalingSpec
from devsim_tui.sim.autoscale import (
    DEFAULT_BEHAVIOR,
    HPAController,
    HPADecision,
    effective_behavior,
    hpa_behavior_limit,
    hpa_normalize,
    hpa_replicas,
    hpa_replicas_arrays,
    hpa_stabilize,
    plain,
    pod_readiness_flags,
)

DATA = Path(__file__).resolve().parent / "data"
SHARED_CASES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "hpa_cases.json"


def _load(name: str, fallback: Path | None = None) -> list[dict]:
    # The copy in tests/data keeps a clean clone self-contained; ../shared is only a fallback.
    path = DATA / name
    if not path.exists() and fallback is not None:
        path = fallback
    return json.loads(path.read_text())


BASE_CASES = _load("hpa_cases.json", SHARED_CASES)
EXTRA_CASES = _load("hpa_cases_extra.json")


def _check_case(case: dict) -> None:
    kind = case["kind"]
    if kind == "replicas":
        args = (case["current_replicas"], case["pods"], case["target_utilization_percent"])
        if "expected_error" in case:
            with pytest.raises(ValueError, match=case["expected_error"]):
                hpa_replicas(*args)
            return
        assert hpa_replicas(*args) == (
            case["expected_desired_replicas"],
            case["expected_utilization_percent"],
        )
    elif kind == "behavior":
        args = (
            case["current_replicas"],
            case["desired_replicas"],
            case["min_replicas"],
            case["max_replicas"],
            case["behavior"],
            case["scale_events"],
        )
        assert hpa_behavior_limit(*args) == case["expected_replicas"]
        if "expected_condition" in case:
            assert hpa_normalize(*args) == (case["expected_replicas"], case["expected_condition"])
    elif kind == "stabilization":
        assert (
            hpa_stabilize(
                case["current_replicas"],
                case["desired_replicas"],
                case["recommendations"],
                case["scale_up_window_seconds"],
                case["scale_down_window_seconds"],
            )
            == case["expected_replicas"]
        )
    else:
        raise AssertionError(f"unknown case kind {kind!r}")


@pytest.mark.parametrize("case", BASE_CASES, ids=[c["id"] for c in BASE_CASES])
def test_reference_cases(case: dict) -> None:
    _check_case(case)


@pytest.mark.parametrize("case", EXTRA_CASES, ids=[c["id"] for c in EXTRA_CASES])
def test_transcribed_kubernetes_cases(case: dict) -> None:
    assert "kubernetes/kubernetes" in case["source"]
    _check_case(case)


def test_case_files_are_substantial_and_the_copy_is_current() -> None:
    assert len(BASE_CASES) >= 10
    assert len(EXTRA_CASES) >= 15
    assert len({c["id"] for c in BASE_CASES + EXTRA_CASES}) == len(BASE_CASES) + len(EXTRA_CASES)
    if SHARED_CASES.exists():
        assert json.loads(SHARED_CASES.read_text()) == BASE_CASES


# --------------------------------------------------------------------------- replica calculator


def test_errors_follow_kubernetes() -> None:
    with pytest.raises(ValueError, match="did not receive metrics for any ready pods"):
        hpa_replicas(3, [{"request": 1000, "usage": 500, "ready": False}] * 3, 50)
    with pytest.raises(ValueError, match="missing request"):
        hpa_replicas(2, [{"request": 1000, "usage": 500}, {"request": None, "usage": 500}], 50)
    with pytest.raises(ValueError, match="no pods"):
        hpa_replicas(2, [], 50)


def test_missing_pods_fall_back_to_the_target_above_100_percent() -> None:
    # replica_calculator.go: on a scale-down a missing pod counts at max(100 %, target) of request.
    pods = [{"request": 1000, "usage": 1000}, {"request": 1000, "usage": 1000}, {"request": 1000}]
    # 100 % vs 200 % target: ratio 0.5; missing at 200 % -> 4000/3000 = 133 % -> ceil(0.665*3) = 2.
    assert hpa_replicas(3, pods, 200) == (2, 100)


def test_dict_and_array_paths_agree() -> None:
    rng = np.random.default_rng(7)
    n = 40
    request = rng.choice([500.0, 1000.0, 2000.0], n)
    usage = rng.uniform(0, 2500, n).round()
    ready = rng.random(n) > 0.2
    hot = rng.random(n) > 0.8
    has_metric = rng.random(n) > 0.1
    pods = [
        {
            "request": request[i],
            "usage": usage[i] if has_metric[i] else None,
            "ready": bool(ready[i]),
            "hot": bool(hot[i]),
        }
        for i in range(n)
    ]
    for target in (30, 60, 80, 150):
        assert hpa_replicas(n, pods, target) == hpa_replicas_arrays(
            n, request, usage, ready, hot, has_metric, target
        )


@pytest.mark.parametrize(
    ("name", "age", "condition", "since", "window", "counted"),
    [
        (
            "count in a ready pod with fresh metrics during initialization period",
            60,
            True,
            30,
            30,
            True,
        ),
        (
            "ignore a ready pod without fresh metrics during initialization period",
            60,
            True,
            30,
            60,
            False,
        ),
        ("ignore an unready pod during initialization period", 600, False, 594, 60, False),
        (
            "count in a ready pod without fresh metrics after initialization period",
            180,
            True,
            180,
            60,
            True,
        ),
        (
            "count in an unready pod that was ready after initialization period",
            600,
            False,
            540,
            60,
            True,
        ),
        (
            "ignore pod that has never been ready after initialization period",
            600,
            False,
            590,
            60,
            True,
        ),
    ],
)
def test_readiness_flags_match_group_pods(name, age, condition, since, window, counted) -> None:
    """replica_calculator_test.go TestGroupPods (2 min initialisation period, 10 s delay).

    The last case is named 'ignore' but Kubernetes expects the pod to be counted: its condition
    changed exactly at start + delay, and the comparison is strict.
    """
    ready, hot = pod_readiness_flags(
        [age],
        [condition],
        [since],
        cpu_initialization_period_s=120,
        initial_readiness_delay_s=10,
        metric_window_s=window,
    )
    assert bool(ready[0] and not hot[0]) is counted, name


# --------------------------------------------------------------------------- behavior


def _spec(**overrides) -> ScalingSpec:
    fields = {"mode": "horizontal-autoscaling", "minReplicas": 1, "maxReplicas": 100}
    fields.update(overrides)
    return ScalingSpec(**fields)


def test_default_behavior_is_the_v2_default() -> None:
    # pkg/apis/autoscaling/v2/defaults_test.go, TestGenerateScaleUpRules and
    # TestGenerateScaleDownRules, case "Default values".
    assert effective_behavior() == {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
    }
    assert (
        effective_behavior(None) == effective_behavior({}) == effective_behavior(DEFAULT_BEHAVIOR)
    )


def test_unset_fields_keep_their_defaults() -> None:
    # defaults_test.go TestGenerateScaleUpRules "Pod policy and stabilization window are specified"
    # and TestGenerateScaleDownRules "Percent policy is specified".
    got = effective_behavior(
        {
            "scaleUp": {
                "stabilizationWindowSeconds": 25,
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 2}],
            },
            "scaleDown": {
                "selectPolicy": "Min",
                "policies": [{"type": "Percent", "value": 1, "periodSeconds": 2}],
            },
        }
    )
    assert got["scaleUp"] == {
        "stabilizationWindowSeconds": 25,
        "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 2}],
    }
    assert got["scaleDown"] == {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Min",
        "policies": [{"type": "Percent", "value": 1, "periodSeconds": 2}],
    }


_rules = st.builds(
    HPARules,
    stabilizationWindowSeconds=st.none() | st.integers(0, 3600),
    selectPolicy=st.sampled_from(["Max", "Min", "Disabled"]),
    policies=st.none() | st.lists(st.builds(HPAPolicy, type=st.sampled_from(["Pods", "Percent"]),
                                            value=st.integers(1, 100),
                                            periodSeconds=st.integers(1, 1800)), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(st.builds(HPABehavior, scaleUp=st.none() | _rules, scaleDown=st.none() | _rules))
def test_a_profiles_behavior_reads_as_its_model_dump(behavior: HPABehavior) -> None:
    # The controller reads spec.behavior field by field (autoscale.plain) instead of building
    # the model's serializer at every start: the same mapping, and the same rules from it.
    assert plain(behavior) == behavior.model_dump(exclude_none=True)
    assert effective_behavior(behavior) == effective_behavior(
        behavior.model_dump(exclude_none=True))


def test_disabled_direction_freezes_it() -> None:
    behavior = {"scaleUp": {"selectPolicy": "Disabled"}, "scaleDown": {"selectPolicy": "Disabled"}}
    assert hpa_normalize(10, 50, 1, 100, behavior) == (10, "ScaleUpLimit")
    assert hpa_normalize(10, 2, 1, 100, behavior) == (10, "ScaleDownLimit")
    # The clamp to [min, max] still applies to a count that is already outside it.
    assert hpa_normalize(120, 50, 1, 100, behavior) == (100, "TooManyReplicas")


def test_select_min_picks_the_smallest_change() -> None:
    behavior = {"scaleUp": {"selectPolicy": "Min"}}  # default policies: +4 pods or +100 %
    assert hpa_behavior_limit(10, 50, 1, 100, behavior) == 14
    assert hpa_behavior_limit(2, 50, 1, 100, behavior) == 4


# --------------------------------------------------------------------------- the controller


def _drive(controller: HPAController, t: float, replicas: int, total_usage: float, request=1000.0):
    usage = np.full(replicas, total_usage / max(replicas, 1))
    flags = np.ones(replicas, dtype=bool)
    return controller.sync(t, replicas, request, usage, flags, ~flags, flags)


def test_worked_example_two_to_fifty_with_default_behavior() -> None:
    """sim_semantics.md section 1: 2 -> desired 50 gives 2, 6, 12, 24, 48, 50 at 0, 15, ... 75 s.

    The example holds the desire at 50, so the load is 50 pods' worth at the 80 % target and the
    tolerance is 0: with the default 10 % dead band the 48 -> 50 step (ratio 1.04) would be held.
    """
    controller = HPAController(
        _spec(maxReplicas=100, targetCPUUtilizationPercentage=80, tolerance=0.0)
    )
    replicas, seen = 2, {}
    for t in range(0, 76):
        if controller.due(t):
            seen[t] = replicas
            decision = _drive(controller, t, replicas, total_usage=50 * 800.0)
            assert decision.raw_desired == 50
            replicas = decision.desired
    assert seen == {0: 2, 15: 6, 30: 12, 45: 24, 60: 48, 75: 50}


def test_scale_down_is_held_for_the_stabilization_window() -> None:
    controller = HPAController(_spec(maxReplicas=20, targetCPUUtilizationPercentage=80))
    replicas = 10
    for t in range(0, 301, 15):
        decision = _drive(controller, t, replicas, total_usage=10 * 100.0)  # 10 % -> wants 2
        assert decision.raw_desired == 2
        if t < 300:
            assert (decision.desired, decision.stabilized) == (10, 10), t
        else:
            assert (decision.desired, decision.reason) == (2, "DesiredWithinRange")
        replicas = decision.desired
    assert replicas == 2


def test_scale_up_stabilization_window_takes_the_lowest_recommendation() -> None:
    behavior = HPABehavior(scaleUp=HPARules(stabilizationWindowSeconds=60))
    controller = HPAController(_spec(maxReplicas=50, behavior=behavior))
    assert _drive(controller, 0, 4, total_usage=4 * 800.0).desired == 4  # at target
    for t in (15, 30, 45):
        decision = _drive(controller, t, 4, total_usage=4 * 1600.0)  # wants 8
        assert (decision.raw_desired, decision.desired) == (8, 4)
    assert _drive(controller, 60, 4, total_usage=4 * 1600.0).desired == 8


def test_controller_reasons_and_failures() -> None:
    controller = HPAController(_spec(minReplicas=2, maxReplicas=6))
    no_metrics = controller.sync(
        0, 3, 1000.0, np.zeros(3), np.ones(3, bool), np.zeros(3, bool), np.zeros(3, bool)
    )
    assert no_metrics == HPADecision(3, 3, None, "FailedGetResourceMetric", 3)
    assert _drive(controller, 15, 9, 0.0).desired == 6
    assert _drive(controller, 30, 9, 0.0).reason == "TooManyReplicas"
    assert _drive(controller, 45, 1, 0.0) == HPADecision(2, 2, None, "TooFewReplicas", 2)
    assert _drive(controller, 60, 0, 0.0).reason == "ScalingDisabled"
    up = _drive(controller, 75, 3, total_usage=3 * 8000.0)
    assert (up.desired, up.reason, up.utilization_percent) == (6, "TooManyReplicas", 800)


def test_due_follows_the_sync_period() -> None:
    controller = HPAController(_spec(syncPeriodSeconds=15))
    assert controller.due(0)
    _drive(controller, 0, 3, 3 * 800.0)
    assert not controller.due(14)
    assert controller.due(15)


def test_history_stays_bounded() -> None:
    controller = HPAController(_spec(maxReplicas=40))
    replicas = 5
    rng = np.random.default_rng(3)
    for i in range(2000):
        replicas = _drive(controller, i * 15.0, replicas, replicas * rng.uniform(100, 2000)).desired
    assert len(controller.recommendations) <= 300 / 15 + 1
    assert len(controller.scale_events) <= 15 / 15 + 1


def test_sync_is_fast_at_ten_thousand_pods() -> None:
    controller = HPAController(_spec(maxReplicas=100_000))
    n = 10_000
    rng = np.random.default_rng(11)
    usage = rng.uniform(100, 900, n)
    ready = rng.random(n) > 0.01
    hot = rng.random(n) > 0.99
    has_metric = rng.random(n) > 0.01
    timings = []
    for i in range(30):
        start = time.perf_counter()
        controller.sync(i * 15.0, n, 1000.0, usage, ready, hot, has_metric)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 1e-3


# --------------------------------------------------------------------------- properties


@st.composite
def _rules(draw, window_choices):
    kind = draw(st.sampled_from(["Pods", "Percent"]))
    value = draw(st.integers(1, 10) if kind == "Pods" else st.integers(1, 200))
    period = draw(st.sampled_from([15, 30, 60, 120]))
    select = draw(st.sampled_from(["Max", "Min", "Disabled"]))
    window = draw(st.sampled_from(window_choices))
    return HPARules(
        stabilizationWindowSeconds=window,
        selectPolicy=select,
        policies=[HPAPolicy(type=kind, value=value, periodSeconds=period)],
    )


def _period_start(history: list[tuple[float, int]], now: float, period: int, current: int) -> int:
    recent = [change for t, change in history if now - t < period]
    return current - sum(c for c in recent if c > 0) + sum(-c for c in recent if c < 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    min_replicas=st.integers(1, 5),
    span=st.integers(0, 40),
    start=st.integers(0, 40),
    up=_rules([0, 15, 60]),
    down=_rules([0, 30, 300]),
    loads=st.lists(st.floats(0, 600), min_size=3, max_size=25),
)
def test_controller_stays_in_bounds_and_within_the_policies(
    min_replicas, span, start, up, down, loads
) -> None:
    max_replicas = min_replicas + span
    controller = HPAController(
        _spec(
            minReplicas=min_replicas,
            maxReplicas=max_replicas,
            behavior=HPABehavior(scaleUp=up, scaleDown=down),
        )
    )
    replicas = min_replicas + start % (span + 1)
    history: list[tuple[float, int]] = []
    for i, load in enumerate(loads):
        now = i * 15.0
        decision = _drive(controller, now, replicas, total_usage=replicas * load * 10.0)
        desired = decision.desired
        assert min_replicas <= desired <= max_replicas
        if desired > replicas:
            policy = up.policies[0]
            assert up.selectPolicy != "Disabled"
            base = _period_start(history, now, policy.periodSeconds, replicas)
            limit = (
                base + policy.value
                if policy.type == "Pods"
                else math.ceil(base * (1 + policy.value / 100))
            )
            assert desired <= limit
        elif desired < replicas:
            policy = down.policies[0]
            assert down.selectPolicy != "Disabled"
            base = _period_start(history, now, policy.periodSeconds, replicas)
            limit = (
                base - policy.value
                if policy.type == "Pods"
                else int(base * (1 - policy.value / 100))
            )
            assert desired >= limit
        if desired != replicas:
            history.append((now, desired - replicas))
        replicas = desired
