"""Pure formatting helpers shared by the panes: numbers, units, simulated times, downsampling.

No Textual imports and no wall clock: everything shown is derived from simulated time.
"""

from __future__ import annotations

import math

from devsim_tui.lazy import lazy_module

np = lazy_module("numpy")  # only the sparklines need it, not the first frame

DAY = 86400.0
HOUR = 3600.0

#: The speed ladder that `+` / `-` walk through.
SPEEDS: tuple[float | str, ...] = (1.0, 10.0, 60.0, "max")

#: Metric windows of simulated time: label -> seconds.
WINDOWS: dict[str, float] = {"5m": 300.0, "1h": 3600.0, "24h": 86400.0}


def speed_label(speed: float | str, paused: bool) -> str:
    if paused:
        return "paused"
    if speed == "max":
        return "max"
    return f"{float(speed):g}x"


def next_speed(speed: float | str, direction: int) -> float | str:
    """The next rung of SPEEDS above (direction > 0) or below the current speed."""
    value = math.inf if speed == "max" else float(speed)
    rungs = [math.inf if s == "max" else float(s) for s in SPEEDS]
    if direction > 0:
        for rung, label in zip(rungs, SPEEDS):
            if rung > value:
                return label
        return SPEEDS[-1]
    for rung, label in zip(reversed(rungs), reversed(SPEEDS)):
        if rung < value:
            return label
    return SPEEDS[0]


def sim_clock(start_hour: float, t: float, with_day: bool = True) -> str:
    """The simulated wall clock at `t` seconds after a start at `start_hour` (as the engine)."""
    t_abs = start_hour * HOUR + t
    day = int(t_abs // DAY) + 1
    rem = int(t_abs % DAY)
    hms = f"{rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}"
    return f"d{day} {hms}" if with_day else hms


def age(seconds: float | None) -> str:
    """A compact age: 45s, 12m, 3h05m, 2d04h; '-' for unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "never"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < HOUR:
        return f"{s // 60}m{s % 60:02d}s" if s < 600 else f"{s // 60}m"
    if s < DAY:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """A number with a k/M/G suffix, about `digits` significant digits: 912, 1.25k, 40.1M."""
    if value is None or not math.isfinite(value):
        return "-"
    sign = "-" if value < 0 else ""
    v = abs(value)
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            v /= scale
            break
    else:
        suffix = ""
    if v >= 100 or suffix == "" and v == int(v):
        text = f"{v:.0f}"
    elif v >= 10:
        text = f"{v:.{max(digits - 2, 0)}f}"
    else:
        text = f"{v:.{max(digits - 1, 0)}f}"
    return f"{sign}{text}{suffix}{unit}"


def pct(fraction: float, digits: int = 1) -> str:
    if fraction is None or not math.isfinite(fraction):
        return "-"
    return f"{fraction * 100:.{digits}f}%"


def lag(seconds: float) -> str:
    """A replication lag: 0.4ms, 12ms while replication keeps up, 3.2s once it falls behind."""
    if seconds < 0.01:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 1.0:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.1f}s"


def bytes_(n: float) -> str:
    if n is None or not math.isfinite(n):
        return "-"
    for suffix, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}"
    return f"{n:.0f}B"


def downsample(values: np.ndarray, width: int, how: str = "max") -> np.ndarray:
    """Reduce `values` to at most `width` buckets (max or mean per bucket), NaN-aware.

    Buckets are aligned to the end of the series so the newest value always has its own
    bucket edge. A bucket with only NaN stays NaN (drawn as a gap).
    """
    n = len(values)
    if width <= 0 or n == 0:
        return np.empty(0)
    if n <= width:
        return values.astype(float, copy=False)
    edges = np.linspace(0, n, width + 1).astype(int)
    out = np.full(width, np.nan)
    reduce = np.fmax.reduceat if how == "max" else np.add.reduceat
    valid = ~np.isnan(values)
    filled = np.where(valid, values, -np.inf if how == "max" else 0.0)
    starts = edges[:-1]
    agg = reduce(filled, starts)
    if how == "max":
        out = np.where(np.isneginf(agg), np.nan, agg)
    else:
        counts = np.add.reduceat(valid.astype(float), starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(counts > 0, agg / np.maximum(counts, 1), np.nan)
    return out
