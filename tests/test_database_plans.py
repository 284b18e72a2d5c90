"""Query plans and `query_optimization` (sim/queryplan.py, docs/database.md): a plan regression
raises database CPU and query latency by the plan's cost; the AI optimiser reverts it within
its evaluation interval, the static planner keeps it until ANALYZE (the `analyze` command) or
autovacuum's auto-analyze."""

from __future__ import annotations

import math

import pytest
from helpers import events_named, quiet

from devsim_tui.sim.database import KB_PER_GB
from devsim_tui.sim.queryplan import (AI_EVAL_S, ANALYZE_S, ANALYZE_SCALE_FACTOR,
                                      ANALYZE_THRESHOLD, BAD_PLAN_COST, NAPTIME_S)


def plans(e):
    return e.snapshot.extensions["QueryPlanController"]


def node_cpu(e):
    return max(n.cpu for n in e.db.nodes if n.up)


def test_the_seed_s_ai_query_optimization_is_the_experimental_profile_s_optimiser():
    assert quiet().profile.database.query_optimization == "ai"
    assert quiet("production").profile.database.query_optimization == "static"


@pytest.mark.parametrize("mode", ["ai", "static"])
def test_a_plan_regression_multiplies_database_work_per_query_by_the_plans_cost(mode):
    e = quiet(database__query_optimization=mode)
    e.step(60)
    cpu, qps = node_cpu(e), e.db.nodes[0].qps
    base = e.snapshot.extensions["QueryPlanController"]
    assert base["cost_factor"] == 1.0 and base["regressions"] == 0
    e.submit_line("chaos plan-regression db 0.3")
    e.step(3)
    factor = 1 + 0.3 * (BAD_PLAN_COST - 1)
    assert plans(e)["cost_factor"] == pytest.approx(factor)
    # CPU is load / capacity: the same queries per second, each `factor` times the work
    assert e.db.nodes[0].qps == pytest.approx(qps, rel=0.01)
    assert node_cpu(e) == pytest.approx(cpu * factor, rel=0.02)
    assert [ev.data["share"] for ev in events_named(e, "db.plan_regression")] == [0.3]


def test_query_latency_rises_with_the_regression_and_the_ai_optimiser_reverts_it():
    e = quiet()
    e.step(60)
    p99 = e.agg.p99_ms
    e.submit_line("chaos plan-regression db 0.5")
    e.step(2)
    assert e.agg.p99_ms > p99 + 5
    t0 = e.t - 2
    e.step(int(2 * AI_EVAL_S))
    rec = events_named(e, "db.plan_recovered")
    assert len(rec) == 1 and rec[0].data["by"] == "AI optimiser"
    # its first evaluation after the flip with enough executions seen
    assert 0 < rec[0].t - t0 <= AI_EVAL_S
    assert plans(e)["cost_factor"] == 1.0 and e.agg.p99_ms == pytest.approx(p99, rel=0.01)


def test_the_static_planner_keeps_the_bad_plan_until_the_operator_runs_analyze():
    e = quiet(database__query_optimization="static")
    e.step(60)
    cpu = node_cpu(e)
    e.submit_line("chaos plan-regression db 0.3")
    e.step(1800)
    assert not events_named(e, "db.plan_recovered")
    assert plans(e)["regressed_for_s"] == pytest.approx(1800, abs=1)
    assert node_cpu(e) > 2 * cpu
    e.submit_line("analyze")
    e.step(1)
    assert plans(e)["analyze_remaining_s"] == pytest.approx(ANALYZE_S - 1, abs=1)
    e.submit_line("analyze")  # one at a time
    e.step(int(ANALYZE_S))
    assert "already running" in events_named(e, "command.rejected")[0].message
    rec = events_named(e, "db.plan_recovered")
    assert len(rec) == 1 and rec[0].data["by"] == "ANALYZE (operator)"
    assert rec[0].data["after_s"] == pytest.approx(1800 + ANALYZE_S, abs=2)
    assert node_cpu(e) == pytest.approx(cpu, rel=0.02)


def test_auto_analyze_ends_it_once_the_table_changed_by_its_scale_factor():
    """autovacuum_analyze_threshold + scale_factor x rows changed since the regression, at the
    next autovacuum_naptime boundary: a small, busy table recovers in minutes."""
    e = quiet("production", database__data_gb=0.5, database__data_retention_days=None)
    e.step(60)
    share = 0.2
    writes = sum(n.write_qps for n in e.db.nodes)
    rows = e.db.live_gb * KB_PER_GB / e.profile.database.row_kb
    e.submit_line(f"chaos plan-regression db {share}")
    e.step(1)
    t0 = e.t - 1
    need = ANALYZE_THRESHOLD + ANALYZE_SCALE_FACTOR * rows * share
    due = t0 + need / (writes * share)
    expect = math.ceil(due / NAPTIME_S) * NAPTIME_S
    assert 120 < expect - t0 < 7200  # minutes, for this table
    e.step(int(expect - t0) + 60)
    rec = events_named(e, "db.plan_recovered")
    assert len(rec) == 1 and rec[0].data["by"] == "auto-analyze"
    # rows grow a little meanwhile (inserts): the naptime boundary at or just after
    assert rec[0].t in (expect, expect + NAPTIME_S), (rec[0].t, due)


def test_analyze_needs_a_database_and_does_nothing_without_a_regression():
    e = quiet(database__query_optimization="static")
    e.step(10)
    e.submit_line("analyze")
    e.step(int(ANALYZE_S) + 1)
    assert events_named(e, "db.analyze_done") and not events_named(e, "db.plan_recovered")
    e.submit_line("restore latest")
    e.step(1)
    e.submit_line("analyze")
    e.step(1)
    assert "being restored" in events_named(e, "command.rejected")[-1].message


def test_plans_on_metrics_and_in_the_headless_record():
    from devsim_tui.export.prometheus import SnapshotView
    from devsim_tui.headless import tick_record
    from devsim_tui.sim.metrics import collect

    e = quiet(database__query_optimization="static")
    e.step(10)
    e.submit_line("chaos plan-regression db 0.1")
    e.step(5)
    samples = collect(SnapshotView(e.snapshot, e.profile.app.service))
    assert samples["devsim_db_query_plan_cost_ratio"][1] == [pytest.approx(1.9)]
    assert samples["devsim_db_plan_regressions_total"][1] == [1.0]
    assert tick_record(e)["db"]["plans"] == {"optimizer": "static", "cost_factor": 1.9}
