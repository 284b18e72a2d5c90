"""The cache tier (experimental's Redis cluster): its hit ratio shapes the database read load.

Backend reads = reads x (1 - h): a flushed or cold cache multiplies the database read load by
1/(1 - h). The hit ratio comes from a workload model (sim/cache_model.py): Zipf key popularity
over `keys` keys, a capacity of maxmemory / value size, and the eviction policy of
`maxmemory_policy`. A flush empties the cache; a hot-key shift moves a share of the request mass
onto keys the cache does not hold. Each such cold share refills with the requests it receives
(so recovery is faster under more traffic), and the hit ratio is the mass-weighted mix of the
warm part and the refilling parts. Never imports the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from devsim_tui.config.schema import CacheSpec
from devsim_tui.sim.cache_model import POLICY_KIND, CacheCurve, ZipfWorkload
from devsim_tui.sim.snapshot import CacheNodeView, CacheView

Emit = Callable[..., object]


@dataclass
class CacheNode:
    name: str
    role: str  # master | replica
    state: str = "running"
    ops: float = 0.0
    master: str | None = None  # a replica's master


@dataclass
class Cache:
    spec: CacheSpec
    emit: Emit
    nodes: list[CacheNode] = field(default_factory=list)
    curve: CacheCurve | None = None
    # Cold shares of the request mass still refilling: [mass share, requests seen since].
    # The rest of the mass (1 - sum of shares) is warm.
    cold: list[list[float]] = field(default_factory=list)
    hit_ratio: float = 0.0
    keys_held: float = 0.0
    failover_at: dict[str, float] = field(default_factory=dict)  # failed master -> takeover time

    @classmethod
    def build(cls, spec: CacheSpec, emit: Emit) -> Cache:
        cache = cls(spec=spec, emit=emit)
        masters = max(1, spec.nodes // 2)
        for i in range(spec.nodes):
            role = "master" if i < masters else "replica"
            master = f"redis-{(i - masters) % masters + 1}" if role == "replica" else None
            cache.nodes.append(CacheNode(name=f"redis-{i + 1}", role=role, master=master))
        kind = "ml" if spec.optimization == "ml" else POLICY_KIND[spec.maxmemory_policy]
        capacity = spec.maxmemory_mb * 1024.0 / spec.value_kb
        cache.curve = CacheCurve(ZipfWorkload(spec.keys, spec.zipf_exponent), capacity,
                                 "lfu" if kind == "ml" else kind)
        cache.hit_ratio = cache.curve.steady
        cache.keys_held = cache.curve.keys_held(float("inf"))
        return cache

    @property
    def steady_hit_ratio(self) -> float:
        """The warm cache's hit ratio for this workload, capacity and policy."""
        return self.curve.steady

    def flush(self, t: float) -> None:
        self.cold = [[1.0, 0.0]]
        self.emit(t, "cache.flushed", "cache flushed: every read misses until it refills",
                  "warning")

    def shift(self, t: float, share: float) -> None:
        """A share of the request mass moves to keys the cache does not hold (a new hot set:
        a viral item, a new day's keys, a deploy that renames keys)."""
        self.cold = [[w * (1.0 - share), n] for w, n in self.cold]
        self.cold.append([share, 0.0])
        self.emit(t, "cache.hot_key_shift", f"{share:.0%} of the reads moved to keys the cache "
                  "does not hold: they miss until the cache learns them", "warning",
                  share=round(share, 4))

    def node(self, name: str) -> CacheNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def fail_node(self, t: float, name: str) -> str | None:
        """A node goes down. A master's replica takes over after cluster-node-timeout (+ ~1 s of
        election); until then its slots are uncovered (sim_semantics.md §6)."""
        node = self.node(name)
        if node is None:
            return f"no cache node '{name}'"
        if node.state != "running":
            return f"{name} is already down"
        node.state = "down"
        if node.role == "master":
            self.failover_at[name] = t + self.spec.node_timeout_ms / 1000.0 + 1.0
        self.emit(t, "cache.node.down", f"{name} ({node.role}) down", "error", name)
        return None

    def recover_node(self, t: float, name: str) -> None:
        node = self.node(name)
        if node is None or node.state == "running":
            return
        node.state = "running"
        self.failover_at.pop(name, None)
        self.emit(t, "cache.node.up", f"{name} back as {node.role}", "info", name)

    def _failovers(self, t: float) -> None:
        for name, at in list(self.failover_at.items()):
            if t < at:
                continue
            del self.failover_at[name]
            old = self.node(name)
            new = next((n for n in self.nodes if n.master == name and n.state == "running"), None)
            if old is None or new is None:
                self.emit(t, "cache.failover.blocked", f"{name} has no running replica: its "
                          "slots stay uncovered", "critical", name)
                continue
            new.role, new.master = "master", None
            old.role, old.master = "replica", new.name
            self.emit(t, "cache.failover", f"{new.name} promoted in place of {name}", "warning",
                      new.name)

    def step(self, t: float, reads: float, dt: float = 1.0) -> float:
        """Advance one tick; returns the reads per second that miss and reach the database."""
        if self.failover_at:
            self._failovers(t)
        masters = [n for n in self.nodes if n.role == "master"]
        up = [n for n in masters if n.state == "running"]
        coverage = len(up) / len(masters) if masters else 0.0
        if coverage < 1.0 and self.spec.require_full_coverage:
            coverage = 0.0  # cluster-require-full-coverage: the cluster rejects every query
        curve = self.curve
        h = curve.steady
        held = curve.keys_held(float("inf"))
        if self.cold:
            # Each cold share receives its mass of the reads and refills with them.
            served = reads * dt * coverage
            done = curve.warm_after()
            warm = 1.0 - sum(w for w, _ in self.cold)
            h, held = warm * h, warm * held
            for seg in self.cold:
                seg[1] += served
                h += seg[0] * curve.at(seg[1])
                held += seg[0] * curve.keys_held(seg[1])
            self.cold = [seg for seg in self.cold if seg[1] < done]
            if not self.cold:
                self.emit(t, "cache.warm", f"cache warm again: hit ratio {h:.1%}", "info")
        self.keys_held = held
        self.hit_ratio = h * coverage
        per = reads / len(up) if up else 0.0
        for n in self.nodes:
            n.ops = per if n in up else 0.0
        return reads * (1.0 - self.hit_ratio)

    def view(self) -> CacheView:
        return CacheView(
            technology=self.spec.technology, hit_ratio=self.hit_ratio,
            target_hit_ratio=self.spec.hit_ratio,
            nodes=tuple(CacheNodeView(n.name, n.state, n.role, n.ops,
                                      memory_pct=self.memory_pct) for n in self.nodes),
        )

    @property
    def memory_pct(self) -> float:
        """Used memory against maxmemory: keys held x value size (slots spread evenly)."""
        return 100.0 * self.keys_held * self.spec.value_kb / (self.spec.maxmemory_mb * 1024.0)
