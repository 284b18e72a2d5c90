"""Backups as a process: WAL archiving and ArchiveStale, retention, point-in-time restore and
its RPO, drop-table + restore, seed_test_data (docs/data.md)."""

from __future__ import annotations

import json

import pytest
from helpers import engine, events_of, headless_bytes, quiet

from devsim_tui.sim import commands as C
from devsim_tui.sim.backup import ARCHIVE_MB_S, RESTORE_MB_S


def backup_view(e):
    return e.db.backups.view(e.t)


def firing(e, name):
    return [a for a in e.alerts.views if a.name == name and a.state == "firing"]


def test_continuous_restore_point_stays_within_archive_timeout_when_healthy():
    e = quiet()
    ages = [e.advance()[0].restore_point_age_s for _ in range(600)]
    timeout = e.profile.database.backup.archive_timeout_seconds
    assert max(ages) <= timeout + 1.0
    assert backup_view(e)["archive_pending_mb"] == 0.0


def test_archive_stall_freezes_the_restore_point_and_fires_archive_stale_on_time():
    """ArchiveStale: restore point age > 300 for 5m (profiles/rules/experimental.yaml). The
    restore point stops at the last segment shipped before the stall; the age passes 300 s
    300 s after it, and the alert fires at the first evaluation 5m after that."""
    e = quiet()
    e.step(120)
    e.submit_line("chaos archive-stall backup 30m")
    e.step(1)
    last_archived = e.db.backups.archived_t
    assert e.t - last_archived <= 61.0
    e.step(300)
    assert e.db.backups.archived_t == last_archived  # nothing shipped while stalled
    assert e.agg.restore_point_age_s == pytest.approx(e.t - last_archived)
    assert backup_view(e)["archive_pending_mb"] >= 16.0 * 4  # segments queue in pg_wal
    assert events_of(e, "db.archive.failing")
    crossed = last_archived + 300.0  # age > 300 from here
    eval_s = e.profile.monitoring.evaluation_interval_seconds
    earliest = crossed + 300.0  # for: 5m
    e.run_until(earliest - 1.0)
    assert not firing(e, "ArchiveStale")
    e.run_until(earliest + eval_s + 1.0)
    assert firing(e, "ArchiveStale"), "ArchiveStale must fire within one evaluation of due"
    fired = [ev for ev in events_of(e, "alert.") if "ArchiveStale" in ev.message]
    assert fired and earliest <= fired[0].t <= earliest + eval_s + 1.0
    # Stop the fault: the queue ships at ARCHIVE_MB_S and the restore point is fresh again.
    e.submit_line("chaos-stop all")
    e.step(int(backup_view(e)["archive_pending_mb"] / ARCHIVE_MB_S) + 65)
    assert e.agg.restore_point_age_s <= 61.0
    assert backup_view(e)["archive_pending_mb"] == 0.0
    assert events_of(e, "db.archive.recovered")


def test_storage_full_stops_archiving_grows_the_primary_disk_and_fails_base_backups():
    e = quiet()
    e.step(60)
    e.submit_line("chaos storage-full backup 20m")
    e.submit(C.Backup())
    e.step(900)
    assert e.agg.restore_point_age_s > 800
    # unarchived WAL stays in pg_wal on the writers (experimental: every node is a master)
    pending_gb = e.db.backups.pending_bytes / 1024 ** 3
    assert pending_gb > 0.1
    base = e.db.file_gb + e.profile.database.max_wal_size_gb
    assert max(n.data_gb for n in e.db.nodes) - base == pytest.approx(
        pending_gb / len(e.db.nodes), rel=1e-6)
    assert events_of(e, "db.backup.failed")


def test_restore_latest_loses_exactly_the_writes_after_the_last_archived_wal():
    e = quiet()
    e.step(200)
    e.submit_line("chaos archive-stall backup 30m")
    e.step(400)
    bk = e.db.backups
    after_archive = bk.writes - bk.archived_writes
    assert after_archive > 1000
    lost_before = e.db.lost_writes
    e.submit_line("restore latest")
    e.step(1)
    started = events_of(e, "db.restore.started")
    assert started, [ev.message for ev in events_of(e, "command.")]
    # Nothing commits while the cluster restores (writes fail), so the loss is fixed now.
    assert started[0].data["writes_lost"] == pytest.approx(after_archive, rel=1e-9)
    assert not e.agg.db_writable
    view = backup_view(e)
    assert view["restore"]["progress"] < 1.0 and view["restore"]["remaining_s"] > 0
    duration = started[0].data["duration_s"]
    data_gb = e.db.live_gb
    assert duration >= data_gb * 1024 / RESTORE_MB_S
    e.run_until(e.t + duration + 2)
    done = events_of(e, "db.restore.completed")
    assert done and done[0].data["writes_lost"] == pytest.approx(after_archive, rel=1e-9)
    assert done[0].data["rpo_seconds"] >= 400
    assert e.db.lost_writes - lost_before == pytest.approx(after_archive, rel=1e-9)
    assert e.agg.db_writable


def test_drop_table_then_restore_to_before_the_drop_recovers_it():
    e = quiet()
    e.step(300)
    live0 = e.db.live_gb
    e.submit_line("chaos drop-table db 0.4")
    e.step(120)
    assert backup_view(e)["table_dropped"]
    assert e.db.live_gb < live0 * 0.7
    assert e.agg.error_rate > 0.0  # writes to the missing table fail
    # latest replays the DROP: the table is still gone
    e.submit_line("restore latest")
    e.run_until(e.t + 1200)
    done = events_of(e, "db.restore.completed")
    assert done and not done[0].data["recovered_table"]
    assert backup_view(e)["table_dropped"]
    e.submit_line("restore --to -23m")  # before the drop (at t=300; now ~t=1620)
    e.run_until(e.t + 1200)
    done = events_of(e, "db.restore.completed")
    assert len(done) == 2 and done[1].data["recovered_table"], done[-1].message
    assert not backup_view(e)["table_dropped"]
    assert e.db.live_gb > live0 * 0.95


def test_restore_needs_a_backup_and_rejects_bad_targets():
    e = quiet("development")
    e.step(2)
    e.submit_line("restore latest")
    e.step(1)
    rej = events_of(e, "command.rejected")
    assert rej and "no backup" in rej[0].message
    with pytest.raises(C.CommandError):
        C.parse_line("restore --to yesterday")
    assert C.parse_line("restore --to 09:42").to == "09:42"
    assert C.restore_target("09:00", 3600.0, 9 * 3600.0) == 0.0
    assert C.restore_target("-10m", 3600.0, 0.0) == 3000.0


def test_retention_prunes_backups_older_than_retention_days():
    """pgBackRest time retention: expire backups older than the window, keeping the newest
    one older than it (restores to the start of the window need it)."""
    e = quiet("production", database__backup__retention_days=1,
              database__backup__duration_seconds=60, simulation__start_hour=1.9,
              simulation__tick_seconds=10)
    assert backup_view(e)["backups_kept"] == 2  # seeded: the window's daily backups
    e.run_until(2 * 86400.0 + 6 * 3600.0)  # three more daily backups at 02:00
    v = backup_view(e)
    assert len(events_of(e, "db.backup.completed")) == 3
    assert v["backups_pruned"] == 3 and v["backups_kept"] == 2
    assert 86400 < v["oldest_backup_age_s"] < 2 * 86400
    expired = events_of(e, "db.backup.expired")
    assert sum(ev.data["expired"] for ev in expired) == 3 and "kept" in expired[-1].message
    # the restore window reaches back past retention_days, not further
    e.submit_line("restore --to -50h")
    e.submit_line("restore --to -28h")
    e.step(1)
    rej = events_of(e, "command.rejected")
    assert len(rej) == 1 and "older than the oldest kept backup" in rej[0].message


def test_seed_test_data_loads_a_dataset_at_start():
    e = engine("development")
    seeded = events_of(e, "db.seeded")
    assert seeded and seeded[0].data["rows"] == e.db.seeded_rows > 0
    plain = engine("development", database__seed_test_data=False)
    assert not events_of(plain, "db.seeded") and plain.db.seeded_rows == 0
    assert e.db.live_gb - plain.db.live_gb == pytest.approx(seeded[0].data["gb"])
    e.step(5)
    plain.step(5)
    assert max(n.data_gb for n in e.db.nodes) > max(n.data_gb for n in plain.db.nodes)


def test_headless_jsonl_shows_backup_and_restore_progress():
    from devsim_tui.sim.command_file import TimedCommand

    out = headless_bytes("experimental", 3, 40,
                         commands=[TimedCommand(at=5.0, command="restore",
                                                   args={"to": "latest"})])
    lines = [json.loads(x) for x in out.splitlines() if x.strip()]
    ticks = [x for x in lines if x["kind"] == "tick"]
    assert ticks[0]["db"]["backup"]["restore"] is None
    running = [x["db"]["backup"]["restore"] for x in ticks if x["db"]["backup"]["restore"]]
    assert running and running[0]["target"] == "latest"
    assert running[-1]["progress"] > running[0]["progress"]
    assert any(x["kind"] == "event" and x["type"] == "db.restore.started" for x in lines)
