"""Univariate online anomaly scorer: the one implementation behind the CSV tool and `Detector`.

Each point is scored from the points before it only, then (maybe) learned. Cheap residual
models run side by side, because real incidents show up in different ways:

* step:     x - previous x              -> spikes and sudden jumps;
* level:    x - rolling median          -> values outside the recent operating range;
* seasonal: x - per-phase profile       -> a broken daily (or weekly) shape whose values stay
            in range (only when a seasonal period is known);
* smoothed seasonal: EW mean of the seasonal residual -> a whole day that is subtly off.

Each residual is divided by a robust scale of its own recent magnitudes (river rolling
quantiles), squashed to [0, 1) and the largest is the point's raw surprise. The raw surprise is
turned into a comparable score by `AnomalyLikelihood`. While a point is flagged the models learn
only every `flagged_learn_every`-th point, so an incident is not absorbed as the new normal but
a genuine permanent change is eventually accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from river import stats

from devsim_tui.detect.likelihood import AnomalyLikelihood


# A weekly profile is one float per point of the week; beyond this it costs more memory than a
# week-shaped series is worth (a 1 s tick would need 604800 slots per signal).
MAX_WEEKLY_POINTS = 100_000


# Residuals seen before a residual's scale is trusted; a model that starts late (the seasonal
# one needs a full cycle first) would otherwise judge its first residuals against almost nothing.
MIN_SCALE_SAMPLES = 30


@dataclass(frozen=True)
class ScorerConfig:
    """Hyper-parameters, chosen once for all series (see docs/detector.md for how)."""

    warmup: int = 250
    """Points learned before any score is reported (scores are 0 meanwhile)."""
    period: int | None = None
    """Seasonal period in points (e.g. one day); None disables the seasonal model."""
    level_window: int = 1000
    """Points in the rolling median / IQR that defines the normal operating range."""
    resid_window: int = 500
    """Points in the rolling quantile that scales each residual."""
    resid_quantile: float = 0.95
    """Which quantile of recent |residual| is the unit of surprise."""
    squash: float = 6.0
    """Residual (in scale units) that maps to a raw surprise of 0.5."""
    profile_rate: float = 0.5
    """Learning rate of the per-phase seasonal profile."""
    weekly: bool = True
    """Also learn a weekly profile (7 periods) once a week has been seen."""
    smooth_rate: float = 0.1
    """EW rate of the smoothed seasonal residual, which catches a day that is subtly off."""
    short: int = 5
    """Averaging window of the likelihood's recent surprise."""
    long: int = 8640
    """Number of past averages the likelihood's Gaussian is fitted to (Numenta's default
    `historicWindowSize`, not tuned here)."""
    threshold: float = 0.5
    """Score at or above which a point counts as anomalous (flagged)."""
    flagged_learn_every: int = 10
    """While flagged, learn only one point in this many."""
    suppress: int = 200
    """After an alert, `score_one` damps further alerts for this many points."""
    relative_floor: float = 1e-6
    """Smallest residual scale, as a share of the signal's level. Real series (NAB) carry
    sampling noise and keep the default; the simulation's signals are computed expectations,
    nearly flat in calm running, so its detector raises this (detector.py)."""
    direction: int = 0
    """Which departures are surprising: 0 both (a series whose meaning is unknown, NAB), +1
    only rises, -1 only falls. A latency, error rate or memory that falls is never a failure
    by itself (a crash that frees memory shows in restarts and errors), while the fall after
    a harmless rise (a scale-up spreading the load) would otherwise be flagged. The scales and
    the likelihood's usual surprise still learn every residual, both ways, so a one-sided
    series is judged against its whole variability and flags a subset of what it would
    two-sided."""


class _Residual:
    """Robust scale of one residual stream: the rolling quantile of its magnitude."""

    def __init__(self, window: int, quantile: float):
        self._q = stats.RollingQuantile(quantile, window_size=window)
        self._n = 0

    def z(self, residual: float, floor: float) -> float:
        if self._n < MIN_SCALE_SAMPLES:
            return 0.0
        return abs(residual) / max(self._q.get(), floor)

    def learn(self, residual: float) -> None:
        self._q.update(abs(residual))
        self._n += 1


class _Profile:
    """Expected value per phase of a cycle (exponentially weighted over past cycles)."""

    def __init__(self, period: int, rate: float):
        self._values: list[float | None] = [None] * period
        self._rate = rate

    def residual(self, n: int, x: float) -> float | None:
        expected = self._values[n % len(self._values)]
        return None if expected is None else x - expected

    def learn(self, n: int, x: float) -> None:
        phase = n % len(self._values)
        expected = self._values[phase]
        self._values[phase] = x if expected is None else expected + self._rate * (x - expected)


class SeriesScorer:
    """Online anomaly score of one numeric series.

    `update(x)` returns the anomaly score of x in [0, 1] given everything before it;
    `score_one(x)` does the same but damps repeated alerts for `suppress` points after an
    alert, which is what an alerting consumer (and the NAB benchmark) wants.
    """

    def __init__(self, config: ScorerConfig | None = None):
        self.config = cfg = config or ScorerConfig()
        self._n = 0
        self._prev: float | None = None
        self._median = stats.RollingQuantile(0.5, window_size=cfg.level_window)
        self._abs_level = stats.EWMean(0.01)
        self._step = _Residual(cfg.resid_window, cfg.resid_quantile)
        self._level = _Residual(cfg.resid_window, cfg.resid_quantile)
        self._seasonal = _Residual(cfg.resid_window, cfg.resid_quantile)
        self._daily = _Profile(cfg.period, cfg.profile_rate) if cfg.period else None
        self._weekly = (_Profile(7 * cfg.period, cfg.profile_rate)
                        if cfg.period and cfg.weekly and 7 * cfg.period <= MAX_WEEKLY_POINTS
                        else None)
        self._season_smooth = 0.0
        self._smooth = _Residual(cfg.resid_window, cfg.resid_quantile)
        self._likelihood = AnomalyLikelihood(cfg.short, cfg.long)
        self._flagged_run = 0
        self._since_alert: int | None = None
        self.flagged = False
        self.contributions: tuple[float, ...] = ()

    @property
    def warming_up(self) -> bool:
        return self._n < self.config.warmup

    def update(self, x: float) -> float:
        cfg = self.config
        x = float(x)
        # The floor on every scale is relative to the signal's magnitude: it keeps a perfectly
        # flat signal at zero surprise and makes its first departure stand out.
        floor = cfg.relative_floor * (abs(self._abs_level.get()) + 1e-3)
        if self._prev is None:
            self._prev = x
        step_r = x - self._prev
        level_r = x - self._median.get() if self._n else 0.0
        season_r = self._season_residual(x)
        if season_r is None:
            smooth_r = None
            season_zs = (0.0, 0.0)
        else:
            smooth_r = self._season_smooth + cfg.smooth_rate * (season_r - self._season_smooth)
            season_zs = (self._seasonal.z(season_r, floor), self._smooth.z(smooth_r, floor))
        squash = cfg.squash
        z1, z2 = self._step.z(step_r, floor), self._level.z(level_r, floor)
        z3, z4 = season_zs
        surprise = (z1 / (z1 + squash), z2 / (z2 + squash), z3 / (z3 + squash),
                    z4 / (z4 + squash))
        d = cfg.direction
        if d:
            # One-sided: a departure the harmless way counts as none, but the usual surprise
            # the likelihood learns stays two-sided: a yardstick learned from one side only
            # is calmer, and would make the harmful side more sensitive than two-sided.
            both = max(surprise)
            residuals = (step_r, level_r, season_r or 0.0, smooth_r or 0.0)
            surprise = tuple(u if d * r > 0.0 else 0.0 for u, r in zip(surprise, residuals))
            raw = max(surprise)
            score = self._likelihood.score(raw, learned=both)
        else:
            raw = max(surprise)
            score = self._likelihood.score(raw)
        self.contributions = surprise

        if self._n < cfg.warmup:  # warming_up
            score = 0.0
        self.flagged = score >= cfg.threshold
        self._flagged_run = self._flagged_run + 1 if self.flagged else 0
        # Thinned learning while flagged: see the module docstring.
        if not self.flagged or self._flagged_run % cfg.flagged_learn_every == 0:
            self._learn(x, step_r, level_r, season_r, smooth_r)
        # The smoothed residual is a filter state, not a model: it follows every point.
        if smooth_r is not None:
            self._season_smooth = smooth_r
        self._prev = x
        self._n += 1
        return score

    def _season_residual(self, x: float) -> float | None:
        """Residual against the seasonal model(s); None until a model has seen a full cycle.

        With a weekly model too, the smaller residual wins: a point is seasonally odd only if
        neither the daily nor the weekly shape explains it (weekends are normal)."""
        if self._daily is None:
            return None
        residual = self._daily.residual(self._n, x)
        if self._weekly is not None:
            weekly = self._weekly.residual(self._n, x)
            if weekly is not None and (residual is None or abs(weekly) < abs(residual)):
                residual = weekly
        return residual

    def _learn(self, x: float, step_r: float, level_r: float, season_r: float | None,
               smooth_r: float | None) -> None:
        self._likelihood.learn()
        self._median.update(x)
        self._abs_level.update(x)
        self._step.learn(step_r)
        self._level.learn(level_r)
        if season_r is not None and smooth_r is not None:
            self._seasonal.learn(season_r)
            self._smooth.learn(smooth_r)
        if self._daily is not None:
            self._daily.learn(self._n, x)
            if self._weekly is not None:
                self._weekly.learn(self._n, x)

    def score_one(self, x: float) -> float:
        score = self.update(x)
        if self._since_alert is not None:
            self._since_alert += 1
            if self._since_alert > self.config.suppress:
                self._since_alert = None
        if self._since_alert is not None:
            # Keep the ordering of scores but push repeats below any sensible threshold.
            return score * 0.1 * self.config.threshold
        if score >= self.config.threshold:
            self._since_alert = 0
        return score
