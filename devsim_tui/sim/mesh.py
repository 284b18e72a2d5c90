"""Multi-master replication between regions: write conflicts, split brain, merges, geo-redundancy.

Every node of a multi-master cluster takes writes and ships them asynchronously to every other,
as BDR / pgEdge / EDB Postgres Distributed do (docs/data.md cites them). A write made on node i
reaches node j after the network transit between their regions plus j's WAL apply delay
(`window[i, j]`). Two writes to the same row made on different nodes conflict when neither had
seen the other: for writes on i at t_i and on j at t_j that is t_j - t_i in (-window[j, i],
window[i, j]). Conflicts are resolved by last-update-wins on the commit timestamp: the newer
write is kept and the older discarded (counted against the node that made it).

Writes are Poisson: node i writes lam_i rows/s, a share h of them uniformly over `hot_rows` = K
hot rows, the rest uniformly over the other rows (N). Per row, i writes at lam_i h / K, so the
expected rate at which i's write loses to a later, concurrent write of j is (exact for Poisson
streams, counting each conflicting pair once)

    R[i, j] = lam_i * lam_j * window[i, j] * (h^2 / K + (1 - h)^2 / N)

(i's write is the older of the pair when j writes within window[i, j] after it).
tests/test_mesh.py checks it against an independent Monte Carlo of the writes themselves.

A partition of the mesh (no write quorum in asynchronous multi-master) lets both sides keep
writing; when it heals every row written on both sides is a conflict. A row is written on side s
with probability 1 - exp(-x_s), x_s its expected writes there, so the merge finds
K (1 - e^-x_a)(1 - e^-x_b) hot rows (and the same over N cold rows) in conflict; the side whose
write to the row came last wins it. A node that goes down keeps the writes it acknowledged but
had shipped to no peer; they merge (and may conflict) when it rejoins. With `geo_redundancy`
off, a region outage loses the writes acknowledged only in that region.

Draws come from a generator of the mesh's own, spawned from the database's (spawning does not
advance it): turning conflicts on never shifts the database's other random draws. A tick costs a
few 5x5 array operations and one scalar Poisson draw (about 30 µs). Never imports the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from devsim_tui.sim import extensions

if TYPE_CHECKING:
    from devsim_tui.config.schema import DatabaseSpec
    from devsim_tui.sim.database import Node
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

Emit = Callable[..., object]


def conflict_rates(lam: np.ndarray, window: np.ndarray, hot_share: float, hot_rows: float,
                   cold_rows: float) -> np.ndarray:
    """R[i, j]: expected conflicts/s in which a write of node i loses (last-update-wins) to a
    concurrent write of node j (module docstring). `window[i, j]` is how long i's write takes
    to reach j; pairs that cannot conflict (same node, not connected) must have window 0."""
    per_row = hot_share ** 2 / hot_rows + ((1.0 - hot_share) ** 2 / cold_rows
                                           if cold_rows > 0 else 0.0)
    return np.outer(lam, lam) * window * per_row


def rows_written_on_both(x_a: float, x_b: float, rows: float) -> float:
    """Expected rows written on both sides, with x_s the expected writes per row on side s."""
    return rows * -math.expm1(-x_a) * -math.expm1(-x_b)


@dataclass
class Split:
    """A partition of the mesh: `cut` (a region's nodes) against the rest."""

    region: str
    cut: frozenset[str]
    since: float
    side: np.ndarray  # per node: 0 cut off, 1 the rest
    hot: np.ndarray = field(default_factory=lambda: np.zeros(2))  # writes per hot row, per side
    cold: np.ndarray = field(default_factory=lambda: np.zeros(2))
    writes: np.ndarray | None = None  # per node, since the split


@dataclass
class Stranded:
    """A down node's acknowledged writes that no peer had received when it went down."""

    writes: float
    since: float
    others_hot: float = 0.0  # writes per hot row the other nodes made since
    others_cold: float = 0.0


class Mesh:
    def __init__(self, spec: DatabaseSpec, nodes: list[Node], rng: np.random.Generator,
                 emit: Emit, one_way: Callable[[Node, Node], float]):
        self.spec = spec
        self.nodes = nodes
        self.rng = rng
        self.emit = emit
        n = len(nodes)
        self.index = {node.name: i for i, node in enumerate(nodes)}
        #: one-way network transit i -> j (location and regions, sim/database.py)
        self.transit = np.array([[0.0 if i == j else one_way(a, b) for j, b in enumerate(nodes)]
                                 for i, a in enumerate(nodes)])
        self.window = self.transit.copy()  # last tick's delivery delay i -> j
        self._connected = 1.0 - np.eye(n)  # a node never conflicts with itself
        self.conflicts = np.zeros(n, np.int64)  # writes of each node discarded by LWW
        self.merged = 0  # of those, found by merges (partition heals, rejoins)
        self.region_lost = 0.0  # writes lost with the storage of a region (geo_redundancy off)
        self.rate = 0.0  # expected conflicts/s at the last tick
        self.cold_rows = 0.0  # the rows outside the hot set (live rows - hot_rows)
        self.split: Split | None = None
        self.stranded: dict[str, Stranded] = {}
        self.last_merge: dict[str, Any] | None = None

    # ------------------------------------------------------------------ per tick

    def step(self, t: float, dt: float, live_rows: float) -> None:
        mm = self.spec.multi_master
        h, k = mm.hot_write_share, float(mm.hot_rows)
        cold_rows = self.cold_rows = max(live_rows - k, 0.0)
        nodes = self.nodes
        lam = np.array([n.write_qps if n.up else 0.0 for n in nodes])
        window = (self.transit + np.array([n.apply_delay_s for n in nodes])) * self._connected
        split = self.split
        if split is not None:
            window = window * (split.side[:, None] == split.side[None, :])
        self.window = window
        rates = conflict_rates(lam, window, h, k, cold_rows)
        self.rate = float(rates.sum())
        if self.rate > 0.0:
            # Independent Poisson counts per pair = a Poisson total split multinomially:
            # one scalar draw on most ticks (a few conflicts a minute), the split only if any.
            found = int(self.rng.poisson(self.rate * dt))
            if found:
                per_pair = self.rng.multinomial(found, rates.ravel() / self.rate)
                self.conflicts += per_pair.reshape(rates.shape).sum(axis=1)
        total = float(lam.sum())
        if split is not None:
            per_side = np.bincount(split.side, weights=lam, minlength=2)
            split.hot += h * per_side * dt / k
            if cold_rows > 0:
                split.cold += (1.0 - h) * per_side * dt / cold_rows
            split.writes += lam * dt
        for s in self.stranded.values():
            s.others_hot += h * total * dt / k
            if cold_rows > 0:
                s.others_cold += (1.0 - h) * total * dt / cold_rows

    def other_side_share(self, node: Node) -> float:
        """Share of the writes made where `node` cannot receive them (the other side of a
        split): they pile up as its replication backlog until the partition heals."""
        split = self.split
        if split is None:
            return 0.0
        side = split.side[self.index[node.name]]
        lam = np.fromiter((n.write_qps for n in self.nodes), float, len(self.nodes))
        total = float(lam.sum())
        return float(lam[split.side != side].sum()) / total if total > 0 else 0.0

    # ------------------------------------------------------------------ commit scope

    @property
    def split_brain(self) -> bool:
        """Partitioned with writers on both sides (async commits; under `majority` only a
        side that reaches a majority writes)."""
        split = self.split
        if split is None:
            return False
        sides = {int(split.side[self.index[n.name]])
                 for n in self.quorate([n for n in self.nodes if n.up])}
        return len(sides) == 2

    @property
    def majority(self) -> int:
        return len(self.nodes) // 2 + 1

    def quorate(self, writers: list[Node]) -> list[Node]:
        """The nodes whose commits can complete: all of them (`async`), or under `majority`
        those that reach a majority of the nodes (themselves included) that are up."""
        if self.spec.multi_master.commit_scope == "async":
            return writers
        up = [n for n in self.nodes if n.up]
        split = self.split
        out = []
        for w in writers:
            reach = up if split is None else [
                n for n in up if split.side[self.index[n.name]] == split.side[self.index[w.name]]]
            if len(reach) >= self.majority:
                out.append(w)
        return out

    def quorum_wait_s(self, writers: list[Node]) -> float:
        """Mean extra commit wait under `majority`: the round trip to the (majority - 1)-th
        nearest node that is up, averaged over the writers; 0 under `async`."""
        if self.spec.multi_master.commit_scope == "async" or not writers:
            return 0.0
        need = self.majority - 1
        up = [self.index[n.name] for n in self.nodes if n.up]
        waits = []
        for w in writers:
            i = self.index[w.name]
            rtts = sorted(2.0 * self.transit[i, j] for j in up if j != i)
            if len(rtts) >= need:
                waits.append(rtts[need - 1] if need > 0 else 0.0)
        return sum(waits) / len(waits) if waits else 0.0

    # ------------------------------------------------------------------ nodes going down

    def unshipped(self, node: Node, holders: list[Node]) -> float:
        """Writes `node` acknowledged that none of `holders` has received yet: those of the
        last delivery window to the nearest holder, plus what a split kept from them."""
        if self.spec.multi_master.commit_scope == "majority":
            return 0.0  # every acknowledged commit is on a majority of the nodes already
        i = self.index[node.name]
        wins = [self.window[i, self.index[h.name]] for h in holders
                if self.window[i, self.index[h.name]] > 0]
        recent = node.write_qps * min(wins) if wins else 0.0
        split = self.split
        if split is not None and split.writes is not None and any(
                split.side[self.index[h.name]] != split.side[i] for h in holders):
            recent = max(recent, float(split.writes[i]))
        return recent

    def node_down(self, t: float, node: Node) -> None:
        """A node stops (crash, restart): its unshipped writes wait on its disk."""
        if node.name in self.stranded:
            return
        peers = [n for n in self.nodes if n is not node and n.up]
        self.stranded[node.name] = Stranded(self.unshipped(node, peers), t)

    def region_down(self, t: float, region: str) -> float:
        """Before a region's nodes crash: with geo_redundancy their unshipped writes wait on
        the region's storage (merged on return); without it, the writes acknowledged only in
        the region are lost. Returns the writes lost."""
        inside = [n for n in self.nodes if n.region == region and n.up]
        outside = [n for n in self.nodes if n.region != region and n.up]
        if not inside:
            return 0.0
        if self.spec.geo_redundancy:
            for n in inside:
                self.stranded[n.name] = Stranded(self.unshipped(n, outside), t)
            waiting = sum(self.stranded[n.name].writes for n in inside)
            self.emit(t, "db.region.down",
                      f"region {region} down ({', '.join(n.name for n in inside)}): the "
                      f"surviving regions keep accepting writes; {waiting:,.0f} writes not yet "
                      f"replicated out of {region} wait on its geo-redundant storage",
                      "warning", region=region, waiting_writes=round(waiting))
            return 0.0
        lost = sum(self.unshipped(n, outside) for n in inside)
        for n in inside:
            self.stranded.pop(n.name, None)
        self.region_lost += lost
        self.emit(t, "db.region.data_lost",
                  f"region {region} down with geo_redundancy off: {lost:,.0f} writes "
                  f"acknowledged only in {region} ({', '.join(n.name for n in inside)}) and "
                  "not yet replicated are lost; the surviving regions keep accepting writes",
                  "critical" if lost > 0 else "warning", region=region, lost_writes=round(lost))
        return lost

    def rejoin(self, t: float, node: Node) -> int:
        """A node is back: its stranded writes merge with what the others wrote meanwhile;
        rows both wrote are conflicts its (older) writes lose. Returns the conflicts."""
        s = self.stranded.pop(node.name, None)
        if s is None or s.writes <= 0:
            return 0
        mm = self.spec.multi_master
        h, k = mm.hot_write_share, mm.hot_rows
        x_hot = h * s.writes / k
        p = -math.expm1(-x_hot) * -math.expm1(-s.others_hot)
        found = int(self.rng.binomial(k, min(p, 1.0)))
        if s.others_cold > 0:
            # Its cold writes hit distinct rows (far more rows than writes), each also written
            # by the others with probability 1 - exp(-others_cold).
            found += int(self.rng.poisson((1.0 - h) * s.writes * -math.expm1(-s.others_cold)))
        self.conflicts[self.index[node.name]] += found
        self.merged += found
        return found

    # ------------------------------------------------------------------ partitions

    def partition(self, t: float, region: str) -> str | None:
        if self.split is not None:
            return f"the mesh is already partitioned ({self.split.region} cut off)"
        cut = frozenset(n.name for n in self.nodes if n.region == region)
        if not cut:
            regions = sorted({n.region for n in self.nodes})
            return f"no database node in region {region!r} (regions: {', '.join(regions)})"
        if len(cut) == len(self.nodes):
            return f"every database node is in {region}: nothing to partition from"
        side = np.array([0 if n.name in cut else 1 for n in self.nodes], np.int64)
        self.split = Split(region, cut, t, side, writes=np.zeros(len(self.nodes)))
        rest = [n.name for n in self.nodes if n.name not in cut]
        if self.spec.multi_master.commit_scope == "async":
            how = ("asynchronous multi-master has no write quorum, so both sides keep "
                   "accepting writes (split brain)")
        else:
            small = min((cut, frozenset(rest)), key=len)
            how = (f"majority commit scope: the side of {', '.join(sorted(small))} cannot reach "
                   f"{self.majority} of {len(self.nodes)} nodes and rejects writes (no split "
                   "brain)" if len(small) < self.majority and len(self.nodes) - len(small)
                   >= self.majority else "majority commit scope: neither side reaches a "
                   "majority, writes fail on both")
        self.emit(t, "db.mesh.split",
                  f"mesh partitioned: {region} ({', '.join(sorted(cut))}) cut off from "
                  f"{', '.join(rest)}; {how}", "critical", region=region, cut=sorted(cut))
        return None

    def heal(self, t: float) -> int:
        """The partition ends: each side replays the other's writes; every row written on both
        sides is a conflict, won by the side that wrote it last. Returns the conflicts."""
        split = self.split
        if split is None:
            return 0
        self.split = None
        mm = self.spec.multi_master
        k = mm.hot_rows
        xa, xb = float(split.hot[0]), float(split.hot[1])
        found_hot = int(self.rng.binomial(k, min(-math.expm1(-xa) * -math.expm1(-xb), 1.0)))
        ya, yb = float(split.cold[0]), float(split.cold[1])
        found_cold = int(self.rng.poisson(rows_written_on_both(ya, yb, self.cold_rows)))
        found = found_hot + found_cold
        # Per row, the side that wrote last wins: the cut side loses with probability
        # (about) its share of the per-row write rate on the other side.
        lose_a = xb / (xa + xb) if xa + xb > 0 else 0.5
        a_lost = int(self.rng.binomial(found, lose_a)) if found else 0
        per_node = np.zeros(len(self.nodes), np.int64)
        for side, lost in ((0, a_lost), (1, found - a_lost)):
            members = np.flatnonzero(split.side == side)
            w = split.writes[members]
            if lost and w.sum() > 0:
                per_node[members] = self.rng.multinomial(lost, w / w.sum())
        self.conflicts += per_node
        self.merged += found
        seconds = t - split.since
        losers = ", ".join(f"{self.nodes[i].name} {int(c)}" for i, c in enumerate(per_node) if c)
        self.last_merge = {"t": t, "region": split.region, "seconds": round(seconds, 1),
                           "conflicts": found, "writes_cut": round(float(
                               split.writes[split.side == 0].sum())),
                           "writes_rest": round(float(split.writes[split.side == 1].sum()))}
        self.emit(t, "db.mesh.merged",
                  f"partition healed after {seconds:.0f}s: merging the split brain found "
                  f"{found:,} rows written on both sides; last-update-wins kept the newer "
                  f"write of each and discarded {found:,}" + (f" ({losers})" if losers else ""),
                  "warning" if found else "info", region=split.region, conflicts=found,
                  seconds=round(seconds, 1))
        return found

    # ------------------------------------------------------------------ views

    @property
    def total(self) -> int:
        return int(self.conflicts.sum())

    def view(self) -> dict[str, Any]:
        regions: dict[str, list[str]] = {}
        for n in self.nodes:
            regions.setdefault(n.region, []).append(n.name)
        return {"location": self.spec.location, "geo_redundancy": self.spec.geo_redundancy,
                "regions": regions, "conflicts": self.total,
                "conflicts_per_s": round(self.rate, 4), "merged": self.merged,
                "by_node": {n.name: int(c) for n, c in zip(self.nodes, self.conflicts)},
                "commit_scope": self.spec.multi_master.commit_scope,
                "partition": None if self.split is None else {
                    "region": self.split.region, "cut": sorted(self.split.cut),
                    "since": self.split.since},
                "split_brain": self.split_brain,
                "stranded_writes": round(sum(s.writes for s in self.stranded.values())),
                "region_lost_writes": round(self.region_lost), "last_merge": self.last_merge}


class MeshController:
    """Engine extension: the multi-master mesh's state in every snapshot
    (`extensions["MeshController"]`, None unless the database is multi-master). Registered by
    sim/backup.py with the rest of the data tier's controllers. The mesh itself steps inside
    the database's tick (it needs the tick's per-node writes and apply delays)."""

    commands: tuple = ()
    state_key = extensions.MESH

    def __init__(self, engine: Engine):
        self.engine = engine

    def apply(self, cmd: Any) -> str | None:
        return f"{type(cmd).__name__} is not a mesh command"

    def before_tick(self, t: float) -> None:
        pass

    def after_tick(self, t: float, agg: Aggregates) -> None:
        pass

    def state(self) -> dict | None:
        mesh = self.engine.db.mesh
        return mesh.view() if mesh is not None else None
