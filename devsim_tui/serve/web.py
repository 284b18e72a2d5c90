"""Browser mode: textual-serve runs one control room per browser tab, as a child process.

textual-serve starts `command` for each WebSocket client with Textual's web driver; the page
itself (HTML, JS, fonts) is static. Each tab gets its own world, like each SSH seat.

Seats never outlive the server: the command `exec`s the control room (so it is this server's
own child, not a shell's), every seat process is tracked, and when the server stops (SIGTERM,
SIGINT) the seats still running get SIGTERM and, after `SEAT_GRACE_S`, SIGKILL. If the server
itself dies without stopping (SIGKILL), each seat notices its pipe and parent are gone and
exits (devsim_tui/ui/lifeline.py).
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import weakref

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
        _, late = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running],
                                     timeout=grace)
        for process in running:
            if process.returncode is None:
                try:
                    process.kill()
                except ProcessLookupError:
                    pass
    return len(running)


def serve_web(seat: SeatCommand, host: str = "127.0.0.1", port: int = 8000,
              public_url: str | None = None, observer: bool = False) -> None:
    """Serve until interrupted (SIGINT/SIGTERM); blocks. Seats end with the server."""
    from textual_serve.server import Server

    _track_seats()

    class SeatServer(Server):
        async def on_shutdown(self, app) -> None:
            # First thing when stopping: the seats end (their tabs see "exit") before the
            # web server waits for its connections to finish.
            await end_seats()
            await super().on_shutdown(app)

    server = SeatServer(web_command(seat, observer), host=host, port=port, title="devsim-tui",
                        public_url=public_url)
    server.serve()
