"""`devsim-tui attach`: a control room on a world hosted elsewhere (`drill host`, `serve ssh
--shared`), through an MQTT broker, as an operator, observer or facilitator (docs/mqtt.md)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re

from devsim_tui.access import ROLES
from devsim_tui.errors import UserError



def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "attach", help="open a control room on a hosted world (shared seats over MQTT)",
        description="Attach a control room to a world another process hosts and publishes "
        "(devsim-tui drill host, serve ssh --shared). The host runs the clock and enforces "
        "the seat's role; see docs/mqtt.md, 'Shared seats'.")
    # The connection flags of the host's family (bridge/options.py); buffer and rate are the
    # host's business, a seat neither buffers nor publishes telemetry.
    p.add_argument("--mqtt", metavar="URL", default=None,
                   help="the broker the host publishes to: mqtt://[user:pass@]host[:port] or "
                   "mqtts://...")
    p.add_argument("--sim-id", default=None,
                   help="the hosted world's id, devsim/<sim-id>/... (the host prints it)")
    p.add_argument("--mqtt-ca", metavar="FILE", default=None,
                   help="CA certificate(s) to verify an mqtts:// broker (default: system CAs)")
    p.add_argument("--mqtt-cert", metavar="FILE", default=None,
                   help="client certificate for mqtts:// (PEM)")
    p.add_argument("--mqtt-key", metavar="FILE", default=None,
                   help="private key of --mqtt-cert, if not in the same file")
    p.add_argument("--seat", choices=ROLES, default="operator",
                   help="the role this seat claims: operator (the ordinary commands and "
                   "drill answers), observer (read-only) or facilitator (everything, the clock "
                   "and the drill's injects and hints); the host decides (default operator)")
    p.add_argument("--name", default=None,
                   help="how the host and the drill report name this seat (default: your "
                   "login name)")
    p.add_argument("--token", default=None, metavar="TOKEN|@FILE",
                   help="the seat token the host gave this role (--seat-token on the host); "
                   "@FILE reads it from a file, out of the process list")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the host's state before giving up (default 10)")
    p.add_argument("--theme", default=None, help="colour theme of this seat's screen")
    p.add_argument("--no-confirm", action="store_true",
                   help="do not ask before commands that hurt (crash, failover, scale to 0)")
    p.set_defaults(func=run)


def _token(text: str | None) -> str | None:
    if text is None or not text.startswith("@"):
        return text
    try:
        with open(text[1:], encoding="utf-8") as fh:
            line = fh.readline().strip()
    except OSError as exc:
        raise UserError(f"--token {text}: {exc.strerror or exc}") from None
    if not line:
        raise UserError(f"--token {text}: the file is empty")
    return line


def build_world(args: argparse.Namespace):
    """The RemoteWorld the flags describe, filled with the host's retained state."""
    from devsim_tui.bridge.options import build_options
    from devsim_tui.bridge.remote import HostUnavailable, RemoteWorld, fetch

    if not args.mqtt:
        raise UserError("attach needs --mqtt URL: the broker the host publishes to")
    if not args.sim_id:
        raise UserError("attach needs --sim-id ID: the host prints it (devsim/<sim-id>/...)")
    options = build_options(
        args.mqtt, sim_id=args.sim_id, ca_file=args.mqtt_ca, cert_file=args.mqtt_cert,
        key_file=args.mqtt_key)
    name = args.name or _login()
    if not re.match(r"^[\w.@-]{1,64}$", name):
        raise UserError(f"--name {name!r}: letters, digits, '.', '_', '@' or '-' (at most 64)")
    world = RemoteWorld(options, seat=name, role=args.seat, token=_token(args.token))
    try:
        asyncio.run(fetch(world, timeout=args.wait))
    except HostUnavailable as exc:
        raise UserError(str(exc)) from None
    return world


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container): any name will do
        return "seat"


def run(args: argparse.Namespace) -> int:
    world = build_world(args)
    from devsim_tui.ui.app import create_app
    from devsim_tui.ui.seat import RemoteControlRoom

    app = create_app(world, app_class=RemoteControlRoom, theme=args.theme,
                     no_confirm=args.no_confirm, observer=args.seat == "observer")
    return int(app.run() or 0)
