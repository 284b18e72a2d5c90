"""`devsim-tui replay FILE --headless`: re-run a recording and check it reproduces exactly."""

from __future__ import annotations

import argparse
import sys

from devsim_tui.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "replay", help="re-run a recording and verify it reproduces (events identical)",
        description="Re-run a recording's inputs (seed, resolved profile, scenario, commands "
        "at their ticks) and compare every event with the recorded ones. Exit 0 when they are "
        "identical, 1 at the first difference. A recording cut short by a killed run replays "
        "up to its last complete tick.")
    p.add_argument("recording", help="a file written by `drill run --record`")
    p.add_argument("--headless", action="store_true",
                   help="replay without a screen (the control room's replay comes later)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from devsim_tui.drill.recording import read
    from devsim_tui.drill.runner import replay

    if not args.headless:
        raise UserError("replay: the control room's replay (pause, seek) is not available yet; "
                        "use --headless to verify a recording")
    rec = read(args.recording)
    result = replay(rec)
    n_events = len(rec.events())
    if result.ok:
        state = "complete" if rec.complete else "cut short (the run was killed); replayed up to it"
        print(f"{args.recording}: replay identical: {result.ticks} ticks, {n_events} events "
              f"({state})")
        return 0
    print(f"{args.recording}: replay DIFFERS after {result.ticks} ticks: {result.mismatch}",
          file=sys.stderr)
    return 1
