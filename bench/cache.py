"""ML admission vs LRU (and LFU) on a shifting Zipf workload: hit ratios side by side.

    .venv/bin/python bench/cache.py [--keys 20000] [--capacity 1000] [--requests 300000]
                                    [--phases 6] [--exponent 0.9] [--seed 1]

Workload: `keys` keys with Zipf(`exponent`) popularity; the request stream is cut into `phases`
equal phases and at each phase boundary the popularity ranks are re-drawn (a random
permutation): yesterday's hot keys are today's cold ones. Every cache holds `capacity` keys.

- LRU: Redis' allkeys-lru (exact LRU here).
- LFU: evicts the least-counted key; counts halve every 10 x capacity requests (Redis' LFU
  counters decay too, `lfu-decay-time`), so it can follow a shift.
- ML: LRU order for eviction candidates, plus an admission model learned online with river
  (`river.linear_model.LogisticRegression` over scaled features). For every request the model
  predicts whether the key is read again within the next `capacity` requests, from its
  decayed request count, the requests since its last read, and whether it was read before.
  Labels come from the stream itself: when a key is read again within the window the pending
  example is learned as positive; when the window passes, as negative. On a miss with a full
  cache, the newcomer is admitted only if its predicted reuse probability is at least the LRU
  victim's (the victim is otherwise kept and moved to the front, TinyLFU-style).

Prints the hit ratios per phase and overall, and the wall time. Results are written into
docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import heapq
import math
import time
from collections import OrderedDict, deque

import numpy as np
from river import compose, linear_model, optim, preprocessing


def workload(keys: int, exponent: float, n: int, phases: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.arange(1, keys + 1, dtype=float) ** -exponent
    p /= p.sum()
    per = n // phases
    out = []
    for _ in range(phases):
        ranks = rng.permutation(keys)  # rank r -> key ranks[r]
        out.append(ranks[rng.choice(keys, size=per, p=p)])
    return np.concatenate(out)


def lru(reqs: list[int], capacity: int) -> list[int]:
    cache: OrderedDict[int, None] = OrderedDict()
    hits = []
    for key in reqs:
        if key in cache:
            cache.move_to_end(key)
            hits.append(1)
            continue
        hits.append(0)
        cache[key] = None
        if len(cache) > capacity:
            cache.popitem(last=False)
    return hits


def lfu(reqs: list[int], capacity: int) -> list[int]:
    count: dict[int, float] = {}
    cached: set[int] = set()
    heap: list[tuple[float, int]] = []  # (count, key) of cached keys, lazily invalidated
    hits = []
    for k, key in enumerate(reqs):
        if k and k % (10 * capacity) == 0:
            count = {x: c / 2 for x, c in count.items() if c >= 1 or x in cached}
            heap = [(count[x], x) for x in cached]
            heapq.heapify(heap)
        count[key] = count.get(key, 0.0) + 1
        if key in cached:
            hits.append(1)
            heapq.heappush(heap, (count[key], key))
            continue
        hits.append(0)
        if len(cached) >= capacity:
            while True:
                c, victim = heap[0]
                if victim in cached and count[victim] == c:
                    break
                heapq.heappop(heap)
            if c >= count[key]:
                continue
            heapq.heappop(heap)
            cached.discard(victim)
        cached.add(key)
        heapq.heappush(heap, (count[key], key))
    return hits


class MLAdmission:
    """LRU with a river-learned admission filter."""

    def __init__(self, capacity: int, seed: int):
        self.capacity = capacity
        self.window = capacity
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(0.05)),
        )
        self.count: dict[int, float] = {}
        self.last: dict[int, int] = {}
        self.pending: dict[int, tuple[int, dict]] = {}
        self.queue: deque[tuple[int, int]] = deque()
        self.cache: OrderedDict[int, None] = OrderedDict()

    def features(self, key: int, k: int) -> dict:
        last = self.last.get(key)
        gap = (k - last) / self.window if last is not None else 50.0
        return {"freq": math.log1p(self.count.get(key, 0.0)),
                "gap": math.log1p(min(gap, 50.0)), "seen": 1.0 if last is not None else 0.0}

    def score(self, x: dict) -> float:
        return self.model.predict_proba_one(x).get(True, 0.0)

    def run(self, reqs: list[int]) -> list[int]:
        hits = []
        cache = self.cache
        for k, key in enumerate(reqs):
            if k and k % (10 * self.capacity) == 0:
                self.count = {x: c / 2 for x, c in self.count.items() if c >= 1}
            # Labels: a pending example of this key is a positive (read again in the window).
            prev = self.pending.pop(key, None)
            if prev is not None:
                self.model.learn_one(prev[1], True)
            while self.queue and self.queue[0][0] <= k - self.window:
                t0, old = self.queue.popleft()
                ex = self.pending.get(old)
                if ex is not None and ex[0] == t0:
                    del self.pending[old]
                    self.model.learn_one(ex[1], False)
            x = self.features(key, k)
            self.pending[key] = (k, x)
            self.queue.append((k, key))
            self.count[key] = self.count.get(key, 0.0) + 1
            self.last[key] = k
            if key in cache:
                cache.move_to_end(key)
                hits.append(1)
                continue
            hits.append(0)
            if len(cache) < self.capacity:
                cache[key] = None
                continue
            victim = next(iter(cache))
            if self.score(x) >= self.score(self.features(victim, k)):
                cache.popitem(last=False)
                cache[key] = None
            else:
                cache.move_to_end(victim)  # kept: it looks more likely to be read again
        return hits


def phase_ratios(hits: list[int], phases: int) -> list[float]:
    per = len(hits) // phases
    return [float(np.mean(hits[i * per:(i + 1) * per])) for i in range(phases)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--capacity", type=int, default=1_000)
    ap.add_argument("--requests", type=int, default=300_000)
    ap.add_argument("--phases", type=int, default=6)
    ap.add_argument("--exponent", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    reqs = workload(a.keys, a.exponent, a.requests, a.phases, a.seed).tolist()
    print(f"{a.requests} requests over {a.keys} keys, Zipf {a.exponent}, {a.phases} phases "
          f"(popularity re-drawn at each), capacity {a.capacity} keys, seed {a.seed}")
    results = {}
    for name, fn in (("LRU", lambda: lru(reqs, a.capacity)),
                     ("LFU (decayed)", lambda: lfu(reqs, a.capacity)),
                     ("ML (river admission)", lambda: MLAdmission(a.capacity, a.seed).run(reqs))):
        t0 = time.perf_counter()
        hits = fn()
        wall = time.perf_counter() - t0
        results[name] = hits
        per = " ".join(f"{r:.3f}" for r in phase_ratios(hits, a.phases))
        print(f"{name:22s} hit ratio {np.mean(hits):.3f}   per phase {per}   "
              f"({wall:.1f} s, {len(reqs) / wall / 1000:.0f}k req/s)")
    d = np.mean(results["ML (river admission)"]) - np.mean(results["LRU"])
    print(f"ML - LRU: {100 * d:+.1f} points")


if __name__ == "__main__":
    main()
