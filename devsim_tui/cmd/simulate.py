"""`devsim-tui simulate`: run a profile headless and write JSON lines."""

from __future__ import annotations

import argparse
import sys

from devsim_tui.errors import UserError


def parse_speed(text: str) -> float | str:
    if text == "max":
        return "max"
    try:
        value = float(text.rstrip("x"))
    except ValueError:
        raise UserError(f"--speed: expected a number or 'max', got {text!r}") from None
    if value <= 0:
        raise UserError("--speed must be positive")
    return value


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="run a profile headless and write JSON lines",
        description="Run the simulation without a screen. Writes one JSON line per tick and per "
        "event, then a summary (schema: docs/headless.md).")
    p.add_argument("--profile", default="production", help="built-in name or PATH.yaml")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: profile's)")
    p.add_argument("--duration", default="1h", help="simulated time: 90s, 10m, 2h, 1h30m")
    p.add_argument("--speed", default="max", help="simulated seconds per wall second, or max")
    p.add_argument("--out", default="-", help="output file (default: stdout)")
    p.add_argument("--commands", default=None, help="YAML list of {at, command, args}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from devsim_tui.config.durations import parse_duration
    from devsim_tui.config.loader import load_profile
    from devsim_tui.config.scenario import load_commands
    from devsim_tui.headless import progress_bar
    from devsim_tui.headless import run as run_headless
    from devsim_tui.sim.engine import Engine

    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise UserError(f"--duration: {exc}") from None
    speed = parse_speed(args.speed)
    profile = load_profile(args.profile)
    commands = load_commands(args.commands) if args.commands else []
    engine = Engine(profile, seed=args.seed)
    to_stdout = args.out == "-"
    try:
        out = sys.stdout if to_stdout else open(args.out, "w", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--out {args.out}: {exc.strerror}") from None
    update = close = None
    if not to_stdout and sys.stdout.isatty():
        update, close = progress_bar(duration)
    try:
        summary = run_headless(engine, duration, out, commands, speed, update)
    finally:
        if close is not None:
            close()
        if not to_stdout:
            out.close()
    print(summary.text(), file=sys.stderr if to_stdout else sys.stdout)
    return 0
