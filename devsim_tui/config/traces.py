"""Traffic traces on disk: a `timestamp,value` CSV (like the NAB corpus) read, checked and
normalised, for the profile loader (FILE:LINE errors at load time) and the engine's traffic model.

Only regular files are read; a broken row is named by FILE:LINE. Never imports the engine or UI.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from devsim_tui.errors import UserError

def parse_timestamp(text: str) -> float:
    """Seconds from a Unix timestamp or an ISO 8601 date-time (naive times are taken as UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:  # local time would put DST jumps into the sampling interval
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def read_series(path: Path) -> Iterator[tuple[int, str, float, float]]:
    """Yield (line number, raw timestamp, seconds, value) per data row; UserError on bad input."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise UserError(f"{path}:1: empty file, expected a 'timestamp,value' header")
        names = [h.strip().lower() for h in header]
        missing = [c for c in ("timestamp", "value") if c not in names]
        if missing:
            raise UserError(f"{path}:1: missing column(s) {', '.join(missing)} "
                            f"(header is {','.join(header)!r})")
        ts_col, val_col = names.index("timestamp"), names.index("value")
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) <= max(ts_col, val_col):
                raise UserError(f"{path}:{line}: expected {len(header)} columns, got {len(row)}")
            try:
                value = float(row[val_col])
            except ValueError:
                raise UserError(f"{path}:{line}: value {row[val_col]!r} is not a number") from None
            if not math.isfinite(value):
                raise UserError(f"{path}:{line}: value {row[val_col]!r} is not finite")
            try:
                seconds = parse_timestamp(row[ts_col])
            except ValueError:
                raise UserError(f"{path}:{line}: timestamp {row[ts_col]!r} is neither a number "
                                "nor an ISO 8601 date-time") from None
            yield line, row[ts_col], seconds, value


@dataclass(frozen=True)
class Trace:
    """A loaded trace: offsets from its first row (s), values scaled to 0..1, loop period."""

    path: str
    offsets: np.ndarray
    values: np.ndarray  # divided by the maximum, so 1.0 is the peak
    period: float
    rows: int

    def at(self, position_s: float) -> float:
        """The relative value (0..1) at a position in seconds from the first row, looping."""
        q = position_s % self.period
        return float(np.interp(q, self.offsets, self.values))


def builtin_trace_dir() -> Path:
    from devsim_tui.config.paths import builtin_data_dir

    return builtin_data_dir("traces")


def resolve_trace(ref: str, relative_to: Path | None = None) -> Path:
    """The file a `traffic.trace` names: a path (relative to `relative_to`) or a built-in trace.

    A name without a directory that is not a file there is looked up among the shipped traces,
    with or without its `.csv`.
    """
    path = Path(ref).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if path.is_file() or "/" in ref or os.sep in ref:
        return path
    try:
        shipped = builtin_trace_dir()
    except UserError:
        return path
    for name in (ref, f"{ref}.csv"):
        if (shipped / name).is_file():
            return shipped / name
    return path


def builtin_traces() -> list[str]:
    """Names of the shipped traces."""
    try:
        return sorted(p.name for p in builtin_trace_dir().glob("*.csv"))
    except UserError:
        return []


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and check a trace; UserError naming FILE:LINE for anything wrong in it."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise UserError(f"{path}: trace file not found ({exc.strerror or exc})") from None
    return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load(path: str, _mtime_ns: int, _size: int) -> Trace:
    seconds: list[float] = []
    values: list[float] = []
    last_line = 1
    for line, raw, when, value in read_series(Path(path)):
        if value < 0:
            raise UserError(f"{path}:{line}: value {value:g} is negative (a request rate "
                            "cannot be)")
        if seconds and when <= seconds[-1]:
            raise UserError(f"{path}:{line}: timestamp {raw!r} is not after the previous row's "
                            "(rows must be in time order, without repeats)")
        seconds.append(when)
        values.append(value)
        last_line = line
    if len(seconds) < 2:
        raise UserError(f"{path}:{last_line}: a trace needs at least two data rows, "
                        f"found {len(seconds)}")
    top = max(values)
    if top <= 0:
        raise UserError(f"{path}:{last_line}: every value is 0; nothing to scale to peak_rps")
    t = np.asarray(seconds) - seconds[0]
    gap = float(np.median(np.diff(t)))
    period = float(t[-1] + gap)
    # Close the loop: one sampling interval after the last row the trace is back at its first.
    offsets = np.append(t, period)
    rel = np.append(np.asarray(values) / top, values[0] / top)
    return Trace(path, offsets, rel, period, len(seconds))
