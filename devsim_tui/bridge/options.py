"""MQTT bridge options: the `--mqtt URL` flag family, parsed and checked before anything connects.

Everything here is pure (no sockets, no aiomqtt import), so a bad flag fails fast with a
`UserError` (exit status 2) and a run without `--mqtt` never loads network code.
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from devsim_tui.errors import UserError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_BUFFER = 10_000
DEFAULT_TICK_RATE = 5.0  # aggregate messages per wall second at most
# A sim id is one topic level: MQTT forbids wildcards in topic names and '/' would add a level.
_SIM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class MqttOptions:
    """Where to connect and how the bridge behaves; build with `parse_mqtt_url` / `from_args`."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sim_id: str = "devsim"
    root: str = "devsim"
    buffer_size: int = DEFAULT_BUFFER
    tick_rate: float = DEFAULT_TICK_RATE
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    connect_timeout: float = 5.0
    keepalive: int = 10  # seconds; short so a vanished broker is noticed quickly
    client_id: str | None = None
    #: Who may command the world through `cmd` (CommandPolicy); None: anyone who can publish
    #: there (the library default; the command line always sets one, read-only unless asked).
    command_policy: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The URL without the password, for status lines and the header."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"

    @property
    def prefix(self) -> str:
        return f"{self.root}/{self.sim_id}"

    def tls_parameters(self):
        """aiomqtt's TLS settings for an mqtts:// link (None for plain mqtt://). Imports aiomqtt,
        so only a client that is about to connect calls it."""
        if not self.tls:
            return None
        import aiomqtt

        return aiomqtt.TLSParameters(ca_certs=self.ca_file, certfile=self.cert_file,
                                     keyfile=self.key_file)


def parse_mqtt_url(url: str) -> dict:
    """`mqtt://[user:pass@]host[:port]` or `mqtts://...` -> host, port, tls, username, password."""
    text = (url or "").strip()
    if "://" not in text:
        raise UserError(f"--mqtt: expected mqtt://[user:pass@]host[:port] or mqtts://..., "
                        f"got {url!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UserError(f"--mqtt {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UserError(f"--mqtt: unsupported scheme {parts.scheme!r} (use mqtt:// or mqtts://)")
    if not parts.hostname:
        raise UserError(f"--mqtt {url!r}: missing host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UserError(f"--mqtt {url!r}: unexpected path or query; the topic root is "
                        "devsim/<sim-id> (set the id with --sim-id)")
    if port == 0:
        raise UserError(f"--mqtt {url!r}: port must be 1-65535")
    if parts.password is not None and not parts.username:
        raise UserError(f"--mqtt {url!r}: a password needs a user name")
    return {
        "host": parts.hostname, "port": port or DEFAULT_PORTS[scheme], "tls": scheme == "mqtts",
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
    }


@dataclass(frozen=True)
class CommandPolicy:
    """Who may send commands to a run that hosts no seats (`simulate --mqtt`, the control room's
    `--mqtt`): by default nobody (read-only), with `--mqtt-token` whoever sends that token (JSON
    `"token"`), with `--mqtt-allow-commands` anyone who can publish to `cmd`. The same shape as
    `drill host`'s seat policy (bridge/seats.py), which the bridge asks the same way."""

    tokens: tuple[str, ...] = field(default=(), repr=False)
    allow_without_token: bool = False

    def authorize(self, claim: Any, cmd: Any) -> tuple[str | None, str | None]:
        """(the role the command acts with, why it is refused or None)."""
        token = getattr(claim, "token", None)
        if token is not None:
            # Compared against every token, in constant time each: no timing hint of a prefix.
            found = False
            for known in self.tokens:
                found |= hmac.compare_digest(known.encode(), token.encode())
            return ("operator", None) if found else (None, "unknown command token")
        if self.allow_without_token:
            return "operator", None
        if self.tokens:
            return None, "this run takes commands only with its token (--mqtt-token)"
        return None, ("this run is read-only over MQTT: commands are refused (start it with "
                      "--mqtt-allow-commands, or --mqtt-token and send the token)")

    def describe(self) -> str:
        if self.allow_without_token:
            return "commands accepted from anyone who can publish to cmd (--mqtt-allow-commands)"
        if self.tokens:
            return "commands accepted with the token only (--mqtt-token)"
        return "read-only: commands are refused (--mqtt-allow-commands or --mqtt-token to take them)"


def read_token(flag: str, text: str) -> str:
    """A token given as TOKEN or @FILE (the file's first line, kept out of `ps`), checked."""
    token = text or ""
    if token.startswith("@"):
        path = token[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                token = handle.readline(1024).strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{flag} @{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(token) < 8:
        raise UserError(f"{flag}: a token needs at least 8 characters")
    if len(token) > 200 or not token.isprintable():
        raise UserError(f"{flag}: a token is at most 200 printable characters")
    return token


def check_sim_id(sim_id: str) -> str:
    if not _SIM_ID.match(sim_id or ""):
        raise UserError(f"--sim-id {sim_id!r}: use letters, digits, '.', '_' or '-' "
                        "(at most 64, no '/', '+' or '#')")
    return sim_id


def default_sim_id(profile_name: str, seed: int) -> str:
    """`production-42`: the profile and seed name a run, so two runs side by side differ."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", profile_name).strip("-.") or "sim"
    return check_sim_id(f"{slug[:40]}-{seed}")


def _readable(flag: str, path: str | None) -> str | None:
    if path is None:
        return None
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path}: no such file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{flag} {path}: not readable")
    return path


def build_options(url: str, *, sim_id: str, ca_file: str | None = None,
                  cert_file: str | None = None, key_file: str | None = None,
                  buffer_size: int = DEFAULT_BUFFER, tick_rate: float = DEFAULT_TICK_RATE,
                  **extra) -> MqttOptions:
    """Validate the whole flag family at once; every problem is a UserError naming its flag."""
    parsed = parse_mqtt_url(url)
    if not parsed["tls"] and (ca_file or cert_file or key_file):
        raise UserError("--mqtt-ca/--mqtt-cert/--mqtt-key need an mqtts:// URL")
    if key_file and not cert_file:
        raise UserError("--mqtt-key needs --mqtt-cert (the client certificate it belongs to)")
    if buffer_size < 1:
        raise UserError("--mqtt-buffer must be at least 1")
    if not tick_rate > 0:
        raise UserError("--mqtt-rate must be positive")
    return MqttOptions(
        **parsed, ca_file=_readable("--mqtt-ca", ca_file),
        cert_file=_readable("--mqtt-cert", cert_file), key_file=_readable("--mqtt-key", key_file),
        sim_id=check_sim_id(sim_id), buffer_size=int(buffer_size), tick_rate=float(tick_rate),
        **extra)


def add_mqtt_arguments(parser: argparse.ArgumentParser, commands: bool = False) -> None:
    """The flag family shared by the control room, `simulate` and the hosts; `commands` adds
    the command policy flags of a run without seats (hosts have `--seat-token` instead)."""
    g = parser.add_argument_group("MQTT bridge (docs/mqtt.md)")
    if commands:
        g.add_argument("--mqtt-allow-commands", action="store_true",
                       help="take commands from anyone who can publish to the cmd topic "
                       "(default: read-only, every command is refused)")
        g.add_argument("--mqtt-token", action="append", default=None, metavar="TOKEN|@FILE",
                       help="take commands that carry this token (JSON \"token\"); @FILE "
                       "reads it from a file; repeatable")
    g.add_argument("--mqtt", metavar="URL", default=None,
                   help="publish telemetry to and take commands from an MQTT broker: "
                   "mqtt://[user:pass@]host[:port] or mqtts://... (off by default)")
    g.add_argument("--mqtt-ca", metavar="FILE", default=None,
                   help="CA certificate(s) to verify an mqtts:// broker (default: system CAs)")
    g.add_argument("--mqtt-cert", metavar="FILE", default=None,
                   help="client certificate for mqtts:// (PEM)")
    g.add_argument("--mqtt-key", metavar="FILE", default=None,
                   help="private key of --mqtt-cert, if not in the same file")
    g.add_argument("--sim-id", default=None,
                   help="topic level naming this run: devsim/<sim-id>/... "
                   "(default: <profile>-<seed>, e.g. production-42)")
    g.add_argument("--mqtt-buffer", type=int, default=DEFAULT_BUFFER, metavar="N",
                   help=f"events/alerts kept while the broker is unreachable "
                   f"(default {DEFAULT_BUFFER}; older ones are dropped and counted)")
    g.add_argument("--mqtt-rate", type=float, default=DEFAULT_TICK_RATE, metavar="PER_S",
                   help=f"at most this many aggregate/state updates per wall second "
                   f"(default {DEFAULT_TICK_RATE:g}; events are never throttled)")


def options_from_args(args: argparse.Namespace, profile_name: str,
                      seed: int) -> MqttOptions | None:
    """None without `--mqtt` (nothing touches the network); otherwise validated options."""
    url = getattr(args, "mqtt", None)
    if not url:
        for flag in ("mqtt_ca", "mqtt_cert", "mqtt_key", "mqtt_token", "mqtt_allow_commands"):
            if getattr(args, flag, None):
                raise UserError(f"--{flag.replace('_', '-')} needs --mqtt")
        return None
    sim_id = getattr(args, "sim_id", None)
    tokens = tuple(read_token("--mqtt-token", t) for t in getattr(args, "mqtt_token", None) or ())
    policy = CommandPolicy(tokens, bool(getattr(args, "mqtt_allow_commands", False)))
    return build_options(
        url, sim_id=check_sim_id(sim_id) if sim_id else default_sim_id(profile_name, seed),
        ca_file=getattr(args, "mqtt_ca", None), cert_file=getattr(args, "mqtt_cert", None),
        key_file=getattr(args, "mqtt_key", None),
        buffer_size=getattr(args, "mqtt_buffer", DEFAULT_BUFFER),
        tick_rate=getattr(args, "mqtt_rate", DEFAULT_TICK_RATE), command_policy=policy)
