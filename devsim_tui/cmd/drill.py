"""`devsim-tui drill list | show | validate | run | host | report`: incident drills
(docs/drills.md)."""

from __future__ import annotations

import argparse
import json
import sys

from devsim_tui.errors import UserError, check_each
from devsim_tui.config.flags import seed as seed_flag


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "drill", help="incident drills: scenarios, headless runs, scoring and reports",
        description="Game days in the simulator: scenario files (drills/*.yaml) with injects, "
        "hints and measurable objectives; headless runs with a scripted responder; recordings "
        "and postmortem-style reports (docs/drills.md).")
    actions = p.add_subparsers(dest="drill_action", metavar="ACTION", required=True)

    ls = actions.add_parser("list", help="the shipped scenarios")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)

    show = actions.add_parser("show", help="a scenario's participant brief (or the "
                              "facilitator's sheet)")
    show.add_argument("scenario", help="a shipped scenario's name or a PATH.yaml")
    show.add_argument("--facilitator", action="store_true",
                      help="the facilitator's sheet: the hidden cause, accepted declarations, "
                      "injects and their signals, what each action does, hints")
    show.add_argument("--json", action="store_true", help="the brief as JSON (with "
                      "--facilitator: the whole validated scenario)")
    show.set_defaults(func=_show)

    val = actions.add_parser("validate", help="check scenario files (FILE:LINE errors, exit 2)")
    val.add_argument("scenarios", nargs="*", help="files or names (default: every shipped one)")
    val.set_defaults(func=_validate)

    run = actions.add_parser("run", help="run a drill in the control room (or --headless)")
    run.add_argument("scenario", help="a shipped scenario's name or a PATH.yaml")
    run.add_argument("--seed", type=seed_flag, default=None, help="random seed (default: the "
                                                             "scenario's, else the profile's)")
    run.add_argument("--speed", default=None, help="simulated seconds per wall second, or max "
                     "(default: max headless, the profile's speed in the control room)")
    run.add_argument("--headless", action="store_true", help="run without a screen")
    run.add_argument("--facilitator", action="store_true",
                     help="the facilitator's control room: hidden notes, true cause, injects, "
                     "and the keys that pause, reveal hints, fire, skip and end")
    run.add_argument("--theme", default=None, help="colour theme of the control room")
    run.add_argument("--no-confirm", action="store_true",
                     help="do not ask before commands that hurt (control room)")
    run.add_argument("--commands", default=None, metavar="RESPONDER.yaml",
                     help="a scripted responder: steps {at, when, delay, line, by}")
    run.add_argument("--record", default=None, metavar="FILE",
                     help="write a recording (replayable, input of `drill report`)")
    run.add_argument("--report", default=None, metavar="PREFIX",
                     help="also write PREFIX.md and PREFIX.json reports when the drill ends")
    run.set_defaults(func=_run)

    host = actions.add_parser(
        "host", help="run a drill headless and publish it for shared seats (devsim-tui attach)",
        description="Run a drill on this machine, paced by the wall clock, and publish it to "
        "an MQTT broker: seats attach with `devsim-tui attach --mqtt URL --sim-id ID --seat "
        "ROLE`; this host enforces every seat's role (docs/mqtt.md, 'Shared seats').")
    host.add_argument("scenario", help="a shipped scenario's name or a PATH.yaml")
    host.add_argument("--seed", type=seed_flag, default=None, help="random seed (default: the "
                                                              "scenario's, else the profile's)")
    host.add_argument("--speed", default="1",
                      help="simulated seconds per wall second, or max (default 1; a "
                      "facilitator seat changes it)")
    host.add_argument("--paused", action="store_true",
                      help="start with the clock paused, for a facilitator to start it")
    host.add_argument("--seat-token", action="append", default=None, metavar="ROLE=TOKEN",
                      help="a command carrying TOKEN acts as ROLE (operator, observer, "
                      "facilitator); ROLE=@FILE reads the token from a file; repeatable")
    host.add_argument("--allow-roles", default=None, metavar="ROLES",
                      help="roles a seat may claim without a token, comma-separated "
                      "(default operator,observer; only observer once --seat-token is given)")
    host.add_argument("--record", default=None, metavar="FILE",
                      help="write a recording (replayable, input of `drill report`)")
    host.add_argument("--report", default=None, metavar="PREFIX",
                      help="also write PREFIX.md and PREFIX.json reports when the drill ends")
    from devsim_tui.bridge.options import add_mqtt_arguments

    add_mqtt_arguments(host)
    host.set_defaults(func=_host)

    rep = actions.add_parser("report", help="a postmortem-style report from a recording")
    rep.add_argument("recording", help="a file written by `drill run --record`")
    rep.add_argument("--out", default=None, metavar="PREFIX",
                     help="write PREFIX.md and PREFIX.json (default: next to the recording)")
    rep.add_argument("--svg", action="store_true",
                     help="also write one SVG chart per key metric (PREFIX-METRIC.svg)")
    rep.set_defaults(func=_report)


def _list(args: argparse.Namespace) -> int:
    from devsim_tui.config.durations import format_duration
    from devsim_tui.drill.schema import list_shipped, load_scenario

    rows = []
    for path in list_shipped():
        s = load_scenario(path, check_profile=False).scenario
        rows.append({"name": path.stem, "title": s.title, "profile": s.profile,
                     "difficulty": s.difficulty, "duration_s": s.duration})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    print(f"{'NAME':<{width}}  {'PROFILE':<12}  {'LEVEL':<6}  {'TIME':>5}  TITLE")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['profile']:<12}  {r['difficulty']:<6}  "
              f"{format_duration(r['duration_s']):>5}  {r['title']}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from devsim_tui.drill.brief import brief, brief_text, sheet_text
    from devsim_tui.drill.schema import load_scenario, resolve

    loaded = load_scenario(resolve(args.scenario))
    if args.json:
        data = (loaded.scenario.model_dump(mode="json") if args.facilitator
                else brief(loaded))
        print(json.dumps(data, indent=2))
        return 0
    print(sheet_text(loaded) if args.facilitator else brief_text(loaded))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from devsim_tui.drill.schema import list_shipped, load_scenario, resolve

    paths = [resolve(x) for x in args.scenarios] or [str(p) for p in list_shipped()]
    check_each(paths, load_scenario, lambda path, _: print(f"{path}: ok"))
    return 0


def _run(args: argparse.Namespace) -> int:
    from devsim_tui.cmd.simulate import parse_speed
    from devsim_tui.drill.runner import DrillSession, Responder, load_responder, run_headless
    from devsim_tui.drill.schema import load_scenario, resolve

    if not args.headless:
        if args.commands:
            raise UserError("drill run: --commands (a scripted responder) needs --headless; in "
                            "the control room the people at the keyboard respond")
        return _run_in_control_room(args)
    speed = parse_speed(args.speed or "max")
    loaded = load_scenario(resolve(args.scenario))
    steps = load_responder(args.commands) if args.commands else []
    session = DrillSession(loaded, seed=args.seed, record=args.record)
    responder = Responder(steps, session) if steps else None
    try:
        reason = run_headless(session, responder, speed)
    except KeyboardInterrupt:
        session.drill._end("interrupted")
        session.close()
        raise
    _print_score(session, args)
    return 0 if reason != "interrupted" else 130


def _print_score(session, args: argparse.Namespace) -> None:
    """The drill's score, and where its recording and report went."""
    from devsim_tui.drill.report import summary_text, write_report
    from devsim_tui.drill.score import score_session

    result = score_session(session)
    print(summary_text(result))
    if args.record:
        print(f"recording: {args.record} ({session.engine.tick} ticks)")
    if args.report:
        for path in write_report(result, args.report):
            print(f"report: {path}")


def _run_in_control_room(args: argparse.Namespace) -> int:
    """The drill in the control room; when it ends the score and the files' paths are shown
    there and printed here (also when the app is left before the end)."""
    from devsim_tui.cmd.simulate import parse_speed
    from devsim_tui.drill.runner import DrillSession
    from devsim_tui.drill.schema import load_scenario, resolve
    from devsim_tui.ui.drill_panel import create_drill_app

    speed = parse_speed(args.speed) if args.speed is not None else None
    loaded = load_scenario(resolve(args.scenario))
    session = DrillSession(loaded, seed=args.seed, record=args.record)
    app = create_drill_app(session, facilitator=args.facilitator, record=args.record,
                           report=args.report, speed=speed, theme=args.theme,
                           no_confirm=args.no_confirm)
    try:
        app.run()
    finally:
        if not session.finished:
            session.drill._end("stopped")  # left before the end: scored as it stands
            session.close()
    if app.result is None:
        _print_score(session, args)
    else:
        print(app.outcome)
    return 0


def _host(args: argparse.Namespace) -> int:
    import asyncio
    import re

    from devsim_tui.bridge import payloads as P
    from devsim_tui.bridge.mqtt import MqttBridge
    from devsim_tui.bridge.options import build_options, check_sim_id
    from devsim_tui.bridge.seats import SeatPolicy, host
    from devsim_tui.cmd.simulate import parse_speed
    from devsim_tui.drill.runner import DrillSession
    from devsim_tui.drill.schema import load_scenario, resolve

    if not args.mqtt:
        raise UserError("drill host needs --mqtt URL: the broker the seats attach through")
    speed = parse_speed(args.speed)
    policy = SeatPolicy.from_flags(args.seat_token, args.allow_roles)
    loaded = load_scenario(resolve(args.scenario))
    sim_id = check_sim_id(args.sim_id) if args.sim_id else check_sim_id(
        re.sub(r"[^A-Za-z0-9._-]+", "-", loaded.name).strip("-.")[:64] or "drill")
    options = build_options(args.mqtt, sim_id=sim_id, ca_file=args.mqtt_ca,
                            cert_file=args.mqtt_cert, key_file=args.mqtt_key,
                            buffer_size=args.mqtt_buffer, tick_rate=args.mqtt_rate)
    session = DrillSession(loaded, seed=args.seed, record=args.record)
    bridge = MqttBridge(session, options, snapshots=True, policy=policy, submit=session.submit,
                        extras=lambda snap: {P.DRILL_FACILITATOR:
                                             session.drill.facilitator_state()})
    print(f"hosting drill {loaded.name} under {options.prefix}/ on {options.url} "
          f"(seats {policy.describe()})", file=sys.stderr)
    print(f"attach: devsim-tui attach --mqtt {options.url} --sim-id {sim_id} "
          "--seat operator|observer|facilitator", file=sys.stderr)
    try:
        asyncio.run(host(session, bridge, speed=speed, paused=args.paused,
                         finished=lambda: session.finished))
    except KeyboardInterrupt:
        session.drill._end("interrupted")
        session.close()
        raise
    session.close()
    _print_score(session, args)
    return 0


def _report(args: argparse.Namespace) -> int:
    from devsim_tui.drill.recording import read
    from devsim_tui.drill.report import write_report
    from devsim_tui.drill.score import score_recording

    rec = read(args.recording)
    if not rec.is_drill:
        raise UserError(f"{args.recording}: a {rec.source} recording, not a drill's: there is "
                        f"nothing to score (play it back with `devsim-tui replay "
                        f"{args.recording}`)")
    result = score_recording(rec)
    prefix = args.out or (args.recording.rsplit(".", 1)[0] if "." in args.recording
                          else args.recording)
    for path in write_report(result, prefix, svg=args.svg):
        print(path)
    if rec.truncated or not rec.complete:
        print(f"note: {args.recording} ends without its closing line (the run was killed); the "
              f"report covers the {len(rec.ticks)} ticks recorded", file=sys.stderr)
    return 0
