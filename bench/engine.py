"""Engine benchmark: tick cost and simulated seconds per wall second at 10 to 10,000 servers.

All sizes are measured in one run, interleaved over several rounds (machines here are noisy),
and reported with the ratios the targets are stated in:
  * 1,000 servers at >= 3,600 simulated seconds per wall second;
  * cost(10,000) / cost(1,000) <= 3.
Each fleet runs a profile (production unless `--profile` says otherwise; experimental carries
everything round 2 added: multi-cloud placement, Kafka, the multi-master mesh, the ML cache,
the AI-audited security posture) scaled so every server carries ~60% of its capacity,
with the profile's fleet variation on (servers differ, so every server is computed every tick);
the "one degraded server" rows add a fault on one server (its capacity at 70%).

Wall time is what the targets are stated in; the process CPU time per tick is printed beside it
because on a shared machine the wall time also counts the time slices other processes took.

    python bench/engine.py [--ticks 2000] [--rounds 3] [--profile production|development|experimental]
"""

from __future__ import annotations

import argparse
import statistics
import time

from devsim_tui.config.loader import load_profile
from devsim_tui.sim.engine import Engine

SIZES = (10, 100, 1_000, 10_000)


def make_engine(n: int, profile_name: str = "production") -> Engine:
    profile = load_profile(profile_name, overrides={
        "scaling.minReplicas": n, "scaling.maxReplicas": n, "scaling.initialReplicas": n,
        "traffic.baseline_rps": n * 60.0, "database.capacity_qps": max(2500.0, n * 150.0),
    })
    engine = Engine(profile, seed=1)
    engine.step(60)  # past start-up: the HPA has synced, alerts evaluated once
    return engine


def make_faulted(n: int, profile_name: str = "production") -> Engine:
    """The same fleet with one degraded server (a fault: the fault knobs' code paths run)."""
    import numpy as np

    engine = make_engine(n, profile_name)
    fleet = engine.fleet
    fleet.cap_factor = np.where(np.arange(len(fleet)) == 0, 0.7, 1.0)
    fleet.refresh_flags()
    return engine


def time_ticks(engine: Engine, ticks: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per tick."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(ticks):
        engine.advance()
    return (time.perf_counter() - t0) / ticks, (time.process_time() - c0) / ticks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", default="production",
                    choices=("production", "development", "experimental"))
    args = ap.parse_args()
    print(f"profile: {args.profile}")
    engines = {n: make_engine(n, args.profile) for n in SIZES}
    faulted = {n: make_faulted(n, args.profile) for n in (1_000, 10_000)}
    samples: dict[int, list[tuple[float, float]]] = {n: [] for n in SIZES}
    fsamples: dict[int, list[tuple[float, float]]] = {n: [] for n in faulted}
    for _ in range(args.rounds):
        for n in SIZES:  # interleaved so drift in machine load hits every size alike
            samples[n].append(time_ticks(engines[n], args.ticks))
        for n in faulted:
            fsamples[n].append(time_ticks(faulted[n], args.ticks))
    cost = {n: statistics.median(w for w, _ in v) for n, v in samples.items()}
    fcost = {n: statistics.median(w for w, _ in v) for n, v in fsamples.items()}
    cpu = {n: statistics.median(c for _, c in v) for n, v in samples.items()}
    fcpu = {n: statistics.median(c for _, c in v) for n, v in fsamples.items()}
    print(f"{'servers':>8} {'us/tick':>10} {'sim-s/wall-s':>14} {'CPU us/tick':>12}   (median of "
          f"{args.rounds} rounds x {args.ticks} ticks, 1 s ticks)")
    for n in SIZES:
        print(f"{n:>8} {cost[n] * 1e6:>10.1f} {1.0 / cost[n]:>14.0f} {cpu[n] * 1e6:>12.1f}")
    for n, c in fcost.items():
        print(f"{n:>8} {c * 1e6:>10.1f} {1.0 / c:>14.0f} {fcpu[n] * 1e6:>12.1f}   one degraded "
              "server")
    speed_1k = 1.0 / cost[1_000]
    ratio = cost[10_000] / cost[1_000]
    print(f"1,000 servers: {speed_1k:.0f} simulated s per wall s (target >= 3600): "
          f"{'OK' if speed_1k >= 3600 else 'MISSED'}")
    print(f"cost(10,000) / cost(1,000) = {ratio:.2f} (target <= 3): "
          f"{'OK' if ratio <= 3 else 'MISSED'}")
    print(f"by CPU time: 1,000 servers at {1.0 / cpu[1_000]:.0f} simulated s per CPU s, "
          f"cost(10,000) / cost(1,000) = {cpu[10_000] / cpu[1_000]:.2f}")
    fratio = fcost[10_000] / fcost[1_000]
    print(f"one degraded server: 1,000 servers at {1.0 / fcost[1_000]:.0f} sim-s/wall-s, "
          f"cost(10,000) / cost(1,000) = {fratio:.2f}")


if __name__ == "__main__":
    main()
