"""The HPA against the predictive scaler on the same seeds and workloads, side by side.

    .venv/bin/python bench/autoscale.py [--seeds 3] [--hours 4] [--workloads diurnal,ramp,...]

Every run is the experimental profile (detector off to keep the bench fast, traffic bursts off so
the workload is the shape alone) with `scaling.scaler` set to `hpa` or `predictive`; everything
else - seed, workload, behavior, pods - is identical. Per run:

* SLO-violation minutes: simulated minutes whose mean p99 is above the profile's SLO
  (`slo.p99_latency_ms`) or whose error rate (failed / offered requests) is above 1% (the
  threshold at which the header's health turns degraded);
* pod-hours: the sum over ticks of all pods (starting, ready, draining) x tick / 3600.

Workloads (traffic overrides; the pattern's time axis runs `time_scale` times faster than the
simulated clock, so a few simulated hours hold several days of pattern):

    diurnal   shape diurnal, amplitude 0.7, time_scale 72 (a day in 20 simulated minutes)
    ramp      shape morning-ramp, amplitude 0.6, time_scale 24 (a day an hour)
    weekly    shape weekly, amplitude 0.7, time_scale 48 (a week in 3.5 hours)
    flash     shape flash-crowd, amplitude 0.2, time_scale 1 (crowds of 2.5-4x, unannounced)
    nyc_taxi  trace nyc_taxi.csv, peak_rps 2600, time_scale 60 (a day in 24 simulated minutes)

Targets (issue 14): predictive >= 30% fewer SLO-violation minutes at <= 105% of the HPA's
pod-hours on diurnal, ramp, weekly and nyc_taxi; no more than 5% worse on the flash crowd.
Results go into docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devsim_tui.config.loader import load_profile  # noqa: E402
from devsim_tui.sim.engine import Engine  # noqa: E402

WORKLOADS = {
    "diurnal": {"traffic.shape": "diurnal", "traffic.diurnal_amplitude": 0.7,
                "traffic.time_scale": 72},
    "ramp": {"traffic.shape": "morning-ramp", "traffic.diurnal_amplitude": 0.6,
             "traffic.time_scale": 24},
    "weekly": {"traffic.shape": "weekly", "traffic.diurnal_amplitude": 0.7,
               "traffic.time_scale": 48},
    "flash": {"traffic.shape": "flash-crowd", "traffic.diurnal_amplitude": 0.2,
              "traffic.time_scale": 1},
    "nyc_taxi": {"traffic.trace": "nyc_taxi.csv", "traffic.peak_rps": 2600,
                 "traffic.time_scale": 60},
}
ERROR_RATE_THRESHOLD = 0.01


def run(workload: str, scaler: str, seed: int, hours: float) -> dict:
    overrides = {"monitoring.detector.enabled": False, "scaling.scaler": scaler,
                 "traffic.bursts.per_hour": 0, **WORKLOADS[workload]}
    engine = Engine(load_profile("experimental", overrides=overrides), seed=seed)
    slo_ms = engine.profile.slo.p99_latency_ms
    dt = engine.dt
    per_minute = max(1, round(60 / dt))
    violations = 0
    pod_seconds = 0.0
    p99: list[float] = []
    offered = failed = 0.0
    started = time.process_time()
    for _ in range(int(hours * 3600 / dt)):
        agg, _ = engine.advance()
        pod_seconds += agg.total * dt
        p99.append(agg.p99_ms)
        offered += agg.offered_rps
        failed += agg.errored_rps + agg.timed_out_rps + agg.rejected_rps + agg.reset_rps
        if len(p99) == per_minute:
            error_rate = failed / offered if offered > 0 else 0.0
            if float(np.mean(p99)) > slo_ms or error_rate > ERROR_RATE_THRESHOLD:
                violations += 1
            p99, offered, failed = [], 0.0, 0.0
    ahead = sum(1 for ev in engine.events if ev.type == "scale.ahead")
    return {"violations": violations, "pod_hours": pod_seconds / 3600, "scale_ahead": ahead,
            "cpu_s": time.process_time() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args(argv)
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    print(f"{args.seeds} seeds x {args.hours:g} simulated hours per run, experimental profile")
    print(f"{'workload':9} | {'HPA viol.min':>12} {'pod-h':>7} | {'pred. viol.min':>14} "
          f"{'pod-h':>7} {'ahead':>5} | {'viol. change':>12} {'pod-h ratio':>11}")
    for name in names:
        hpa = [run(name, "hpa", seed, args.hours) for seed in range(1, args.seeds + 1)]
        pred = [run(name, "predictive", seed, args.hours) for seed in range(1, args.seeds + 1)]
        hv = sum(r["violations"] for r in hpa)
        pv = sum(r["violations"] for r in pred)
        hp = sum(r["pod_hours"] for r in hpa)
        pp = sum(r["pod_hours"] for r in pred)
        change = f"{(pv - hv) / hv:+.0%}" if hv else ("0" if pv == 0 else f"+{pv}")
        print(f"{name:9} | {hv:12d} {hp:7.1f} | {pv:14d} {pp:7.1f} "
              f"{sum(r['scale_ahead'] for r in pred):5d} | {change:>12} {pp / hp:11.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
