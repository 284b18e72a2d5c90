"""Multi-master replication (sim/mesh.py): conflicts, split brain, merges, geo-redundancy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import events_named, quiet

from devsim_tui.sim.database import LAN_RTT_S
from devsim_tui.sim.mesh import conflict_rates


def monte_carlo_conflicts(lam, window, hot_share, hot_rows, cold_rows, seconds, seed):
    """Conflicts by brute force, independent of the formula: Poisson writes per node, each on
    a hot row (uniform over hot_rows) with probability hot_share, else on a cold row; a write
    of node i at t loses to a write of another node j on the same row at t' in
    (t, t + window[i, j]) (j had not received i's write). Returns losses[i, j]."""
    rng = np.random.default_rng(seed)
    n = len(lam)
    times, nodes, rows = [], [], []
    for i, rate in enumerate(lam):
        k = rng.poisson(rate * seconds)
        times.append(rng.uniform(0, seconds, k))
        nodes.append(np.full(k, i))
        hot = rng.random(k) < hot_share
        rows.append(np.where(hot, rng.integers(0, hot_rows, k),
                             hot_rows + rng.integers(0, cold_rows, k)))
    t, node, row = (np.concatenate(x) for x in (times, nodes, rows))
    order = np.lexsort((t, row))
    t, node, row = t[order], node[order], row[order]
    losses = np.zeros((n, n), np.int64)
    longest = float(np.max(window))
    for d in range(1, 50):
        same = row[d:] == row[:-d]
        gap = t[d:] - t[:-d]
        if not np.any(same & (gap < longest)):
            break
        i, j = node[:-d], node[d:]
        hit = same & (i != j) & (gap < np.asarray(window)[i, j])
        np.add.at(losses, (i[hit], j[hit]), 1)
    return losses


def test_conflict_rate_matches_an_independent_monte_carlo():
    # Three masters with asymmetric delivery windows (a lagging receiver widens its row).
    lam = np.array([100.0, 150.0, 50.0])
    window = np.array([[0.0, 0.05, 0.2], [0.08, 0.0, 0.1], [0.3, 0.02, 0.0]])
    h, k, cold = 0.3, 200, 100_000
    seconds = 4000.0
    expected = conflict_rates(lam, window, h, k, cold) * seconds
    got = monte_carlo_conflicts(lam, window, h, k, cold, seconds, seed=3)
    assert expected.sum() > 8000
    # ~9,700 conflicts: the Poisson standard error is 1 %, so 4 % on the total; each ordered
    # pair within 4 of its own standard errors (the smallest expects ~270). Seed 3 measured:
    # 9,770 against 9,735 expected (+0.4 %).
    assert abs(got.sum() - expected.sum()) / expected.sum() < 0.04, (got.sum(), expected.sum())
    for i in range(3):
        for j in range(3):
            if i != j:
                sd = math.sqrt(expected[i, j])
                assert abs(got[i, j] - expected[i, j]) < 4 * sd, (i, j, got[i, j],
                                                                   expected[i, j])


def test_engine_counts_conflicts_at_the_formulas_rate():
    e = quiet()
    e.step(60)
    start, expected = e.db.mesh.total, 0.0
    for _ in range(1200):
        e.step(1)
        expected += e.db.mesh.rate
    got = e.db.mesh.total - start
    assert expected > 20
    assert abs(got - expected) < 4 * math.sqrt(expected), (got, expected)
    views = e.step(0).db
    assert sum(v.conflicts for v in views) == e.db.mesh.total


def test_location_decides_the_round_trips():
    cloud = quiet()
    t = cloud.db.mesh.transit
    names = [n.name for n in cloud.db.nodes]
    aws = names.index("pg-1"), names.index("pg-5")  # both in aws: a LAN apart
    assert t[aws] == pytest.approx(LAN_RTT_S / 2)
    assert t[0, 1] == pytest.approx(0.040 / 2)  # aws -> azure: replication_rtt_ms / 2
    local = quiet(database__location="local")
    assert np.all(local.db.mesh.transit <= LAN_RTT_S / 2 + 1e-12)
    cloud.step(300)
    local.step(300)
    # 40 ms between clouds makes conflicts far likelier than on one host
    assert cloud.db.mesh.rate > 20 * local.db.mesh.rate > 0


def test_a_partition_is_split_brain_and_the_merge_counts_the_rows_written_on_both_sides():
    e = quiet()
    e.step(120)
    e.submit_line("chaos mesh-partition aws 5m")
    e.step(60)
    mesh = e.db.mesh
    assert mesh.split is not None and sorted(mesh.split.cut) == ["pg-1", "pg-5"]
    # no write quorum: both sides keep taking writes
    assert all(n.write_qps > 0 for n in e.db.nodes)
    assert events_named(e, "db.mesh.split")
    before = mesh.total
    e.step(250)
    assert mesh.split is None
    merged = events_named(e, "db.mesh.merged")
    assert len(merged) == 1
    found = merged[0].data["conflicts"]
    m = mesh.last_merge
    h, k = 0.2, 10_000
    xa, xb = h * m["writes_cut"] / k, h * m["writes_rest"] / k
    p = -math.expm1(-xa) * -math.expm1(-xb)
    expected = k * p  # + a few cold rows (about 1e-3 of the hot ones here)
    assert 0.5 < p < 0.99
    assert abs(found - expected) < 5 * math.sqrt(k * p * (1 - p)) + 10, (found, expected)
    assert mesh.merged == found and mesh.total >= before + found
    # each side now replays the other's writes
    e.step(1)
    assert any(v.state == "catch-up" for v in e.step(0).db) or any(
        n.backlog_bytes > 0 for n in e.db.nodes)


def _outage(geo: bool):
    e = quiet(database__geo_redundancy=geo)
    e.step(120)
    e.submit_line("chaos region-outage aws 5m")
    e.step(30)
    return e


def test_geo_redundancy_keeps_the_region_writes_and_the_survivors_write():
    e = _outage(True)
    assert e.agg.db_writable
    assert [n.name for n in e.db.nodes if n.write_qps > 0] == ["pg-2", "pg-3", "pg-4"]
    assert events_named(e, "db.region.down") and not events_named(e, "db.region.data_lost")
    assert e.db.lost_writes == 0 and e.db.mesh.region_lost == 0
    waiting = e.db.mesh.view()["stranded_writes"]
    assert waiting > 0
    e.step(400)  # the region is back: its nodes rejoin, merge and catch up
    assert e.db.lost_writes == 0
    rejoined = [ev for ev in events_named(e, "db.node.recovered") if ev.subject in ("pg-1", "pg-5")]
    assert len(rejoined) == 2 and all("rejoined the mesh" in ev.message for ev in rejoined)
    assert e.db.mesh.stranded == {}


def test_without_geo_redundancy_a_region_outage_loses_its_unshipped_writes():
    e = _outage(False)
    assert e.agg.db_writable  # the survivors still take writes
    lost = events_named(e, "db.region.data_lost")
    assert len(lost) == 1
    n = lost[0].data["lost_writes"]
    # the writes of the last delivery window out of aws: two nodes at ~140 writes/s each,
    # 20 ms + apply to the nearest other cloud
    assert 2 <= n <= 40
    assert e.db.lost_writes == pytest.approx(e.db.mesh.region_lost) and e.db.lost_writes > 0
    assert e.agg.lost_writes == pytest.approx(e.db.lost_writes)
    assert e.db.mesh.stranded == {}


def test_a_region_outage_during_a_partition_loses_every_write_of_the_split():
    e = quiet(database__geo_redundancy=False)
    e.step(60)
    e.submit_line("chaos mesh-partition aws 10m")
    e.step(60)
    cut_writes = float(e.db.mesh.split.writes[[0, 4]].sum())
    e.submit_line("chaos region-outage aws 5m")
    e.step(1)
    lost = events_named(e, "db.region.data_lost")[0].data["lost_writes"]
    assert lost >= cut_writes > 10_000


def test_a_restarted_node_rejoins_the_mesh_and_catches_up_before_taking_writes():
    e = quiet()
    e.step(60)
    e.submit_line("crash-node pg-3")
    e.step(120)
    e.submit_line("restart-node pg-3")
    e.step(20)
    back = [ev for ev in events_named(e, "db.node.recovered") if ev.subject == "pg-3"]
    assert len(back) == 1
    msg = back[0].message
    assert "pg-3 rejoined the mesh (4 peers up), catching up " in msg and "?" not in msg
    assert back[0].data["catch_up_bytes"] > 100 * 2 ** 20  # 140 s of the others' WAL
    view = next(v for v in e.step(0).db if v.name == "pg-3")
    caught = events_named(e, "db.node.caught_up")
    if not caught:
        assert view.state == "catch-up" and e.db.node("pg-3").write_qps == 0
    e.step(60)
    assert events_named(e, "db.node.caught_up")
    node = e.db.node("pg-3")
    assert node.write_qps > 0 and node.rejoined_at is None
    assert next(v for v in e.step(0).db if v.name == "pg-3").state == "running"


WANT = frozenset({"devsim_db_mesh_split_brain", "devsim_db_write_conflicts_total",
                  "devsim_db_mesh_write_conflicts_total"})


def test_conflicts_on_metrics_and_in_the_tick_output():
    from devsim_tui.headless import tick_record
    from devsim_tui.sim.metrics import EngineView, collect

    e = quiet()
    e.step(120)
    e.submit_line("chaos mesh-partition aws 2m")
    e.step(60)
    samples = collect(EngineView(e, e.agg, WANT), WANT)
    assert samples["devsim_db_mesh_split_brain"][1] == [1.0]
    e.step(90)
    samples = collect(EngineView(e, e.agg, WANT), WANT)
    assert samples["devsim_db_mesh_split_brain"][1] == [0.0]
    labels, per_node = samples["devsim_db_write_conflicts_total"]
    assert [dict(lb)["node"] for lb in labels] == [f"pg-{i}" for i in range(1, 6)]
    total = samples["devsim_db_mesh_write_conflicts_total"][1][0]
    assert sum(per_node) == total == e.db.mesh.total > 1000
    rec = tick_record(e)["db"]["mesh"]
    assert rec["conflicts"] == total and rec["merged"] > 1000
    assert rec["split_brain"] is False and rec["partition"] is None
    assert sum(rec["by_node"].values()) == total


def test_other_topologies_have_no_mesh():
    from devsim_tui.headless import tick_record

    e = quiet("production")
    e.step(5)
    assert e.db.mesh is None and tick_record(e)["db"]["mesh"] is None
    assert e.step(0).mesh is None
    e.submit_line("chaos mesh-partition eu-west-1a")
    e.step(1)
    assert any("needs a multi-master database" in ev.message for ev in e.events
               if ev.type == "command.rejected")


def test_the_conflict_and_split_brain_alerts_fire():
    e = quiet()
    e.step(120)
    e.submit_line("chaos mesh-partition aws 3m")
    e.step(120)
    firing = {a.name for a in e.step(0).alerts if a.state == "firing"}
    assert "MeshSplitBrain" in firing and "WriteConflictsHigh" not in firing
    e.step(60 + 150)  # healed at 300 s: the merge's burst, seen for `for: 1m`
    firing = {a.name for a in e.step(0).alerts if a.state == "firing"}
    assert "WriteConflictsHigh" in firing and "MeshSplitBrain" not in firing


def test_the_exporter_serves_the_conflict_counters_from_a_snapshot():
    from devsim_tui.sim.metrics import SnapshotView, collect

    e = quiet()
    e.step(300)
    samples = collect(SnapshotView(e.step(0), "ml-api"))
    labels, values = samples["devsim_db_write_conflicts_total"]
    assert [dict(lb)["region"] for lb in labels] == ["aws", "azure", "gcp", "digitalocean", "aws"]
    assert sum(values) == samples["devsim_db_mesh_write_conflicts_total"][1][0] > 0
    assert samples["devsim_db_mesh_split_brain"][1] == [0.0]
    prod = collect(SnapshotView(quiet("production").step(1), "web"))
    assert "devsim_db_write_conflicts_total" not in prod or prod[
        "devsim_db_write_conflicts_total"] == ([], [])
    assert "devsim_db_mesh_write_conflicts_total" not in prod


def test_same_seed_same_conflicts():
    runs = []
    for _ in range(2):
        e = quiet()
        e.step(60)
        e.submit_line("chaos mesh-partition aws 1m")
        e.step(200)
        runs.append((e.db.mesh.view()["by_node"], e.db.mesh.merged))
    assert runs[0] == runs[1] and runs[0][1] > 0


def test_a_majority_commit_scope_stops_the_minority_side_instead_of_a_split_brain():
    e = quiet(database__multi_master__commit_scope="majority")
    base = quiet()
    e.step(120)
    base.step(120)
    # every commit waits for the nearest majority (3 of 5): another cloud, 40 ms away
    assert e.agg.mean_ms > base.agg.mean_ms + 5
    e.submit_line("chaos mesh-partition aws 3m")
    e.step(60)
    assert [n.name for n in e.db.nodes if n.write_qps > 0] == ["pg-2", "pg-3", "pg-4"]
    assert e.agg.db_writable and not e.db.mesh.split_brain
    split = events_named(e, "db.mesh.split")[0].message
    assert "pg-1, pg-5 cannot reach 3 of 5 nodes and rejects writes (no split brain)" in split
    firing = {a.name for a in e.step(0).alerts if a.state in ("firing", "pending")}
    assert "MeshSplitBrain" not in firing
    e.step(150)
    merged = events_named(e, "db.mesh.merged")
    assert len(merged) == 1 and merged[0].data["conflicts"] == 0


def test_a_majority_commit_scope_loses_nothing_with_a_region():
    e = quiet(database__geo_redundancy=False, database__multi_master__commit_scope="majority")
    e.step(120)
    e.submit_line("chaos region-outage aws 5m")
    e.step(30)
    assert e.agg.db_writable and e.db.lost_writes == 0
    assert events_named(e, "db.region.data_lost")[0].data["lost_writes"] == 0
