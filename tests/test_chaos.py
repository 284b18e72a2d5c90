"""The chaos catalogue: every fault shows in the metrics it should and reverts after its duration;
stop by id and emergency stop; determinism; failover through chaos; headless --commands runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import REPO, engine, events_of, headless_bytes, run_cli

from devsim_tui.sim.command_file import TimedCommand
from devsim_tui.sim import commands as C
from devsim_tui.sim.chaos import CATALOGUE, ChaosController
from devsim_tui.sim.snapshot import CRASHED, NOTREADY, READY


def quiet(profile="production", **kw):
    kw.setdefault("traffic__bursts__per_hour", 0)
    kw.setdefault("traffic__noise", 0)
    kw.setdefault("traffic__diurnal_amplitude", 0)
    return engine(profile, **kw)


def chaos_state(e):
    return e.snapshot.extensions["ChaosController"]


def test_catalogue_has_at_least_15_faults_with_parameters():
    assert len(CATALOGUE) >= 15
    for ft in CATALOGUE.values():
        assert ft.summary and ft.effect and ft.scopes
        assert (ft.intensity is None) == (ft.default_intensity is None)


def test_chaos_list_cli_prints_every_fault():
    out = run_cli("chaos", "list")
    assert out.returncode == 0
    for name in CATALOGUE:
        assert f"{name}:" in out.stdout
    rows = json.loads(run_cli("chaos", "list", "--json").stdout)
    assert {r["type"] for r in rows} == set(CATALOGUE)


def test_bad_chaos_lines_are_rejected_with_help():
    with pytest.raises(C.CommandError, match="did you mean 'cpu-hog'"):
        C.parse_line("chaos cpu-hgo")
    with pytest.raises(C.CommandError, match="must be in"):
        C.parse_line("chaos cpu-hog 1 5m 3")
    e = quiet()
    e.submit_line("chaos cpu-hog eu-west-9z")
    e.submit_line("chaos cache-flush")
    e.submit_line("chaos broker-down")
    e.step(1)
    msgs = [ev.message for ev in events_of(e, "command.rejected")]
    assert "not understood" in msgs[0] and "no cache" in msgs[1] and "Kafka" in msgs[2]


# ----------------------------------------------------------------------------- per fault
# Each case: profile, chaos line, metric(e) -> float, and whether the fault raises it. The
# metric is read before, while the fault is active, and after it reverted (plus recovery time).


def fleet_p99(e):
    return e.agg.p99_ms


def fleet_err(e):
    return e.agg.error_rate


def max_cpu(e):
    return float(e.fleet.cpu.max())


def max_mem(e):
    return float(e.fleet.memory_mb.max())


def max_disk(e):
    return float(e.fleet.disk_gb.max())


def ready_servers(e):
    return float(e.agg.ready)


def db_read_qps(e):
    return float(sum(n.read_qps for n in e.db.nodes))


def replica_lag(e):
    return float(max(n.lag_bytes for n in e.db.nodes if n.role == "replica"))


def mesh_lag(e):
    return float(max(n.lag_seconds for n in e.db.nodes if n.up))


def db_query_latency(e):
    return e.agg.mean_ms


def db_cpu(e):
    return max(n.cpu for n in e.db.nodes if n.up)


def not_writable(e):
    return 0.0 if e.agg.db_writable else 1.0


def crashed_servers(e):
    return float(np.count_nonzero(e.fleet.state == CRASHED))


def notready_servers(e):
    return float(np.count_nonzero(e.fleet.state == NOTREADY))


def offered(e):
    return e.agg.offered_rps


def consumer_lag(e):
    return chaos_state(e)["event_stream"]["consumer_lag_seconds"]


def cache_miss(e):
    return 1.0 - e.agg.cache_hit_ratio


def thanos_store_down(e):
    """The long-term store's outage (tests/test_thanos.py: what the long windows show)."""
    return 0.0 if e.snapshot.extensions["ThanosController"]["store_up"] else 1.0


def security_rate(key):
    def metric(e):
        return float(e.snapshot.extensions["SecurityController"]["rates"][key])
    metric.__name__ = key
    return metric


def archive_queue(e):
    """WAL segments waiting for archive_command (sim/backup.py; tests/test_backup.py)."""
    return e.db.backups.pending_bytes


CASES = [
    ("production", "chaos server-kill 3", crashed_servers, 2, 60),
    ("production", "chaos crash-loop 2 2m", crashed_servers, 5, 180),
    ("production", "chaos cpu-hog 25% 2m 0.7", max_cpu, 5, 60),
    ("production", "chaos memory-leak 2 2m 20", max_mem, 30, 60),
    ("production", "chaos disk-fill 2 2m 0.97", max_disk, 5, 10),
    ("production", "chaos network-latency all 2m 300", fleet_p99, 5, 10),
    ("production", "chaos packet-loss all 2m 0.2", fleet_err, 5, 10),
    ("production", "chaos db-partition db 2m", fleet_err, 5, 10),
    ("production", "chaos db-partition primary 2m", not_writable, 5, 10),
    ("production", "chaos dcs-outage db 2m", not_writable, 25, 20),
    ("production", "chaos db-primary-crash primary 2m", not_writable, 5, 90),
    ("production", "chaos db-replica-crash pg-2 2m", replica_lag, 5, 120),
    ("production", "chaos replication-lag db 2m 0.001", replica_lag, 30, 60),
    ("production", "chaos slow-queries primary 2m 50", db_query_latency, 10, 30),
    ("production", "chaos pool-exhaustion db 2m 1.0", fleet_err, 30, 30),
    ("experimental", "chaos cache-node-down master 2m", db_read_qps, 5, 30),
    # Zipf: the hot keys refill in seconds, the long tail in tens of minutes (cache_model.py)
    ("experimental", "chaos cache-flush", cache_miss, 1, 3600),
    ("production", "chaos traffic-spike estate 2m 2.5", offered, 5, 10),
    # after node-monitor-grace-period (40 s) the region's pods are Ready=False (sim/cloud.py)
    ("experimental", "chaos region-outage aws 2m", notready_servers, 45, 120),
    # split brain: each side falls behind the other, then catches up (tests/test_mesh.py)
    ("experimental", "chaos mesh-partition aws 2m", mesh_lag, 5, 60),
    ("production", "chaos tls-expiry estate 2m", fleet_err, 5, 10),
    ("experimental", "chaos broker-down estate 2m", consumer_lag, 30, 300),
    ("experimental", "chaos consumer-lag estate 2m 0.1", consumer_lag, 30, 300),
    ("experimental", "chaos rebalance-storm estate 2m 0.8", consumer_lag, 30, 300),
    ("experimental", "chaos partition-election estate 2m 0.5", consumer_lag, 30, 300),
    ("experimental", "chaos hot-key-shift cache 2m 0.6", cache_miss, 5, 3600),
    ("production", "chaos dependency-outage estate 2m 0.3", fleet_err, 5, 10),
    ("experimental", "chaos store-outage estate 2m", thanos_store_down, 5, 10),
    # security faults (tests/test_security.py tests each control in depth)
    ("development", "chaos credential-leak estate 2m", security_rate("anomalous_queries_per_s"),
     5, 5),
    ("development", "chaos debug-port-scan estate 2m", security_rate("anomalous_queries_per_s"),
     5, 5),
    ("production", "chaos cert-renewal-failure edge 2m 0.005", fleet_err, 30, 10),
    ("experimental", "chaos policy-misconfig estate 2m 0.4", fleet_err, 5, 10),
    ("development", "chaos data-exfiltration db 2m", security_rate("egress_bytes_per_s"), 5, 5),
    ("production", "chaos brute-force-login estate 2m", security_rate("login_failures_per_s"),
     5, 5),
    ("experimental", "chaos archive-stall backup 2m", archive_queue, 70, 10),
    ("experimental", "chaos storage-full backup 2m", archive_queue, 70, 10),
    # one-shot: experimental's AI optimiser reverts it (tests/test_database_plans.py)
    ("experimental", "chaos plan-regression db 0.5", db_cpu, 5, 60),
]
#: Faults whose recovery needs an operator, tested on their own: drop-table stays until a
#: restore to a time before it (tests/test_backup.py).
NEEDS_OPERATOR = {"drop-table"}


def test_every_fault_type_has_a_metric_test():
    tested = {C.parse_line(line).type for _, line, *_ in CASES}
    assert tested | NEEDS_OPERATOR == set(CATALOGUE)


@pytest.mark.parametrize("profile,line,metric,settle,recover", CASES,
                         ids=[c[1].split()[1] + ":" + (c[1].split() + [""])[2] for c in CASES])
def test_fault_shows_in_its_metric_and_reverts(profile, line, metric, settle, recover):
    e = quiet(profile, scaling__scaler="manual")
    e.step(60)
    before = metric(e)
    e.submit_line(line)
    e.step(settle)
    during = metric(e)
    assert not events_of(e, "command.rejected"), events_of(e, "command.rejected")[0].message
    injected = events_of(e, "chaos.injected")
    assert injected and injected[0].data["fault"] == C.parse_line(line).type
    assert during > before * 1.2 + 1e-6, (before, during)
    ft = CATALOGUE[C.parse_line(line).type]
    if ft.duration is not None:
        assert chaos_state(e)["active"][0]["remaining_s"] > 0
        e.step(120 - settle)
        assert events_of(e, "chaos.reverted"), "fault must revert after its duration"
        assert chaos_state(e)["active"] == []
    e.step(recover)
    after = metric(e)
    assert after <= before * 1.2 + max(1e-6, 0.05 * abs(during - before)), (before, during,
                                                                               after)


def test_memory_leak_ends_in_oom_kill_and_restart():
    e = quiet(scaling__scaler="manual")
    e.step(30)
    e.submit_line("chaos memory-leak web-002 5m 20")
    e.step(60)
    oom = events_of(e, "server.oom_killed")
    assert oom and oom[0].data["servers"] == ["web-002"]
    assert e.fleet.restarts[e.fleet.names.index("web-002")] >= 1 or \
        e.fleet.state[e.fleet.names.index("web-002")] == CRASHED


def test_cache_flush_stampede_raises_db_reads_by_one_over_miss_ratio():
    e = quiet("experimental", scaling__scaler="manual")
    e.step(60)
    before = db_read_qps(e)
    h = e.cache.hit_ratio
    e.submit_line("chaos cache-flush")
    e.step(2)
    # backend reads = reads x (1 - h); the hottest keys are already back after 2 s of reads
    now = e.cache.hit_ratio
    assert now < h - 0.3
    assert db_read_qps(e) / before == pytest.approx((1 - now) / (1 - h), rel=0.1)


def test_cache_master_down_until_replica_takes_over_after_node_timeout():
    e = quiet("experimental", scaling__scaler="manual")
    e.step(60)
    e.submit_line("chaos cache-node-down redis-1 5m")
    hits = [e.advance()[0].cache_hit_ratio for _ in range(30)]
    # uncovered slots: the cluster rejects queries until the replica is promoted (~16 s)
    assert hits[5] == 0.0 and hits[-1] > 0.8
    fo = events_of(e, "cache.failover")
    assert fo and 15 <= fo[0].t - 60 <= 18


def test_region_outage_shifts_traffic_to_the_other_regions():
    e = quiet("experimental")
    e.step(60)
    f = e.fleet
    per_server = float(f.rps[f.state == READY].mean())
    e.submit_line("chaos region-outage aws 5m")
    e.step(2)
    f = e.fleet
    aws = e.profile.app.regions.index("aws")
    # Still in the endpoints until the grace period ends: requests routed there time out.
    assert e.agg.timed_out_rps > 0.2 * e.agg.offered_rps
    e.step(40)
    f = e.fleet
    assert (f.state[f.region == aws] == NOTREADY).all()
    assert float(f.rps[f.state == READY].mean()) > 1.2 * per_server
    assert any(n.state == "crashed" for n in e.db.nodes if n.region == "aws")
    e.step(200)
    assert (e.fleet.region[e.fleet.started_at > 60] != aws).all()  # nothing scheduled there
    e.step(200)
    assert events_of(e, "chaos.reverted")


def test_tls_expiry_has_no_effect_where_tls_is_off():
    e = quiet("development")
    e.step(30)
    e.submit_line("chaos tls-expiry")
    e.step(30)
    assert "no effect: TLS is off" in events_of(e, "chaos.injected")[0].message
    assert e.agg.error_rate < 0.01


def test_pool_exhaustion_queues_then_times_out():
    e = quiet(scaling__scaler="manual")
    e.step(30)
    e.submit_line("chaos pool-exhaustion db 5m 1.0")
    e.step(2)
    assert chaos_state(e)["pool"]["wait_s"] > 0 and e.agg.error_rate < 0.5
    e.step(30)
    assert e.agg.error_rate > 0.9  # the app's 5 s timeout fires before query_wait_timeout


def test_stop_one_by_id_and_emergency_stop_all():
    e = quiet(scaling__scaler="manual")
    e.step(30)
    for line in ("chaos cpu-hog 2 10m", "chaos network-latency all 10m 100",
                 "chaos traffic-spike estate 10m 2", "chaos slow-queries primary 10m 4"):
        e.submit_line(line)
    e.step(5)
    st = chaos_state(e)
    assert [a["id"] for a in st["active"]] == ["F1", "F2", "F3", "F4"]
    assert len(st["faulted_servers"]) == 16 and st["faulted_db_nodes"] == ["pg-1"]
    e.submit_line("chaos-stop F2")
    e.step(1)
    assert [a["id"] for a in chaos_state(e)["active"]] == ["F1", "F3", "F4"]
    assert float(e.fleet.lat_extra_ms.max()) == 0.0
    assert float(e.fleet.cap_factor.min()) < 1.0  # F1 still active
    e.submit_line("chaos-stop all")
    e.step(1)
    assert chaos_state(e)["active"] == [] and events_of(e, "chaos.emergency_stop")
    f = e.fleet
    assert (f.cap_factor == 1).all() and not f.err_extra.any() and e.traffic_factor == 1.0
    assert all(n.slow_factor == 1.0 for n in e.db.nodes)
    e.submit_line("chaos-stop F9")
    e.step(1)
    assert "no active fault" in events_of(e, "command.rejected")[-1].message


def test_faults_compose_with_a_bad_release():
    """Reverting a fault restores the version's own knobs, not neutral ones (manual rollback
    keeps the bad version running while the fault comes and goes)."""
    e = quiet(scaling__scaler="manual", deployment__rollback="manual")
    e.step(30)
    e.submit_line("deploy bad:latency")
    e.step(40)
    bad = e.versions.index("v2.14.4")
    e.submit_line("chaos network-latency all 20s 100")
    e.step(30)
    f = e.fleet
    on_bad = f.version == bad
    assert on_bad.any() and (f.lat_extra_ms[on_bad] == 800.0).all()


def test_primary_crash_via_chaos_fails_over_with_patroni_timing_and_data_loss():
    e = quiet()
    e.step(120)
    lags = {n.name: n.lag_bytes for n in e.db.nodes if n.role == "replica"}
    crash_t = e.t
    e.submit_line("chaos db-primary-crash primary 3m")
    e.step(90)
    f = e.profile.database.failover
    promoted = events_of(e, "db.failover.promoted")
    assert len(promoted) == 1
    assert f.ttl - f.loop_wait <= promoted[0].t - crash_t <= f.ttl + f.loop_wait + 2
    winner = promoted[0].subject
    wal = e.profile.database.wal_kb_per_write * 1024
    assert e.db.lost_writes == pytest.approx(lags[winner] / wal, rel=1e-6)
    e.step(150)
    # the fault reverted: the old primary was restarted and rejoined as a replica
    assert events_of(e, "chaos.reverted")
    roles = {n.name: n.role for n in e.db.nodes}
    assert roles["pg-1"] == "replica" and e.db.node("pg-1").up


def test_chaos_is_deterministic_and_uses_the_engine_rng():
    def run(seed):
        e = quiet(seed=seed)
        e.step(10)
        e.submit_line("chaos server-kill 25%")
        e.step(1)
        return events_of(e, "chaos.injected")[0].data["targets"]

    assert run(3) == run(3)
    assert run(3) != run(4)


# ----------------------------------------------------------------------------- headless


DRILL = [
    TimedCommand(at=60, command="deploy", args={"version": "bad:error-rate"}),
    TimedCommand(at=400, command="chaos", args={"type": "cpu-hog", "scope": "25%",
                                                "duration": "2m", "intensity": 0.5}),
    TimedCommand(at=450, command="chaos", args={"type": "db-primary-crash"}),
    TimedCommand(at=500, command="chaos-stop", args={"id": "all"}),
    TimedCommand(at=600, command="deploy", args={"version": "v2.15.0"}),
]


def test_headless_drill_is_deterministic_and_tells_the_story():
    a = headless_bytes("production", 5, 1200, DRILL)
    assert a == headless_bytes("production", 5, 1200, DRILL)
    types = [json.loads(line).get("type") for line in a.splitlines()]
    for t in ("release.rollout.started", "release.rollback", "release.rollout.complete",
              "chaos.injected", "db.failover.promoted", "chaos.emergency_stop"):
        assert t in types, t
    summary = json.loads(a.splitlines()[-1])
    assert summary["commands_rejected"] == 0 and summary["commands_applied"] == len(DRILL)


def test_simulate_cli_runs_a_commands_file(tmp_path):
    cmds = tmp_path / "drill.yaml"
    cmds.write_text(
        "- {at: 30s, command: chaos, args: {type: traffic-spike, duration: 1m, intensity: 2}}\n"
        "- {at: 40s, command: deploy, args: {version: 'bad:crash-loop'}}\n"
        "- {at: 2m, command: chaos-stop, args: {id: all}}\n")
    out = tmp_path / "run.jsonl"
    r = run_cli("simulate", "--profile", "production", "--seed", "3", "--duration", "5m",
                "--commands", str(cmds), "--out", str(out), cwd=REPO)
    assert r.returncode == 0, r.stderr
    types = [json.loads(line).get("type") for line in out.read_text().splitlines()]
    assert "release.rollback" in types and "chaos.reverted" in types


def test_controller_is_idle_when_nothing_is_active():
    e = quiet()
    ctl = next(c for c in e.controllers if isinstance(c, ChaosController))
    assert ctl.stream is None and not ctl.active and not ctl._estate


def test_chaos_line_without_scope_shifts_duration_and_intensity():
    """`chaos traffic-spike 10m 3` means ten minutes at x3, not a scope called '10m'."""
    from devsim_tui.sim.commands import parse_line

    cmd = parse_line("chaos traffic-spike 10m 3")
    assert (cmd.scope, cmd.duration, cmd.intensity) == (None, "10m", 3.0)
    cmd = parse_line("chaos server-kill 5")
    assert (cmd.scope, cmd.duration) == ("5", None)


def test_hot_key_shift_drops_the_hit_ratio_which_recovers_then_dips_again_on_revert():
    e = quiet("experimental", scaling__scaler="manual")
    e.step(60)
    h = e.cache.hit_ratio
    before = db_read_qps(e)
    e.submit_line("chaos hot-key-shift cache 10m 0.6")
    e.step(2)
    assert not events_of(e, "command.rejected")
    assert events_of(e, "cache.hot_key_shift")
    dip = e.cache.hit_ratio
    assert dip < h - 0.1  # 60% of the reads now go to keys the cache does not hold
    assert db_read_qps(e) > 1.5 * before
    e.step(300)
    mid = e.cache.hit_ratio
    assert dip < mid < h  # the cache learns the new hot keys as they are read
    e.step(600 - 302 + 2)  # the fault ends: reads return to the old keys, evicted meanwhile
    assert events_of(e, "chaos.reverted")
    assert e.cache.hit_ratio < mid - 0.05
    e.step(3600)
    assert e.cache.hit_ratio > h - 0.02


def test_hot_key_shift_needs_a_cache():
    e = quiet("production")
    e.submit_line("chaos hot-key-shift")
    e.step(1)
    assert "no cache" in events_of(e, "command.rejected")[0].message


def test_kafka_group_lag_grows_under_a_slow_consumer_and_drains_after():
    from devsim_tui.export.prometheus import SnapshotView
    from devsim_tui.headless import tick_record
    from devsim_tui.sim.metrics import collect

    e = quiet("experimental", scaling__scaler="manual")
    e.step(60)
    assert all(g["lag"] == 0 for g in tick_record(e)["kafka"]["groups"].values())
    e.submit_line("chaos consumer-lag estate 5m 0.1")
    e.step(60)
    first = tick_record(e)["kafka"]["groups"]
    e.step(180)
    later = tick_record(e)["kafka"]["groups"]
    for name in ("notifications", "feature-store"):
        assert 0 < first[name]["lag"] < later[name]["lag"]  # grows while consumers are slow
    samples = collect(SnapshotView(e.snapshot, e.profile.app.service))
    labels, values = samples["devsim_kafka_consumergroup_lag"]
    assert dict(zip([lb[0][1] for lb in labels], values))["notifications"] > 0
    assert events_of(e, "kafka.consumer_lag")  # past lag_alert_seconds
    e.step(60 + 600)  # the fault ends at 5 min; full-speed consumers work the backlog off
    drained = tick_record(e)["kafka"]["groups"]
    assert all(g["lag"] == 0 for g in drained.values()), drained
    assert events_of(e, "kafka.consumer_lag_recovered")


def test_kafka_is_the_streaming_field_not_a_word_in_features():
    e = quiet("experimental", streaming__enabled=False)
    assert "kafka" in " ".join(e.profile.app.features).lower()
    e.submit_line("chaos broker-down")
    e.step(1)
    assert "no event-stream broker" in events_of(e, "command.rejected")[0].message


def test_consumers_beyond_the_partition_count_sit_idle():
    from devsim_tui.sim.chaos import ChaosController

    e = quiet("experimental", streaming__partitions=4)
    s = next(c for c in e.controllers if isinstance(c, ChaosController)).stream
    # notifications: 6 consumers x 500/s, only 4 get a partition
    assert s.group_capacity[s.groups.index("notifications")] == 4 * 500


def test_stream_summary_row_names_each_group_and_a_down_broker():
    from devsim_tui.ui.database import stream_summary

    e = quiet("experimental", scaling__scaler="manual")
    e.step(30)
    e.submit_line("chaos broker-down estate 2m")
    e.step(90)
    row = stream_summary(e.snapshot.extensions["ChaosController"]["event_stream"])
    assert row.startswith("Kafka lag: broker DOWN · notifications ")
    assert "feature-store" in row and " 0s " not in row  # both groups are behind


@pytest.mark.parametrize("line", ["chaos rebalance-storm estate 2m 0.8",
                                  "chaos partition-election estate 2m 0.5"])
def test_rebalance_storm_and_leader_election_build_lag_that_drains(line):
    e = quiet("experimental", scaling__scaler="manual")
    e.step(30)
    e.submit_line(line)
    e.step(60)
    assert not events_of(e, "command.rejected")
    lag = chaos_state(e)["event_stream"]["consumer_lag_messages"]
    assert lag > 1400 * 0.3 * 60  # the events not consumed or still held by producers
    e.step(60 + 600)
    s = chaos_state(e)["event_stream"]
    assert s["consumer_lag_messages"] == 0 and s["consumer_factor"] == 1.0
    assert s["lost_events"] == 0  # nothing expired: the producers delivered after the fault
