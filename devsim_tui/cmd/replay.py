"""`devsim-tui replay FILE`: play a recording back in the control room (pause, seek, speed);
`--headless` re-runs it and checks it reproduces exactly."""

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
    p.add_argument("recording", help="a file written by `--record FILE` (the control room, "
                   "`simulate`, `drill run`, `drill host`)")
    p.add_argument("--headless", action="store_true",
                   help="verify without a screen (default: play it back in the control room)")
    p.add_argument("--speed", default=None,
                   help="playback speed: simulated seconds per wall second, or max")
    p.add_argument("--theme", default=None, help="colour theme of the control room")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from devsim_tui.drill.recording import read
    from devsim_tui.drill.runner import replay

    rec = read(args.recording)
    if not args.headless:
        from devsim_tui.cmd.simulate import parse_speed
        from devsim_tui.ui.replay import create_replay_app

        if not rec.ticks:
            raise UserError(f"{args.recording}: no ticks recorded, nothing to play back")
        speed = parse_speed(args.speed) if args.speed is not None else None
        return int(create_replay_app(rec, speed=speed, theme=args.theme).run() or 0)
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
