"""Bounded ring buffers of per-tick values: memory stays flat however long the run.

One float64 row per tick for the fleet/database/SLO aggregates, and a short ring per database
node. Readers get ordered copies, never views into the ring (the engine keeps writing to it).
Never imports the UI.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from devsim_tui.sim.snapshot import Aggregates

# Numeric aggregates kept per tick (bools as 0/1, missing values as NaN).
SERIES = (
    "t", "ready", "total", "desired", "offered_rps", "served_rps", "errored_rps",
    "timed_out_rps", "rejected_rps", "reset_rps", "queued", "capacity_rps",
    "p50_ms", "p99_ms", "mean_ms", "error_rate", "cpu", "memory_pct", "disk_pct",
    "net_in_kbps", "net_out_kbps", "db_writable", "db_max_lag_bytes", "db_max_lag_s",
    "db_connections", "db_qps", "cache_hit_ratio", "build_time_s", "availability",
    "error_budget_burned", "burn_rate_1h", "lost_writes", "forecast_rps", "offered_total",
    "failed_total",
)
INDEX = {name: i for i, name in enumerate(SERIES)}
_OFFERED, _FAILED = INDEX["offered_total"], INDEX["failed_total"]
NODE_SERIES = ("qps", "cpu", "lag_seconds", "connections")
NODE_HISTORY = 600


class History:
    def __init__(self, capacity: int):
        self.capacity = capacity
        # Zeros, not NaN: calloc'd pages are mapped as rows are first written, so a day's ring
        # (86,400 rows) costs nothing up front. Only rows already written are ever read.
        self.buf = np.zeros((capacity, len(SERIES)))
        self.count = 0  # rows ever written
        self.nodes: dict[str, np.ndarray] = {}
        self._fields = SERIES[1:-2]
        self._get = attrgetter(*self._fields)

    def record(self, t: float, agg: Aggregates, db_nodes, offered_total: float = 0.0,
               failed_total: float = 0.0) -> None:
        # One C-level getter for the fields; numpy stores None as NaN and a bool as 0/1.
        self.buf[self.count % self.capacity] = (t, *self._get(agg), offered_total, failed_total)
        pos = self.count % NODE_HISTORY
        for n in db_nodes:
            arr = self.nodes.get(n.name)
            if arr is None:
                arr = self.nodes[n.name] = np.full((len(NODE_SERIES), NODE_HISTORY), np.nan)
            lag = n.lag_seconds if n.up else np.nan  # a down node has no lag to show
            arr[:, pos] = (n.qps, n.cpu, lag, n.connections)
        self.count += 1

    def _order(self, n: int, cap: int) -> np.ndarray:
        n = min(n, self.count, cap)
        return np.arange(self.count - n, self.count) % cap

    def series(self, name: str, n: int | None = None) -> np.ndarray:
        """The last n values of one series, oldest first (a copy)."""
        idx = self._order(self.capacity if n is None else n, self.capacity)
        return self.buf[idx, INDEX[name]].copy()

    def window_totals(self, seconds: float, offered_total: float,
                      failed_total: float) -> tuple[float, float]:
        """(offered, failed) requests over the last `seconds` of simulated time."""
        if self.count == 0:
            return offered_total, failed_total
        t_now = self.buf[(self.count - 1) % self.capacity, 0]
        back = min(self.count, self.capacity)
        # Rows are one per tick: step back by the number of ticks the window spans.
        t_prev = self.buf[(self.count - 2) % self.capacity, 0] if self.count > 1 else 0.0
        dt = (t_now - t_prev) if self.count > 1 else 1.0
        # (rounded as a Python float: round() of a numpy scalar costs microseconds)
        k = int(min(back, max(1, round(float(seconds / dt))) if dt > 0 else back))
        row = self.buf[(self.count - k) % self.capacity]
        # Python floats (the same IEEE arithmetic as numpy scalars, much cheaper to use)
        return (offered_total - float(row[_OFFERED]), failed_total - float(row[_FAILED]))

    def component(self, name: str) -> dict[str, np.ndarray]:
        arr = self.nodes.get(name)
        if arr is None:
            return {}
        idx = self._order(NODE_HISTORY, NODE_HISTORY)
        return {s: arr[k, idx].copy() for k, s in enumerate(NODE_SERIES)}
