"""`devsim-tui chaos list`: the fault catalogue, with each fault's parameters and effect."""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chaos", help="the chaos fault catalogue",
        description="Faults the `chaos` engine command injects (in the control room's `:` line, "
        "a --commands file or a drill): chaos TYPE [SCOPE] [DURATION] [INTENSITY].")
    actions = parser.add_subparsers(dest="chaos_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every fault type with its parameters")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_list)


def _rows():
    from devsim_tui.sim.chaos import CATALOGUE, _scope_help

    for ft in CATALOGUE.values():
        yield {
            "type": ft.name, "does": ft.summary, "effect": ft.effect,
            "scope": _scope_help(ft), "default_scope": ft.default_scope,
            "duration_s": ft.duration, "intensity": ft.intensity,
            "default_intensity": ft.default_intensity,
            "needs": ft.needs,
        }


def _list(args: argparse.Namespace) -> int:
    from devsim_tui.config.durations import format_duration

    rows = list(_rows())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = min(shutil.get_terminal_size().columns, 100)
    wrap = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="    ")
    print(f"{len(rows)} fault types. Usage: chaos TYPE [SCOPE] [DURATION] [INTENSITY]; "
          "chaos-stop ID | all\n")
    for r in rows:
        duration = (f"default {format_duration(r['duration_s'])}, reverts by itself"
                    if r["duration_s"] is not None else "one-shot")
        print(f"{r['type']}: {r['does']}")
        print(wrap.fill(f"effect: {r['effect']}"))
        print(wrap.fill(f"scope: {r['scope']} (default {r['default_scope']})"))
        print(wrap.fill(f"duration: {duration}"))
        if r["intensity"]:
            print(wrap.fill(f"intensity: {r['intensity']} (default {r['default_intensity']:g})"))
        if r["needs"]:
            print(wrap.fill(f"needs: a profile with {'a cache' if r['needs'] == 'cache' else 'Kafka'}"
                            " (experimental)"))
        print()
    return 0
