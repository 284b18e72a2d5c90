"""The command line: a thin layer over the app factory, the engine and the tools.

Each subcommand lives in its own module under `devsim_tui.cmd` and registers itself with
`add_parser(subparsers)`; this module only dispatches and turns user errors into exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from devsim_tui import __version__
from devsim_tui.errors import UserError

# Subcommand modules, each exposing add_parser(subparsers) which sets `func` on its parser.
SUBCOMMANDS = [
    "devsim_tui.cmd.simulate",
    "devsim_tui.cmd.profiles",
    "devsim_tui.cmd.detect",
    "devsim_tui.cmd.chaos",
    "devsim_tui.cmd.rules",
    "devsim_tui.cmd.serve",
    "devsim_tui.cmd.drill",
    "devsim_tui.cmd.replay",
    "devsim_tui.cmd.attach",
]


class _NotOnlyTheControlRoom(Exception):
    """The quick parse met something only the full parser knows (or reports): use that."""


class _ControlRoomParser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise _NotOnlyTheControlRoom(message)


def build_parser(subcommands: bool = True) -> argparse.ArgumentParser:
    """The whole command line; without `subcommands`, only the control room's own flags (a
    parser that raises instead of reporting: `parse_args` falls back to the whole one)."""
    parser = (argparse.ArgumentParser if subcommands else _ControlRoomParser)(
        prog="devsim-tui",
        description="A terminal control room in which a whole DevOps estate is simulated live.",
    )
    parser.add_argument("--version", action="version", version=f"devsim-tui {__version__}")
    from devsim_tui.cmd import ui as ui_cmd

    ui_cmd.add_arguments(parser)
    parser.set_defaults(func=ui_cmd.run)
    if not subcommands:
        return parser
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a subcommand still being built must not break others
            if exc.name != name:
                raise
            continue
        module.add_parser(subparsers)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The parsed command line. Starting the control room needs none of the subcommands'
    parsers (their modules and argparse's tables cost its start a tenth as much again as its
    own flags), so those are parsed first on their own; anything else there (a subcommand, an
    unknown or bad flag, a request for help) is parsed, and reported, by the whole parser."""
    if not any(arg.startswith(("-h", "--h")) for arg in argv):
        try:
            args, rest = build_parser(subcommands=False).parse_known_args(argv)
        except _NotOnlyTheControlRoom:
            rest = ["(error)"]
        if not rest:
            args.command = None
            return args
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"devsim-tui: error: {exc}" if "\n" not in str(exc) else f"devsim-tui: error:\n{exc}",
              file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
