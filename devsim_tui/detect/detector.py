"""Multi-signal streaming detector used by the simulation: one `SeriesScorer` per signal.

Signals are scored independently (their scales and daily shapes differ too much to share one
model) and combined by taking the strongest: an incident usually starts in one or two signals,
and averaging would dilute it. A finding names the signals that drove it, strongest first, and
the time its episode began, so the UI can show one incident rather than a stream of alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from devsim_tui.detect.scorer import ScorerConfig, SeriesScorer

#: Residual scale floor of the simulation's detector, as a share of each signal's level.
SIM_RELATIVE_FLOOR = 0.01

# Ticks below threshold that end an episode: a score that dips for a moment inside one incident
# must not start a second one with a new `began_at`.
EPISODE_GAP_TICKS = 10

#: Consecutive flagged ticks before an episode is reported (like a Prometheus rule's `for:`).
#: A lone flagged tick on one wobbly signal (the worst server's p99 sampled once per update) is
#: the commonest false finding in the simulation; a real incident stays flagged. The finding's
#: `began_at` is still the first flagged tick.
CONFIRM_TICKS = 2


@dataclass(frozen=True)
class Finding:
    """An anomalous tick: score in [0, 1], drivers ranked by their own score."""

    t: float
    score: float
    began_at: float
    signals: tuple[str, ...]
    signal_scores: tuple[tuple[str, float], ...]
    kind: str = "anomaly"


class Detector:
    """Online anomaly detector over named signals, updated once per tick.

    `update(t, values)` returns a `Finding` for every tick whose combined score reaches the
    threshold after the warm-up, once `confirm` consecutive ticks have done so in the current
    episode, else None. Signals missing from `values` on a tick are simply
    not updated on that tick. `directions` makes a signal one-sided (+1: only a rise is
    surprising, -1: only a fall; `ScorerConfig.direction`).
    """

    def __init__(self, signals: list[str], warmup: int = ScorerConfig.warmup,
                 seasonal_period: int | None = None, config: ScorerConfig | None = None,
                 confirm: int = CONFIRM_TICKS, directions: Mapping[str, int] | None = None):
        if not signals:
            raise ValueError("Detector needs at least one signal")
        if len(set(signals)) != len(signals):
            raise ValueError("Detector signals must be unique")
        if warmup < 0:
            raise ValueError("warmup must be >= 0")
        if confirm < 1:
            raise ValueError("confirm must be >= 1")
        self.confirm = confirm
        # The engine's signals are expectations without sampling noise: a change under ~1% of a
        # signal's level (an error rate of 0.0500% vs 0.0503%) is not an anomaly.
        self.config = replace(config or ScorerConfig(relative_floor=SIM_RELATIVE_FLOOR),
                              warmup=warmup, period=seasonal_period)
        self.signals = list(signals)
        directions = dict(directions or {})
        unknown = set(directions) - set(self.signals)
        if unknown:
            raise KeyError(f"directions for unknown signals: {', '.join(sorted(unknown))}")
        if any(d not in (-1, 0, 1) for d in directions.values()):
            raise ValueError("a direction is -1 (falls), 0 (both) or +1 (rises)")
        #: signal -> which departures count (ScorerConfig.direction); absent: both
        self.directions = directions
        self._scorers = {name: SeriesScorer(replace(self.config,
                                                    direction=directions.get(name, 0)))
                         for name in self.signals}
        self._ticks = 0
        self._began_at: float | None = None
        self._quiet = 0
        self._run = 0  # consecutive flagged ticks
        self._confirmed = False  # the current episode has been reported

    @property
    def warmup_ticks(self) -> int:
        return self.config.warmup

    @property
    def warming_up(self) -> bool:
        return self._ticks < self.config.warmup

    def update(self, t: float, values: Mapping[str, float]) -> Finding | None:
        scores: dict[str, float] = {}
        for name, value in values.items():
            scorer = self._scorers.get(name)
            if scorer is None:
                raise KeyError(f"unknown signal {name!r}; known: {', '.join(self.signals)}")
            scores[name] = scorer.update(value)
        warming = self.warming_up
        self._ticks += 1
        if warming or not scores:
            return None
        threshold = self.config.threshold
        top = max(scores.values())
        if top < threshold:
            self._quiet += 1
            self._run = 0
            if self._quiet >= EPISODE_GAP_TICKS:
                self._began_at = None
                self._confirmed = False
            return None
        self._quiet = 0
        self._run += 1
        if self._began_at is None or not self._confirmed and self._run == 1:
            self._began_at = t
        if not self._confirmed:
            if self._run < self.confirm:
                return None
            self._confirmed = True
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], self.signals.index(kv[0])))
        drivers = tuple(name for name, score in ranked if score >= threshold)
        return Finding(t=t, score=top, began_at=self._began_at, signals=drivers,
                       signal_scores=tuple(ranked))
