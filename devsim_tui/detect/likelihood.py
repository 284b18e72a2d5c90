"""Turn a stream of raw surprise values into an anomaly likelihood, NAB style.

A raw surprise (how badly the models explained the latest point) is not comparable across
series: a noisy signal is surprised all the time. Following Numenta's "anomaly likelihood"
(Ahmad et al., 2017), we instead ask how unusual the *recent average* surprise is compared with
the long-run distribution of that average on this very series. The long-run distribution is a
Gaussian fitted to a rolling window of past short-window averages (river rolling statistics),
so a series that is always a bit surprising stops alerting, while a burst of surprise on a
normally well-explained series stands out.
"""

from __future__ import annotations

import math
from collections import deque

from river import stats, utils

# Floors on the fitted distribution. Without them a perfectly predictable series (surprise
# always 0) would have zero variance and the first tiny wobble would look infinitely unlikely.
_MIN_MEAN = 0.03
_MIN_STD = 0.02
# log(1e-10): the likelihood is reported on a log scale so that 0.99999 and 0.9999999 differ.
_LOG_FLOOR = math.log(1e-10)


def log_likelihood(likelihood: float) -> float:
    """Map a likelihood in [0, 1] to [0, 1] on a log scale (Numenta's computeLogLikelihood)."""
    return min(1.0, max(0.0, math.log(1.0000000001 - likelihood) / _LOG_FLOOR))


class AnomalyLikelihood:
    """Short-versus-long window likelihood of the latest raw surprise values.

    `short` is the averaging window for the recent surprise, `long` the number of past averages
    the Gaussian is fitted to. Scoring and learning are separate calls so that the caller can
    leave the long-run statistics untouched during an incident: otherwise the incident would
    become the yardstick against which it is judged.
    """

    def __init__(self, short: int, long: int):
        self._recent: deque[float] = deque(maxlen=short)
        self._recent_sum = 0.0
        self._avg = 0.0
        # The surprise the long-run distribution learns, when it is not the scored one
        # (`score(raw, learned=...)`): its own recent window and average.
        self._ref: deque[float] = deque(maxlen=short)
        self._ref_sum = 0.0
        self._learn_avg = 0.0
        # One rolling variance also carries the rolling mean (Var.mean): half the bookkeeping.
        self._stats = utils.Rolling(stats.Var, window_size=long)
        self._var = self._stats.obj  # the wrapped Var (read directly: no __getattr__ hop)

    def score(self, raw: float, learned: float | None = None) -> float:
        """Log-scaled likelihood in [0, 1] of the latest raw surprise; nothing is learned.

        `learned`: the surprise the long-run distribution is to learn instead of `raw` (a
        one-sided scorer scores its harmful direction against the usual surprise of both)."""
        if len(self._recent) == self._recent.maxlen:
            self._recent_sum -= self._recent[0]
        self._recent.append(raw)
        self._recent_sum += raw
        self._avg = avg = self._recent_sum / len(self._recent)
        if learned is None:
            self._learn_avg = avg
        else:
            if len(self._ref) == self._ref.maxlen:
                self._ref_sum -= self._ref[0]
            self._ref.append(learned)
            self._ref_sum += learned
            self._learn_avg = self._ref_sum / len(self._ref)
        var = self._var
        mean = max(var.mean.get(), _MIN_MEAN)
        std = max(math.sqrt(max(var.get(), 0.0)), _MIN_STD)
        # Upper tail only: being *less* surprised than usual is never an anomaly.
        tail = 0.5 * math.erfc((avg - mean) / (std * math.sqrt(2.0)))
        return log_likelihood(1.0 - tail)

    def learn(self) -> None:
        """Add the latest recent-average to the long-run distribution."""
        self._stats.update(self._learn_avg)
