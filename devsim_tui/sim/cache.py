"""The cache tier (experimental's Redis cluster): its hit ratio shapes the database read load.

Backend reads = reads x (1 - h) (shared/reference/sim_semantics.md §6): a flushed or cold cache
multiplies the database read load by 1/(1 - h). Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from devsim_tui.config.schema import CacheSpec
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
    warm_since: float = -1e12  # time the cache started (re)filling; far past = warm
    hit_ratio: float = 0.0
    failover_at: dict[str, float] = field(default_factory=dict)  # failed master -> takeover time

    @classmethod
    def build(cls, spec: CacheSpec, emit: Emit) -> Cache:
        cache = cls(spec=spec, emit=emit)
        masters = max(1, spec.nodes // 2)
        for i in range(spec.nodes):
            role = "master" if i < masters else "replica"
            master = f"redis-{(i - masters) % masters + 1}" if role == "replica" else None
            cache.nodes.append(CacheNode(name=f"redis-{i + 1}", role=role, master=master))
        cache.hit_ratio = spec.hit_ratio
        return cache

    def flush(self, t: float) -> None:
        self.warm_since = t
        self.emit(t, "cache.flushed", "cache flushed: every read misses until it refills",
                  "warning")

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

    def step(self, t: float, reads: float) -> float:
        """Advance one tick; returns the reads per second that miss and reach the database."""
        if self.failover_at:
            self._failovers(t)
        masters = [n for n in self.nodes if n.role == "master"]
        up = [n for n in masters if n.state == "running"]
        coverage = len(up) / len(masters) if masters else 0.0
        if coverage < 1.0 and self.spec.require_full_coverage:
            coverage = 0.0  # cluster-require-full-coverage: the cluster rejects every query
        # Refill follows an exponential approach: ~95% of the target after warmup_seconds.
        tau = self.spec.warmup_seconds / 3.0
        warm = 1.0 - math.exp(-max(t - self.warm_since, 0.0) / tau)
        self.hit_ratio = self.spec.hit_ratio * warm * coverage
        per = reads / len(up) if up else 0.0
        for n in self.nodes:
            n.ops = per if n in up else 0.0
        return reads * (1.0 - self.hit_ratio)

    def view(self) -> CacheView:
        return CacheView(
            technology=self.spec.technology, hit_ratio=self.hit_ratio,
            target_hit_ratio=self.spec.hit_ratio,
            nodes=tuple(CacheNodeView(n.name, n.state, n.role, n.ops,
                                      memory_pct=70.0 * self.hit_ratio / max(self.spec.hit_ratio,
                                                                             1e-9))
                        for n in self.nodes),
        )
