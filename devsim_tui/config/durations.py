"""Durations as people write them: `90s`, `10m`, `2h`, `1h30m`, `1d`, or plain seconds.

Every duration is finite, non-negative and at most MAX_DURATION_S: `.nan`, `.inf` or 400 nines
are refused here, once, for every place a duration is read (commands, profiles, drills,
commands files, flags).
"""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?")
#: The longest duration anything accepts: ten years of simulated time (3650d).
MAX_DURATION_S = 3650 * 86400.0
_MAX_TEXT = 64  # characters: no real duration is longer
#: Clock speeds (simulated seconds per wall second) of `set-speed` and `--speed`.
MIN_SPEED, MAX_SPEED = 0.01, 1_000_000.0


def parse_duration(value: str | int | float) -> float:
    """Seconds in `value`; raises ValueError with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 90s, 10m or 2h, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
        return _checked(seconds)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like 90s, 10m or 2h, got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"expected a duration like 90s, 10m or 2h (at most 3650d), got "
                         f"{len(text)} characters")
    if _PLAIN.fullmatch(text):
        return _checked(float(text))
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected a duration like 90s, 10m, 2h or 1h30m, got {value!r}")
    return _checked(total)


def _checked(seconds: float) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number, got {seconds}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError("a duration can be at most 3650d (ten years)")
    return seconds


def parse_speed(value: object) -> float | str:
    """A clock speed: 'max' or a number of simulated seconds per wall second within bounds."""
    if isinstance(value, str) and value.strip().lower() == "max":
        return "max"
    try:
        speed = float(value.strip().rstrip("x") if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expected a number or 'max', got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(speed) \
            or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"must be 'max' or a number from {MIN_SPEED:g} to {MAX_SPEED:.0f}, "
                         f"got {value!r}")
    return speed


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return str(seconds)
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
