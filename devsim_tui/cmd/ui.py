"""The default command: open the control room."""

from __future__ import annotations

import argparse

from devsim_tui.config.flags import seed as seed_flag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="production",
        help="built-in profile name (production, development, experimental) or a PATH.yaml",
    )
    parser.add_argument("--seed", type=seed_flag, default=None,
                        help="random seed (default: profile's)")
    parser.add_argument("--speed", default=None,
                        help="simulated seconds per wall second: 1, 10, 60, ... or max "
                        "(default 1)")
    parser.add_argument("--theme", default=None,
                        help="colour theme (control-room, daylight, high-contrast, amber or a "
                        "user theme; default: the last one chosen)")
    parser.add_argument("--paused", action="store_true", help="start with the clock paused")
    parser.add_argument("--no-confirm", action="store_true",
                        help="do not ask before commands that hurt (failover, crash, scale 0)")
    parser.add_argument("--observer", action="store_true",
                        help="read-only: watch the estate, every command is refused")
    parser.add_argument("--record", default=None, metavar="FILE",
                        help="record this session (seed, profile, every command and event, "
                        "one line per tick) to FILE; play it back with `devsim-tui replay FILE`")
    # Links to the outside, all off unless asked for: --metrics-port, SMTP, --mqtt.
    from devsim_tui.bridge.options import add_mqtt_arguments
    from devsim_tui.cmd.simulate import add_alerting_arguments

    add_alerting_arguments(parser)
    add_mqtt_arguments(parser, commands=True)


def run(args: argparse.Namespace) -> int:
    from devsim_tui.errors import UserError

    try:
        from devsim_tui.ui.app import run_app
    except ModuleNotFoundError as exc:
        raise UserError("the control room is not available in this build") from exc
    return run_app(args)
