"""Recordings: an append-only JSON-lines log of a run, enough to reproduce it exactly.

    {"kind": "header", "format": 1, "source": "drill", "seed": .., "profile": {..resolved..},
     "scenario": {"path": .., "text": ..}, "metrics": [..], "objectives": [..],
     "init_events": [..]}
    {"kind": "tick", "n": 1, "t": 1.0, "c": [commands applied at this tick's boundary],
     "e": [the tick's events], "m": [metric values], "o": "0110"}
    ...
    {"kind": "end", "reason": "objectives met", "ticks": 1234}

A plain session's recording (`devsim-tui --record FILE`, `simulate --record FILE`; `source`
says which) has no `scenario`, no metrics and no objective bits: seed, profile, commands and
events. A command line the parser refused is kept as `{"n": .., "line": ".."}` (its rejection is
an event the replay must produce again).

The inputs (seed, the fully resolved profile, the scenario's text, and every command with the
tick it applied at) reproduce the run; the events and metrics make the report possible without
re-running. Each tick is one line written and flushed when the tick ends, so a process killed
with SIGKILL loses at most the tick being written (a partial last line, which readers drop): the
data is in the kernel once `write` returns. `fsync` runs at most once per wall second and at the
end, which bounds what a power cut (not a process kill) can lose without paying a disk sync per
tick. Never imports the UI.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from devsim_tui.private_files import open_private

FORMAT = 1
#: Per-tick metrics kept for the report's charts and impact figures (signal names,
#: see drill.conditions).
METRICS = ("p99_ms", "error_rate", "ready", "desired", "offered_rps", "db_writable",
           "db_max_lag_s", "cache_hit_ratio", "disk_pct", "memory_pct", "cpu",
           "error_budget_burned", "lost_writes", "failed_total", "offered_total",
           "consumer_lag_s", "lost_events", "bad_pods", "build_time_s", "db_nodes_down",
           "restore_point_age_s", "stale_responses", "late_notifications")
FSYNC_EVERY_S = 1.0


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    raise TypeError(f"not JSON-able: {type(x).__name__}")


_encode = json.JSONEncoder(separators=(",", ":"), default=_plain, allow_nan=True).encode


def normal(obj: Any) -> Any:
    """`obj` as it reads back from JSON (tuples as lists, numpy as Python), for comparisons."""
    return json.loads(_encode(obj))


def event_dict(ev) -> dict[str, Any]:
    return ev.to_dict()


def _round(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    if not np.isfinite(v):
        return None
    return float(f"{v:.6g}")


class Recorder:
    """Keeps a run's recording in memory (for scoring) and, given a path, appends it to a file.
    `command()` before a tick, `tick()` after it."""

    def __init__(self, path: str | os.PathLike[str] | None, header: dict[str, Any],
                 keep: bool = True):
        self.path = os.fspath(path) if path is not None else None
        self.keep = keep  # hold the ticks in memory too (a drill's score reads them)
        # 0600 whatever the umask: a recording holds every command and who sent it.
        self.f: IO[str] | None = open_private(self.path, "w") \
            if self.path is not None else None
        self._pending: list[dict[str, Any]] = []
        self._last_sync = time.monotonic()
        head = {"kind": "header", "format": FORMAT, "metrics": list(METRICS)}
        head.update(header)
        self.recording = Recording(normal(head), path=self.path or "recording")
        self._write(head, sync=True)

    def _write(self, obj: dict[str, Any], sync: bool = False) -> None:
        if self.f is None or self.f.closed:  # closed: nothing follows the end line
            return
        self.f.write(_encode(obj) + "\n")
        self.f.flush()
        now = time.monotonic()
        if sync or now - self._last_sync >= FSYNC_EVERY_S:
            os.fsync(self.f.fileno())
            self._last_sync = now

    def command(self, cmd: dict[str, Any]) -> None:
        """A command submitted now, to apply at the next tick boundary."""
        self._pending.append(cmd)

    def tick(self, n: int, t: float, events: list[dict[str, Any]],
             metrics: list[float | None], bits: str) -> None:
        line: dict[str, Any] = {"kind": "tick", "n": n, "t": t}
        if self._pending:
            line["c"] = self._pending
            self._pending = []
        if events:
            line["e"] = events
        if metrics:
            line["m"] = [_round(v) for v in metrics]
        if bits:
            line["o"] = bits
        self._write(line)
        if self.keep:
            self.recording.ticks.append(normal(line))

    def close(self, reason: str, ticks: int) -> None:
        end = {"kind": "end", "reason": reason, "ticks": ticks}
        if self.recording.end is None:
            self.recording.end = end
        if self.f is None or self.f.closed:
            return
        self._write(end, sync=True)
        self.f.close()


@dataclass
class Recording:
    header: dict[str, Any]
    ticks: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    truncated: bool = False  # the last line was cut short (the writer was killed)
    path: str = "recording"  # where it was read from (for messages)

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def is_drill(self) -> bool:
        return "scenario" in self.header

    @property
    def source(self) -> str:
        return str(self.header.get("source", "drill" if self.is_drill else "control-room"))

    def events(self) -> list[dict[str, Any]]:
        out = list(self.header.get("init_events", []))
        for tk in self.ticks:
            out.extend(tk.get("e", ()))
        return out

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(t, values) of one recorded metric; missing values are NaN."""
        k = self.header["metrics"].index(name)
        t = np.array([tk["t"] for tk in self.ticks], dtype=float)
        v = np.array([np.nan if tk["m"][k] is None else tk["m"][k] for tk in self.ticks],
                     dtype=float)
        return t, v


class RecordingError(Exception):
    pass


def read(path: str | os.PathLike[str]) -> Recording:
    """Read a recording, dropping a partial last line (a killed writer's); anything else that
    does not parse is an error, since it means the file is not a recording or was edited."""
    from devsim_tui.errors import UserError

    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UserError(f"{name}: cannot read: {exc.strerror}") from None
    lines = text.split("\n")
    truncated = False
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # no newline at the end: the writer died mid-line
        truncated = True
    if not lines:
        raise UserError(f"{name}: empty recording")
    rec: Recording | None = None
    for k, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{name}:{k}: not a recording line ({exc.msg})") from None
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if k == 1:
            if kind != "header" or obj.get("format") != FORMAT:
                raise UserError(f"{name}:1: not a devsim-tui recording (format {FORMAT})")
            missing = [k for k in ("seed", "profile") if k not in obj]
            if missing or not isinstance(obj["profile"], dict):
                raise UserError(f"{name}:1: the header lacks {', '.join(missing) or 'a profile'}"
                                " (not a complete devsim-tui recording)")
            rec = Recording(obj)
            rec.path = name
        elif kind == "tick":
            assert rec is not None
            if not isinstance(obj.get("n"), int) or not isinstance(obj.get("t"), (int, float)):
                raise UserError(f"{name}:{k}: a tick line without its number and time")
            if rec.ticks and obj["n"] != rec.ticks[-1]["n"] + 1:
                raise UserError(f"{name}:{k}: tick {obj['n']} follows {rec.ticks[-1]['n']}")
            rec.ticks.append(obj)
        elif kind == "end":
            assert rec is not None
            rec.end = obj
        else:
            raise UserError(f"{name}:{k}: unknown line kind {kind!r}")
    assert rec is not None
    rec.truncated = truncated
    return rec
