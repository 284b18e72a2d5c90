"""Database truths: the synchronous-standby stall, `dcs_watch` promotion times, replication lag
that moves with write load and network, disk that reaches a steady state under retention and
autovacuum, crashed nodes without lag (or lag alerts), and database alerts that fire on an
outage longer than Patroni's detection time.

Sources: Patroni's docs (dynamic_configuration: ttl, loop_wait; replication_modes: "When
synchronous_mode is on and a standby crashes, commits will block until next iteration of
Patroni runs"), Patroni's etcd3 DCS (patroni/dcs/etcd3.py wakes the HA loop when the leader key
changes), PostgreSQL's autovacuum (autovacuum_vacuum_scale_factor 0.2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import engine

from devsim_tui.config.loader import load_profile
from devsim_tui.sim import commands as C
from devsim_tui.sim.database import GB, Database
from devsim_tui.sim.metrics import engine_sampler
from devsim_tui.ui.database import db_row

START = 9 * 3600.0


def db_only(seed: int = 1, **overrides):
    """A production Database alone (no fleet), with dotted overrides of `database.`."""
    prof = load_profile("production", overrides={f"database.{k.replace('__', '.')}": v
                                                 for k, v in overrides.items()} or None)
    events: list = []

    def emit(t, type_, message, severity="info", subject=None, **data):
        events.append((t, type_, message, data))

    db = Database.build(prof.database, np.random.default_rng(seed), emit, START, 5.0)
    return db, events


def run(db, t0: float, t1: float, writes: float = 300.0, reads: float = 1500.0, dt: float = 1.0):
    t = t0
    while t < t1 - 1e-9:
        t += dt
        db.step(t, dt, START + t, reads, writes, 16)
    return t


def of(events, type_):
    return [e for e in events if e[1] == type_]


# ----------------------------------------------------------------------------- sync standby


def test_losing_the_sync_standby_stalls_commits_until_the_leaders_next_ha_loop():
    stalls = []
    for seed in range(40):
        db, ev = db_only(seed, failover__synchronous_mode=True)
        run(db, 0, 60)
        assert db.sync_name == "pg-2" and db.sync_standby().lag_bytes == 0.0
        crash_t = 60.0 + seed % 7
        run(db, 60, crash_t)
        primary = db.primary()
        db.crash(crash_t, "pg-2")
        assert db.commits_stalled
        run(db, crash_t, crash_t + 15)
        assert not db.commits_stalled
        (lost,) = of(ev, "db.sync.standby_lost")
        (resumed,) = of(ev, "db.sync.commits_resumed")
        (changed,) = of(ev, "db.sync.standby_changed")
        stall = resumed[3]["stall_seconds"]
        # the leader's next loop after the crash, plus the new standby's (tiny) catch-up
        lw = db.spec.failover.loop_wait
        loop = primary.loop_phase + (math.floor((crash_t - primary.loop_phase) / lw) + 1) * lw
        assert stall == pytest.approx(loop - crash_t, abs=0.01)
        assert 0 < stall <= lw
        assert db.sync_name == "pg-3" and "pg-3" in changed[2]
        stalls.append(stall)
    # the crash lands anywhere in the leader's loop: the stall averages loop_wait / 2
    assert 3.5 <= float(np.mean(stalls)) <= 6.5


def test_commits_stalled_longer_than_the_app_timeout_fail_and_the_rest_are_slow():
    db, ev = db_only(3, failover__synchronous_mode=True)
    primary = db.primary()
    run(db, 0, 60)
    # crash right after the leader's loop: the stall lasts almost a whole loop_wait (10 s)
    lw = db.spec.failover.loop_wait
    crash_t = float(math.ceil(primary.loop_phase + (math.floor((60 - primary.loop_phase) / lw)
                                                    + 1) * lw))
    run(db, 60, crash_t)
    db.crash(crash_t, "pg-2")
    results = []
    t = crash_t
    for _ in range(12):
        t += 1
        results.append(db.step(t, 1.0, START + t, 1500, 300, 16))
    stall = of(ev, "db.sync.commits_resumed")[0][3]["stall_seconds"]
    assert stall > 5.0  # longer than the app's 5 s timeout
    assert any(r.write_fail > 0 for r in results[:4])  # the first commits time out
    assert db.stalled_writes == pytest.approx(300 * (stall - 5.0), rel=0.15)
    assert results[-1].write_fail == 0.0
    slow = [r.query_ms for r in results[:int(stall)]]
    assert max(slow) > 100 * results[-1].query_ms  # the waiting commits make queries slow


def test_a_planned_standby_restart_hands_over_without_a_stall():
    db, ev = db_only(2, failover__synchronous_mode=True)
    run(db, 0, 60)
    db.restart(60.0, "pg-2")
    assert not db.commits_stalled and db.sync_name == "pg-3"
    run(db, 60, 100)
    assert not of(ev, "db.sync.standby_lost") and db.stalled_writes == 0


def test_two_nodes_non_strict_goes_standalone_strict_waits_for_the_standby():
    db, ev = db_only(4, nodes=2, regions=["a", "b"], failover__synchronous_mode=True)
    run(db, 0, 30)
    db.crash(30.0, "pg-2")
    run(db, 30, 45)
    assert of(ev, "db.sync.standalone") and not db.commits_stalled and db.sync_name is None
    db, ev = db_only(4, nodes=2, regions=["a", "b"], failover__synchronous_mode=True,
                     failover__synchronous_mode_strict=True)
    run(db, 0, 30)
    db.crash(30.0, "pg-2")
    run(db, 30, 60)
    assert db.commits_stalled and db.stalled_writes > 0
    db.restart(60.0, "pg-2")
    run(db, 60, 95)
    assert not db.commits_stalled and db.sync_name == "pg-2"


def test_a_failover_in_synchronous_mode_names_a_new_standby():
    e = engine("production", seed=5, database__failover__synchronous_mode=True)
    e.step(60)
    e.submit(C.CrashNode(node="primary"))
    e.step(60)
    assert e.db.lost_writes == 0.0
    assert e.db.primary().name == "pg-2" and e.db.sync_name == "pg-3"


# ----------------------------------------------------------------------------- dcs_watch


def promotion_times(watch: bool, seeds=range(150)) -> np.ndarray:
    out = []
    for seed in seeds:
        db, ev = db_only(seed, failover__dcs_watch=watch)
        crash_t = 40.0 + seed % 10
        run(db, 0, crash_t)
        db.crash(crash_t, "primary")
        run(db, crash_t, crash_t + 50)
        (p,) = of(ev, "db.failover.promoted")
        out.append(p[0] - crash_t)
    return np.array(out)


def test_dcs_watch_promotes_when_the_leader_key_expires():
    """etcd3: the key expires ttl - U(0, loop_wait) after the crash and the watch wakes the
    replicas at once: promotion mean ~26 s, p95 ~31 s."""
    dt = promotion_times(True)
    assert dt.min() >= 20.0 and dt.max() <= 33.0
    assert 25.5 <= dt.mean() <= 27.5
    assert 29.0 <= np.percentile(dt, 95) <= 32.0


def test_without_dcs_watch_replicas_notice_on_their_own_loop():
    """The loop_wait model: after the expiry the first of the two replicas' loops (up to
    loop_wait later) takes the lock: 24-40 s, mean ~30 s."""
    dt = promotion_times(False)
    assert dt.min() >= 20.0 and dt.max() <= 42.0
    assert 28.5 <= dt.mean() <= 32.0
    assert dt.mean() - promotion_times(True).mean() >= 2.5


def test_dcs_watch_defaults_on_in_every_profile():
    for name in ("production", "development", "experimental"):
        assert load_profile(name).database.failover.dcs_watch is True


# ----------------------------------------------------------------------------- lag


def lag_stats(writes: float, **overrides):
    db, _ = db_only(6, **overrides)
    run(db, 0, 30, writes=writes)
    secs, byts = [], []
    t = 30.0
    for _ in range(300):
        t += 1
        db.step(t, 1.0, START + t, 1500, writes, 16)
        n = db.node("pg-2")
        secs.append(n.lag_seconds)
        byts.append(n.lag_bytes)
    return np.array(secs), np.array(byts)


def test_lag_moves_with_write_load():
    # 4 KB of WAL per write against 50 MB/s of apply: rho 0.008, 0.08, 0.8
    s1, b1 = lag_stats(100)
    s2, b2 = lag_stats(1000)
    s3, b3 = lag_stats(10000)
    assert np.median(s1) < np.median(s2) < np.median(s3)
    assert np.median(s3) > 1.4 * np.median(s1)  # apply queues near the apply rate
    assert 8 < np.median(b2) / np.median(b1) < 12  # bytes in flight follow the WAL rate
    assert np.median(b3) > 10 * np.median(b2)
    # not a constant: it varies tick to tick
    assert s2.std() > 0.05 * s2.mean()
    # beyond the apply rate the backlog grows without bound
    s4, b4 = lag_stats(15000)
    assert b4[-1] > b4[0] + 250 * (15000 * 4096 - 50 * 1024 * 1024) * 0.9
    assert s4[-1] > s4[0]


def test_lag_moves_with_the_network():
    near, _ = lag_stats(1000, replication_rtt_ms=1.0)
    far, _ = lag_stats(1000, replication_rtt_ms=40.0)
    assert np.median(near) < 0.002  # cross-zone: about a millisecond
    assert 0.015 < np.median(far) < 0.03  # half a 40 ms round trip, plus apply


def test_sync_commits_pay_the_round_trip_to_the_standby():
    base, _ = db_only(1)
    far, _ = db_only(1, failover__synchronous_mode=True, replication_rtt_ms=40.0)
    run(base, 0, 10)
    run(far, 0, 10)
    q0 = base.step(11, 1.0, START + 11, 1500, 300, 16).query_ms
    q1 = far.step(11, 1.0, START + 11, 1500, 300, 16).query_ms
    assert q1 - q0 == pytest.approx(40.0 * 300 / 1800, rel=0.05)


# ----------------------------------------------------------------------------- disk


def disk_after(days: float, writes: float = 300.0, db=None, t0: float = 0.0, **overrides):
    if db is None:
        db, _ = db_only(7, **overrides)
    t = run(db, t0, t0 + days * 86400, writes=writes, dt=60.0)
    return db, t, db.node("pg-1").data_gb


def test_disk_reaches_a_steady_state_under_retention_and_autovacuum():
    db, t, d4 = disk_after(4, data_retention_days=2)
    _, _, d8 = disk_after(4, db=db, t0=t)
    assert d8 == pytest.approx(d4, rel=0.005)
    assert db.vacuums >= 5 and db.purged_gb > 0  # about one vacuum a day at 28 GB of dead rows
    # the live rows: the static part plus two days of inserts (300 w/s x 20 % x 1 KB)
    window = 300 * 0.2 * 1.0 / 1024 ** 2 * 2 * 86400
    assert db.live_gb == pytest.approx(db.static_gb + window, rel=0.02)
    sf = db.spec.autovacuum_vacuum_scale_factor
    assert db.live_gb <= db.file_gb <= db.live_gb * (1 + sf) * 1.01
    # twice the inserts: a new, higher steady state, one retention window later
    _, t2, d_hi = disk_after(3, writes=600, db=db, t0=2 * t)
    _, _, d_hi2 = disk_after(2, writes=600, db=db, t0=t2)
    assert d_hi > d8 and d_hi2 == pytest.approx(d_hi, rel=0.005)


def test_without_retention_the_disk_grows_for_ever():
    db, _, d1 = disk_after(1, data_retention_days=None)
    _, _, d3 = disk_after(2, db=db, t0=86400)
    per_day = 300 * 0.2 * 1.0 / 1024 ** 2 * 86400
    assert d3 - d1 == pytest.approx(2 * per_day, rel=0.25)


def test_a_down_replica_makes_the_primary_keep_its_wal():
    db, _ = db_only(8)
    run(db, 0, 60)
    before = db.node("pg-1").data_gb
    db.crash(60.0, "pg-3")
    run(db, 60, 3660, writes=1000)
    kept = db.node("pg-3").backlog_bytes / GB
    assert kept == pytest.approx(1000 * 4096 * 3600 / GB, rel=0.01)
    assert db.node("pg-1").data_gb - before == pytest.approx(kept, rel=0.05, abs=0.05)


def test_production_disk_stays_put_over_a_simulated_hour():
    e = engine("production", seed=2)
    e.step(60)
    d0 = {n.name: n.disk_pct for n in e.snapshot.db}
    e.step(3600)
    d1 = {n.name: n.disk_pct for n in e.snapshot.db}
    for k in d0:
        assert abs(d1[k] - d0[k]) < 0.2  # was +1 GB an hour before retention and vacuum


# ----------------------------------------------------------------------------- crashed nodes


def test_a_crashed_node_shows_no_lag_and_fires_no_lag_alert():
    e = engine("production", seed=9, traffic__bursts__per_hour=0)
    e.step(60)
    e.submit(C.CrashNode(node="pg-2"))
    e.step(400)
    view = {n.name: n for n in e.snapshot.db}
    assert view["pg-2"].state == "crashed" and view["pg-2"].lag_seconds is None
    assert view["pg-2"].lag_bytes is None
    assert db_row(view["pg-2"])[5][0] == "-"
    lag = engine_sampler(e)(e.t, e.agg, frozenset({"devsim_db_replication_lag_seconds"}))
    labels, _ = lag["devsim_db_replication_lag_seconds"]
    assert ("node", "pg-2") not in {kv for lb in labels for kv in lb}
    assert not [a for a in e.snapshot.alerts if a.name == "ReplicationLagHigh"]
    # the crashed former primary after a failover: the same, and it catches up once back
    e.submit(C.CrashNode(node="primary"))
    e.step(120)
    view = {n.name: n for n in e.snapshot.db}
    assert view["pg-1"].role == "replica" and view["pg-1"].lag_seconds is None
    assert not [a for a in e.snapshot.alerts if a.name == "ReplicationLagHigh"]
    e.submit(C.RestartNode(node="pg-1"))
    e.submit(C.RestartNode(node="pg-2"))
    e.step(60)
    view = {n.name: n for n in e.snapshot.db}
    assert view["pg-1"].lag_seconds is not None and view["pg-1"].lag_seconds < 1.0


# ----------------------------------------------------------------------------- alerts


def firing(e) -> set[str]:
    return {a.name for a in e.snapshot.alerts if a.state == "firing"}


def ever_firing(e, ticks: int) -> set[str]:
    seen: set[str] = set()
    for _ in range(ticks):
        e.advance()
        if e.alerts.last_eval_t == e.t:
            seen |= {a.name for a in e.alerts.views if a.state == "firing"}
    return seen


@pytest.mark.parametrize("offset", range(0, 15, 2))
def test_a_35s_primary_outage_fires_primary_down_and_database_not_writable(offset):
    """A primary down 35 s (crashed, no failover, restarted after 15 s + 20 s of recovery),
    wherever the outage falls between scrapes and evaluations."""
    e = engine("production", seed=1, database__failover__enabled=False)
    e.step(60 + offset)
    e.submit(C.CrashNode(node="primary"))
    e.step(15)
    e.submit(C.RestartNode(node="pg-1"))
    seen = ever_firing(e, 120)
    assert e.agg.db_writable
    assert {"PrimaryDown", "DatabaseNotWritable"} <= seen


@pytest.mark.parametrize("offset", range(0, 15, 3))
def test_a_35s_write_outage_fires_database_not_writable(offset):
    e = engine("production", seed=1)
    e.step(60 + offset)
    e.submit_line("chaos db-partition db 35s")
    seen = ever_firing(e, 100)
    assert "DatabaseNotWritable" in seen


def test_failovers_longer_than_the_detection_time_page_and_switchovers_do_not():
    for seed in range(8):
        e = engine("production", seed=seed, traffic__bursts__per_hour=0,
                   database__failover__dcs_watch=False)
        e.step(60)
        e.submit(C.CrashNode(node="primary"))
        seen = ever_firing(e, 90)
        promoted = next(ev for ev in e.events if ev.type == "db.failover.promoted")
        done = next(ev for ev in e.events if ev.type == "db.failover.completed")
        if done.data["rto_seconds"] >= 31:
            assert "DatabaseNotWritable" in seen, seed
        if promoted.data["seconds"] >= 31:
            assert "PrimaryDown" in seen, seed
    e = engine("production", seed=3)
    e.step(60)
    e.submit(C.Failover(target="pg-3"))
    assert not {"PrimaryDown", "DatabaseNotWritable"} & ever_firing(e, 120)


def test_every_database_and_analysis_field_has_a_description():
    from devsim_tui.config.schema import AnalysisSpec, BackupSpec, DatabaseSpec, FailoverSpec

    for model in (DatabaseSpec, FailoverSpec, BackupSpec, AnalysisSpec):
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no description"


def test_a_restarted_multi_master_node_rejoins_the_mesh_not_a_primary():
    from helpers import engine as build

    e = build("experimental")
    e.step(30)
    e.submit_line("crash-node pg-3")
    e.step(30)
    e.submit_line("restart-node pg-3")
    e.step(120)
    back = [ev for ev in e.events if ev.type == "db.node.recovered"]
    assert len(back) == 1 and "rejoined the mesh (4 peers up), catching up" in back[0].message
    assert "?" not in back[0].message
    node = e.db.node("pg-3")
    assert node.up and node.role == "multi-master" and node.write_qps > 0
