"""Browser mode: textual-serve runs one control room per browser tab, as a child process.

textual-serve starts `command` for each WebSocket client with Textual's web driver; the page
itself (HTML, JS, fonts) is static. Each tab gets its own world, like each SSH seat.

Seats never outlive the server: the command `exec`s the control room (so it is this server's
own child, not a shell's), every seat process is tracked, and when the server stops (SIGTERM,
SIGINT) the seats still running get SIGTERM and, after `SEAT_GRACE_S`, SIGKILL. If the server
itself dies without stopping (SIGKILL), each seat notices its pipe and parent are gone and
exits (devsim_tui/ui/lifeline.py).

A browser lets any web page open a WebSocket to any address, the user's own loopback included
(cross-site WebSocket hijacking), and says which page did in the `Origin` header. So a seat is
only started for a WebSocket whose `Origin` is this server's page (`--public-url`, or the
address the browser used; loopback names are one another's equals), and, when the server
listens on loopback, only for a `Host` that is a loopback name or the public URL's host (a
DNS-rebinding page cannot pose as this server either). Clients that send no `Origin` (not a
browser) are let in: they could reach the port anyway.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
import signal
import sys
import weakref
from urllib.parse import urlsplit

from devsim_tui.serve.ssh import SeatCommand

SEAT_GRACE_S = 10.0  # a seat's clean exit is bounded by its own watchdog (15 s at most)


def web_command(seat: SeatCommand, observer: bool = False) -> str:
    """The shell command textual-serve runs per tab (`/bin/sh -c`): `exec` replaces the shell,
    so the control room is the server's direct child and gets its signals."""
    return "exec " + shlex.join(seat.argv("observer" if observer else "operator"))


#: Every seat process started, until it ends (textual-serve keeps no list of its own).
SEATS: "weakref.WeakSet[asyncio.subprocess.Process]" = weakref.WeakSet()


def _track_seats() -> None:
    """Make textual-serve's per-tab AppService record the process it starts in SEATS."""
    import textual_serve.server as ts_server
    from textual_serve.app_service import AppService

    if getattr(ts_server.AppService, "_devsim_tracked", False):
        return

    class TrackedAppService(AppService):
        _devsim_tracked = True

        async def _open_app_process(self, width: int = 80, height: int = 24):
            process = await super()._open_app_process(width, height)
            SEATS.add(process)
            return process

    ts_server.AppService = TrackedAppService


async def end_seats(grace: float = SEAT_GRACE_S) -> int:
    """SIGTERM every running seat, SIGKILL those still running after `grace`; how many."""
    running = [p for p in list(SEATS) if p.returncode is None]
    for process in running:
        try:
            process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    if running:
        await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running],
                           timeout=grace)
        for process in running:
            if process.returncode is None:
                try:
                    process.kill()
                except ProcessLookupError:
                    pass
    return len(running)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL or `Origin` value; None if it is neither."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def websocket_allowed(origin: str | None, host_header: str, public_url: str,
                      listen_host: str) -> str | None:
    """Why a seat's WebSocket is refused (None: allowed); see the module doc."""
    public = _origin(public_url)
    requested = _origin(f"http://{host_header}") if host_header else None
    if _is_loopback(listen_host):
        if requested is None or not (_is_loopback(requested[1]) or
                                     (public is not None and requested[1] == public[1])):
            return f"Host {host_header!r} is not this server"
    if origin is None:
        return None
    got = _origin(origin)
    if got is None:
        return f"Origin {origin!r} is not a web page"
    for page in (public, requested and ("http", requested[1], requested[2]),
                 requested and ("https", requested[1], requested[2])):
        if page is None or page[2] != got[2]:
            continue
        if page[1] == got[1] or (_is_loopback(page[1]) and _is_loopback(got[1])):
            return None
    return f"Origin {origin!r} is another site"


def serve_web(seat: SeatCommand, host: str = "127.0.0.1", port: int = 8000,
              public_url: str | None = None, observer: bool = False) -> None:
    """Serve until interrupted (SIGINT/SIGTERM); blocks. Seats end with the server."""
    from textual_serve.server import Server

    _track_seats()

    class SeatServer(Server):
        async def handle_websocket(self, request):
            from aiohttp import web

            refusal = websocket_allowed(request.headers.get("Origin"), request.host,
                                        self.public_url, host)
            if refusal is not None:
                print(f"devsim-tui: refused a seat for {request.remote}: {refusal}",
                      file=sys.stderr, flush=True)
                raise web.HTTPForbidden(text=f"devsim-tui: {refusal}\n")
            return await super().handle_websocket(request)

        async def on_shutdown(self, app) -> None:
            # First thing when stopping: the seats end (their tabs see "exit") before the
            # web server waits for its connections to finish.
            await end_seats()
            await super().on_shutdown(app)

    server = SeatServer(web_command(seat, observer), host=host, port=port, title="devsim-tui",
                        public_url=public_url)
    server.serve()
