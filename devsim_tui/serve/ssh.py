"""The SSH demo server: every interactive login gets its own control room in a pseudo-terminal.

What a client can get: an interactive session WITH a pty, which runs the control room and
nothing else. Refused: exec requests (`ssh host cmd`), subsystems (SFTP), sessions without a
pty, TCP/UNIX port forwarding in either direction, agent and X11 forwarding. Authentication is
by public key (an authorized_keys file) and, only when a password file is given, by hashed
password. Each seat is a child process (`python -m devsim_tui ... [--observer]`), so sessions
are isolated: one seat crashing or hanging affects nobody else.

Limits: at most `max_sessions` seats at once (a client over the limit is told so and sent away),
a seat with no client input for `idle_timeout` seconds is ended, and an unauthenticated
connection has `login_timeout` seconds to log in. Guessing is throttled (AuthThrottle): a
connection is cut after `max_auth_tries` failed attempts (OpenSSH's MaxAuthTries, 6), each
failure from an address delays that address's next answer (1, 2, 4, ... s up to
`auth_delay_max`), one password check at a time per address, and at most two scrypt checks at
once in all. Logins, logouts, refusals and seat starts and
ends are logged on the `devsim_tui.serve` logger with user, key fingerprint, role and peer.

Sharing one world between seats (`--shared`, serve/shared.py) changes only the seat command: the
seats run `devsim-tui attach` against the world this server hosts instead of each starting its
own engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from devsim_tui.serve.auth import AuthorizedKeys, PasswordFile, fingerprint, load_host_key
from devsim_tui.serve.pty_session import PtyChild

log = logging.getLogger("devsim_tui.serve")

DEFAULT_TERM = "xterm-256color"
# What a pty request may ask for. Anything bigger is clamped: the protocol allows 2**32-1
# cells, the kernel's winsize 65535, and a control room of 70000x70000 cells would only burn
# memory; no real screen shows more than this.
MAX_COLS, MAX_ROWS, MAX_PIXELS = 1000, 400, 65535
# A terminal type is a terminfo name (terminfo(5)): letters, digits and a few marks. Anything
# else (a NUL, control characters, a path) is refused with the pty.
_TERM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
# Client environment values (SendEnv) passed to the seat: short and printable only.
_ENV_VALUE = re.compile(r"[\x20-\x7e]{0,128}")


def clamp_size(cols: int, rows: int, pw: int = 0, ph: int = 0) -> tuple[int, int, int, int]:
    """A client's window size made safe for TIOCSWINSZ and the app: 0 means the default."""
    return (min(cols or 80, MAX_COLS), min(rows or 24, MAX_ROWS), min(max(pw, 0), MAX_PIXELS),
            min(max(ph, 0), MAX_PIXELS))

# Leave the client's terminal usable when WE end a seat (idle, shutdown): the killed app
# cannot undo its alternate screen, mouse reporting, bracketed paste, focus events and
# keyboard protocol, so the server does.
TERMINAL_RESET = (b"\x1b[?1049l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"
                  b"\x1b[?2004l\x1b[?1004l\x1b[?2048l\x1b[<u\x1b[0m\x1b[?25h\r\n")


@dataclass(frozen=True)
class SeatCommand:
    """How a seat's control room is started (one process per seat)."""

    profile: str = "production"
    seed: int | None = None
    speed: str | None = None
    record_dir: str | None = None  # each seat records its session into a new file here

    def argv(self, role: str, user: str | None = None) -> list[str]:
        argv = [sys.executable, "-m", "devsim_tui", "--profile", self.profile]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        if self.speed is not None:
            argv += ["--speed", str(self.speed)]
        if self.record_dir is not None:
            from devsim_tui.drill.session import recording_path

            stem = re.sub(r"[^A-Za-z0-9._-]+", "-", user or "seat").strip("-.")[:32] or "seat"
            argv += ["--record", recording_path(self.record_dir, stem)]
        if role not in ("operator", "facilitator"):  # fail closed: anything else watches
            argv.append("--observer")
        return argv


@dataclass
class SSHServeConfig:
    port: int = 2222
    host: str | None = None  # None: every interface
    authorized_keys: AuthorizedKeys | None = None
    passwords: PasswordFile | None = None
    host_key: Path | None = None  # None: the generated one in the data directory
    seat: SeatCommand = field(default_factory=SeatCommand)  # or shared.AttachCommand
    max_sessions: int = 10
    idle_timeout: float = 1800.0
    login_timeout: float = 30.0
    max_auth_tries: int = 6  # failed attempts per connection, as OpenSSH's MaxAuthTries
    auth_delay: float = 1.0  # a source's first failure delays its next answer this long ...
    auth_delay_max: float = 30.0  # ... doubling per failure up to this
    auth_forget: float = 900.0  # a source's failures are forgotten after this long without one


def _peer(conn: asyncssh.SSHServerConnection) -> str:
    peer = conn.get_extra_info("peername")
    if not peer:
        return "?"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class AuthThrottle:
    """Per-source back-off for failed logins, as sshd's PerSourcePenalties and pam_faildelay do.

    Every failed attempt from an address (any connection) doubles the delay before that address
    gets its next answer: `delay`, 2x, 4x, ... up to `delay_max`; failures are forgotten
    `forget` seconds after the last one. Attempts from one address are checked one at a time
    (parallel connections do not multiply the rate), and at most `checks` password hashes are
    computed at once over all addresses (scrypt is deliberately expensive)."""

    MAX_SOURCES = 10_000  # addresses remembered; the oldest are forgotten first

    def __init__(self, delay: float, delay_max: float, forget: float, checks: int = 2) -> None:
        self.delay, self.delay_max, self.forget = delay, delay_max, forget
        self._failures: dict[str, tuple[int, float]] = {}  # addr -> (count, last failure)
        self._locks: dict[str, asyncio.Lock] = {}
        self._checks = asyncio.Semaphore(checks)

    def failures(self, addr: str) -> int:
        count, last = self._failures.get(addr, (0, 0.0))
        if count and time.monotonic() - last > self.forget:
            del self._failures[addr]
            return 0
        return count

    def penalty(self, addr: str) -> float:
        """How long `addr`'s current failure is answered late."""
        n = self.failures(addr)
        return 0.0 if n == 0 else min(self.delay * 2 ** min(n - 1, 30), self.delay_max)

    def failed(self, addr: str) -> float:
        """Count a failure from `addr`; returns the delay it earns."""
        self._failures[addr] = (self.failures(addr) + 1, time.monotonic())
        if len(self._failures) > self.MAX_SOURCES:
            oldest = min(self._failures, key=lambda a: self._failures[a][1])
            del self._failures[oldest]
        return self.penalty(addr)

    def lock(self, addr: str) -> asyncio.Lock:
        lock = self._locks.get(addr)
        if lock is None:
            if len(self._locks) > self.MAX_SOURCES:  # drop idle ones
                for a in [a for a, lk in self._locks.items() if not lk.locked()]:
                    del self._locks[a]
            lock = self._locks[addr] = asyncio.Lock()
        return lock

    @property
    def checks(self) -> asyncio.Semaphore:
        return self._checks


class SeatServer:
    """The listening server and the state shared by its connections (the live seats)."""

    def __init__(self, config: SSHServeConfig) -> None:
        if config.authorized_keys is None and config.passwords is None:
            raise ValueError("no way to log in: give authorized keys or a password file")
        self.config = config
        self.seats: set[Seat] = set()
        # Every child started, until it is reaped: a seat's hang-up runs as a task, and a
        # server closing right after a client left must not leave that child running.
        self.children: set[PtyChild] = set()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self.host_key_path: Path | None = None
        self.throttle = AuthThrottle(config.auth_delay, config.auth_delay_max,
                                     config.auth_forget)

    async def start(self) -> None:
        key, self.host_key_path = load_host_key(self.config.host_key)
        self._acceptor = await asyncssh.create_server(
            lambda: Connection(self), self.config.host, self.config.port,
            server_host_keys=[key],
            # Bytes, not text: the pty carries whatever the app writes, escape sequences
            # included; and no server-side line editor between the client and the app.
            encoding=None, line_editor=False,
            allow_pty=True, agent_forwarding=False, x11_forwarding=False,
            allow_scp=False, sftp_factory=None,
            login_timeout=self.config.login_timeout,
            # Dead clients (a closed laptop) are noticed and their seats freed.
            keepalive_interval=30, keepalive_count_max=3,
        )
        log.info("listening on %s port %d (host key %s, %s)", self.config.host or "*",
                 self.port, self.host_key_path, fingerprint(key))

    @property
    def port(self) -> int:
        assert self._acceptor is not None
        return self._acceptor.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        await asyncio.gather(*(seat.end("the server is shutting down") for seat in
                               list(self.seats)), return_exceptions=True)
        for child in list(self.children):
            child.kill()
        self.children.clear()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()


class Connection(asyncssh.SSHServer):
    """One client connection: authentication, then only interactive pty sessions."""

    def __init__(self, server: SeatServer) -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.user = ""
        self.role = ""
        self.fingerprint = "-"
        self.peer = "?"
        self.method = ""
        self.since = 0.0
        self.authenticated = False
        self.failures = 0  # failed authentication attempts on this connection

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.peer = _peer(conn)

    @property
    def addr(self) -> str:
        """The peer's address without the port: what per-source throttling counts by."""
        return self.peer.rsplit(":", 1)[0].strip("[]")

    def _failed(self, what: str, username: str, delay: float, detail: str = "") -> None:
        """Count a failed attempt, log it, and cut the connection at the limit (the client
        sees "Too many authentication failures", as from sshd)."""
        self.failures += 1
        limit = self.server.config.max_auth_tries
        log.info("refused %s user=%s%s peer=%s attempt=%d/%d delay=%.1fs", what, username,
                 detail, self.peer, self.failures, limit, delay)
        if self.failures >= limit:
            log.info("disconnected after %d failed attempts user=%s peer=%s", self.failures,
                     username, self.peer)
            raise asyncssh.PermissionDenied("Too many authentication failures")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.authenticated:
            log.info("logout user=%s key=%s role=%s peer=%s after=%.0fs%s", self.user,
                     self.fingerprint, self.role, self.peer, time.monotonic() - self.since,
                     f" reason={exc}" if exc else "")

    # ------------------------------------------------------------------ authentication

    def begin_auth(self, username: str) -> bool:
        self.user = username
        return True  # always authenticate; there is no anonymous access

    def public_key_auth_supported(self) -> bool:
        return self.server.config.authorized_keys is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        keys = self.server.config.authorized_keys
        assert keys is not None
        role = keys.role_of(key, self.addr)
        if role is None:
            # A key costs no hashing, so no delay; it still counts toward the limit.
            self._failed("key", username, 0.0, f" key={fingerprint(key)}")
            return False
        # Called when the key is offered and again with its signature; the last one wins.
        self.role, self.fingerprint, self.method = role, fingerprint(key), "publickey"
        return True

    def password_auth_supported(self) -> bool:
        return self.server.config.passwords is not None

    def kbdint_auth_supported(self) -> bool:
        return False  # passwords only through the plain password method

    async def validate_password(self, username: str, password: str) -> bool:
        passwords = self.server.config.passwords
        assert passwords is not None
        throttle = self.server.throttle
        # One attempt at a time per address: parallel connections do not multiply the rate.
        async with throttle.lock(self.addr):
            async with throttle.checks:
                # scrypt takes tens of milliseconds: off the event loop, so seats stay smooth.
                role = await asyncio.get_running_loop().run_in_executor(
                    None, passwords.check, username, password)
            if role is None:
                delay = throttle.failed(self.addr)
                # Answer late (like pam_faildelay), holding the address's turn meanwhile.
                await asyncio.sleep(delay)
                self._failed("password", username, delay)
                return False
        self.role, self.fingerprint, self.method = role, "password", "password"
        return True

    def auth_completed(self) -> None:
        self.authenticated = True
        self.since = time.monotonic()
        log.info("login user=%s key=%s role=%s peer=%s method=%s", self.user, self.fingerprint,
                 self.role, self.peer, self.method)

    # ------------------------------------------------------------------ what is granted

    def session_requested(self) -> asyncssh.SSHServerSession:
        return Seat(self)

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        log.info("refused port forward user=%s peer=%s to=%s:%s", self.user, self.peer,
                 dest_host, dest_port)
        return False

    def server_requested(self, listen_host, listen_port):
        log.info("refused remote forward user=%s peer=%s listen=%s:%s", self.user, self.peer,
                 listen_host, listen_port)
        return False

    def unix_connection_requested(self, dest_path):
        log.info("refused unix forward user=%s peer=%s", self.user, self.peer)
        return False

    def unix_server_requested(self, listen_path):
        log.info("refused unix remote forward user=%s peer=%s", self.user, self.peer)
        return False


class Seat(asyncssh.SSHServerSession):
    """One interactive session: a control room child in a pty, bytes relayed both ways."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.server = connection.server
        self.chan: asyncssh.SSHServerChannel | None = None
        self.term: str | None = None
        self.size = (80, 24, 0, 0)
        self.child: PtyChild | None = None
        self.last_input = time.monotonic()
        self._idle_task: asyncio.Task | None = None
        self._ended = False
        self._counted = False

    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:
        self.chan = chan

    # ------------------------------------------------------------------ requests

    def pty_requested(self, term_type: str, term_size, term_modes) -> bool:
        term = term_type or DEFAULT_TERM
        if not _TERM_NAME.fullmatch(term):
            self._refused(f"pty TERM={term[:40]!r}")
            return False
        self.term = term
        self.size = clamp_size(*term_size)
        if self.size[:2] != (term_size[0] or 80, term_size[1] or 24):
            c = self.connection
            log.info("clamped pty size %dx%d to %dx%d user=%s key=%s peer=%s", term_size[0],
                     term_size[1], self.size[0], self.size[1], c.user, c.fingerprint, c.peer)
        return True

    def shell_requested(self) -> bool:
        if self.term is None:
            # A full-screen app without a terminal would be garbage; `ssh -T` gets nothing.
            self._refused("shell without a pty")
            return False
        return True

    def exec_requested(self, command: str) -> bool:
        self._refused(f"exec {command[:80]!r}")
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        self._refused(f"subsystem {subsystem!r}")
        return False

    def _refused(self, what: str) -> None:
        c = self.connection
        log.info("refused %s user=%s key=%s role=%s peer=%s", what, c.user, c.fingerprint,
                 c.role, c.peer)

    # ------------------------------------------------------------------ the seat

    def session_started(self) -> None:
        asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        assert self.chan is not None
        c, cfg = self.connection, self.server.config
        if self._ended:  # the channel closed before this task ran: no seat to hold
            return
        if len(self.server.seats) >= cfg.max_sessions:
            log.info("refused seat (full, %d sessions) user=%s key=%s peer=%s",
                     cfg.max_sessions, c.user, c.fingerprint, c.peer)
            self.chan.write(f"devsim-tui: all {cfg.max_sessions} seats are taken, "
                            "try again later\r\n".encode())
            self.chan.exit(1)
            return
        self.server.seats.add(self)
        self._counted = True
        try:
            await self._spawn()
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the slot is freed
            log.error("seat failed to start user=%s key=%s peer=%s: %s: %s", c.user,
                      c.fingerprint, c.peer, type(exc).__name__, exc)
            self._release()
            if self.child is not None:
                if self.child.proc is not None:
                    self.child.kill()  # started, then failed: its exit is reaped as usual
                else:
                    self.server.children.discard(self.child)
            if not self._ended:
                self._ended = True
                self.chan.write(b"devsim-tui: the control room could not start\r\n")
                self.chan.exit(1)
            return
        except BaseException:  # cancelled (the server is closing): free the slot, then go on
            self._release()
            raise
        if self._ended:  # the client left while the child was starting
            await self.child.terminate()
            return
        log.info("seat start user=%s key=%s role=%s peer=%s pid=%s size=%dx%d seats=%d",
                 c.user, c.fingerprint, c.role, c.peer, self.child.pid, self.size[0],
                 self.size[1], len(self.server.seats))
        if cfg.idle_timeout > 0:
            self._idle_task = asyncio.get_running_loop().create_task(self._watch_idle())

    async def _spawn(self) -> None:
        """Start the seat's child in a pty of the (clamped) client size."""
        assert self.chan is not None
        c, cfg = self.connection, self.server.config
        env = dict(os.environ)
        # Not COLUMNS/LINES: they would pin the size (shutil.get_terminal_size prefers them),
        # and the seat has to follow the client's window through TIOCSWINSZ/SIGWINCH.
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        env["TERM"] = self.term or DEFAULT_TERM
        client_env = self.chan.get_environment()
        for name in ("COLORTERM", "LANG", "LC_ALL"):
            # Only what describes the client's terminal, if its ssh sends it (SendEnv), and
            # only plain short values (no NUL or control characters).
            value = client_env.get(name)
            if isinstance(value, str) and _ENV_VALUE.fullmatch(value):
                env[name] = value
        cols, rows, _, _ = self.size
        argv = cfg.seat.argv(c.role, c.user)
        self.child = PtyChild(argv, env, cols, rows, self._output, self._child_exited)
        self.server.children.add(self.child)
        await self.child.start()
        if self.size[2] or self.size[3]:
            self.child.resize(*self.size)

    def _output(self, data: bytes) -> None:
        if self.chan is not None and not self._ended:
            self.chan.write(data)

    def _child_exited(self, status: int) -> None:
        c = self.connection
        if self.child is not None:
            self.server.children.discard(self.child)
        log.info("seat end user=%s key=%s role=%s peer=%s pid=%s status=%s", c.user,
                 c.fingerprint, c.role, c.peer, self.child.pid if self.child else None, status)
        self._release()
        if not self._ended and self.chan is not None:
            self._ended = True
            # Negative: killed by a signal; report it as the shell convention does.
            self.chan.exit(status if status >= 0 else 128 - status)

    def _release(self) -> None:
        if self._counted:
            self.server.seats.discard(self)
            self._counted = False
        if self._idle_task is not None and self._idle_task is not asyncio.current_task():
            self._idle_task.cancel()

    async def _watch_idle(self) -> None:
        timeout = self.server.config.idle_timeout
        while not self._ended:
            left = self.last_input + timeout - time.monotonic()
            if left <= 0:
                await self.end(f"idle for {timeout:.0f}s")
                return
            await asyncio.sleep(min(left, 30.0))

    async def end(self, reason: str) -> None:
        """Server-side end of the seat: stop the app, restore the client's terminal, say why."""
        if self._ended:
            return
        self._ended = True
        c = self.connection
        log.info("seat ended by server user=%s key=%s peer=%s reason=%s", c.user,
                 c.fingerprint, c.peer, reason)
        if self.child is not None:
            await self.child.terminate()
        self._release()
        if self.chan is not None:
            self.chan.write(TERMINAL_RESET + f"devsim-tui: session ended ({reason})\r\n".encode())
            self.chan.exit(0)

    # ------------------------------------------------------------------ client → seat

    def data_received(self, data: bytes, datatype) -> None:
        self.last_input = time.monotonic()
        if self.child is not None:
            self.child.write(data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int,
                              pixheight: int) -> None:
        self.last_input = time.monotonic()
        self.size = clamp_size(width, height, pixwidth, pixheight)
        if self.child is not None:
            try:
                self.child.resize(*self.size)
            except OSError:
                pass  # the child is gone; its exit ends the seat

    def break_received(self, msec: int) -> bool:
        return False

    def signal_received(self, signal: str) -> None:
        """Signals from the client are not passed on: quitting is the app's `q`."""

    def eof_received(self) -> bool:
        return False  # the client closed its input: close the channel (ends the seat)

    def pause_writing(self) -> None:
        if self.child is not None:
            self.child.pause_reading()

    def resume_writing(self) -> None:
        if self.child is not None:
            self.child.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """The channel closed (client left, or the seat ended): the child must not outlive it."""
        self._ended = True
        self._release()
        if self.child is not None and self.child.proc is not None \
                and self.child.proc.returncode is None:
            asyncio.get_running_loop().create_task(self.child.terminate())


class PrivateFileHandler(logging.FileHandler):
    """Appends to a 0600 file: the log names users, keys and peers (private_files.py)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8")

    def _open(self):
        from devsim_tui.private_files import open_private

        return open_private(self.baseFilename, "a", encoding=self.encoding or "utf-8")


def configure_logging(log_file: Path | None = None,
                      stream=None) -> Callable[[], None]:
    """Log the server's lines to stderr and, if given, a file (appended); returns an undo."""
    fmt = logging.Formatter("%(asctime)s devsim-tui ssh %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    handlers: list[logging.Handler] = []
    if log_file is not None:
        # The file first: a line seen on stderr is then already in the file (a supervisor
        # that reads stderr and stops the server at once loses nothing from the file).
        handlers.append(PrivateFileHandler(log_file))
    handlers.append(logging.StreamHandler(stream or sys.stderr))
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)

    def undo() -> None:
        for h in handlers:
            log.removeHandler(h)
            h.close()

    return undo
