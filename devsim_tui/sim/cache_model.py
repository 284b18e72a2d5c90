"""Analytical hit ratio of a cache under a Zipf workload (independent reference model).

Keys are ranked by popularity: key i (1..N) is requested with probability p_i = i^-a / H(N, a).
A cache holding C keys then hits with:

- LRU (Redis allkeys-lru / volatile-lru): Che's approximation. The characteristic time T (in
  requests) solves sum_i (1 - exp(-p_i T)) = C; key i is in the cache with probability
  1 - exp(-p_i T), so h = sum_i p_i (1 - exp(-p_i T)) (Che, Tung and Wang, IEEE JSAC 2002;
  Fricker, Robert and Roberts, ITC 2012).
- LFU (allkeys-lfu / volatile-lfu): a frequency-perfect policy keeps the C most popular keys,
  h = sum_{i<=C} p_i.
- RANDOM (allkeys-random / volatile-random / volatile-ttl): the same fixed point with the
  occupancy p_i T / (1 + p_i T) (Gelenbe 1973; Fricker et al. 2012).
- noeviction: the cache fills with whatever arrives first and then rejects writes; its contents
  are the keys seen before it filled.

Cold start: n requests after a flush, key i has been requested with probability 1 - exp(-p_i n),
so until the cache is full (n < T) every policy holds exactly those keys; after that it converges
to its steady state. The rank axis is cut into log-spaced bins, so every evaluation is a few
hundred vector operations whatever the key count (cheap per tick). Never imports the UI.
"""

from __future__ import annotations

import math

import numpy as np

LRU, LFU, RANDOM, NOEVICTION = "lru", "lfu", "random", "noeviction"
POLICY_KIND = {"allkeys-lru": LRU, "volatile-lru": LRU, "allkeys-lfu": LFU,
               "volatile-lfu": LFU, "allkeys-random": RANDOM, "volatile-random": RANDOM,
               "volatile-ttl": RANDOM, "noeviction": NOEVICTION}


class ZipfWorkload:
    """Zipf(a) popularity over `keys` keys, grouped in log-spaced rank bins."""

    def __init__(self, keys: int, exponent: float, bins: int = 600):
        self.keys = int(keys)
        self.exponent = float(exponent)
        edges = np.unique(np.round(np.geomspace(1, self.keys + 1, bins + 1)).astype(np.int64))
        if edges[-1] != self.keys + 1:
            edges = np.append(edges, self.keys + 1)
        lo, hi = edges[:-1], edges[1:]
        self.count = (hi - lo).astype(float)  # keys in each bin
        mass = self._partial(lo, hi)
        self.mass = mass / mass.sum()  # request share of each bin
        self.p = self.mass / self.count  # per-key probability (bin mean)
        self.lo = lo

    def _partial(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """sum_{i=lo}^{hi-1} i^-a: exact for small bins, the integral's midpoint rule else."""
        a = self.exponent
        out = np.empty(len(lo))
        for k, (l, h) in enumerate(zip(lo.tolist(), hi.tolist())):
            if h - l <= 64:
                out[k] = float(np.sum(np.arange(l, h, dtype=float) ** -a))
            elif abs(a - 1.0) < 1e-9:
                out[k] = math.log((h - 0.5) / (l - 0.5))
            else:
                out[k] = ((h - 0.5) ** (1 - a) - (l - 0.5) ** (1 - a)) / (1 - a)
        return out

    def top_mass(self, c: float) -> float:
        """Request share of the c most popular keys."""
        if c >= self.keys:
            return 1.0
        full = self.lo + self.count <= c + 1
        part = (~full) & (self.lo <= c)
        share = np.where(full, 1.0, np.where(part, (c + 1 - self.lo) / self.count, 0.0))
        return float(np.sum(self.mass * share))

    def characteristic_time(self, c: float, kind: str = LRU) -> float:
        """T (requests) where the expected occupancy equals c keys; inf if everything fits."""
        if c >= self.keys:
            return math.inf

        def occ(t: float) -> float:
            x = self.p * t
            if kind == RANDOM:
                return float(np.sum(self.count * x / (1.0 + x)))
            return float(np.sum(self.count * -np.expm1(-x)))

        lo, hi = 0.0, max(c, 1.0)
        while occ(hi) < c:
            hi *= 2.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if occ(mid) < c:
                lo = mid
            else:
                hi = mid
        return hi

    def steady(self, c: float, kind: str) -> float:
        """Steady-state hit ratio of a cache holding c keys."""
        if c >= self.keys:
            return 1.0
        if kind == LFU:
            return self.top_mass(c)
        t = self.characteristic_time(c, kind)
        if kind == RANDOM:
            x = self.p * t
            return float(np.sum(self.mass * x / (1.0 + x)))
        return float(np.sum(self.mass * -np.expm1(-self.p * t)))  # LRU, noeviction's fill

    def fill(self, n: float) -> tuple[float, float]:
        """(hit ratio, keys held) of a cache that has seen n requests since it was empty and
        never evicted."""
        got = -np.expm1(-self.p * max(n, 0.0))
        return float(np.sum(self.mass * got)), float(np.sum(self.count * got))


class CacheCurve:
    """Hit ratio against requests seen since a flush, for one capacity and policy."""

    def __init__(self, workload: ZipfWorkload, capacity_keys: float, kind: str):
        self.w = workload
        self.kind = kind
        self.capacity = float(capacity_keys)
        self.t_full = workload.characteristic_time(self.capacity, LRU)  # LRU fill = any fill
        self.steady = workload.steady(self.capacity, kind)
        if kind == NOEVICTION:
            self.steady = workload.fill(self.t_full)[0]
        self._warm_after: float | None = None

    def at(self, n: float) -> float:
        """Hit ratio after n requests since the cache (or this share of the key space) went
        cold."""
        if n >= self.t_full:
            if self.kind == LFU:
                # Frequent keys displace the others as their counts build up.
                top = self.w.top_mass(self.capacity)
                grown = self._top_fill(n)
                return max(min(grown, top), self.w.fill(self.t_full)[0])
            return self.steady
        return self.w.fill(n)[0]

    def _top_fill(self, n: float) -> float:
        c = self.capacity
        full = self.w.lo + self.w.count <= c + 1
        part = (~full) & (self.w.lo <= c)
        share = np.where(full, 1.0, np.where(part, (c + 1 - self.w.lo) / self.w.count, 0.0))
        return float(np.sum(self.w.mass * share * -np.expm1(-self.w.p * n)))

    def keys_held(self, n: float) -> float:
        return min(self.w.fill(min(n, self.t_full))[1], self.capacity)

    def warm_after(self) -> float:
        """Requests after which the curve is within 0.1 point of its steady state."""
        if self._warm_after is None:
            self._warm_after = self._find_warm()
        return self._warm_after

    def _find_warm(self) -> float:
        n = max(self.t_full, 1.0)
        while self.at(n) < self.steady - 1e-3 and n < 1e15:
            n *= 2.0
        return n
