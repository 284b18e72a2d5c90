"""A plan regression under the static planner and the AI optimiser, side by side.

    .venv/bin/python bench/queryopt.py [--profile experimental] [--share 0.3] [--hours 2]
                                       [--analyze-after 10m] [--seed 1]

The same estate (traffic bursts and noise off, manual scaling, so the runs differ only in the
optimiser) takes `chaos plan-regression db SHARE` at t=120 s and runs for `hours`:

- static: PostgreSQL's planner; nothing but autovacuum's auto-analyze ends the regression;
- static + analyze: the same, with an operator running `analyze` `analyze-after` the flip
  (a typical time to notice and act);
- ai: the learned optimiser (`query_optimization: ai`).

Prints per run: how long the bad plan lasted, what ended it, the extra database CPU it cost
(node-seconds of a fully busy node), the busiest node's CPU before and at its peak, and the
app's peak and mean p99 while it lasted. Results are written into docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devsim_tui.config.durations import parse_duration  # noqa: E402
from devsim_tui.config.loader import load_profile  # noqa: E402
from devsim_tui.sim.engine import Engine  # noqa: E402

FAULT_AT = 120


def run(profile: str, mode: str, share: float, hours: float, analyze_after: float | None,
        seed: int) -> dict:
    p = load_profile(profile, overrides={"traffic.bursts.per_hour": 0, "traffic.noise": 0,
                                         "scaling.scaler": "manual",
                                         "database.query_optimization": mode})
    e = Engine(p, seed=seed)
    e.step(FAULT_AT)
    base_cpu = sum(n.cpu for n in e.db.nodes if n.up)
    e.submit_line(f"chaos plan-regression db {share}")
    extra_cpu, p99s, peak_cpu = 0.0, [], 0.0
    base_peak = max(n.cpu for n in e.db.nodes if n.up)
    end = FAULT_AT + hours * 3600
    while e.t < end:
        if analyze_after is not None and e.t == FAULT_AT + analyze_after:
            e.submit_line("analyze")
        e.step(1)
        if e.db.planner.share > 0:
            extra_cpu += sum(n.cpu for n in e.db.nodes if n.up) - base_cpu
            p99s.append(e.agg.p99_ms)
            peak_cpu = max(peak_cpu, max(n.cpu for n in e.db.nodes if n.up))
    rec = e.db.planner.last_recovery
    return {"lasted_s": rec["after_s"] if rec else None, "by": rec["by"] if rec else "-",
            "extra_cpu_s": extra_cpu, "cpu_before": base_peak, "cpu_peak": peak_cpu,
            "peak_p99": max(p99s) if p99s else None,
            "mean_p99": sum(p99s) / len(p99s) if p99s else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="experimental")
    ap.add_argument("--share", type=float, default=0.3)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--analyze-after", default="10m")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    after = parse_duration(a.analyze_after)
    rows = [("static", run(a.profile, "static", a.share, a.hours, None, a.seed)),
            (f"static + analyze at {a.analyze_after}",
             run(a.profile, "static", a.share, a.hours, after, a.seed)),
            ("ai", run(a.profile, "ai", a.share, a.hours, None, a.seed))]
    print(f"{a.profile}, plan-regression share {a.share} at t={FAULT_AT}s, {a.hours:g} h, "
          f"seed {a.seed}")
    print("| optimiser | bad plan lasted | ended by | DB node CPU before / peak | extra DB CPU "
          "(node-s) | peak p99 ms | mean p99 ms while bad |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        lasted = "> run" if r["lasted_s"] is None else f"{r['lasted_s']:.0f} s"
        p99 = "-" if r["peak_p99"] is None else f"{r['peak_p99']:.0f}"
        mean = "-" if r["mean_p99"] is None else f"{r['mean_p99']:.0f}"
        print(f"| {name} | {lasted} | {r['by']} | {r['cpu_before']:.0%} / {r['cpu_peak']:.0%} | "
              f"{r['extra_cpu_s']:.0f} | {p99} | {mean} |")


if __name__ == "__main__":
    main()
