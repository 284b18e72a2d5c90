"""The command line's two parses: the control room's own flags alone (its start needs none of
the subcommands' parsers), and the whole parser for everything else, which reports errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devsim_tui.cli import build_parser, main, parse_args

CONTROL_ROOM = [
    [],
    ["--profile", "production", "--seed", "7"],
    ["--paused", "--no-confirm", "--theme", "daylight", "--speed", "10"],
    ["--prof", "development", "--observer"],  # argparse's abbreviations, as before
    ["--record", "run.jsonl", "--metrics-port", "9100", "--metrics-addr", "0.0.0.0"],
    ["--smtp-host", "localhost", "--smtp-port", "2525", "--mail-to", "a@b.c"],
    ["--mqtt", "mqtt://localhost:1883", "--mqtt-allow-commands", "--sim-id", "x"],
    ["--profile=experimental", "--seed=3"],
]


@pytest.mark.parametrize("argv", CONTROL_ROOM)
def test_the_control_rooms_flags_parse_as_the_whole_parser_parses_them(argv) -> None:
    assert vars(parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["simulate", "--profile", "production", "--duration", "1m"],
    ["--profile", "production", "simulate", "--duration", "1m"],
    ["profiles", "list"],
])
def test_a_subcommand_goes_to_the_whole_parser(argv) -> None:
    args = parse_args(argv)
    assert args.command == next(a for a in argv if a in ("simulate", "profiles"))
    assert vars(args) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv,needle", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--seed", "x"], "--seed"),
    (["simulat"], "invalid choice: 'simulat'"),
])
def test_errors_are_the_whole_parsers(argv, needle, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "COMMAND ..." in err  # the whole parser's usage line


def test_help_lists_the_subcommands(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "simulate" in out and "--profile" in out


def test_the_control_rooms_parse_imports_no_subcommand() -> None:
    # (cmd.simulate is the control room's too: its alerting flags and speed parser)
    code = ("import sys; from devsim_tui.cli import parse_args, SUBCOMMANDS; "
            "parse_args(['--profile', 'production']); "
            "print([m for m in SUBCOMMANDS if m in sys.modules and not m.endswith('simulate')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
