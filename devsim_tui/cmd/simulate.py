"""`devsim-tui simulate`: run a profile headless and write JSON lines."""

from __future__ import annotations

import argparse
import sys

from devsim_tui.errors import UserError
from devsim_tui.config.flags import seed as seed_flag


def parse_speed(text: str) -> float | str:
    """`--speed`: the bounds of the `set-speed` command (config.durations.parse_speed)."""
    from devsim_tui.config.durations import parse_speed as speed

    try:
        return speed(text)
    except ValueError as exc:
        raise UserError(f"--speed: {exc}") from None


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="run a profile headless and write JSON lines",
        description="Run the simulation without a screen. Writes one JSON line per tick and per "
        "event, then a summary (schema: docs/headless.md).")
    p.add_argument("--profile", default="production", help="built-in name or PATH.yaml")
    p.add_argument("--seed", type=seed_flag, default=None,
                   help="random seed (default: profile's)")
    p.add_argument("--duration", default="1h", help="simulated time: 90s, 10m, 2h, 1h30m")
    p.add_argument("--speed", default="max", help="simulated seconds per wall second, or max")
    p.add_argument("--out", default="-", help="output file (default: stdout)")
    p.add_argument("--commands", default=None, help="YAML list of {at, command, args}")
    p.add_argument("--record", default=None, metavar="FILE",
                   help="also write a recording (seed, profile, commands, events; a line per "
                   "tick) that `devsim-tui replay FILE` plays back or verifies")
    add_alerting_arguments(p)
    from devsim_tui.bridge.options import add_mqtt_arguments

    add_mqtt_arguments(p, commands=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from devsim_tui.config.durations import parse_duration
    from devsim_tui.config.loader import load_profile
    from devsim_tui.sim.command_file import load_commands
    from devsim_tui.headless import progress_bar
    from devsim_tui.headless import run as run_headless
    from devsim_tui.sim.engine import Engine

    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise UserError(f"--duration: {exc}") from None
    speed = parse_speed(args.speed)
    profile = load_profile(args.profile, overrides=alerting_overrides(args) or None)
    commands = load_commands(args.commands) if args.commands else []
    from devsim_tui.bridge.options import options_from_args

    seed = profile.simulation.seed if args.seed is None else int(args.seed)
    mqtt = options_from_args(args, profile.name, seed)  # flag errors before any work or output
    session = None
    if args.record:
        from devsim_tui.drill.session import RecordedSession

        session = RecordedSession(profile, args.seed, args.record, source="simulate", keep=False)
        engine = session.engine
    else:
        engine = Engine(profile, seed=args.seed)
    to_stdout = args.out == "-"
    try:
        out = sys.stdout if to_stdout else open(args.out, "w", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--out {args.out}: {exc.strerror}") from None
    update = close = None
    if not to_stdout and sys.stdout.isatty():
        update, close = progress_bar(duration)
    update, stop_alerting = start_alerting_io(args, engine, update)
    try:
        # The e-mail is flushed (bounded) before the summary, which says what became of it.
        if mqtt is None:
            summary = run_headless(engine, duration, out, commands, speed, update, session,
                                   finalize=stop_alerting)
        else:
            summary = _run_with_mqtt(engine, duration, out, commands, speed, update, mqtt,
                                     session, finalize=stop_alerting)
    finally:
        if session is not None:
            session.close("end" if engine.t >= duration - engine.dt / 2 else "interrupted")
        if close is not None:
            close()
        stop_alerting()
        if not to_stdout:
            out.close()
    print(summary.text(), file=sys.stderr if to_stdout else sys.stdout)
    if summary.email is not None and not to_stdout:
        # On stderr too: lost mail must be seen even when stdout goes to a file.
        print(f"devsim-tui: {summary.email.text()}", file=sys.stderr)
    return 0


def _run_with_mqtt(engine, duration, out, commands, speed, update, options, session=None,
                   finalize=None):
    """The headless run inside asyncio with an MQTT bridge; link changes are reported on stderr.

    A broker that is down (at start or later) never fails the run: the summary says what was
    delivered, what is still buffered and what was dropped.
    """
    import asyncio

    from devsim_tui.bridge.mqtt import MqttBridge
    from devsim_tui.headless import run_async
    from devsim_tui.sim.world import LocalWorld

    def report(state) -> None:
        print(f"devsim-tui: {state.describe()}", file=sys.stderr, flush=True)

    async def main():
        # Commands from the broker go through the session when recording, so they are recorded.
        bridge = MqttBridge(session if session is not None else LocalWorld(engine), options)
        if bridge.policy is not None:
            print(f"devsim-tui: mqtt {options.prefix}/cmd: {bridge.policy.describe()}",
                  file=sys.stderr, flush=True)
        bridge.listeners.append(report)
        bridge.start()
        try:
            summary = await run_async(engine, duration, out, commands, speed, update, bridge,
                                      session=session, finalize=finalize)
        finally:
            bridge.listeners.remove(report)
            final = await bridge.stop()
        sent = sum(final.published.get(k, 0) for k in ("events", "alerts", "detector"))
        print(f"devsim-tui: mqtt {options.url} topic {options.prefix}/: {sent} event messages "
              f"published, {final.buffered} undelivered, {final.dropped} dropped; "
              f"{final.commands_accepted} commands accepted, {final.commands_rejected} rejected"
              + (f"; last error: {final.last_error}" if final.last_error else ""),
              file=sys.stderr, flush=True)
        return summary

    return asyncio.run(main())


def add_alerting_arguments(p: argparse.ArgumentParser) -> None:
    """--metrics-port and the SMTP flags (shared with the control room)."""
    g = p.add_argument_group("monitoring and notifications")
    g.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus /metrics on this port (0 = any free port)")
    g.add_argument("--metrics-addr", default="127.0.0.1", metavar="ADDR",
                   help="address for --metrics-port (default 127.0.0.1)")
    g.add_argument("--smtp-host", default=None, help="send e-mail alerts through this server")
    g.add_argument("--smtp-port", type=int, default=None, help="SMTP port (default 587)")
    g.add_argument("--smtp-security", choices=("starttls", "tls", "none"), default=None,
                   help="STARTTLS (default), implicit TLS or none")
    g.add_argument("--smtp-user", default=None, help="SMTP login user")
    g.add_argument("--smtp-password-env", default=None, metavar="VAR",
                   help="environment variable holding the SMTP password")
    g.add_argument("--mail-from", default=None, help="sender address")
    g.add_argument("--mail-to", action="append", default=None, metavar="ADDR",
                   help="recipient (repeat for several)")


def alerting_overrides(args: argparse.Namespace) -> dict:
    from devsim_tui.notify.setup import smtp_overrides

    return smtp_overrides(*(getattr(args, dest) for dest in SMTP_DESTS))


#: The SMTP flags' destinations, in `smtp_overrides`' order.
SMTP_DESTS = ("smtp_host", "smtp_port", "smtp_security", "smtp_user", "smtp_password_env",
              "mail_from", "mail_to")


def asks_for_smtp(args: argparse.Namespace) -> bool:
    """Whether any SMTP flag was given (without importing the notification code)."""
    return any(getattr(args, dest, None) for dest in SMTP_DESTS)


def start_alerting_io(args: argparse.Namespace, engine, update):
    """Start the exporter and notification delivery; returns (progress callback, stop)."""
    import time

    from devsim_tui.notify import start_notifications
    from devsim_tui.sim.world import LocalWorld

    handle = start_notifications(engine)
    exporter = None
    if args.metrics_port is not None:
        from devsim_tui.export import start_exporter

        try:
            exporter = start_exporter(LocalWorld(engine), args.metrics_port, args.metrics_addr)
        except OSError as exc:
            handle.close()
            raise UserError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from None
        print(f"devsim-tui: serving Prometheus metrics on {exporter.url}", file=sys.stderr,
              flush=True)
    last = [0.0]

    def progress(t: float) -> None:
        if update is not None:
            update(t)
        if exporter is not None and time.monotonic() - last[0] >= 0.2:
            last[0] = time.monotonic()
            exporter.publish(engine.snapshot)

    stopped: list = []

    def stop():
        """Close both (once); the e-mail DeliveryReport, or None without SMTP."""
        if not stopped:
            if exporter is not None:
                exporter.publish(engine.snapshot)
                exporter.close()
            stopped.append(handle.close())
        return stopped[0]

    return (progress if (update is not None or exporter is not None) else None), stop
