"""A DCS outage (chaos dcs-outage) against Patroni's retry_timeout.

Patroni's dynamic configuration (https://patroni.readthedocs.io/en/latest/dynamic_configuration.html):
retry_timeout is the timeout for DCS and PostgreSQL operation retries; "DCS or network issues
shorter than this will not cause Patroni to demote the leader". A leader that cannot update the
leader key for longer demotes itself to read-only (split-brain fence) and, without
failsafe_mode, stays so until the DCS is reachable and a leader race is won
(https://patroni.readthedocs.io/en/latest/dcs_failsafe_mode.html). The leader's first HA loop in
the outage comes within loop_wait of its start, so the demotion falls in
[retry_timeout, retry_timeout + loop_wait] after it (+ one tick).
"""

from __future__ import annotations

import json

import pytest
from helpers import REPO, engine, run_cli


def events(e, type_):
    return [ev for ev in e.events if ev.type == type_]


def outage(retry_timeout=None, seconds=60.0, seed=1, offset=0, watch=120, **overrides):
    """Run a production engine, inject a DCS outage at 60 s + offset, and record per tick
    whether the database was writable and the replicas served reads."""
    if retry_timeout is not None:
        overrides["database__failover__retry_timeout"] = retry_timeout
    e = engine("production", seed=seed, traffic__bursts__per_hour=0, **overrides)
    e.step(60 + offset)
    t0 = e.t
    assert e.submit_line(f"chaos dcs-outage db {seconds:g}s") is None
    assert not events(e, "command.rejected")
    ticks = []
    for _ in range(watch):
        e.step(1)
        replica_reads = sum(n.read_qps for n in e.db.nodes if n.role == "replica" and n.up)
        ticks.append((e.t - t0, e.agg.db_writable, replica_reads, e.agg.error_rate))
    return e, t0, ticks


@pytest.mark.parametrize("offset", range(0, 10, 3))
def test_an_outage_shorter_than_retry_timeout_does_not_demote(offset):
    e, _, ticks = outage(seconds=9, offset=offset, watch=40)
    assert not events(e, "db.leader.demoted")
    assert all(w for _, w, _, _ in ticks)
    assert events(e, "db.dcs.reachable")[0].data["seconds"] == pytest.approx(9, abs=1)
    assert e.db.primary().name == "pg-1"


@pytest.mark.parametrize("seed,offset", [(1, 0), (2, 3), (3, 7), (4, 9), (5, 5)])
def test_a_long_outage_demotes_within_retry_timeout_plus_loop_wait(seed, offset):
    e, t0, ticks = outage(seconds=60, seed=seed, offset=offset)
    demoted = events(e, "db.leader.demoted")
    assert len(demoted) == 1
    delay = demoted[0].t - t0
    assert 10 <= delay <= 10 + 10 + 1, delay
    assert demoted[0].data["retry_timeout"] == 10
    # Writes fail while demoted (requests that write error); replicas keep serving reads.
    during = [(w, r, err) for dt, w, r, err in ticks if delay + 1 <= dt < 60]
    assert during and not any(w for w, _, _ in during)
    assert all(r > 0 for _, r, _ in during)
    assert min(err for _, _, err in during) > 0.01
    assert all(w for dt, w, _, _ in ticks if dt < 10)


def test_the_db_pane_sees_no_writable_primary_while_demoted():
    e, t0, _ = outage(seconds=300, watch=30)
    assert events(e, "db.leader.demoted")
    assert e.db.primary() is None and not e.agg.db_writable
    states = {v.name: (v.role, v.state) for v in e.db.views(e.t, 100)}
    assert states["pg-1"] == ("replica", "demoted")
    assert all(r == "replica" for r, _ in states.values())


def test_when_the_dcs_is_back_a_node_wins_the_race_and_writes_flow_again():
    e, t0, ticks = outage(seconds=45, watch=90)
    back = events(e, "db.dcs.reachable")[0]
    promoted = events(e, "db.leader.promoted")
    assert len(promoted) == 1
    # the next HA loop after the DCS returns (<= loop_wait), promotion 0.5-2 s
    assert back.t <= promoted[0].t <= back.t + 10 + 2 + 1
    assert e.db.primary() is not None and e.agg.db_writable
    assert all(w for dt, w, _, _ in ticks if dt >= promoted[0].t - t0 + 3)
    assert promoted[0].data["write_outage_seconds"] > 0
    assert e.db.lost_writes == 0


def test_no_replica_takes_the_lock_of_a_crashed_primary_before_the_dcs_is_back():
    from devsim_tui.sim import commands as C

    e = engine("production", seed=2)
    e.step(60)
    t0 = e.t
    e.submit_line("chaos dcs-outage db 60s")
    e.step(5)
    e.submit(C.CrashNode(node="primary"))
    e.step(50)
    assert not events(e, "db.failover.promoted") and not events(e, "db.leader.demoted")
    assert not e.agg.db_writable
    e.step(30)
    promoted = events(e, "db.failover.promoted")
    assert promoted and promoted[0].t >= t0 + 60
    assert e.agg.db_writable


def test_a_demoted_leader_that_crashes_leaves_the_race_to_a_replica():
    from devsim_tui.sim import commands as C

    e = engine("production", seed=2)
    e.step(60)
    e.submit_line("chaos dcs-outage db 60s")
    e.step(30)
    assert events(e, "db.leader.demoted")
    e.submit(C.CrashNode(node="pg-1"))
    e.step(60)
    won = events(e, "db.leader.promoted")
    assert won and won[0].subject in ("pg-2", "pg-3") and won[0].data["old_primary"] == "pg-1"
    assert e.agg.db_writable and e.db.primary().name == won[0].subject


def test_a_switchover_is_rejected_during_the_outage():
    e = engine("production", seed=1)
    e.step(60)
    e.submit_line("chaos dcs-outage db 5m")
    e.step(2)
    e.submit_line("failover pg-2")
    e.step(1)
    rej = events(e, "command.rejected")
    assert rej and "DCS" in rej[0].message
    assert not events(e, "db.switchover")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_retry_timeout_from_the_profile_sets_the_timing(seed):
    """An 8 s outage does not demote with retry_timeout 10; the demotion delay of a long
    outage follows retry_timeout (ttl raised for 15 to keep loop_wait + 2*retry_timeout <= ttl)."""
    e10, _, _ = outage(10, seconds=8, seed=seed, watch=30)
    assert not events(e10, "db.leader.demoted")
    e15, t15, _ = outage(15, seconds=120, seed=seed, watch=40,
                         database__failover__ttl=40)
    e5, t5, _ = outage(5, seconds=120, seed=seed, watch=40)
    d15 = events(e15, "db.leader.demoted")[0].t - t15
    d5 = events(e5, "db.leader.demoted")[0].t - t5
    assert 15 <= d15 <= 15 + 10 + 1 and 5 <= d5 <= 5 + 10 + 1
    assert d15 - d5 == pytest.approx(10, abs=1)  # same seed, same loop phase


def test_a_short_outage_demotes_with_a_short_retry_timeout():
    """retry_timeout 5 and an outage of 5 + loop_wait + 2 s: always demoted."""
    for seed in range(4):
        e, _, _ = outage(5, seconds=17, seed=seed, watch=30)
        assert events(e, "db.leader.demoted"), seed
        e, _, _ = outage(10, seconds=9, seed=seed, watch=30)
        assert not events(e, "db.leader.demoted"), seed


def test_dcs_outage_needs_a_patroni_cluster():
    e = engine("production", seed=1, database__topology="multi-master")
    e.step(5)
    e.submit_line("chaos dcs-outage db 1m")
    e.step(1)
    rej = events(e, "command.rejected")
    assert rej and "primary-replica" in rej[0].message


def test_headless_commands_file_runs_a_dcs_outage(tmp_path):
    cmds = tmp_path / "dcs.yaml"
    cmds.write_text("- {at: 30s, command: chaos, args: {type: dcs-outage, duration: 1m}}\n")
    out = tmp_path / "run.jsonl"
    r = run_cli("simulate", "--profile", "production", "--seed", "3", "--duration", "3m",
                "--commands", str(cmds), "--out", str(out), cwd=REPO)
    assert r.returncode == 0, r.stderr
    types = [json.loads(line).get("type") for line in out.read_text().splitlines()]
    for t in ("db.dcs.unreachable", "db.leader.demoted", "db.dcs.reachable",
              "db.leader.promoted"):
        assert t in types, t
    assert types.index("db.leader.demoted") < types.index("db.dcs.reachable") \
        < types.index("db.leader.promoted")
