"""Every engine-side bench runs to its report on a tiny workload: a bench that no longer runs
(an Aggregates field renamed under it, say) is caught here, not the next time someone measures.
Speed is never asserted (docs/performance.md holds the measured numbers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "autoscale": (["--seeds", "1", "--hours", "0.05", "--workloads", "diurnal,flash"],
                  "diurnal"),
    "detection": (["--profile", "production", "--faults", "1", "--calm", "1",
                   "--calm-hours", "0.05", "--no-speed"], "recall"),
    "cache": (["--keys", "500", "--capacity", "50", "--requests", "3000", "--phases", "2"],
              "LRU"),
    "queryopt": (["--hours", "0.1"], "static"),
    "engine": (["--ticks", "5", "--rounds", "1"], "simulated s per wall s"),
    "engine-experimental": (["--ticks", "5", "--rounds", "1", "--profile", "experimental"],
                            "profile: experimental"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bench_runs_to_its_report(name):
    args, expect = CASES[name]
    script = name.split("-")[0]  # "engine-experimental": bench/engine.py on another profile
    r = subprocess.run([sys.executable, str(ROOT / "bench" / f"{script}.py"), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert expect in r.stdout, r.stdout[-2000:]
