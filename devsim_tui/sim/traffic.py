"""Offered load before noise and bursts: a synthetic shape or a replayed `timestamp,value` trace.

The engine asks `TrafficModel.level(t)` once per tick. The traffic pattern runs on its own time
axis, `p = start_hour * 3600 + t * time_scale`, so `time_scale: 60` plays a day of pattern in 24
simulated minutes and the profile's start hour says where in the day (or in the trace) the run
begins. Shapes (`traffic.shape`), each scaled around `baseline_rps` with `diurnal_amplitude` A:

* `diurnal`      - a cosine day peaking at `peak_hour` (the default, the engine's original model);
* `morning-ramp` - a quiet night at (1-A), a steep smooth ramp 07:00-09:00 to (1+A), a plateau,
                   an evening decline 17:00-22:00;
* `weekly`       - the diurnal day times a weekday factor (Saturday 0.65, Sunday 0.55, blended
                   over the first hours of each day); day 0 of the pattern is a Monday;
* `flash-crowd`  - a gentle diurnal day with sudden crowds (2.5-4x, a 30 s rise, 4-10 minutes,
                   a 3-minute decay) at seeded random times, about one an hour of pattern time:
                   nothing a forecaster can see coming.

A trace (`traffic.trace`) is resampled to the tick by linear interpolation between its rows,
scaled so its largest value is `peak_rps`, and loops: after the last row it returns to the first
one over one sampling interval. Position 0 of the trace is its first row.

Deterministic: the flash crowds come from their own generator seeded from the engine's seed.
Never imports the UI and never reads the wall clock.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devsim_tui.config.traces import Trace, load_trace, resolve_trace

if TYPE_CHECKING:
    from devsim_tui.config.schema import TrafficSpec

DAY = 86400.0
HOUR = 3600.0
#: Weekday factors of the `weekly` shape, Monday first.
WEEK_FACTORS = (1.0, 1.0, 1.0, 1.0, 1.0, 0.65, 0.55)
_WEEK_BLEND_HOURS = 4.0
#: Stream id mixed into the engine seed for the flash-crowd schedule (independent of the
#: engine's own per-tick draws, so adding crowds never shifts the noise of other shapes).
_FLASH_STREAM = 0xF1A5


class TrafficModel:
    """The offered load of one profile before noise and bursts, as a function of engine time."""

    def __init__(self, spec: TrafficSpec, seed: int, t0_abs: float,
                 trace_dir: Path | None = None):
        self.spec = spec
        self.t0_abs = float(t0_abs)
        self.scale = float(spec.time_scale)
        self.trace: Trace | None = None
        if spec.trace is not None:
            self.trace = load_trace(resolve_trace(spec.trace, trace_dir))
        self._rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _FLASH_STREAM])
        self._crowds: list[tuple[float, float, float]] = []  # (start p, hold s, multiplier)
        self._next_crowd = self.t0_abs

    def pattern_time(self, t: float) -> float:
        """The position on the pattern's own time axis of engine time `t` (s)."""
        return self.t0_abs + t * self.scale

    def level(self, t: float) -> float:
        """Offered requests/s at engine time `t` (negative `t` is the history before start)."""
        p = self.pattern_time(t)
        spec = self.spec
        if self.trace is not None:
            return float(spec.peak_rps) * self.trace.at(p)
        shape = spec.shape
        if shape == "morning-ramp":
            return spec.baseline_rps * _morning_ramp(p, spec.diurnal_amplitude)
        day = _diurnal(p, spec.diurnal_amplitude, spec.peak_hour)
        if shape == "weekly":
            return spec.baseline_rps * day * _week_factor(p)
        if shape == "flash-crowd":
            return spec.baseline_rps * day * self._crowd(p)
        return spec.baseline_rps * day

    def _crowd(self, p: float) -> float:
        # Crowds are drawn in pattern-time order as the run reaches them, so the schedule depends
        # on the seed only, never on how the run was stepped.
        while self._next_crowd <= p + 900.0:
            start = self._next_crowd + float(self._rng.exponential(HOUR))
            hold = float(self._rng.uniform(240.0, 600.0))
            mult = float(self._rng.uniform(2.5, 4.0))
            self._crowds.append((start, hold, mult))
            self._next_crowd = start + hold + 180.0
        factor = 1.0
        for start, hold, mult in self._crowds:
            if p < start:
                break
            age = p - start
            if age < 30.0:
                factor = 1.0 + (mult - 1.0) * age / 30.0
            elif age < 30.0 + hold:
                factor = mult
            elif age < 210.0 + hold:
                factor = 1.0 + (mult - 1.0) * (1.0 - (age - 30.0 - hold) / 180.0)
        if len(self._crowds) > 64:
            del self._crowds[:-8]
        return factor


def _diurnal(p: float, amplitude: float, peak_hour: float) -> float:
    hour = (p % DAY) / HOUR
    return 1.0 + amplitude * math.cos(2 * math.pi * (hour - peak_hour) / 24)


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def _morning_ramp(p: float, amplitude: float) -> float:
    hour = (p % DAY) / HOUR
    up = _smoothstep((hour - 7.0) / 2.0)
    down = _smoothstep((hour - 17.0) / 5.0)
    return 1.0 - amplitude + 2.0 * amplitude * (up - down)


def _week_factor(p: float) -> float:
    day = math.floor(p / DAY)
    today = WEEK_FACTORS[day % 7]
    before = WEEK_FACTORS[(day - 1) % 7]
    hour = (p % DAY) / HOUR
    w = _smoothstep(hour / _WEEK_BLEND_HOURS)
    return before + (today - before) * w
