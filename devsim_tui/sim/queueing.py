"""Queueing formulas (Erlang C / M/M/c) and the per-server latency table the engine interpolates.

All servers of a profile share the number of workers c, so the response-time distribution of a
server, measured in units of its mean service time, depends on its utilisation alone. The table is
built once per engine (bisection over a grid of utilisations); a tick then costs a few `np.interp`
calls whatever the fleet size. Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RHO_MAX = 0.995  # above this the steady-state model is replaced by the backlog model


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits, for c servers and offered load a = lambda/mu Erlangs."""
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    # Iterative Erlang B then convert: stable for large c, no factorials.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def _erlang_c_vec(c: int, a: np.ndarray) -> np.ndarray:
    b = np.ones_like(a)
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return np.where(a >= c, 1.0, b / (1.0 - rho + rho * b))


def _survival(x: np.ndarray, pwait: np.ndarray, k: np.ndarray) -> np.ndarray:
    """P(R > x) for R = S + Wq in units of the mean service time.

    S ~ Exp(1); Wq is 0 with probability 1-C and Exp(k) otherwise, k = c(1-rho). The sum of two
    exponentials is hypoexponential; k == 1 is its Erlang-2 limit.
    """
    same = np.abs(k - 1.0) < 1e-9
    kk = np.where(same, 2.0, k)
    hypo = (kk * np.exp(-x) - np.exp(-kk * x)) / (kk - 1.0)
    hypo = np.where(same, np.exp(-x) * (1.0 + x), hypo)
    return (1.0 - pwait) * np.exp(-x) + pwait * hypo


def _quantile(q: float, pwait: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Response-time quantile q in service-time units, by bisection on the survival function."""
    target = 1.0 - q
    lo = np.zeros_like(pwait)
    hi = np.full_like(pwait, 1.0)
    # Grow the bracket until it contains the quantile everywhere.
    while True:
        short = _survival(hi, pwait, k) > target
        if not short.any():
            break
        hi = np.where(short, hi * 2.0, hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = _survival(mid, pwait, k) > target
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class MMC:
    """Steady-state M/M/c figures (times in seconds)."""

    lam: float
    mu: float
    c: int
    rho: float
    C: float
    Wq: float
    W: float
    Lq: float
    L: float
    p50: float
    p99: float
    p99_wait: float


def mmc(lam: float, mu: float, c: int) -> MMC:
    """M/M/c with arrival rate lam, per-server service rate mu and c servers (requires rho < 1)."""
    if lam < 0 or mu <= 0 or c < 1:
        raise ValueError("need lam >= 0, mu > 0, c >= 1")
    a = lam / mu
    rho = a / c
    if rho >= 1:
        raise ValueError(f"unstable queue: rho = {rho:.3f} >= 1")
    C = erlang_c(c, a)
    theta = c * mu - lam
    Wq = C / theta
    W = Wq + 1.0 / mu
    pw = np.array([C])
    k = np.array([theta / mu])
    p50 = float(_quantile(0.50, pw, k)[0]) / mu
    p99 = float(_quantile(0.99, pw, k)[0]) / mu
    # P(Wq > t) = C e^{-theta t}
    p99_wait = math.log(C / 0.01) / theta if C > 0.01 else 0.0
    return MMC(lam, mu, c, rho, C, Wq, W, lam * Wq, lam * W, p50, p99, p99_wait)


class LatencyTable:
    """Mean, p50 and p99 response time (in service-time units) of an M/M/c server by utilisation."""

    def __init__(self, c: int, points: int = 2001):
        self.c = c
        # Denser near saturation, where latency bends upward.
        u = np.linspace(0.0, 1.0, points)
        self.rho = RHO_MAX * (1.0 - (1.0 - u) ** 2)
        a = self.rho * c
        pwait = _erlang_c_vec(c, a)
        k = c * (1.0 - self.rho)
        self.pwait = pwait
        self.mean = 1.0 + pwait / k
        self.p50 = _quantile(0.50, pwait, k)
        self.p99 = _quantile(0.99, pwait, k)

    def lookup(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, p50, p99) in service-time units for utilisations rho (clipped to the table)."""
        r = self.rho
        return (
            np.interp(rho, r, self.mean),
            np.interp(rho, r, self.p50),
            np.interp(rho, r, self.p99),
        )

    def wait_probability(self, rho: np.ndarray) -> np.ndarray:
        return np.interp(rho, self.rho, self.pwait)
