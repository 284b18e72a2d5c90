"""Bounded numbers: the one rule every schema (profiles, drills, commands) uses for its numbers.

A number a user writes must be finite and of a sane size: `.inf`, `.nan` or `1e400` validate as
floats in YAML and JSON, then hang or crash the simulation (a drill that never ends, an overflow
in a duration). `Real` and `Count` are `float` and `int` with that rule built in; a field adds its
own bounds with `Field(ge=..., le=...)` as usual (the magnitude check is a separate validator
precisely so that it never replaces a field's own `ge`/`le`). Never imports the UI.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, AllowInfNan

#: No number in a profile, drill or command is larger than this (a trillion): far beyond any
#: real setting, small enough that nothing derived from it overflows.
MAX_MAGNITUDE = 1e12
#: Random seeds: what numpy's generators take (a non-negative 64-bit integer).
MAX_SEED = 2**63 - 1


def show_number(value: float | int) -> str:
    """A number for a message, short even when it is huge (an int of 400 digits)."""
    if isinstance(value, int) and abs(value) >= 10**15:
        digits = len(str(abs(value))) if abs(value) < 10**4000 else "thousands of"
        return f"a {digits}-digit number"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _sane(value: float | int) -> float | int:
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"must be between -1e12 and 1e12, got {show_number(value)}")
    return value


def _seed(value: int) -> int:
    if value > MAX_SEED:
        raise ValueError(f"must be <= 2**63-1, got {show_number(value)}")
    return value


#: A finite float of sane magnitude (see MAX_MAGNITUDE).
Real = Annotated[float, AllowInfNan(False), AfterValidator(_sane)]
#: An int of sane magnitude.
Count = Annotated[int, AfterValidator(_sane)]
#: A random seed (fields add `ge=0`).
Seed = Annotated[int, AfterValidator(_seed)]
