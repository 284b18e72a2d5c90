"""`devsim-tui rules`: list, check and export a profile's alerting rules (Prometheus format)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devsim_tui.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules", help="list, check and export alerting rules",
        description="A profile's alerting rules: the engine evaluates them in simulated time; "
        "`export` writes them as a Prometheus rule file over the exporter's metric names "
        "(docs/alerting.md).")
    actions = parser.add_subparsers(dest="rules_action", metavar="ACTION", required=True)

    export = actions.add_parser("export", help="write the rules as a Prometheus rule file")
    export.add_argument("--profile", default="production", help="built-in name or PATH.yaml")
    export.add_argument("--out", default="-", help="output file (default: stdout)")
    export.add_argument("--no-annotations", action="store_true",
                        help="leave annotations out (e.g. for promtool unit tests)")
    export.add_argument("--speed", default="1",
                        help="the run's --speed: durations and rates are mapped from simulated "
                        "onto Prometheus' wall time (default 1; docs/exporter.md)")
    export.add_argument("--prometheus-config", default=None, metavar="DIR",
                        help="write DIR/prometheus.yml, the rule file and alertmanager.yml")
    export.add_argument("--target", action="append", default=None, metavar="HOST:PORT",
                        help="exporter address to scrape (default 127.0.0.1:9464; repeatable)")
    export.add_argument("--alertmanager", default=None, metavar="HOST:PORT",
                        help="send alerts to this Alertmanager (prometheus.yml `alerting`)")
    export.set_defaults(func=_export)

    listing = actions.add_parser("list", help="the rules of a profile, one per line")
    listing.add_argument("--profile", default="production", help="built-in name or PATH.yaml")
    listing.set_defaults(func=_list)

    check = actions.add_parser("check", help="validate rule files (FILE:LINE problems)")
    check.add_argument("paths", metavar="PATH", nargs="+")
    check.set_defaults(func=_check)


def _ruleset(name: str):
    from devsim_tui.config.loader import load_profile
    from devsim_tui.sim.rules import rules_for

    return rules_for(load_profile(name))


def _export(args: argparse.Namespace) -> int:
    from devsim_tui.cmd.simulate import parse_speed
    from devsim_tui.config.loader import load_profile
    from devsim_tui.export.prometheus_config import rule_file_text, write_prometheus_config
    from devsim_tui.sim.rules import rules_for

    speed = parse_speed(args.speed)
    if speed == "max":
        raise UserError("--speed: a Prometheus needs a paced run; give the run's number, not max")
    profile = load_profile(args.profile)
    ruleset = rules_for(profile)
    if args.prometheus_config:
        paths = write_prometheus_config(args.prometheus_config, profile, ruleset, args.target,
                                        float(speed), args.alertmanager)
        for p in paths:
            print(f"wrote {p}")
        if args.out == "-":
            return 0
    text = rule_file_text(ruleset, float(speed), annotations=not args.no_annotations)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--out {args.out}: {exc.strerror}") from None
    return 0


def _list(args: argparse.Namespace) -> int:
    from devsim_tui.sim.promql import format_duration

    rs = _ruleset(args.profile)
    print(f"# {rs.source}")
    for group, interval, rules in rs.groups:
        print(f"{group} (every {format_duration(interval)}):")
        for r in rules:
            extra = f" for {format_duration(r.for_s)}" if r.for_s else ""
            print(f"  {r.alert:<26} {r.severity:<8}{extra}\n      {' '.join(r.expr.split())}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from devsim_tui.errors import ConfigError
    from devsim_tui.sim.rules import load_rules

    problems: list[str] = []
    for path in args.paths:
        try:
            rs = load_rules(path, 60)
            print(f"{path}: OK ({len(rs.rules)} rules)")
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return 0
