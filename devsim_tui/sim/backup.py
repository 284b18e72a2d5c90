"""Backups as a process: WAL archiving, base backups, retention and point-in-time recovery.

Modelled on PostgreSQL's continuous archiving (https://www.postgresql.org/docs/current/
continuous-archiving.html) and pgBackRest (https://pgbackrest.org/user-guide.html):

- The primary closes a WAL segment when it fills (16 MiB) or when `archive_timeout` passes
  with writes in it; `archive_command` ships closed segments to the backup target at the
  target's throughput. The newest restore point is the end of the newest archived segment.
  When the target is slow or unreachable (chaos `archive-stall`) or full (`storage-full`),
  closed segments queue in pg_wal (the primary's disk grows), the restore point stops
  moving and its age grows: ArchiveStale fires.
- Base backups (pg_basebackup / `pgbackrest backup`) run for `duration_seconds`; `daily`
  takes one at `schedule_hour`, `continuous` does too on top of archiving, `manual` only on the
  `backup` command. A backup whose target is full fails.
- Retention (`retention_days`, pgBackRest's `repo1-retention-full-type=time`): backups older
  than the window are expired, keeping the newest one that is older (it is needed to restore
  to the start of the window); archived WAL older than the oldest kept backup goes with them.
- `restore [--to TIME|latest]`: the cluster is stopped, the newest base backup before the
  target is copied back (data size / restore rate) and WAL replayed up to the target (WAL
  bytes / replay rate). Writes committed after the target are lost (for `latest`: the writes
  after the last archived WAL, i.e. the RPO). A `drop-table` mistake replays with the WAL,
  so only a restore to a time before it recovers the table.

Never imports the UI; never reads the wall clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from devsim_tui.sim import commands as C
from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register
from devsim_tui.sim.mesh import MeshController
from devsim_tui.sim.queryplan import QueryPlanController

if TYPE_CHECKING:
    from devsim_tui.config.schema import DatabaseSpec
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

SEGMENT_BYTES = 16 * 1024 * 1024  # PostgreSQL's default wal_segment_size
ARCHIVE_MB_S = 200.0  # archive_command throughput to a healthy backup target (object store)
RESTORE_MB_S = 250.0  # base backup copy-back rate (pgBackRest restore, parallel processes)
REPLAY_MB_S = 60.0  # WAL replay during recovery
DAY = 86400.0

Emit = Callable[..., object]


@dataclass
class BaseBackup:
    started_t: float
    done_t: float
    size_gb: float
    writes: float  # cumulative committed writes at its consistent point (its end)


@dataclass
class Restore:
    target_t: float  # recover up to here
    label: str  # "latest" or the requested time
    started_t: float
    until: float
    base: BaseBackup
    writes_kept: float  # cumulative writes at the target
    writes_lost: float  # committed after the target
    rpo_s: float  # time between the target and the start of the restore


@dataclass
class Backups:
    spec: DatabaseSpec
    emit: Emit
    kept: list[BaseBackup] = field(default_factory=list)
    pruned: int = 0
    writes: float = 0.0  # cumulative committed writes (the primary)
    seg_bytes: float = 0.0  # bytes in the current (open) WAL segment
    seg_opened_t: float = 0.0
    # Closed segments queued for archive_command, oldest first, as [t, writes, count]: the
    # segments a tick closes share t and writes (under heavy WAL the queue grows by dozens
    # of segments a second while the archive is slower, so they are counted, not listed)
    closed: deque[list] = field(default_factory=deque)
    closed_n: int = 0  # segments in `closed`
    archived_t: float = 0.0  # newest archived segment's end (the restore point)
    archived_writes: float = 0.0
    archive_points: list[tuple[float, float]] = field(default_factory=list)  # (t, writes)
    ship_budget: float = 0.0  # bytes of the head segment already shipped
    archive_factor: float = 1.0  # chaos archive-stall: target throughput share (0 = unreachable)
    target_full: bool = False  # chaos storage-full
    archive_failing_since: float | None = None
    restore: Restore | None = None
    restores: int = 0
    dropped_at: float | None = None  # chaos drop-table: when the table was dropped
    dropped_share: float = 0.0
    dropped_gb: float = 0.0

    @property
    def archiving(self) -> bool:
        return self.spec.backup.mode == "continuous"

    @property
    def pending_bytes(self) -> float:
        """Closed WAL segments waiting in pg_wal for archive_command (each a whole
        SEGMENT_BYTES file: a switch pads it)."""
        return self.closed_n * float(SEGMENT_BYTES) - self.ship_budget

    def _close_segment(self, t: float) -> None:
        last = self.closed[-1] if self.closed else None
        if last is not None and last[0] == t and last[1] == self.writes:
            last[2] += 1
        else:
            self.closed.append([t, self.writes, 1])
        self.closed_n += 1

    def clear_queue(self) -> None:
        """Forget the unarchived segments (a restore forks the timeline)."""
        self.closed.clear()
        self.closed_n = 0

    # ------------------------------------------------------------------ start

    def seed_history(self, start_t_abs: float, data_gb: float) -> None:
        """The backups a running estate already has at t=0: one per day at schedule_hour over
        the retention window (daily, continuous); none for manual."""
        b = self.spec.backup
        if b.mode == "manual":
            return
        since = (start_t_abs - b.schedule_hour * 3600.0) % DAY
        days = math.ceil(b.retention_days)
        for k in range(days, -1, -1):
            start = -since - k * DAY
            self.kept.append(BaseBackup(start, start + b.duration_seconds, data_gb, 0.0))
        self.kept = [x for x in self.kept if x.done_t <= 0.0]

    # ------------------------------------------------------------------ queries

    def restore_point_t(self) -> float | None:
        """Newest time the data can be recovered to."""
        if self.archiving and self.kept:
            return self.archived_t
        return self.kept[-1].done_t if self.kept else None

    def oldest_age(self, t: float) -> float | None:
        return t - self.kept[0].done_t if self.kept else None

    def writes_at(self, target: float) -> float:
        """Cumulative committed writes at `target` (interpolated between archive points)."""
        pts = self.archive_points
        if not pts or target <= pts[0][0]:
            return pts[0][1] if pts else 0.0
        for (t0, w0), (t1, w1) in zip(pts, pts[1:]):
            if t0 <= target <= t1:
                return w0 + (w1 - w0) * ((target - t0) / (t1 - t0) if t1 > t0 else 1.0)
        return pts[-1][1]

    # ------------------------------------------------------------------ per tick

    def step(self, t: float, dt: float, committed_writes_per_s: float, wal_bps: float) -> None:
        self.writes += committed_writes_per_s * dt
        if not self.archiving:
            return
        self.seg_bytes += wal_bps * dt
        timeout = self.spec.backup.archive_timeout_seconds
        # A segment switches when full, or after archive_timeout (a quiet database switches
        # too here, so the restore point keeps moving while nothing is written).
        while self.seg_bytes >= SEGMENT_BYTES:
            self._close_segment(t)
            self.seg_bytes -= SEGMENT_BYTES
            self.seg_opened_t = t
        if timeout > 0 and t - self.seg_opened_t >= timeout:
            # pg_switch_wal pads the segment: a whole 16 MiB file is archived even if mostly
            # empty (why archive_timeout should not be tiny).
            self._close_segment(t)
            self.seg_bytes = 0.0
            self.seg_opened_t = t
        rate = 0.0 if self.target_full else ARCHIVE_MB_S * 1024 * 1024 * self.archive_factor
        budget = self.ship_budget + rate * dt
        shipped_any = False
        seg = float(SEGMENT_BYTES)
        points = self.archive_points
        while self.closed and budget >= seg:
            head = self.closed[0]
            budget -= seg
            ct, cw = head[0], head[1]
            self.archived_t, self.archived_writes = ct, cw
            if not points or points[-1] != (ct, cw):  # (a repeat adds nothing to writes_at)
                points.append((ct, cw))
            head[2] -= 1
            self.closed_n -= 1
            if not head[2]:
                self.closed.popleft()
            shipped_any = True
        self.ship_budget = budget if self.closed else 0.0
        if self.closed and rate == 0.0:
            if self.archive_failing_since is None:
                self.archive_failing_since = t
                why = "backup target full" if self.target_full else "backup target unreachable"
                self.emit(t, "db.archive.failing", f"WAL archiving failing ({why}): segments "
                          "queue in pg_wal and the restore point stops moving", "warning")
        elif shipped_any and self.archive_failing_since is not None:
            self.emit(t, "db.archive.recovered", "WAL archiving caught up after "
                      f"{t - self.archive_failing_since:.0f} s", "info")
            self.archive_failing_since = None

    def add_backup(self, started_t: float, t: float, size_gb: float) -> BaseBackup:
        bb = BaseBackup(started_t, t, size_gb, self.writes)
        self.kept.append(bb)
        return bb

    def prune(self, t: float) -> list[BaseBackup]:
        """Expire backups older than retention_days, keeping the newest one older than the
        window (restores to the start of the window need it)."""
        window = self.spec.backup.retention_days * DAY
        if len(self.kept) < 2 or t - self.kept[1].done_t <= window:
            return []  # nothing but the newest backup older than the window is that old
        old = [b for b in self.kept if t - b.done_t > window]
        expire = old[:-1]
        if not expire:
            return []
        self.kept = [b for b in self.kept if b not in expire]
        self.pruned += len(expire)
        floor = self.kept[0].started_t
        self.archive_points = [p for p in self.archive_points if p[0] >= floor] or \
            self.archive_points[-1:]
        return expire

    # ------------------------------------------------------------------ restore

    def plan_restore(self, t: float, target: float | None, data_gb: float) -> Restore | str:
        """A restore to `target` (None: latest), or why it cannot run."""
        if self.restore is not None:
            return "a restore is already running"
        newest = self.restore_point_t()
        if newest is None:
            return "no backup to restore from (manual backups: run `backup` first)"
        label = "latest"
        if target is None:
            target = newest
        else:
            label = f"t={target:.0f}s"
            if target > t:
                return "the target time is in the future"
            if target > newest:
                return (f"no archived WAL reaches the target (restore point is "
                        f"{t - newest:.0f} s old)")
        bases = [b for b in self.kept if b.done_t <= target]
        if not bases:
            return (f"the target is older than the oldest kept backup "
                    f"({t - self.kept[0].done_t:.0f} s ago; retention_days "
                    f"{self.spec.backup.retention_days:g})")
        base = bases[-1]
        kept_writes = self.writes_at(target) if self.archiving else base.writes
        if not self.archiving:
            target = base.done_t
        replay_gb = max(kept_writes - base.writes, 0.0) * self.spec.wal_kb_per_write / 1024 / 1024
        seconds = data_gb * 1024 / RESTORE_MB_S + replay_gb * 1024 / REPLAY_MB_S
        return Restore(target, label, t, t + seconds, base, kept_writes,
                       max(self.writes - kept_writes, 0.0), t - target)

    def view(self, t: float) -> dict:
        r = self.restore
        out = {
            "mode": self.spec.backup.mode,
            "backups_kept": len(self.kept), "backups_pruned": self.pruned,
            "oldest_backup_age_s": self.oldest_age(t),
            "restore_point_age_s": (t - self.restore_point_t()
                                    if self.restore_point_t() is not None else None),
            "archive_pending_mb": round(self.pending_bytes / 1024 / 1024, 1)
            if self.archiving else None,
            "archive_failing": self.archive_failing_since is not None,
            "writes_total": round(self.writes),
            "table_dropped": self.dropped_at is not None,
        }
        if r is not None:
            span = max(r.until - r.started_t, 1e-9)
            out["restore"] = {"target": r.label, "target_t": r.target_t,
                              "progress": round(min((t - r.started_t) / span, 1.0), 3),
                              "remaining_s": round(max(r.until - t, 0.0), 1),
                              "writes_lost": round(r.writes_lost), "rpo_s": round(r.rpo_s, 1)}
        return out


class BackupController:
    """Engine extension: the `restore` command, and the backup state in every snapshot
    (`Snapshot.backup`: the database pane's detail, exporters)."""
    state_key = extensions.BACKUP

    commands = (C.Restore,)

    def __init__(self, engine: Engine):
        self.engine = engine
        self._archiving = engine.db.backups.archiving

    def signals(self) -> dict[str, float]:
        """WAL waiting for the archive (MiB) for the anomaly detector: zero while
        archive_command keeps up (continuous backup only)."""
        if not self._archiving:
            return {}
        return {"db.archive_pending": self.engine.db.backups.pending_bytes / (1024 * 1024)}

    def apply(self, cmd: C.Command) -> str | None:
        assert isinstance(cmd, C.Restore)
        e = self.engine
        try:
            target = C.restore_target(cmd.to, e.t, e.t0_abs)
        except ValueError as exc:
            return str(exc)
        return e.db.start_restore(e.t, target)

    def before_tick(self, t: float) -> None:
        pass

    def after_tick(self, t: float, agg: Aggregates) -> None:
        pass

    def state(self) -> dict:
        return self.engine.db.backups.view(self.engine.t)


register(BackupController)
register(QueryPlanController)  # the `analyze` command and the query plans (sim/queryplan.py)
register(MeshController)  # multi-master conflicts and split brain (sim/mesh.py)
