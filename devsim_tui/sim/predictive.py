"""The predictive scaler: the HPA's decision raised to what a forecast of the request rate needs.

How it decides, at every HPA sync (see docs/autoscaling.md):

1. **Sample.** The offered request rate is averaged over each sync period (15 s by default).
2. **Forecast.** Three online models built on river learn every sample and each forecast the
   next `lead` seconds, where `lead` = sync period + pod start-up + one metric window (the time
   from a decision until a new pod serves and is counted): a Holt-Winters model with daily
   seasonality (`river.time_series.HoltWinters`, multiplicative; the season is one day of the
   traffic pattern in simulated seconds), a Holt linear-trend model (the same class without a
   season) and persistence (the last value). Each model's forecast for a sample is kept until
   the sample arrives; its absolute error feeds an exponentially weighted mean per model
   (`ERROR_HALF_LIFE_STEPS`), taken relative to the mean rate of the last half day: the model's
   recent relative error. The model with the lowest recent error is used.
3. **Gate.** `confidence` = 1 - that model's recent error. Below `min_confidence` (0.75) the
   scaler says so (label `predictive NN% (HPA fallback)`) and acts exactly like the HPA.
4. **Need.** The CPU cost of a request per pod is learned online from the fleet's own
   utilisation (`beta` = (CPU - idle) x ready pods / rps, sampled while no pod is saturated),
   so the forecast's peak within the lead time converts to the replicas that keep CPU inside
   the HPA's dead band: `ceil(beta x forecast / (target x (1 + tolerance) - idle))`. When the
   current size already keeps it there, there is no need (the HPA would not act either).
5. **Combine.** desired = max(HPA recommendation, need): the need enters the HPA controller as a
   floor on its recommendation, so the stabilization windows and the scale-up and scale-down
   policies of `behavior` apply to the result exactly as to the HPA's own; the HPA stays the
   safety net. A sync where the need is above the HPA's recommendation and the replicas rise
   emits a `ScaleAhead` event (`scale.ahead`).

Warm start: a real scaler would train on the metric history; here the model is pre-trained on
`warm_seasons` days of the profile's own traffic pattern before t=0, with seeded noise.
Deterministic: river's models are deterministic given their input and the noise is seeded.
Never imports the UI.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from river.time_series import HoltWinters

if TYPE_CHECKING:
    from devsim_tui.config.schema import Profile

DAY = 86400.0
#: How much the latest forecast error weighs against the older ones: it halves in this many
#: samples (8 samples = 2 minutes at the default 15 s sync).
ERROR_HALF_LIFE_STEPS = 8
#: Act on the forecast only while it has recently been this good (1 - mean abs. % error).
DEFAULT_MIN_CONFIDENCE = 0.75
#: Below this many samples a season is too short to model; above, too long to keep.
MIN_SEASON_STEPS, MAX_SEASON_STEPS = 8, 20_000
#: Samples with the fleet's CPU above this are saturated: no information about cost per request.
_SATURATED_CPU = 0.85
_EPS = 1.0  # rps added before percentage errors and multiplicative models (no division by 0)
#: Syncs the scaler's record keeps for its detail view (240 = one hour at the 15 s default).
RECORD_SYNCS = 240
#: The record's columns, one row per HPA sync (`PredictiveScaler.note`).
RECORD_FIELDS = ("t", "actual_rps", "forecast_rps", "replicas", "hpa_replicas", "need",
                 "confidence", "gated")


@dataclass(frozen=True, slots=True)
class Forecast:
    model: str  # which model's forecast this is
    path: tuple[float, ...]  # rps at 1..h steps ahead
    confidence: float  # 1 - the model's recent mean absolute percentage error, 0..1

    @property
    def peak(self) -> float:
        return max(self.path)

    @property
    def at_lead(self) -> float:
        return self.path[-1]


class _Persistence:
    """The last value, forever: what a scaler without foresight assumes."""

    def __init__(self) -> None:
        self.last: float | None = None

    def learn_one(self, y: float) -> None:
        self.last = y

    def forecast(self, horizon: int) -> list[float]:
        return [self.last or 0.0] * horizon


class Forecaster:
    """An online ensemble of request-rate forecasters, the one with the lowest recent error wins.

    `learn(y)` takes one sample (mean rps over `step_s`); `forecast()` returns the best model's
    forecast for the next `horizon` samples and its confidence.
    """

    def __init__(self, horizon: int, season_steps: int | None):
        self.horizon = max(1, int(horizon))
        self.models: dict[str, Any] = {}
        self.season_steps = None
        if season_steps is not None and MIN_SEASON_STEPS <= season_steps <= MAX_SEASON_STEPS:
            self.season_steps = int(season_steps)
            self.models["holt-winters"] = HoltWinters(
                alpha=0.3, beta=0.01, gamma=0.3, seasonality=self.season_steps,
                multiplicative=True)
        self.models["holt"] = HoltWinters(alpha=0.5, beta=0.1)
        self.models["persistence"] = _Persistence()
        self._decay = 0.5 ** (1.0 / ERROR_HALF_LIFE_STEPS)
        self.error: dict[str, float] = {name: 0.0 for name in self.models}
        self._level: dict[str, float] = {name: 0.0 for name in self.models}
        self._level_weight: dict[str, float] = {name: 0.0 for name in self.models}
        # Errors are weighed against the traffic of a longer span (half a day, or 4 error
        # half-lives without a season), so quiet hours do not make small misses look large.
        level_half_life = max(4 * ERROR_HALF_LIFE_STEPS, (self.season_steps or 0) // 2)
        self._level_decay = 0.5 ** (1.0 / level_half_life)
        self._weight: dict[str, float] = {name: 0.0 for name in self.models}
        # Forecasts waiting for their sample: per model, a deque of forecasts made at each step,
        # the oldest being the one made `horizon` steps before the next sample.
        self._pending: dict[str, deque[float]] = {name: deque() for name in self.models}
        self.samples = 0

    def _ready(self, name: str) -> bool:
        if name == "holt-winters":
            return self.samples > self.season_steps
        if name == "holt":
            return self.samples > 2
        return self.samples > 0

    def learn(self, y: float, track: bool = True) -> None:
        """Learn one sample; with `track` also score the forecasts that targeted it and make
        new ones (a warm start skips that for all but its last samples: it is the costly part)."""
        y = max(float(y), 0.0)
        if not track:
            for model in self.models.values():
                model.learn_one(y + _EPS)
            self.samples += 1
            for pending in self._pending.values():
                pending.clear()
            return
        for name, model in self.models.items():
            pending = self._pending[name]
            if len(pending) >= self.horizon:
                guess = pending.popleft()
                d = self._decay
                self.error[name] = d * self.error[name] + (1 - d) * abs(guess - y)
                self._weight[name] = d * self._weight[name] + (1 - d)
            dl = self._level_decay
            self._level[name] = dl * self._level[name] + (1 - dl) * y
            self._level_weight[name] = dl * self._level_weight[name] + (1 - dl)
            model.learn_one(y + _EPS)
        self.samples += 1
        for name, model in self.models.items():
            if self._ready(name):
                path = model.forecast(self.horizon)
                self._pending[name].append(max(path[-1] - _EPS, 0.0))
            else:
                self._pending[name].clear()

    def recent_error(self, name: str) -> float:
        """Recent absolute error of the model's lead-time forecasts relative to the traffic's
        level: the exponentially weighted mean of |forecast - actual| (half-life
        `ERROR_HALF_LIFE_STEPS`) over the mean rate of the last half day, so that quiet hours
        with few requests do not blow the percentage up; 1.0 while unknown."""
        if self._weight[name] <= 0 or self._level_weight[name] <= 0:
            return 1.0
        error = self.error[name] / self._weight[name]
        level = self._level[name] / self._level_weight[name]
        return error / max(level, _EPS)

    def best(self) -> str:
        ready = [n for n in self.models if self._ready(n) and self._weight[n] > 0]
        if not ready:
            return "persistence"
        return min(ready, key=self.recent_error)

    def forecast(self) -> Forecast:
        name = self.best()
        path = tuple(max(v - _EPS, 0.0) for v in self.models[name].forecast(self.horizon)) \
            if self._ready(name) else (0.0,) * self.horizon
        confidence = min(1.0, max(0.0, 1.0 - self.recent_error(name)))
        return Forecast(name, path, confidence)


@dataclass(frozen=True, slots=True)
class PredictiveAdvice:
    """What the predictive scaler asks for at one sync."""

    forecast: Forecast
    need: int | None  # replicas the forecast needs at target, None if the current size will do
    gated: bool  # True: confidence too low, the HPA acts alone
    beta: float  # learned CPU fraction per (rps per pod)

    @property
    def floor(self) -> int | None:
        return None if self.gated else self.need


class PredictiveScaler:
    """Feeds the forecaster from the engine's ticks and turns forecasts into replica floors."""

    def __init__(self, profile: Profile, level: Callable[[float], float], seed: int,
                 *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 metric_window_s: float = 30.0, warm_seasons: float = 2.0):
        spec = profile.scaling
        server = profile.app.server
        self.step_s = float(spec.syncPeriodSeconds)
        self.lead_s = self.step_s + float(server.startup_seconds) + metric_window_s
        horizon = max(1, math.ceil(self.lead_s / self.step_s))
        day_s = DAY / float(profile.traffic.time_scale)
        season = round(day_s / self.step_s)
        self.forecaster = Forecaster(horizon, season)
        self.min_confidence = float(min_confidence)
        self.target = spec.targetCPUUtilizationPercentage / 100.0
        self.tolerance = float(spec.tolerance)
        self.idle = float(server.cpu_idle_fraction)
        # Prior CPU cost per (rps per pod) from the server's declared capacity (workers x rate);
        # replaced by what the fleet shows as soon as it has samples.
        self.beta = (1.0 - self.idle) / (server.workers * server.capacity_rps)
        self._beta_known = False
        self._sum = 0.0
        self._n = 0
        self.last: PredictiveAdvice | None = None
        #: One row per sync (RECORD_FIELDS): what the scaler saw, forecast and did, beside what
        #: the HPA alone recommended; the detail view's counterfactual.
        self.record: deque[tuple[float, ...]] = deque(maxlen=RECORD_SYNCS)
        # The forecasts at lead time made at the last syncs: the oldest targeted this sample.
        self._made: deque[float] = deque(maxlen=self.forecaster.horizon)
        self._sample = math.nan
        self._warm(level, seed, profile.traffic.noise, warm_seasons)

    # ------------------------------------------------------------------ learning

    def _warm(self, level: Callable[[float], float], seed: int, noise: float,
              seasons: float) -> None:
        """Pre-train on the traffic pattern of the days before t=0, with seeded noise."""
        f = self.forecaster
        steps = int((f.season_steps or 0) * seasons) + 4 * f.horizon
        if steps <= 0:
            return
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x9F0CA5])
        eps = rng.standard_normal(steps)
        tracked = 16 * ERROR_HALF_LIFE_STEPS + f.horizon
        for k in range(steps, 0, -1):
            t = -k * self.step_s + self.step_s / 2
            f.learn(level(t) * max(0.0, 1.0 + noise * eps[steps - k]), track=k <= tracked)

    def observe(self, offered_rps: float, cpu: float, ready: int) -> None:
        """One tick of the estate: accumulate the sample and learn what a request costs."""
        self._sum += offered_rps
        self._n += 1
        if ready > 0 and offered_rps > 1.0 and self.idle < cpu < _SATURATED_CPU:
            sample = (cpu - self.idle) * ready / offered_rps
            self.beta = sample if not self._beta_known else 0.95 * self.beta + 0.05 * sample
            self._beta_known = True

    # ------------------------------------------------------------------ deciding

    def advise(self, current: int) -> PredictiveAdvice:
        """At an HPA sync: close the sample, learn it, and return the forecast's replica need."""
        self._sample = math.nan
        if self._n:
            self._sample = self._sum / self._n
            self.forecaster.learn(self._sample)
            self._sum, self._n = 0.0, 0
        forecast = self.forecaster.forecast()
        need: int | None = None
        if current > 0 and self.target > self.idle:
            load = self.beta * forecast.peak
            ratio = (self.idle + load / current) / self.target
            if ratio > 1.0 + self.tolerance:
                # Enough pods that the forecast's CPU stays inside the HPA's own dead band
                # (target x (1 + tolerance)), where the HPA would not act either.
                top = self.target * (1.0 + self.tolerance)
                need = math.ceil(load / (top - self.idle) - 1e-9)
        gated = forecast.confidence < self.min_confidence
        self.last = PredictiveAdvice(forecast, need, gated, self.beta)
        return self.last

    def note(self, t: float, hpa_replicas: int | None, replicas: int) -> None:
        """Record the sync just decided: the sample, the forecast made one lead time before
        for it, the replicas decided and the HPA's own recommendation on the same fleet."""
        advice = self.last
        if advice is None:
            return
        made = self._made[0] if len(self._made) == self._made.maxlen else math.nan
        self._made.append(advice.forecast.at_lead)
        self.record.append((
            t, self._sample, made, float(replicas),
            math.nan if hpa_replicas is None else float(hpa_replicas),
            math.nan if advice.need is None else float(advice.need),
            advice.forecast.confidence, float(advice.gated)))

    def recorded(self) -> dict[str, tuple[float, ...]]:
        """The record as columns (RECORD_FIELDS), oldest first."""
        rows = tuple(self.record)
        return {name: tuple(r[i] for r in rows) for i, name in enumerate(RECORD_FIELDS)}

    @property
    def forecast_rps(self) -> float | None:
        """The latest forecast of the request rate one lead time ahead."""
        return self.last.forecast.at_lead if self.last is not None else None

    def label(self) -> str:
        advice = self.last
        if advice is None:
            return "predictive (warming)"
        conf = f"{advice.forecast.confidence * 100:.0f}%"
        if advice.gated:
            return f"predictive {conf} (HPA fallback)"
        return f"predictive {conf}"

    def info(self) -> dict[str, Any]:
        advice = self.last
        if advice is None:
            return {"lead_s": self.lead_s}
        fc = advice.forecast
        return {
            "lead_s": self.lead_s, "model": fc.model, "confidence": round(fc.confidence, 4),
            "forecast_rps": fc.at_lead, "forecast_peak_rps": fc.peak, "need": advice.need,
            "gated": advice.gated, "min_confidence": self.min_confidence,
            "errors": {n: round(self.forecaster.recent_error(n), 4)
                       for n in self.forecaster.models},
            "record": self.recorded(),
        }
