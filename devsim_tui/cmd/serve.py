"""`devsim-tui serve ssh|web|hash-password`: the control room for other people's terminals."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import sys
from pathlib import Path

from devsim_tui.errors import UserError
from devsim_tui.config.flags import seed as seed_flag


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the control room over SSH or to a browser",
        description="Serve the control room: SSH demo seats, browser mode, password hashes.")
    sub = parser.add_subparsers(dest="serve_command", metavar="MODE", required=True)

    ssh = sub.add_parser("ssh", help="SSH server: one control room per login",
                         description="An SSH server whose only service is the control room: "
                         "one seat (its own world) per interactive login; see docs/ssh.md.")
    ssh.add_argument("--port", type=int, default=2222, help="port to listen on (default 2222)")
    ssh.add_argument("--host", default=None,
                     help="address to listen on (default: every interface)")
    _seat_arguments(ssh)
    ssh.add_argument("--authorized-keys", type=Path, default=None, metavar="FILE",
                     help='OpenSSH authorized_keys; devsim-role="observer" marks read-only keys')
    ssh.add_argument("--passwords", type=Path, default=None, metavar="FILE",
                     help="user:role:hash lines (from `serve hash-password`); off unless given")
    ssh.add_argument("--host-key", type=Path, default=None, metavar="FILE",
                     help="host private key (default: generated once in the user data dir)")
    ssh.add_argument("--max-sessions", type=int, default=10,
                     help="seats open at once (default 10)")
    ssh.add_argument("--idle-timeout", default="30m",
                     help="end a seat after this long without input: 90s, 30m, 2h; 0 = never "
                          "(default 30m)")
    ssh.add_argument("--log-file", type=Path, default=None, metavar="FILE",
                     help="also append the login/logout log to FILE (it always goes to stderr)")
    ssh.add_argument("--shared", action="store_true",
                     help="every seat attaches to ONE world this server hosts and publishes "
                     "through --mqtt (roles enforced by the host with per-role seat tokens)")
    ssh.add_argument("--drill", default=None, metavar="NAME|PATH.yaml",
                     help="with --shared: the shared world is this drill (docs/drills.md)")
    ssh.add_argument("--record", default=None, metavar="DIR",
                     help="record the sessions into DIR (made if missing): one recording per "
                     "seat, USER-TIME-ID.rec, or with --shared the shared world's, "
                     "shared-TIME.rec; play one back with `devsim-tui replay FILE`")
    from devsim_tui.bridge.options import add_mqtt_arguments

    add_mqtt_arguments(ssh)
    ssh.set_defaults(func=run_ssh)

    web = sub.add_parser("web", help="serve the control room to browsers (textual-serve)",
                         description="One control room per browser tab, with textual-serve.")
    web.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    web.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1)")
    web.add_argument("--public-url", default=None,
                     help="URL browsers reach the server at, when not http://HOST:PORT")
    _seat_arguments(web)
    web.add_argument("--observer", action="store_true",
                     help="read-only tabs: every command is refused")
    web.set_defaults(func=run_web)

    dash = sub.add_parser(
        "dashboard", help="the development estate's web dashboard (builds, tests, reloads)",
        description="A web page of a simulated developer session: build times, unit-test "
        "results, console warnings and hot reloads (docs/exporter.md#development-dashboard).")
    dash.add_argument("--port", type=int, default=8001, help="port to listen on (default 8001)")
    dash.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default 127.0.0.1)")
    dash.add_argument("--profile", default="development",
                      help="built-in name or PATH.yaml (default development)")
    dash.add_argument("--seed", type=int, default=None, help="random seed (default: profile's)")
    dash.add_argument("--speed", default="10", help="simulated seconds per wall second (10)")
    dash.add_argument("--duration", default=None,
                      help="stop the simulation after this simulated time (default: never)")
    dash.add_argument("--code-change-every", default="2m", metavar="DURATION",
                      help="the developer saves a change this often, simulated (default 2m; "
                      "0 = never)")
    dash.set_defaults(func=run_dashboard)

    hp = sub.add_parser("hash-password", help="hash a password for --passwords",
                        description="Read a password (prompted, or one line on stdin) and print "
                        "a scrypt hash, or a whole user:role:hash line with --user.")
    hp.add_argument("--user", default=None, help="print `USER:ROLE:HASH`, ready for the file")
    hp.add_argument("--role", default="operator", choices=["operator", "observer", "facilitator"],
                    help="role for --user (default operator)")
    hp.add_argument("--scheme", default="scrypt", choices=["scrypt", "pbkdf2"],
                    help="hash function (default scrypt)")
    hp.set_defaults(func=run_hash_password)


def _seat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="production",
                        help="profile every seat runs (built-in name or PATH.yaml)")
    parser.add_argument("--seed", type=seed_flag, default=None,
                        help="random seed for every seat")
    parser.add_argument("--speed", default=None, help="starting speed of every seat: 1, 10, "
                        "60, ... or max")


def _seat(args: argparse.Namespace):
    from devsim_tui.cmd.simulate import parse_speed
    from devsim_tui.config.loader import load_profile
    from devsim_tui.serve.ssh import SeatCommand

    # Fail here, once, rather than in every seat as people connect.
    load_profile(args.profile)
    if args.speed is not None:
        parse_speed(str(args.speed))
    profile = args.profile
    if Path(profile).suffix in (".yaml", ".yml") and Path(profile).exists():
        profile = str(Path(profile).resolve())  # seats may not share the server's cwd forever
    record = _record_dir(args) if getattr(args, "record", None) else None
    return SeatCommand(profile=profile, seed=args.seed, speed=args.speed, record_dir=record)


def _record_dir(args: argparse.Namespace) -> str:
    """`--record DIR`, made if missing (0700: recordings hold commands and user names) and
    checked writable, as an absolute path."""
    import os

    from devsim_tui.private_files import make_private_dir

    path = Path(args.record).expanduser().resolve()
    try:
        make_private_dir(path)
    except OSError as exc:
        raise UserError(f"--record {args.record}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"--record {args.record}: permission denied")
    return str(path)


def run_ssh(args: argparse.Namespace) -> int:
    from devsim_tui.config.durations import parse_duration
    from devsim_tui.serve.auth import AuthorizedKeys, PasswordFile
    from devsim_tui.serve.ssh import SeatServer, SSHServeConfig, configure_logging

    if args.authorized_keys is None and args.passwords is None:
        raise UserError("nobody could log in: give --authorized-keys FILE "
                        "(and/or --passwords FILE); see docs/ssh.md")
    if args.max_sessions < 1:
        raise UserError("--max-sessions must be at least 1")
    try:
        idle = parse_duration(args.idle_timeout)
    except ValueError as exc:
        raise UserError(f"--idle-timeout: {exc}") from exc
    if not args.shared:
        for flag in ("drill", "mqtt", "sim_id", "mqtt_ca", "mqtt_cert", "mqtt_key"):
            if getattr(args, flag):
                raise UserError(f"--{flag.replace('_', '-')} needs --shared")
    authorized = AuthorizedKeys.read(args.authorized_keys) if args.authorized_keys else None
    passwords = PasswordFile.read(args.passwords) if args.passwords else None
    # Last, because it makes the token directory (removed in the `finally` below).
    shared = _shared(args) if args.shared else None
    config = SSHServeConfig(
        port=args.port, host=args.host, seat=shared.seat if shared else _seat(args),
        authorized_keys=authorized, passwords=passwords,
        host_key=args.host_key, max_sessions=args.max_sessions, idle_timeout=idle)
    try:
        undo = configure_logging(args.log_file)  # a new --log-file is made 0600
    except OSError as exc:
        raise UserError(f"--log-file {args.log_file}: {exc.strerror}") from None
    # SIGTERM (systemd, `kill`) ends the seats and, with --shared, removes the token files.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        if shared is not None:
            shared.start()
        asyncio.run(SeatServer(config).serve_forever())
    except OSError as exc:
        raise UserError(f"cannot listen on port {args.port}: {exc}") from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
        if shared is not None:
            shared.close()
        undo()
    return 0


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


class _Shared:
    """The hosted world of `serve ssh --shared`, its tokens and the seats' attach command."""

    def __init__(self, host, tokens, seat, describe: str) -> None:
        self.host, self.tokens, self.seat, self.describe = host, tokens, seat, describe

    def start(self) -> None:
        from devsim_tui.serve.ssh import log

        self.host.start()
        log.info("hosting %s under %s/ on %s (seats: %s)", self.describe,
                 self.host.options.prefix, self.host.options.url, self.host.policy().describe())

    def close(self) -> None:
        self.host.stop()
        self.tokens.close()


def _shared(args: argparse.Namespace) -> _Shared:
    import re
    import secrets

    from devsim_tui.bridge import payloads as P
    from devsim_tui.bridge.options import build_options, check_sim_id
    from devsim_tui.cmd.simulate import parse_speed
    from devsim_tui.serve.shared import AttachCommand, SharedHost, TokenDir

    if not args.mqtt:
        raise UserError("serve ssh --shared needs --mqtt URL: the broker the seats attach "
                        "through (docs/ssh.md, 'One shared world')")
    speed = parse_speed(str(args.speed)) if args.speed is not None else None
    from devsim_tui.drill.session import recording_path

    record = (recording_path(_record_dir(args), "shared")
              if getattr(args, "record", None) else None)
    if args.drill:
        from devsim_tui.drill.schema import load_scenario, resolve

        loaded = load_scenario(resolve(args.drill))
        name, describe = loaded.name, f"drill {loaded.name}"

        def make_world():
            from devsim_tui.drill.runner import DrillSession

            session = DrillSession(loaded, seed=args.seed, record=record)
            extras = {"submit": session.submit,
                      "extras": lambda snap: {P.DRILL_FACILITATOR:
                                              session.drill.facilitator_state()}}
            return session, extras, lambda: session.finished
    else:
        from devsim_tui.config.loader import load_profile

        profile = load_profile(args.profile)
        name, describe = profile.name, f"profile {profile.name}"

        def make_world():
            from devsim_tui.sim.engine import Engine
            from devsim_tui.sim.world import LocalWorld

            if record is not None:
                from devsim_tui.drill.session import RecordedSession

                world = RecordedSession(profile, args.seed, record, source="serve-ssh-shared",
                                        keep=False)
                return world, {"submit": world.submit}, lambda: False
            return LocalWorld(Engine(profile, seed=args.seed)), {}, lambda: False
    if args.sim_id:
        sim_id = check_sim_id(args.sim_id)
    else:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "world"
        sim_id = check_sim_id(f"ssh-{slug}-{secrets.token_hex(3)}")
    options = build_options(args.mqtt, sim_id=sim_id, ca_file=args.mqtt_ca,
                            cert_file=args.mqtt_cert, key_file=args.mqtt_key,
                            buffer_size=args.mqtt_buffer, tick_rate=args.mqtt_rate)
    tokens = TokenDir()

    def ended(world, reason: str) -> None:
        from devsim_tui.serve.ssh import log

        log.info("shared world ended: %s (seats keep its last state)", reason)
        world.close()  # a drill's or a recorded world's closing line (others: nothing)
        if record is not None:
            log.info("recording: %s", record)

    host = SharedHost(make_world, options, tokens.tokens, speed=speed, on_end=ended)

    def absolute(path):
        return str(Path(path).resolve()) if path else None

    seat = AttachCommand(args.mqtt, sim_id, tokens.tokens, mqtt_ca=absolute(args.mqtt_ca),
                         mqtt_cert=absolute(args.mqtt_cert), mqtt_key=absolute(args.mqtt_key))
    return _Shared(host, tokens, seat, describe)


def run_web(args: argparse.Namespace) -> int:
    from devsim_tui.serve.web import serve_web

    try:
        serve_web(_seat(args), host=args.host, port=args.port, public_url=args.public_url,
                  observer=args.observer)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    return 0


def run_dashboard(args: argparse.Namespace) -> int:
    from devsim_tui.cmd.simulate import parse_speed
    from devsim_tui.config.durations import parse_duration
    from devsim_tui.config.loader import load_profile
    from devsim_tui.serve.dashboard import DevDashboard, make_server

    speed = parse_speed(args.speed)
    if speed == "max":
        raise UserError("--speed: the dashboard runs paced; give a number")

    def duration(flag: str, text: str | None) -> float | None:
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise UserError(f"{flag}: {exc}") from None

    every = duration("--code-change-every", args.code_change_every)
    profile = load_profile(args.profile)
    if every and profile.deployment.hot_reload is None:
        raise UserError(f"--code-change-every: profile {profile.name} has no hot reload "
                        "(deployment.hot_reload); use --code-change-every 0")
    board = DevDashboard(profile, args.seed, float(speed), duration("--duration", args.duration),
                         every or None)
    try:
        server = make_server(board, args.host, args.port)
    except OSError as exc:
        raise UserError(f"--port {args.port}: {exc.strerror}") from None
    board.start()
    host, port = server.server_address[:2]
    print(f"devsim-tui: development dashboard on http://{host}:{port}/ "
          f"({profile.name}, {float(speed):g}x)", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        board.stop()
    return 0


def run_hash_password(args: argparse.Namespace) -> int:
    from devsim_tui.serve.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UserError("empty password")
    if args.user is not None and (":" in args.user or not args.user):
        raise UserError("--user: a name without ':'")
    hashed = hash_password(password, args.scheme)
    print(f"{args.user}:{args.role}:{hashed}" if args.user else hashed)
    return 0
