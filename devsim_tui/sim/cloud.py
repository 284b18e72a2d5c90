"""Pods placed in regions of clouds, and what Kubernetes does when a region's nodes go silent.

Every region (`app.regions`) is a cluster of nodes in one cloud (config/clouds.py maps them)
that holds a fixed number of pods; a pod's region adds its network latency to the requests
routed to it, and requests the ingress cloud's load balancer sends to another cloud cross
clouds: their bytes are egress, counted and priced per cloud.

A region outage (`chaos region-outage`) runs the node lifecycle controller's timeline
(https://kubernetes.io/docs/concepts/architecture/nodes/#node-controller):
  * at once: the region's nodes and containers are gone, but the API still lists their pods
    Ready, so the load balancer keeps routing to them and those requests time out;
  * after node-monitor-grace-period (40 s): the nodes are NotReady, their pods Ready=False and
    out of the endpoints (traffic shifts to the other regions); the nodes get the taint
    node.kubernetes.io/unreachable:NoExecute;
  * tolerationSeconds later (300 s, the DefaultTolerationSeconds default): the pods are
    evicted (taint-based eviction). Their deletion hangs on the unreachable nodes (they show
    as evicted) but the ReplicaSet no longer counts them and creates replacements, which the
    scheduler binds to regions with room, or leaves Pending;
  * when the region returns: its nodes are Ready, evicted pods finish terminating, pods not yet
    evicted restart there; nothing moves back by itself.
Per-tick work is nothing while every region is up and no pod is Pending, plus one bincount
for the egress counters in a multi-cloud estate. Deterministic (no random draws). Never
imports the UI.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from devsim_tui.config.clouds import Placement, resolve
from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register
from devsim_tui.sim.snapshot import (
    CRASHED, DRAINING, EVICTED, NOTREADY, PENDING, READY, STARTING, TERMINATED,
)

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

BYTES_PER_KB = 1000.0  # the profile's request_kb_in / response_kb_out (as the network gauges)
BYTES_PER_GB = 1e9
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable:NoExecute"


def _count_msg(counts: dict[str, int]) -> str:
    return ", ".join(f"{r} {n}" for r, n in counts.items() if n)


class CloudController:
    """Region health, taint-based eviction, scheduling of Pending pods, cross-cloud egress."""

    state_key = extensions.CLOUD
    commands: tuple = ()

    def __init__(self, engine: Engine):
        self.engine = engine
        self.placement: Placement = resolve(engine.profile)
        p = self.placement
        n = len(p.regions)
        fleet = engine.fleet
        fleet.capacity = np.array(p.capacity, np.int64)
        if any(p.latency_ms):
            fleet.region_ms = np.array(list(p.latency_ms) + [0.0])
        self.down_at = np.full(n, math.nan)  # when each region went down (nan: up)
        self.notready = np.zeros(n, bool)  # nodes NotReady, tainted unreachable:NoExecute
        self.evicted_at = np.full(n, math.nan)  # when its pods were evicted
        self._outages = 0
        self.evictions = 0  # pods evicted since the start
        self.rescheduled = 0  # replacements of evicted pods bound to a region
        self._owed = 0  # evicted pods whose replacements are not yet bound
        self._id_mark = 0  # pods with ids from here on were created after an eviction
        self._last_pending = 0
        self._tried: tuple[np.ndarray, set[int]] | None = None  # fleet seen by the last retry
        # Cross-cloud egress: per region, whether its traffic crosses clouds; counters by cloud.
        cross = np.array(p.cross_cloud(), bool)
        self.cross = cross if cross.any() else None
        self.cloud_names = tuple(dict.fromkeys(c for c in p.clouds if c))
        self._cloud_of = np.array([self.cloud_names.index(c) if c else -1 for c in p.clouds])
        self.egress_bytes = np.zeros(len(self.cloud_names))
        self.egress_usd = np.zeros(len(self.cloud_names))
        self.egress_rate_bps = 0.0  # bytes per second crossing clouds, last tick
        self._price = np.array([p.egress_usd_per_gb[p.clouds.index(c)]
                                for c in self.cloud_names]) / BYTES_PER_GB
        self._ingress = self.cloud_names.index(p.ingress) if p.ingress in self.cloud_names \
            else -1
        # Bytes per request routed to each region (and "no region", the last row), by the cloud
        # they leave: the request from the ingress cloud, the response from the pod's.
        spec = engine.profile.app.server
        nc = len(self.cloud_names)
        self._weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._req_to_cloud = np.zeros((n + 1, nc))
        self._resp_to_cloud = np.zeros((n + 1, nc))
        for r in np.flatnonzero(cross).tolist():
            if self._ingress >= 0:
                self._req_to_cloud[r, self._ingress] = spec.request_kb_in * BYTES_PER_KB
            self._resp_to_cloud[r, self._cloud_of[r]] = spec.response_kb_out * BYTES_PER_KB

    # ------------------------------------------------------------------ chaos' region outage

    def region_down(self, t: float, r: int) -> np.ndarray:
        """The region's nodes and containers are gone; returns the pods bound there. They
        stay as the API last saw them (Ready ones keep their endpoints) until the grace period
        ends; in-flight requests die with them."""
        f = self.engine.fleet
        s = f.state
        mask = (f.region == r) & ((s == READY) | (s == STARTING) | (s == CRASHED))
        f.reset(mask)
        f.freeze(mask)
        f.regions_down = f.regions_down | {r}
        if math.isnan(self.down_at[r]):  # a second outage of a down region changes nothing
            self._outages += 1
            self.down_at[r] = t
        return mask

    def region_up(self, t: float, r: int) -> None:
        """The region's nodes report again: Ready, untainted. Evicted pods finish deleting;
        pods not yet evicted restart on their nodes."""
        e = self.engine
        f = e.fleet
        name = self.placement.regions[r]
        if not math.isnan(self.down_at[r]):
            self._outages -= 1
        was_notready = bool(self.notready[r])
        self.down_at[r] = math.nan
        self.notready[r] = False
        self.evicted_at[r] = math.nan
        f.regions_down = f.regions_down - {r}
        here = f.region == r
        s = f.state
        gone = here & (s == EVICTED)
        f.terminate(gone)
        back = here & ((s == READY) | (s == STARTING) | (s == CRASHED) | (s == NOTREADY))
        f.set_state(back, CRASHED, t)  # the kubelet restarts them at the next lifecycle step
        if was_notready:
            e.emit(t, "node.ready", f"{name}: nodes Ready again, taint {UNREACHABLE_TAINT} "
                   f"removed; {int(gone.sum())} evicted pods deleted, {int(back.sum())} pods "
                   "restart there; nothing moves back by itself", "info", name,
                   region=name, restarted=int(back.sum()), deleted=int(gone.sum()))

    # ------------------------------------------------------------------ tick

    def before_tick(self, t: float) -> None:
        if self._outages:
            self._timeline(t)
        f = self.engine.fleet
        # Pending pods are retried when room may have appeared: a pod changed state or left
        # (the state column is replaced on every change), or a region came back.
        if f.pending and (self._tried is None or self._tried[0] is not f.state
                          or self._tried[1] != f.regions_down):
            placed = f.schedule_pending(t, self.engine.profile.app.server.startup_seconds)
            self._tried = (f.state, f.regions_down)
            if len(placed):
                self._replacements(t, placed, "Pending pods scheduled")

    def _timeline(self, t: float) -> None:
        e = self.engine
        f = e.fleet
        p = self.placement
        for r in np.flatnonzero(~np.isnan(self.down_at)).tolist():
            name = p.regions[r]
            if not self.notready[r] and t >= self.down_at[r] + p.grace_s:
                self.notready[r] = True
                s = f.state
                mask = (f.region == r) & ((s == READY) | (s == STARTING) | (s == CRASHED))
                f.reset(mask)
                f.set_state(mask, NOTREADY)
                n = int(mask.sum())
                e.emit(t, "node.not_ready",
                       f"{name}: nodes NotReady (no status for {p.grace_s:g} s, "
                       f"node-monitor-grace-period): {n} pods Ready=False, removed from the "
                       f"endpoints; taint {UNREACHABLE_TAINT}, evictions in "
                       f"{p.toleration_s:g} s", "error", name, region=name, pods=n)
            if self.notready[r] and math.isnan(self.evicted_at[r]) \
                    and t >= self.down_at[r] + p.grace_s + p.toleration_s:
                self.evicted_at[r] = t
                mask = (f.region == r) & (f.state == NOTREADY)
                f.set_state(mask, EVICTED)
                n = int(mask.sum())
                self.evictions += n
                if not self._owed:
                    self._id_mark = f.next_id
                self._owed += n
                names = [f.names[i] for i in np.flatnonzero(mask)]
                e.emit(t, "pod.evicted",
                       f"{name}: {n} pods evicted ({UNREACHABLE_TAINT} tolerated for "
                       f"{p.toleration_s:g} s); they stay Terminating on the unreachable nodes "
                       "and the ReplicaSet replaces them", "error", name, region=name, pods=n,
                       servers=names[:50])

    def after_tick(self, t: float, agg: Aggregates) -> None:
        e = self.engine
        f = e.fleet
        if self.cross is not None and len(f):
            self._egress(e.dt)
        if self._owed:
            new = np.flatnonzero((f.started_at == t) & (f.state == STARTING)
                                 & (f.ids >= self._id_mark))
            if len(new):
                self._replacements(t, new, "pods scheduled")
        pending = f.pending
        if pending > self._last_pending:
            e.emit(t, "pod.pending", f"FailedScheduling: {pending} pods Pending: "
                   f"{self._why_unschedulable()}", "warning", None, pending=pending)
        elif pending == 0 and self._last_pending:
            e.emit(t, "pod.pending.cleared", "no pod Pending any more", "info")
        self._last_pending = pending

    def _replacements(self, t: float, idx: np.ndarray, what: str) -> None:
        """Pods (fleet rows) just bound to a region; while replacements of evicted pods are
        owed, those created after the eviction count as rescheduled."""
        f = self.engine.fleet
        if self._owed:
            new = idx[f.ids[idx] >= self._id_mark][:self._owed]
            if len(new):
                self._owed -= len(new)
                self.rescheduled += len(new)
                self._bound(t, new, "replacements of evicted pods scheduled", True)
                idx = np.setdiff1d(idx, new)
        if len(idx):
            self._bound(t, idx, what)

    def _bound(self, t: float, idx: np.ndarray, what: str, rescheduled: bool = False) -> None:
        f = self.engine.fleet
        regions = self.placement.regions
        counts: dict[str, int] = {}
        for r in f.region[idx].tolist():
            counts[regions[r]] = counts.get(regions[r], 0) + 1
        names = [f.names[i] for i in idx.tolist()]
        self.engine.emit(t, "pod.rescheduled" if rescheduled else "pod.scheduled",
                         f"{len(idx)} {what}: {_count_msg(counts)}", "info",
                         names[0] if len(names) == 1 else None, regions=counts,
                         servers=names[:50])

    def _why_unschedulable(self) -> str:
        """kube-scheduler's reason, per region: down or full."""
        f = self.engine.fleet
        used = self._bound_counts()
        parts = []
        for r, name in enumerate(self.placement.regions):
            if r in f.regions_down:
                parts.append(f"{name} unreachable")
            elif used[r] >= f.capacity[r]:
                parts.append(f"{name} full ({used[r]}/{f.capacity[r]} pods)")
        return "0 regions with room (" + ", ".join(parts) + ")" if parts else "no room"

    def _bound_counts(self) -> np.ndarray:
        f = self.engine.fleet
        s = f.state
        bound = (s != TERMINATED) & (s != PENDING)
        n = len(self.placement.regions)
        return np.bincount(f.region[bound], minlength=n + 1)[:n]

    def _egress(self, dt: float) -> None:
        """Requests the ingress sends to another cloud: the request leaves the ingress cloud,
        the response leaves the pod's cloud; each cloud bills what leaves it. Per server, the
        bytes a request and a response put on each cloud's bill (rebuilt only when the region
        column changes); a tick is two small matrix-vector products."""
        f = self.engine.fleet
        w = self._weights
        if w is None or w[0] is not f.region:
            # (clouds x servers), contiguous: the product runs along rows
            w = self._weights = (f.region, np.ascontiguousarray(self._req_to_cloud[f.region].T),
                                 np.ascontiguousarray(self._resp_to_cloud[f.region].T))
        by_cloud = w[1] @ f.rps
        by_cloud += w[2] @ f.served_rps
        self.egress_rate_bps = float(by_cloud.sum())
        by_cloud *= dt
        self.egress_bytes += by_cloud
        by_cloud *= self._price
        self.egress_usd += by_cloud

    # ------------------------------------------------------------------ views

    def status(self, r: int) -> str:
        if math.isnan(self.down_at[r]):
            return "Ready"
        if not math.isnan(self.evicted_at[r]):
            return "NotReady, evicted"
        return "NotReady" if self.notready[r] else "Unreachable"

    def summary(self) -> dict[str, Any]:
        """The compact per-tick record (headless output): per region its status and pods."""
        f = self.engine.fleet
        p = self.placement
        n = len(p.regions)
        ready = np.bincount(f.region[f.state == READY], minlength=n + 1)[:n]
        used = self._bound_counts()
        return {
            "regions": {name: {"cloud": p.clouds[r] or None, "status": self.status(r),
                               "ready": int(ready[r]), "pods": int(used[r]),
                               "capacity": int(p.capacity[r])}
                        for r, name in enumerate(p.regions)},
            "pending": int(f.pending), "evicted_total": self.evictions,
            "rescheduled_total": self.rescheduled,
            "egress_usd_total": round(float(self.egress_usd.sum()), 4),
            "egress_bytes_per_s": round(self.egress_rate_bps, 1),
        }

    def state(self) -> dict[str, Any]:
        e = self.engine
        f = e.fleet
        p = self.placement
        t = e.t
        n = len(p.regions)
        s = f.state
        by = {k: np.bincount(f.region[s == k], minlength=n + 1)[:n]
              for k in (READY, STARTING, NOTREADY, EVICTED, CRASHED, DRAINING)}
        used = self._bound_counts()
        regions = []
        for r, name in enumerate(p.regions):
            down = self.down_at[r]
            row: dict[str, Any] = {
                "name": name, "cloud": p.clouds[r], "status": self.status(r),
                "capacity": int(p.capacity[r]), "pods": int(used[r]),
                "ready": int(by[READY][r]), "starting": int(by[STARTING][r]),
                "notready": int(by[NOTREADY][r]), "evicted": int(by[EVICTED][r]),
                "latency_ms": float(p.latency_ms[r]),
            }
            if not math.isnan(down):
                row["down_for_s"] = round(t - down, 1)
                if not self.notready[r]:
                    row["notready_in_s"] = round(down + p.grace_s - t, 1)
                elif math.isnan(self.evicted_at[r]):
                    row["evict_in_s"] = round(down + p.grace_s + p.toleration_s - t, 1)
            regions.append(row)
        return {
            "regions": regions, "pending": int(f.pending), "evictions_total": self.evictions,
            "rescheduled_total": self.rescheduled, "ingress_cloud": p.ingress,
            "grace_s": p.grace_s, "toleration_s": p.toleration_s,
            "multi_cloud": p.multi_cloud,
            "egress": {c: {"bytes": round(float(b)), "usd": round(float(u), 4)}
                       for c, b, u in zip(self.cloud_names, self.egress_bytes, self.egress_usd)},
            "egress_usd_total": round(float(self.egress_usd.sum()), 4),
            "egress_bytes_per_s": round(self.egress_rate_bps, 1),
        }


def cloud_of(engine: Any) -> CloudController | None:
    return engine.controller(extensions.CLOUD)


register(CloudController)
