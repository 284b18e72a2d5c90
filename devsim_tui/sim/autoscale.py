"""The HorizontalPodAutoscaler of the simulated estate, reproducing Kubernetes' own algorithm.

The code follows kubernetes/kubernetes `pkg/controller/podautoscaler`, function by function:

* `replica_calculator.go` `GetResourceReplicas` + `groupPods` -> `hpa_replicas_arrays` (vectorised
  with numpy so a 10,000-pod fleet costs well under a millisecond) and its dict wrapper
  `hpa_replicas`. Utilization is the integer `sum(usage)*100 / sum(request)` Kubernetes reports,
  and the usage ratio is built from that integer, exactly as `GetResourceUtilizationRatio` does.
* `horizontal.go` `stabilizeRecommendationWithBehaviors` -> `hpa_stabilize`;
  `convertDesiredReplicasWithBehaviorRate`, `calculateScaleUpLimitWithScalingRules`,
  `calculateScaleDownLimitWithBehaviors`, `getReplicasChangePerPeriod` -> `hpa_normalize` and
  `hpa_behavior_limit`; `reconcileAutoscaler` -> `HPAController.sync`.
* `pkg/apis/autoscaling/v2/defaults.go` -> `DEFAULT_BEHAVIOR`, merged field by field the way
  `GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules` do.

Times are simulated seconds. An event or recommendation counts inside a window of `w` seconds
while its age is strictly below `w` (Go's `timestamp.After(now - w)`).

This module is part of the engine: it must never import textual or anything from devsim_tui.ui.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from devsim_tui.config.schema import ScalingSpec

__all__ = [
    "DEFAULT_BEHAVIOR",
    "DEFAULT_DOWNSCALE_STABILIZATION_SECONDS",
    "HPAController",
    "HPADecision",
    "effective_behavior",
    "hpa_behavior_limit",
    "hpa_normalize",
    "hpa_replicas",
    "hpa_replicas_arrays",
    "hpa_stabilize",
    "pod_readiness_flags",
]

# --horizontal-pod-autoscaler-downscale-stabilization: the v2 defaults leave the scale-down window
# nil and the controller fills it from this flag (maybeInitScaleDownStabilizationWindow).
DEFAULT_DOWNSCALE_STABILIZATION_SECONDS = 300

DEFAULT_BEHAVIOR: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "scaleUp": MappingProxyType(
            {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": (
                    MappingProxyType({"type": "Pods", "value": 4, "periodSeconds": 15}),
                    MappingProxyType({"type": "Percent", "value": 100, "periodSeconds": 15}),
                ),
            }
        ),
        "scaleDown": MappingProxyType(
            {
                "stabilizationWindowSeconds": DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
                "selectPolicy": "Max",
                "policies": (
                    MappingProxyType({"type": "Percent", "value": 100, "periodSeconds": 15}),
                ),
            }
        ),
    }
)

# Go computes the policy limits in int32 and seeds Max/Min selection with these sentinels; they
# matter when a direction has an empty policy list (the limit then pins replicas at current).
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

_POLICY_TYPES = frozenset({"Pods", "Percent"})
_SELECT_POLICIES = frozenset({"Max", "Min", "Disabled"})


# --------------------------------------------------------------------------- behavior rules


@dataclass(frozen=True, slots=True)
class _Rules:
    """One direction of spec.behavior after defaulting (autoscalingv2.HPAScalingRules)."""

    window: float
    select: str
    policies: tuple[tuple[str, int, int], ...]  # (type, value, periodSeconds)

    @property
    def longest_period(self) -> int:
        return max((period for _, _, period in self.policies), default=0)

    def as_dict(self) -> dict[str, Any]:
        window = int(self.window) if self.window.is_integer() else self.window
        return {
            "stabilizationWindowSeconds": window,
            "selectPolicy": self.select,
            "policies": [
                {"type": kind, "value": value, "periodSeconds": period}
                for kind, value, period in self.policies
            ],
        }


def _merge_rules(
    given: Mapping[str, Any] | None, default: Mapping[str, Any], direction: str
) -> _Rules:
    # copyHPAScalingRules: every field that is set replaces the default, the rest stay default.
    given = given or {}
    window = given.get("stabilizationWindowSeconds")
    if window is None:
        window = default["stabilizationWindowSeconds"]
    select = given.get("selectPolicy") or default["selectPolicy"]
    if select not in _SELECT_POLICIES:
        raise ValueError(
            f"behavior.{direction}.selectPolicy must be Max, Min or Disabled, not {select!r}"
        )
    raw_policies = given.get("policies")
    if raw_policies is None:
        raw_policies = default["policies"]
    policies = []
    for policy in raw_policies:
        kind, value, period = policy["type"], int(policy["value"]), int(policy["periodSeconds"])
        if kind not in _POLICY_TYPES:
            raise ValueError(
                f"behavior.{direction} policy type must be Pods or Percent, not {kind!r}"
            )
        if value <= 0 or period <= 0:
            raise ValueError(
                f"behavior.{direction} policy value and periodSeconds must be positive"
            )
        policies.append((kind, value, period))
    return _Rules(window=float(window), select=select, policies=tuple(policies))


def plain(value: Any) -> Any:
    """A profile model as the mapping `model_dump(exclude_none=True)` gives (fields by name,
    unset ones left out), read field by field: `model_dump` would first build the model's
    serializer, a few tens of milliseconds of every start for one small mapping."""
    fields = getattr(type(value), "model_fields", None)
    if fields is not None:
        return {name: plain(v) for name in fields if (v := getattr(value, name)) is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _resolve_behavior(
    behavior: Mapping[str, Any] | Any | None,
    downscale_stabilization_seconds: float = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
) -> tuple[_Rules, _Rules]:
    if behavior is not None and hasattr(type(behavior), "model_fields"):
        behavior = plain(behavior)
    behavior = behavior or {}
    down_default = dict(DEFAULT_BEHAVIOR["scaleDown"])
    down_default["stabilizationWindowSeconds"] = downscale_stabilization_seconds
    up = _merge_rules(behavior.get("scaleUp"), DEFAULT_BEHAVIOR["scaleUp"], "scaleUp")
    down = _merge_rules(behavior.get("scaleDown"), down_default, "scaleDown")
    return up, down


def effective_behavior(
    behavior: Mapping[str, Any] | None = None,
    downscale_stabilization_seconds: float = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
) -> dict[str, dict[str, Any]]:
    """spec.behavior with each unset field taken from the v2 defaults, as the controller uses it."""
    up, down = _resolve_behavior(behavior, downscale_stabilization_seconds)
    return {"scaleUp": up.as_dict(), "scaleDown": down.as_dict()}


# --------------------------------------------------------------------------- rate limits

_Events = Sequence[tuple[float, int]]  # (age_seconds, replicas changed, always > 0)


def _change_in_period(period: int, events: _Events) -> int:
    # getReplicasChangePerPeriod: an event exactly one period old has already left the window.
    return sum(change for age, change in events if age < period)


def _scale_up_limit(current: int, up_events: _Events, down_events: _Events, rules: _Rules) -> int:
    if rules.select == "Disabled":
        return current
    pick, result = (min, _INT32_MAX) if rules.select == "Min" else (max, _INT32_MIN)
    for kind, value, period in rules.policies:
        start = (
            current - _change_in_period(period, up_events) + _change_in_period(period, down_events)
        )
        if kind == "Pods":
            proposed = start + value
        else:
            # Rounded up so a small percentage still adds a pod (same float64 expression as Go).
            proposed = math.ceil(float(start) * (1 + float(value) / 100))
        result = pick(result, proposed)
    return result


def _scale_down_limit(current: int, up_events: _Events, down_events: _Events, rules: _Rules) -> int:
    if rules.select == "Disabled":
        return current
    # The smallest change ('Min') is the highest floor when scaling down, hence the swap.
    pick, result = (max, _INT32_MIN) if rules.select == "Min" else (min, _INT32_MAX)
    for kind, value, period in rules.policies:
        start = (
            current - _change_in_period(period, up_events) + _change_in_period(period, down_events)
        )
        if kind == "Pods":
            proposed = start - value
        else:
            # Go's int32(float64) conversion truncates toward zero.
            proposed = int(float(start) * (1 - float(value) / 100))
        result = pick(result, proposed)
    return result


def _rate_limit(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    up: _Rules,
    down: _Rules,
    up_events: _Events,
    down_events: _Events,
) -> tuple[int, str]:
    """convertDesiredReplicasWithBehaviorRate: clamp to the policy limits and [min, max]."""
    if desired > current:
        # Recent additions may already exceed the policy; never turn a scale-up into a scale-down.
        limit = max(_scale_up_limit(current, up_events, down_events, up), current)
        if max_replicas > limit:
            allowed, reason = limit, "ScaleUpLimit"
        else:
            allowed, reason = max_replicas, "TooManyReplicas"
        if desired > allowed:
            return allowed, reason
    elif desired < current:
        limit = min(_scale_down_limit(current, up_events, down_events, down), current)
        if min_replicas < limit:
            allowed, reason = limit, "ScaleDownLimit"
        else:
            allowed, reason = min_replicas, "TooFewReplicas"
        if desired < allowed:
            return allowed, reason
    return desired, "DesiredWithinRange"


def _split_events(
    scale_events: Iterable[Mapping[str, Any]],
) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    up: list[tuple[float, int]] = []
    down: list[tuple[float, int]] = []
    for event in scale_events:
        age, change = float(event["age_seconds"]), int(event["change"])
        if change > 0:
            up.append((age, change))
        elif change < 0:
            down.append((age, -change))
    return up, down


def _check_bounds(min_replicas: int, max_replicas: int) -> None:
    if min_replicas < 0 or max_replicas < 1 or min_replicas > max_replicas:
        raise ValueError(
            f"need 0 <= minReplicas <= maxReplicas and maxReplicas >= 1, "
            f"got minReplicas={min_replicas}, maxReplicas={max_replicas}"
        )


def hpa_normalize(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Mapping[str, Any] | None = None,
    scale_events: Iterable[Mapping[str, Any]] = (),
) -> tuple[int, str]:
    """Apply spec.behavior's rate limits and the [min, max] clamp; return (replicas, reason).

    `behavior` is a Kubernetes spec.behavior mapping (camelCase); missing directions and fields
    take the v2 defaults. `scale_events` are `{"age_seconds", "change"}` (negative = removed).
    A current count outside [min, max] goes straight to the violated bound, as reconcileAutoscaler
    does before consulting any policy. No stabilization happens here (see `hpa_stabilize`).
    """
    _check_bounds(min_replicas, max_replicas)
    current, desired = int(current_replicas), int(desired_replicas)
    if current > max_replicas:
        return max_replicas, "TooManyReplicas"
    if current < min_replicas:
        return min_replicas, "TooFewReplicas"
    up, down = _resolve_behavior(behavior)
    up_events, down_events = _split_events(scale_events)
    return _rate_limit(
        current, desired, min_replicas, max_replicas, up, down, up_events, down_events
    )


def hpa_behavior_limit(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Mapping[str, Any] | None = None,
    scale_events: Iterable[Mapping[str, Any]] = (),
) -> int:
    """Replicas after the behavior policies' rate limits and the [min, max] clamp."""
    return hpa_normalize(
        current_replicas, desired_replicas, min_replicas, max_replicas, behavior, scale_events
    )[0]


# --------------------------------------------------------------------------- stabilization


def _stabilize(
    current: int,
    desired: int,
    recommendations: Iterable[tuple[float, int]],
    up_window: float,
    down_window: float,
) -> int:
    # A scale-up may go no higher than the lowest recent recommendation, a scale-down no lower
    # than the highest one; current replicas are kept when recommendations straddle them.
    up_bound = down_bound = desired
    for age, replicas in recommendations:
        if age < up_window:
            up_bound = min(up_bound, replicas)
        if age < down_window:
            down_bound = max(down_bound, replicas)
    return min(max(current, up_bound), down_bound)


def hpa_stabilize(
    current_replicas: int,
    desired_replicas: int,
    recommendations: Iterable[Mapping[str, Any]] = (),
    scale_up_window_seconds: float = 0,
    scale_down_window_seconds: float = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
) -> int:
    """stabilizeRecommendationWithBehaviors over `{"age_seconds", "replicas"}` recommendations."""
    recs = [(float(r["age_seconds"]), int(r["replicas"])) for r in recommendations]
    return _stabilize(
        int(current_replicas),
        int(desired_replicas),
        recs,
        float(scale_up_window_seconds),
        float(scale_down_window_seconds),
    )


# --------------------------------------------------------------------------- replica calculator


def _utilization(usage_total: float, request_total: float) -> int:
    if request_total <= 0:
        raise ValueError("no metrics returned matched known pods (total CPU request is zero)")
    # Kubernetes works in integer millicores: int64(usage*100 / request). Exact integer division
    # when the sums are whole numbers avoids float rounding landing on the wrong percent.
    if usage_total.is_integer() and request_total.is_integer() and usage_total < 2**53:
        return int(usage_total) * 100 // int(request_total)
    return math.floor(usage_total * 100.0 / request_total)


def _within(ratio: float, tolerance: float) -> bool:
    # Tolerances.isWithin (Kubernetes >= 1.33); inclusive at both ends of the dead band.
    return (1.0 - tolerance) <= ratio <= (1.0 + tolerance)


def _as_bool(mask: npt.ArrayLike | None, n: int, default: bool) -> np.ndarray:
    if mask is None:
        return np.full(n, default, dtype=bool)
    arr = np.asarray(mask, dtype=bool)
    if arr.shape != (n,):
        arr = np.broadcast_to(arr, (n,))
    return arr


def hpa_replicas_arrays(
    current_replicas: int,
    request_millicores: npt.ArrayLike,
    usage_millicores: npt.ArrayLike,
    ready: npt.ArrayLike,
    hot: npt.ArrayLike,
    has_metric: npt.ArrayLike,
    target_utilization_percent: int,
    tolerance: float = 0.1,
    *,
    pending: npt.ArrayLike | None = None,
    dropped: npt.ArrayLike | None = None,
) -> tuple[int, int]:
    """GetResourceReplicas for CPU utilization over per-pod arrays; returns (desired, utilization).

    `request_millicores` is per pod or one value for all (NaN = the pod has no request);
    `usage_millicores` is read only where `has_metric`. `ready=False` means the Ready condition
    keeps the pod out (see `pod_readiness_flags`), `hot` marks a sample taken inside the CPU
    initialisation period before a full metric window followed readiness; both make the pod
    'unready'. `pending` pods are unready whether or not they report a metric; `dropped` pods
    (Failed or being deleted) are ignored entirely. The result is before the [min, max] clamp.
    """
    if target_utilization_percent <= 0:
        raise ValueError("target_utilization_percent must be positive")
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    usage = np.asarray(usage_millicores, dtype=float)
    n = usage.shape[0] if usage.ndim else 0
    if usage.ndim != 1 or n == 0:
        raise ValueError("no pods returned by selector while calculating replica count")
    request = np.asarray(request_millicores, dtype=float)
    if request.shape != (n,):
        request = np.broadcast_to(request, (n,))
    ready_b = _as_bool(ready, n, True)
    hot_b = _as_bool(hot, n, False)
    metric_b = _as_bool(has_metric, n, True)
    pending_b = _as_bool(pending, n, False)
    live = ~_as_bool(dropped, n, False)

    # groupPods: Pending beats everything, then a missing sample, then the readiness rules.
    scheduled = live & ~pending_b
    missing = scheduled & ~metric_b
    counted = scheduled & metric_b & ready_b & ~hot_b
    unready = (live & pending_b) | (scheduled & metric_b & ~(ready_b & ~hot_b))

    ready_count = int(np.count_nonzero(counted))
    if ready_count == 0:
        raise ValueError("did not receive metrics for any ready pods (pods might be unready)")
    # calculatePodRequests: every listed pod needs a request, not only the counted ones.
    no_request = np.isnan(request) & live
    if no_request.any():
        raise ValueError(f"missing request for cpu in pod {int(np.flatnonzero(no_request)[0])}")

    usage_total = float(np.sum(usage, where=counted))
    request_total = float(np.sum(request, where=counted))
    utilization = _utilization(usage_total, request_total)
    ratio = utilization / target_utilization_percent
    current = int(current_replicas)

    missing_count = int(np.count_nonzero(missing))
    unready_count = int(np.count_nonzero(unready))
    scale_up_with_unready = unready_count > 0 and ratio > 1.0
    if not scale_up_with_unready and missing_count == 0:
        if _within(ratio, tolerance):
            return current, utilization
        return math.ceil(ratio * ready_count), utilization

    # Second pass: assume the worst case for the direction the counted pods point to, so that
    # pods without a usable sample can only damp the change, never amplify it.
    n_metrics = ready_count
    if missing_count and ratio != 1.0:
        missing_requests = np.where(missing, request, 0.0)
        request_total += float(missing_requests.sum())
        if ratio < 1.0:
            # 100 % of request, or the target when it is above 100 %.
            fallback = max(100, int(target_utilization_percent))
            if fallback == 100:
                usage_total += float(missing_requests.sum())
            else:
                usage_total += float(np.floor(missing_requests * fallback / 100).sum())
        n_metrics += missing_count
    if scale_up_with_unready:
        request_total += float(np.sum(request, where=unready))
        n_metrics += unready_count
    new_ratio = _utilization(usage_total, request_total) / target_utilization_percent

    if _within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, utilization
    new_replicas = math.ceil(new_ratio * n_metrics)
    # More pods in the denominator can flip the count against the ratio's direction (e.g. surge
    # pods of a rolling update): keep the current count rather than scale the wrong way.
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and new_replicas < current):
        return current, utilization
    return new_replicas, utilization


def hpa_replicas(
    current_replicas: int,
    pods: Sequence[Mapping[str, Any]],
    target_utilization_percent: int,
    tolerance: float = 0.1,
) -> tuple[int, int]:
    """The replica calculator over pod dicts; returns (desired replicas, utilization percent).

    Each pod: `request` and `usage` in millicores (`usage` None = no metric, `request` None = no
    request), optional `ready` (default True), `hot`, `phase` ("Failed" dropped, "Pending"
    unready) and `deleting` (dropped). A thin wrapper over `hpa_replicas_arrays`.
    """
    n = len(pods)
    request = np.full(n, np.nan)
    usage = np.zeros(n)
    has_metric = np.zeros(n, dtype=bool)
    ready = np.ones(n, dtype=bool)
    hot = np.zeros(n, dtype=bool)
    pending = np.zeros(n, dtype=bool)
    dropped = np.zeros(n, dtype=bool)
    for i, pod in enumerate(pods):
        if pod.get("request") is not None:
            request[i] = float(pod["request"])
        if pod.get("usage") is not None:
            usage[i] = float(pod["usage"])
            has_metric[i] = True
        ready[i] = bool(pod.get("ready", True))
        hot[i] = bool(pod.get("hot", False))
        phase = pod.get("phase", "Running")
        pending[i] = phase == "Pending"
        dropped[i] = phase == "Failed" or bool(pod.get("deleting", False))
    return hpa_replicas_arrays(
        current_replicas,
        request,
        usage,
        ready,
        hot,
        has_metric,
        target_utilization_percent,
        tolerance,
        pending=pending,
        dropped=dropped,
    )


def pod_readiness_flags(
    age_s: npt.ArrayLike,
    ready_condition: npt.ArrayLike,
    since_transition_s: npt.ArrayLike,
    *,
    cpu_initialization_period_s: float = 300.0,
    initial_readiness_delay_s: float = 30.0,
    metric_window_s: float = 30.0,
) -> tuple[np.ndarray, np.ndarray]:
    """groupPods' timing rules turned into the (ready, hot) arrays `sync` takes.

    `age_s` is the time since the pod started, `ready_condition` its Ready condition now and
    `since_transition_s` the time since that condition last changed; samples are assumed fresh.
    Inside the CPU initialisation period a Ready pod is 'hot' until one metric window has passed
    since it became Ready. After it, only a pod that has never been Ready (its condition last
    changed within the readiness delay of start-up) is kept out; a pod that was Ready and dropped
    out later still counts, as in Kubernetes.
    """
    age = np.asarray(age_s, dtype=float)
    cond = np.asarray(ready_condition, dtype=bool)
    since = np.asarray(since_transition_s, dtype=float)
    initialising = age < cpu_initialization_period_s
    hot = initialising & cond & (since < metric_window_s)
    never_ready = ~cond & ((age - since) < initial_readiness_delay_s)
    ready = np.where(initialising, cond, ~never_ready)
    return ready, hot


# --------------------------------------------------------------------------- the controller


@dataclass(frozen=True, slots=True)
class HPADecision:
    """One sync of the controller, in the terms Kubernetes reports."""

    desired: int  # replicas to set now
    raw_desired: int  # what the replica calculator asked for
    utilization_percent: int | None  # current CPU utilization, None when it could not be read
    reason: str  # the ScalingLimited (or ScalingActive on failure) condition reason
    stabilized: int  # the recommendation after the stabilization windows
    floor: int | None = None  # a lower bound on the recommendation (the predictive scaler's)
    hpa_desired: int | None = None  # what the HPA alone would set now (without the floor)


class HPAController:
    """reconcileAutoscaler for one HPA, with its recommendation and scale-event history.

    The engine calls `due(now)` every tick and `sync(...)` when it returns True. A spec without
    `behavior` runs the v2 default behavior (see `DEFAULT_BEHAVIOR`).
    """

    def __init__(
        self,
        spec: ScalingSpec,
        *,
        downscale_stabilization_seconds: float = DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    ) -> None:
        self.min_replicas = int(spec.minReplicas)
        self.max_replicas = int(spec.maxReplicas)
        _check_bounds(self.min_replicas, self.max_replicas)
        self.target_utilization_percent = int(spec.targetCPUUtilizationPercentage)
        self.tolerance = float(spec.tolerance)
        self.sync_period_seconds = float(spec.syncPeriodSeconds)
        self.cpu_initialization_period_seconds = float(spec.cpuInitializationPeriodSeconds)
        self.initial_readiness_delay_seconds = float(spec.initialReadinessDelaySeconds)
        self.scale_up_rules, self.scale_down_rules = _resolve_behavior(
            spec.behavior, downscale_stabilization_seconds
        )
        # Anything older than these horizons can never count again, so it is dropped; memory is
        # bounded by horizon / sync period entries whatever the run length.
        self._recommendation_horizon = max(self.scale_up_rules.window, self.scale_down_rules.window)
        self._event_horizon = max(
            self.scale_up_rules.longest_period, self.scale_down_rules.longest_period
        )
        self._recommendations: deque[tuple[float, int]] = deque()
        self._events: deque[tuple[float, int]] = deque()
        self._last_sync: float | None = None
        self._seeded = False

    def due(self, now_s: float) -> bool:
        """Whether a sync period has elapsed since the last sync (always True before the first)."""
        if self._last_sync is None:
            return True
        return now_s - self._last_sync >= self.sync_period_seconds - 1e-9

    def readiness_flags(
        self,
        age_s: npt.ArrayLike,
        ready_condition: npt.ArrayLike,
        since_transition_s: npt.ArrayLike,
        metric_window_s: float = 30.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`pod_readiness_flags` with this HPA's initialisation period and readiness delay."""
        return pod_readiness_flags(
            age_s,
            ready_condition,
            since_transition_s,
            cpu_initialization_period_s=self.cpu_initialization_period_seconds,
            initial_readiness_delay_s=self.initial_readiness_delay_seconds,
            metric_window_s=metric_window_s,
        )

    @property
    def behavior(self) -> dict[str, dict[str, Any]]:
        """The behavior in effect, defaults filled in."""
        return {
            "scaleUp": self.scale_up_rules.as_dict(),
            "scaleDown": self.scale_down_rules.as_dict(),
        }

    @property
    def recommendations(self) -> tuple[tuple[float, int], ...]:
        """Stored (time, recommendation) pairs, oldest first."""
        return tuple(self._recommendations)

    @property
    def scale_events(self) -> tuple[tuple[float, int], ...]:
        """Stored (time, signed replica change) pairs, oldest first."""
        return tuple(self._events)

    def _prune(self, now_s: float) -> None:
        while (
            self._recommendations
            and now_s - self._recommendations[0][0] >= self._recommendation_horizon
        ):
            self._recommendations.popleft()
        while self._events and now_s - self._events[0][0] >= self._event_horizon:
            self._events.popleft()

    def _event_ages(self, now_s: float) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
        up = [(now_s - t, c) for t, c in self._events if c > 0]
        down = [(now_s - t, -c) for t, c in self._events if c < 0]
        return up, down

    def sync(
        self,
        now_s: float,
        current_replicas: int,
        request_millicores: float,
        usage_millicores: np.ndarray,
        ready: np.ndarray,
        hot: np.ndarray,
        has_metric: np.ndarray,
        *,
        floor: int | None = None,
        pending: np.ndarray | None = None,
    ) -> HPADecision:
        """One reconcile: compute, stabilize, rate-limit and record the decision.

        `floor` (the predictive scaler's need) raises the replica calculator's recommendation
        before stabilization: desired = max(HPA, floor), then the same windows and policies.
        The decision also carries what the HPA alone would have set (`hpa_desired`).
        `pending`: pods in phase Pending (unready whatever they report).
        """
        now_s = float(now_s)
        current = int(current_replicas)
        self._last_sync = now_s
        if not self._seeded:
            # recordInitialRecommendation: a new HPA first remembers the current size, which holds
            # off any scale-down for one downscale stabilization window.
            self._recommendations.append((now_s, current))
            self._seeded = True
        self._prune(now_s)

        if current == 0 and self.min_replicas != 0:
            return HPADecision(0, 0, None, "ScalingDisabled", 0)
        if current > self.max_replicas:
            decision = HPADecision(
                self.max_replicas, self.max_replicas, None, "TooManyReplicas", self.max_replicas
            )
        elif current < self.min_replicas:
            decision = HPADecision(
                self.min_replicas, self.min_replicas, None, "TooFewReplicas", self.min_replicas
            )
        else:
            try:
                raw, utilization = hpa_replicas_arrays(
                    current,
                    request_millicores,
                    usage_millicores,
                    ready,
                    hot,
                    has_metric,
                    self.target_utilization_percent,
                    self.tolerance,
                    pending=pending,
                )
            except ValueError:
                # The controller keeps the current size and records nothing when the metric fails.
                return HPADecision(current, current, None, "FailedGetResourceMetric", current)
            ages = [(now_s - t, r) for t, r in self._recommendations]
            up_events, down_events = self._event_ages(now_s)

            def settle(recommended: int) -> tuple[int, int, str]:
                stable = _stabilize(
                    current, recommended, ages, self.scale_up_rules.window,
                    self.scale_down_rules.window,
                )
                limited, why = _rate_limit(
                    current, stable, self.min_replicas, self.max_replicas,
                    self.scale_up_rules, self.scale_down_rules, up_events, down_events,
                )
                return stable, limited, why

            stabilized, desired, reason = settle(raw)
            hpa_desired = desired
            recommended = raw
            if floor is not None and floor > raw:
                recommended = int(floor)
                stabilized, desired, reason = settle(recommended)
            self._recommendations.append((now_s, recommended))
            decision = HPADecision(
                desired, raw, utilization, reason, stabilized, floor, hpa_desired
            )

        if decision.desired != current:
            self._events.append((now_s, decision.desired - current))
        return decision
