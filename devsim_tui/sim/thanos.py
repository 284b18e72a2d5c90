"""Thanos (experimental profile): long-term storage of the metrics history, in simulated time.

Where the profile's monitoring tools include Thanos, the control room's metrics history is read
the way a Thanos Query would serve it (Thanos documentation: components "sidecar", "store",
"compact", https://thanos.io/tip/components/sidecar.md/, .../store.md/, .../compact.md/):

- **Prometheus** next to the sidecar keeps recent data locally: its head block and the blocks it
  persisted, for `LOCAL_RETENTION_S` (with Thanos, Prometheus runs with min = max block duration
  = 2 h). The head is cut into a 2 h block once it spans 1.5 x 2 h (Prometheus' head compaction),
  so block [k*2h, (k+1)*2h) is on disk at (k+1)*2h + 1h.
- The **sidecar** checks for new blocks every `SIDECAR_SYNC_S` and uploads each to the object
  store (taking `UPLOAD_S`). Its upload lag is now minus the end of the newest uploaded block.
  While the bucket is unreachable uploads fail and are retried at the next sync; Prometheus still
  deletes blocks past its retention, so a block not uploaded by then is lost for good.
- The **store gateway** serves uploaded blocks from the bucket; the **compactor** downsamples
  blocks older than 40 h to 5 m resolution and older than 10 d to 1 h (Thanos' fixed ages).
- The `store-outage` chaos fault takes the bucket (store gateway and uploads) away: a query sees
  only Prometheus' local data, so the 1 h and 24 h windows are blank before the local retention
  while the recent part stays; after the outage, pending blocks are uploaded at the next sync.

`available(times)` says which simulated instants a query can see now; the metrics pane blanks
the rest in its long windows. Nothing here draws random numbers or reads the wall clock.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

BLOCK_S = 2 * 3600.0  # Prometheus block range with a Thanos sidecar
HEAD_SPAN_FACTOR = 1.5  # the head is compacted once it spans 1.5 block ranges
LOCAL_RETENTION_S = 2 * 3600.0  # Prometheus --storage.tsdb.retention.time next to the sidecar
SIDECAR_SYNC_S = 30.0  # the sidecar looks for new blocks this often
UPLOAD_S = 45.0  # one 2 h block to the bucket
DOWNSAMPLE_5M_AGE_S = 40 * 3600.0  # compactor: raw -> 5 m resolution
DOWNSAMPLE_1H_AGE_S = 10 * 86400.0  # compactor: 5 m -> 1 h resolution
KEEP_BLOCKS = 400  # block records kept (> 30 days of 2 h blocks)


def enabled_for(profile) -> bool:
    return any(t.name.lower() == "thanos" for t in profile.monitoring.tools)


class ThanosController:
    """Controller: Prometheus blocks, sidecar uploads, the bucket, the compactor."""
    state_key = extensions.THANOS

    commands: tuple = ()

    def __init__(self, engine: Engine):
        self.engine = engine
        self.enabled = enabled_for(engine.profile)
        self.store_up = True
        self.persisted = 0  # blocks [0, persisted) cut from the head
        self.uploaded: list[int] = []  # block indices in the bucket, ascending
        self.lost: list[int] = []  # blocks deleted locally before they reached the bucket
        self.deleted = 0  # blocks [0, deleted) gone from Prometheus' disk
        self.uploading: int | None = None
        self.upload_done_t = math.inf
        self.next_sync = SIDECAR_SYNC_S
        self.failed_uploads = 0

    # ------------------------------------------------------------------ controller

    def apply(self, cmd) -> str | None:  # pragma: no cover - owns no command
        return "not a Thanos command"

    def signals(self) -> dict[str, float]:
        """The object store's `up` (the store gateway's scrape target) for the anomaly
        detector."""
        if not self.enabled:
            return {}
        return {"monitoring.store_up": 1.0 if self.store_up else 0.0}

    def set_store(self, t: float, up: bool) -> None:
        """The bucket (store gateway and uploads) becomes reachable or not (chaos)."""
        if up == self.store_up:
            return
        self.store_up = up
        if not up and self.uploading is not None:
            self.uploading, self.upload_done_t = None, math.inf
            self.failed_uploads += 1
        self.engine.emit(t, "thanos.store_up" if up else "thanos.store_down",
                         "Thanos: object store reachable again; pending blocks upload at the "
                         "next sidecar sync" if up else "Thanos: object store unreachable: the "
                         "store gateway serves nothing, sidecar uploads fail; long windows "
                         "show only Prometheus' local data", "info" if up else "warning")

    def before_tick(self, t: float) -> None:
        pass

    def after_tick(self, t: float, agg: Aggregates) -> None:
        if not self.enabled:
            return
        # Head compaction: block k is persisted once the head spans 1.5 block ranges.
        while (self.persisted + 1) * BLOCK_S + (HEAD_SPAN_FACTOR - 1) * BLOCK_S <= t + 1e-9:
            self.persisted += 1
        if self.uploading is not None and t >= self.upload_done_t:
            self.uploaded.append(self.uploading)
            self.uploading, self.upload_done_t = None, math.inf
            del self.uploaded[:-KEEP_BLOCKS]
        if t >= self.next_sync:
            self.next_sync = t + SIDECAR_SYNC_S
            if self.uploading is None:
                pending = self._pending()
                if pending is not None:
                    if self.store_up:
                        self.uploading, self.upload_done_t = pending, t + UPLOAD_S
                    else:
                        self.failed_uploads += 1
        # Prometheus' retention deletes whole blocks, uploaded or not.
        while self.deleted < self.persisted and \
                (self.deleted + 1) * BLOCK_S <= t - LOCAL_RETENTION_S + 1e-9:
            k = self.deleted
            self.deleted += 1
            # A block the sidecar is uploading right now still reaches the bucket.
            if k not in self.uploaded and k != self.uploading:
                self.lost.append(k)
                del self.lost[:-KEEP_BLOCKS]
                self.engine.emit(t, "thanos.block_lost", f"Thanos: block {_span(k)} deleted by "
                                 "Prometheus' retention before the sidecar could upload it: "
                                 "that range is gone from long-term storage", "error", block=k)

    def _pending(self) -> int | None:
        done = set(self.uploaded) | set(self.lost)
        for k in range(self.deleted, self.persisted):
            if k not in done:
                return k
        return None

    # ------------------------------------------------------------------ queries

    def local_from(self, t: float) -> float:
        """Oldest instant Prometheus still holds (its oldest block, or the head)."""
        return self.deleted * BLOCK_S

    def uploaded_until(self) -> float:
        """End of the contiguous uploaded range from the start (what lag is measured from)."""
        return (max(self.uploaded) + 1) * BLOCK_S if self.uploaded else 0.0

    def upload_lag(self, t: float) -> float:
        return max(0.0, t - self.uploaded_until())

    def available(self, times: np.ndarray) -> np.ndarray:
        """Which simulated instants a Thanos Query can return data for right now."""
        times = np.asarray(times, dtype=float)
        ok = times >= self.local_from(self.engine.t)
        if self.store_up and self.uploaded:
            block = np.floor(times / BLOCK_S).astype(np.int64)
            ok |= np.isin(block, np.asarray(self.uploaded, dtype=np.int64))
        return ok

    def resolution(self, age_s: float) -> str:
        if age_s >= DOWNSAMPLE_1H_AGE_S:
            return "1h"
        if age_s >= DOWNSAMPLE_5M_AGE_S:
            return "5m"
        return "raw"

    def state(self) -> dict:
        if not self.enabled:
            return {"enabled": False}
        t = self.engine.t
        return {
            "enabled": True, "store_up": self.store_up,
            "local_from": self.local_from(t), "uploaded": list(self.uploaded[-24:]),
            "uploaded_blocks": len(self.uploaded), "lost": list(self.lost[-24:]),
            "uploading": self.uploading, "upload_lag_s": self.upload_lag(t),
            "failed_uploads": self.failed_uploads, "block_s": BLOCK_S,
            "local_retention_s": LOCAL_RETENTION_S,
            "downsampled_5m": sum(1 for k in self.uploaded
                                  if t - (k + 1) * BLOCK_S >= DOWNSAMPLE_5M_AGE_S),
            "downsampled_1h": sum(1 for k in self.uploaded
                                  if t - (k + 1) * BLOCK_S >= DOWNSAMPLE_1H_AGE_S),
        }


def _span(k: int) -> str:
    a, b = k * BLOCK_S / 3600, (k + 1) * BLOCK_S / 3600
    return f"{a:g}h-{b:g}h"


def available_mask(state: dict, times: np.ndarray) -> np.ndarray:
    """`ThanosController.available` from a published state (what a UI or a remote seat has)."""
    times = np.asarray(times, dtype=float)
    ok = times >= float(state["local_from"])
    if state["store_up"] and state["uploaded"]:
        block = np.floor(times / float(state["block_s"])).astype(np.int64)
        ok |= np.isin(block, np.asarray(state["uploaded"], dtype=np.int64))
    return ok


register(ThanosController)
