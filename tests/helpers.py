"""Shared test helpers: profiles with overrides, engines, headless runs into memory."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from devsim_tui.config.loader import load_profile
from devsim_tui.sim.engine import Engine

REPO = Path(__file__).resolve().parents[1]


def engine(profile: str = "production", seed: int | None = 7, **overrides) -> Engine:
    """An engine for a built-in profile, with dotted overrides (`scaling__maxReplicas=9`)."""
    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    return Engine(load_profile(profile, overrides=dotted or None), seed=seed)


def quiet(profile: str = "experimental", **kw) -> Engine:
    """An engine without bursts, noise or a diurnal swing, at a fixed (manual) size: what a
    test of one mechanism's numbers wants."""
    kw.setdefault("traffic__bursts__per_hour", 0)
    kw.setdefault("traffic__noise", 0)
    kw.setdefault("traffic__diurnal_amplitude", 0)
    kw.setdefault("scaling__scaler", "manual")
    return engine(profile, **kw)


def events_of(e: Engine, prefix: str) -> list:
    """The engine's events whose type starts with `prefix` (`"db."`, `"release.canary"`)."""
    return [ev for ev in e.events if ev.type.startswith(prefix)]


def events_named(e: Engine, kind: str) -> list:
    """The engine's events of exactly this type."""
    return [ev for ev in e.events if ev.type == kind]


def headless_bytes(profile: str, seed: int, seconds: float, commands=()) -> str:
    from devsim_tui.headless import run

    out = io.StringIO()
    run(Engine(load_profile(profile), seed=seed), seconds, out, commands)
    return out.getvalue()


def run_cli(*args: str, cwd: Path | None = None):
    import subprocess

    return subprocess.run([sys.executable, "-m", "devsim_tui", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, timeout=300)
