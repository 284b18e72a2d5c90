"""The default command: open the control room (flags -> `create_app` -> run).

The CLI's side of the control room: the app itself (ui/app.py) never imports the command line.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devsim_tui.ui.external import IOOptions

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
                        help="colour theme (control-room, daylight, high-contrast, amber, "
                        "green-phosphor or a user theme; default: the last one chosen)")
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
    import gc

    from devsim_tui.errors import UserError

    # Start-up allocates a great deal (Textual and the app's modules, the stylesheet, the panes,
    # the engine) and frees little: no cyclic-garbage passes over it until the world is
    # prepared, when the app freezes what start-up made (later passes skip it) and turns the
    # collector back on (ControlRoomApp._resume_gc).
    gc.disable()
    try:
        try:
            import devsim_tui.ui.app  # noqa: F401 - a build without the UI says so
        except ModuleNotFoundError as exc:
            raise UserError("the control room is not available in this build") from exc
        return run_app(args)
    finally:
        gc.enable()


def io_from_args(args: argparse.Namespace) -> tuple[Any, IOOptions]:
    """The profile (with the SMTP flags as overrides) and the links the flags ask for.

    Flag errors (a bad --mqtt URL, --mqtt-ca without --mqtt) surface here, before the screen.
    """
    from devsim_tui.bridge.options import options_from_args
    from devsim_tui.cmd.simulate import alerting_overrides
    from devsim_tui.config.loader import load_profile
    from devsim_tui.ui.external import IOOptions

    overrides = alerting_overrides(args) if hasattr(args, "smtp_host") else {}
    profile = load_profile(str(args.profile), overrides=overrides or None)
    seed = profile.simulation.seed if args.seed is None else int(args.seed)
    return profile, IOOptions(metrics_port=getattr(args, "metrics_port", None),
                              metrics_addr=getattr(args, "metrics_addr", "127.0.0.1"),
                              mqtt=options_from_args(args, profile.name, seed))


def run_app(args: argparse.Namespace) -> int:
    """The CLI entry: build the app from parsed flags and run it until quit.

    The common start (a built-in profile, no SMTP or MQTT flags) opens the screen first and
    loads the profile behind it; anything else is loaded and checked before the screen opens.
    """
    from devsim_tui.cmd.simulate import asks_for_smtp, parse_speed
    from devsim_tui.config.paths import is_builtin_profile
    from devsim_tui.ui.app import create_app
    from devsim_tui.ui.external import IOOptions

    speed = parse_speed(str(args.speed)) if getattr(args, "speed", None) is not None else None
    if is_builtin_profile(args.profile) and not asks_for_smtp(args) \
            and not getattr(args, "mqtt", None):
        from devsim_tui.bridge.options import options_from_args

        options_from_args(args, str(args.profile), 0)  # e.g. --mqtt-ca without --mqtt
        profile: Any = str(args.profile)
        io = IOOptions(metrics_port=getattr(args, "metrics_port", None),
                       metrics_addr=getattr(args, "metrics_addr", "127.0.0.1"), mqtt=None)
    else:
        profile, io = io_from_args(args)
    record = getattr(args, "record", None)
    if record is not None:
        check_writable(record, "--record")
    app = create_app(profile, io=io, theme=getattr(args, "theme", None), seed=args.seed,
                     speed=speed, paused=bool(getattr(args, "paused", False)),
                     no_confirm=bool(getattr(args, "no_confirm", False)),
                     observer=bool(getattr(args, "observer", False)), background=True,
                     record=record)
    if record is not None:
        from devsim_tui.drill.session import close_on_hangup

        close_on_hangup(lambda: app.world)  # an SSH seat hung up: the end line first
    result = None
    try:
        result = app.run()
    finally:
        close_world(app.world, "terminal gone" if result == app.TERMINAL_GONE
                    else "terminated" if result == 143
                    else "quit" if not app.return_code else "crashed")
    if app.startup_error is not None:
        raise app.startup_error
    if app._external is not None and app._external.delivery is not None:
        import sys  # what became of the e-mail, now that the screen is gone

        print(f"devsim-tui: {app._external.delivery.text()}", file=sys.stderr)
    if record is not None and app.world is not None:
        print(f"recording: {record} ({app.world.tick} ticks); play it back with "
              f"`devsim-tui replay {record}`")
    return int(result or 0)


def close_world(world: Any, reason: str) -> None:
    """Write a recorded world's closing line (nothing for a world that records nothing)."""
    if world is not None:  # None: it never got built
        world.close(reason)


def check_writable(path: str, flag: str) -> None:
    """Fail before the screen opens if `path` cannot be written (the file is made later)."""
    import os

    from devsim_tui.errors import UserError

    parent = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UserError(f"{flag} {path}: is a directory")
    if not os.path.isdir(parent):
        raise UserError(f"{flag} {path}: no such directory: {parent}")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path}: permission denied")

