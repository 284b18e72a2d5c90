"""The default command: open the control room."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="production",
        help="built-in profile name (production, development, experimental) or a PATH.yaml",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: profile's)")


def run(args: argparse.Namespace) -> int:
    from devsim_tui.errors import UserError

    try:
        from devsim_tui.ui.app import run_app
    except ModuleNotFoundError as exc:
        raise UserError("the control room is not available in this build") from exc
    return run_app(args)
