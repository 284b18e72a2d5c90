"""Query plans and the optimiser that picks them (`database.query_optimization`, docs/database.md).

The database's query mix runs on plans a cost-based planner chose from table statistics
(PostgreSQL: https://www.postgresql.org/docs/current/planner-stats.html). A **plan regression**
(`chaos plan-regression db SHARE`) flips the plan of a query shape that carries SHARE of the
queries to one costing BAD_PLAN_COST times as much (an index scan replaced by a sequential scan,
a nested loop on a row estimate that went stale after a bulk change). Every node then does
`1 + SHARE x (BAD_PLAN_COST - 1)` times the work per query: database CPU, queueing and query
latency rise, and past saturation queries time out (database.py applies `cost_factor`).

How it ends depends on the optimiser:

- `static` (PostgreSQL's planner): the plan stays until the statistics are refreshed.
  Autovacuum re-analyses a table once the rows changed since its last ANALYZE pass
  `autovacuum_analyze_threshold` (50) + `autovacuum_analyze_scale_factor` (0.1) x its rows,
  checked every `autovacuum_naptime` (60 s)
  (https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS):
  hours on a large table with few writes. The operator's `analyze` command runs ANALYZE
  (https://www.postgresql.org/docs/current/sql-analyze.html) now: ANALYZE_S later new
  executions get the good plan.
- `ai` (a learned optimiser in the manner of Bao, https://arxiv.org/abs/2004.03814: it keeps
  the observed latency of each query shape under each plan choice and steers away from a
  choice that got slower): it tracks an exponentially weighted mean of the shape's observed
  cost (time constant AI_TAU_S), and at its next evaluation (every AI_EVAL_S) with at least
  AI_MIN_SAMPLES executions seen on the new plan, a mean above AI_REVERT_RATIO x the old
  plan's cost pins the old plan back. ANALYZE and auto-analyze work for it too.

Deterministic: no random draws. Never imports the UI.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from devsim_tui.sim import commands as C
from devsim_tui.sim import extensions

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

BAD_PLAN_COST = 10.0  # the flipped plan's cost relative to the good one (seq scan vs index)
ANALYZE_THRESHOLD = 50.0  # autovacuum_analyze_threshold (PostgreSQL default)
ANALYZE_SCALE_FACTOR = 0.1  # autovacuum_analyze_scale_factor (PostgreSQL default)
NAPTIME_S = 60.0  # autovacuum_naptime: how often the launcher looks at each database
ANALYZE_S = 20.0  # a database-wide ANALYZE (30,000 sampled rows per table) until new plans
AI_TAU_S = 20.0  # the learned optimiser's memory of a shape's observed cost
AI_EVAL_S = 15.0  # how often it re-decides plan choices (retraining on recent executions)
AI_MIN_SAMPLES = 500.0  # executions on a new plan before it trusts what it observed
AI_REVERT_RATIO = 1.5  # observed cost over the old plan's that makes it pin the old plan

Emit = Callable[..., Any]


class Analyze(C.Command):
    name = "analyze"
    positional = ()
    summary = ("Run ANALYZE on the database: fresh statistics, so the planner drops a plan that "
               "went bad on stale ones (takes about 20 s)")


C.register(Analyze)


class QueryPlanner:
    """The plans the database's queries run on, and the optimiser that recovers from a
    regression (see the module docstring)."""

    def __init__(self, mode: str, emit: Emit):
        self.mode = mode  # "static" | "ai"
        self.emit = emit
        self.share = 0.0  # share of the query mix on a regressed plan
        self.since: float | None = None  # when the (first active) regression started
        self.changed_rows = 0.0  # rows of the regressed shape's table changed since then
        self.analyze_until: float | None = None
        self.observed = 1.0  # the AI's weighted mean of the shape's observed cost
        self.samples = 0.0  # executions it has seen on the regressed plan
        self.regressions = 0
        self.recoveries = 0
        self.last_recovery: dict[str, Any] | None = None
        self.regressed_seconds = 0.0  # time spent with a regressed plan, all regressions

    @property
    def cost_factor(self) -> float:
        """Work per query relative to the healthy plans."""
        return 1.0 + self.share * (BAD_PLAN_COST - 1.0)

    def regress(self, t: float, share: float) -> None:
        if self.share == 0.0:
            self.since = t
            self.changed_rows = 0.0
            self.observed = 1.0
            self.samples = 0.0
        self.share = min(1.0, self.share + share)
        self.regressions += 1
        self.emit(t, "db.plan_regression", f"a query plan flipped: {share:.0%} of the queries "
                  f"now cost {BAD_PLAN_COST:g}x (mean query cost {self.cost_factor:.2f}x)",
                  "warning", share=share, cost_factor=round(self.cost_factor, 3),
                  optimizer=self.mode)

    def analyze(self, t: float) -> str | None:
        if self.analyze_until is not None:
            return f"ANALYZE already running ({self.analyze_until - t:.0f}s left)"
        self.analyze_until = t + ANALYZE_S
        self.emit(t, "db.analyze", f"ANALYZE started (about {ANALYZE_S:.0f}s)", "info")
        return None

    def step(self, t: float, dt: float, qps: float, write_qps: float, live_rows: float) -> None:
        """Advance one tick: `qps` executed queries, `write_qps` changed rows per second."""
        if self.analyze_until is not None and t >= self.analyze_until:
            self.analyze_until = None
            if self.share > 0:
                self._recover(t, "ANALYZE (operator)")
            else:
                self.emit(t, "db.analyze_done", "ANALYZE done: statistics fresh, no plan "
                          "changed", "info")
        if self.share == 0.0:
            return
        self.regressed_seconds += dt
        # Auto-analyze on the regressed shape's table (SHARE of the rows and of the writes).
        table_rows = live_rows * self.share
        self.changed_rows += write_qps * self.share * dt
        due = ANALYZE_THRESHOLD + ANALYZE_SCALE_FACTOR * table_rows
        if self.changed_rows >= due and math.floor(t / NAPTIME_S) > math.floor((t - dt)
                                                                              / NAPTIME_S):
            self._recover(t, "auto-analyze")
            return
        if self.mode != "ai":
            return
        runs = qps * self.share * dt
        self.samples += runs
        if runs > 0:
            self.observed += (1.0 - math.exp(-dt / AI_TAU_S)) * (BAD_PLAN_COST - self.observed)
        if self.samples >= AI_MIN_SAMPLES and self.observed > AI_REVERT_RATIO \
                and math.floor(t / AI_EVAL_S) > math.floor((t - dt) / AI_EVAL_S):
            self._recover(t, "AI optimiser")

    def _recover(self, t: float, by: str) -> None:
        after = t - (self.since if self.since is not None else t)
        self.recoveries += 1
        self.last_recovery = {"t": t, "by": by, "after_s": round(after, 1)}
        self.emit(t, "db.plan_recovered", f"{by} restored the good plan after {after:.0f}s "
                  f"(mean query cost was {self.cost_factor:.2f}x)", "info", by=by,
                  after_s=round(after, 1))
        self.share = 0.0
        self.since = None
        self.observed = 1.0
        self.samples = 0.0

    def view(self, t: float) -> dict[str, Any]:
        return {"optimizer": self.mode, "cost_factor": round(self.cost_factor, 3),
                "regressed_share": round(self.share, 3),
                "regressed_for_s": None if self.since is None else round(t - self.since, 1),
                "analyze_remaining_s": None if self.analyze_until is None
                else round(self.analyze_until - t, 1),
                "ai_observed_cost": round(self.observed, 3) if self.mode == "ai" else None,
                "regressions": self.regressions, "recoveries": self.recoveries,
                "last_recovery": self.last_recovery}


class QueryPlanController:
    """Engine extension: the `analyze` command and the plans' state in every snapshot
    (`extensions["QueryPlanController"]`). Registered by sim/backup.py with the rest of the
    data tier's controllers (importing this module registers nothing: the database imports
    it before the extensions load)."""

    commands = (Analyze,)
    state_key = extensions.QUERY_PLANS

    def __init__(self, engine: Engine):
        self.engine = engine

    def apply(self, cmd: C.Command) -> str | None:
        db = self.engine.db
        if db.restoring:
            return "the database is being restored"
        if not db.readable():
            return "no database node is up to run ANALYZE"
        return db.planner.analyze(self.engine.t)

    def before_tick(self, t: float) -> None:
        pass

    def after_tick(self, t: float, agg: Aggregates) -> None:
        pass

    def state(self) -> dict:
        return self.engine.db.planner.view(self.engine.t)
