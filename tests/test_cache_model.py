"""The analytical cache model against real caches replaying sampled Zipf requests."""

from __future__ import annotations

import heapq
from collections import OrderedDict

import numpy as np
import pytest

from devsim_tui.sim.cache_model import LFU, LRU, RANDOM, CacheCurve, ZipfWorkload

KEYS, CAPACITY = 20_000, 1_000
WARMUP, MEASURED = 100_000, 300_000


def _requests(exponent: float, n: int, seed: int = 7) -> np.ndarray:
    ranks = np.arange(1, KEYS + 1, dtype=float)
    p = ranks ** -exponent
    return np.random.default_rng(seed).choice(KEYS, size=n, p=p / p.sum())


def _lru(reqs: np.ndarray) -> float:
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for k, key in enumerate(reqs.tolist()):
        if key in cache:
            cache.move_to_end(key)
            hits += k >= WARMUP
        else:
            cache[key] = None
            if len(cache) > CAPACITY:
                cache.popitem(last=False)
    return hits / (len(reqs) - WARMUP)


def _lfu(reqs: np.ndarray) -> float:
    """LFU over the whole access history (the counts survive eviction, as Redis' LFU counters
    approximate with their slow logarithmic growth): evict the least-counted cached key."""
    count: dict[int, int] = {}
    cached: set[int] = set()
    heap: list[tuple[int, int]] = []  # (count, key), lazily invalidated
    hits = 0
    for k, key in enumerate(reqs.tolist()):
        c = count.get(key, 0) + 1
        count[key] = c
        if key in cached:
            hits += k >= WARMUP
            heapq.heappush(heap, (c, key))
            continue
        if len(cached) >= CAPACITY:
            while True:
                vc, victim = heap[0]
                if victim in cached and count[victim] == vc:
                    break
                heapq.heappop(heap)
            if vc >= c:
                continue  # the newcomer is no more frequent than the least frequent held key
            heapq.heappop(heap)
            cached.discard(victim)
        cached.add(key)
        heapq.heappush(heap, (c, key))
    return hits / (len(reqs) - WARMUP)


def _random(reqs: np.ndarray) -> float:
    rng = np.random.default_rng(3)
    slots: list[int] = []
    where: dict[int, int] = {}
    hits = 0
    picks = rng.integers(0, CAPACITY, size=len(reqs)).tolist()
    for k, key in enumerate(reqs.tolist()):
        if key in where:
            hits += k >= WARMUP
            continue
        if len(slots) < CAPACITY:
            where[key] = len(slots)
            slots.append(key)
        else:
            i = picks[k]
            del where[slots[i]]
            slots[i] = key
            where[key] = i
    return hits / (len(reqs) - WARMUP)


@pytest.mark.parametrize("exponent", [0.8, 1.0])
def test_lru_and_lfu_match_a_reference_simulation_within_two_points(exponent):
    reqs = _requests(exponent, WARMUP + MEASURED)
    w = ZipfWorkload(KEYS, exponent)
    lru_model = CacheCurve(w, CAPACITY, LRU).steady
    lfu_model = CacheCurve(w, CAPACITY, LFU).steady
    lru_sim, lfu_sim = _lru(reqs), _lfu(reqs)
    assert abs(lru_model - lru_sim) < 0.02, (lru_model, lru_sim)
    assert abs(lfu_model - lfu_sim) < 0.02, (lfu_model, lfu_sim)
    assert lfu_sim > lru_sim + 0.03 and lfu_model > lru_model + 0.03  # LFU wins on IRM Zipf


def test_random_eviction_matches_a_reference_simulation():
    reqs = _requests(0.9, WARMUP + MEASURED)
    model = CacheCurve(ZipfWorkload(KEYS, 0.9), CAPACITY, RANDOM).steady
    assert abs(model - _random(reqs)) < 0.02


def test_cold_start_follows_the_requests_seen():
    """After a flush the hit ratio climbs with the requests seen and reaches the steady state."""
    reqs = _requests(0.9, 200_000)
    w = ZipfWorkload(KEYS, 0.9)
    curve = CacheCurve(w, CAPACITY, LRU)
    cache: OrderedDict[int, None] = OrderedDict()
    window_hits = []
    for k, key in enumerate(reqs.tolist()):
        if key in cache:
            cache.move_to_end(key)
            window_hits.append(1)
        else:
            window_hits.append(0)
            cache[key] = None
            if len(cache) > CAPACITY:
                cache.popitem(last=False)
    for start in (500, 2_000, 10_000):
        sim = float(np.mean(window_hits[start - 250:start + 250]))
        assert abs(curve.at(start) - sim) < 0.05, (start, curve.at(start), sim)
    assert curve.at(0) == 0.0
    assert curve.at(curve.warm_after()) == pytest.approx(curve.steady, abs=1e-3)
