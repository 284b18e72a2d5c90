"""How well and how cheaply the engine's anomaly detector finds injected faults.

    .venv/bin/python bench/detection.py [--faults 30] [--calm 10] [--profile experimental]

Fault runs: each seed gets one chaos fault (type drawn at random from the catalogue entries the
profile supports, default scope, duration and intensity) injected at a random time 5 to 35
minutes after the detector is armed (t=0 with the default warm start, else the end of its
warm-up); the fault counts as detected when a detector episode begins between the
injection and the fault's end + 60 s (one-shot faults: + 5 min), or an episode already open
takes in new signals then (`detector.episode_grew`: the fault landed inside an overload
episode; the recall by new episodes alone is printed beside it); time to detect = episode start -
injection, in simulated seconds. Calm runs: no chaos; every episode once the detector is armed
is a false finding, except one that begins during a traffic burst (its start to its end + 60 s):
a x2 surge that overloads the fleet is real, and those episodes are counted separately. Traffic
bursts stay on in every run (they are part of a normal day). `--faults 0` and `--no-speed`
measure the calm runs alone. Cost:
fast-forward ticks per wall second of a 100-server production run with and without the
detector.

Results are written into docs/detector.md and docs/performance.md by hand (see those files).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devsim_tui.config.loader import load_profile  # noqa: E402
from devsim_tui.sim.anomaly import AnomalyController  # noqa: E402
from devsim_tui.sim.chaos import CATALOGUE  # noqa: E402
from devsim_tui.sim.engine import Engine  # noqa: E402

RUN_S = 3600.0


def episodes(engine: Engine) -> list[tuple[float, list[str]]]:
    return [(ev.data["began_at"], ev.data["signals"]) for ev in engine.events
            if ev.type == "detector.finding"]


def supported_faults(profile_name: str) -> list[str]:
    out = []
    for name, ft in CATALOGUE.items():
        e = Engine(load_profile(profile_name, overrides={"monitoring.detector.enabled": False}),
                   seed=0)
        e.submit_line(f"chaos {name}")
        e.step(1)
        if not any(ev.type == "command.rejected" for ev in e.events):
            out.append(name)
    return out


def fault_run(profile: str, seed: int, faults: list[str]) -> dict:
    rng = np.random.default_rng(10_000 + seed)
    name = faults[int(rng.integers(len(faults)))]
    e = Engine(load_profile(profile, overrides={"monitoring.detector.enabled": True}), seed=seed)
    ctl = next(c for c in e.controllers if isinstance(c, AnomalyController))
    warm = armed_at(ctl)
    at = float(round(rng.uniform(warm + 300, warm + 300 + RUN_S / 2)))
    e.run_until(at - 1)
    e.submit_line(f"chaos {name}")
    e.step(1)
    injected = [ev for ev in e.events if ev.type == "chaos.injected"]
    ft = CATALOGUE[name]
    window = (ft.duration or 300.0) + 60.0
    e.run_until(at + window + 60)
    new = [b for b, _ in episodes(e) if at - 1 <= b <= at + window]
    # a fault during an open episode: the episode taking in new signals is the detection
    grew = [ev.t for ev in e.events if ev.type == "detector.episode_grew"
            and at - 1 <= ev.t <= at + window]
    hits = new + grew
    before = [b for b, _ in episodes(e) if warm <= b < at - 1]
    return {"seed": seed, "fault": name, "at": at, "applied": bool(injected),
            "detected": bool(hits), "new_episode": bool(new),
            "ttd": (min(hits) - at) if hits else None,
            "false_before": len(before), "hours_before": (at - warm) / 3600.0}


def armed_at(ctl: AnomalyController) -> float:
    """When the detector may flag: t=0 after a warm start, else the end of its warm-up."""
    state = ctl.state()
    return 0.0 if state["warm_started"] else state["warmup_seconds"]


def calm_run(profile: str, seed: int, hours: float) -> dict:
    """Every episode once armed; `false` leaves out those that began during a traffic burst
    (from its start to its end + 60 s, the fault runs' grace): a x2 surge that overloads the
    fleet is a real departure the detector should report, not a false finding."""
    e = Engine(load_profile(profile, overrides={"monitoring.detector.enabled": True}), seed=seed)
    ctl = next(c for c in e.controllers if isinstance(c, AnomalyController))
    warm = armed_at(ctl)
    e.run_until(warm + hours * 3600)
    eps = [(b, s) for b, s in episodes(e) if b >= warm]
    burst_s = e.profile.traffic.bursts.duration_seconds
    bursts = [ev.t for ev in e.events if ev.type == "traffic.burst" and ev.t >= warm]
    in_burst = [(b, s) for b, s in eps if any(t <= b <= t + burst_s + 60.0 for t in bursts)]
    return {"seed": seed, "false": len(eps) - len(in_burst), "all": len(eps),
            "in_burst": len(in_burst), "bursts": len(bursts), "hours": hours, "episodes": eps}


def speed(detector: bool, ticks: int = 3600) -> float:
    overrides = {"monitoring.detector.enabled": detector, "scaling.minReplicas": 100,
                 "scaling.maxReplicas": 200, "scaling.initialReplicas": 100,
                 "traffic.baseline_rps": 5600, "traffic.bursts.per_hour": 0}
    e = Engine(load_profile("production", overrides=overrides), seed=1)
    e.step(300)
    assert len(e.fleet) >= 100
    t0 = time.process_time()  # CPU time: other processes on the machine do not count
    for _ in range(ticks):
        e.advance()
    return ticks / (time.process_time() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="experimental")
    ap.add_argument("--faults", type=int, default=30)
    ap.add_argument("--calm", type=int, default=10)
    ap.add_argument("--calm-hours", type=float, default=2.0)
    ap.add_argument("--fault-seed", type=int, default=1,
                    help="first fault seed (default 1; e.g. 31 for a held-out set)")
    ap.add_argument("--calm-seed", type=int, default=1000,
                    help="first calm seed (default 1000; e.g. 2000 for a held-out set)")
    ap.add_argument("--no-speed", action="store_true", help="skip the fast-forward cost runs")
    args = ap.parse_args()

    faults = supported_faults(args.profile)
    print(f"profile {args.profile}; faults drawn from {len(faults)} types: {', '.join(faults)}")
    seeds = range(args.fault_seed, args.fault_seed + args.faults)
    runs = [fault_run(args.profile, s, faults) for s in seeds]
    for r in runs:
        ttd = f"{r['ttd']:.0f} s" if r["ttd"] is not None else "missed"
        print(f"  seed {r['seed']:>3} {r['fault']:<18} at {r['at']:>5.0f} s: {ttd}")
    applied = [r for r in runs if r["applied"]]
    recall = sum(r["detected"] for r in applied) / max(len(applied), 1)
    ttds = [r["ttd"] for r in applied if r["ttd"] is not None]
    calm = [calm_run(args.profile, args.calm_seed + s, args.calm_hours) for s in range(args.calm)]
    false = sum(c["false"] for c in calm)
    every = sum(c["all"] for c in calm)
    hours = sum(c["hours"] for c in calm)
    fph_calm = false / hours
    pre_false = sum(r["false_before"] for r in runs)
    pre_hours = sum(r["hours_before"] for r in runs) or float("nan")
    print(f"recall {recall:.2f} ({sum(r['detected'] for r in applied)}/{len(applied)} faults; "
          f"by a new episode alone {sum(r['new_episode'] for r in applied)}/{len(applied)})")
    print(f"median time to detect {statistics.median(ttds):.0f} s (p90 "
          f"{np.percentile(ttds, 90):.0f} s)" if ttds else "no detections")
    print(f"false findings: {fph_calm:.2f} per hour on calm runs ({false} in {hours:.0f} h, "
          f"seeds {args.calm_seed}-{args.calm_seed + args.calm - 1}, {args.calm_hours:g} h each); "
          f"{pre_false / pre_hours:.2f} per hour before the fault in fault runs")
    print(f"  all calm episodes, traffic bursts included: {every / hours:.2f} per hour ({every}; "
          f"{sum(c['in_burst'] for c in calm)} began during one of "
          f"{sum(c['bursts'] for c in calm)} bursts)")
    missed = [r["fault"] for r in applied if not r["detected"]]
    print(f"missed: {', '.join(missed) or 'none'}")
    if args.no_speed:
        return 0
    pairs = [(speed(False), speed(True)) for _ in range(3)]  # alternated
    without = statistics.median(p[0] for p in pairs)
    with_d = statistics.median(p[1] for p in pairs)
    print(f"100-server production fast-forward: {without:,.0f} ticks/s without the detector, "
          f"{with_d:,.0f} with it ({1 - with_d / without:.0%} slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
