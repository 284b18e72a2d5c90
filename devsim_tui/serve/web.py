"""Browser mode: textual-serve runs one control room per browser tab, as a child process.

textual-serve starts `command` for each WebSocket client with Textual's web driver; the page
itself (HTML, JS, fonts) is static. Each tab gets its own world, like each SSH seat.
"""

from __future__ import annotations

import shlex

from devsim_tui.serve.ssh import SeatCommand


def web_command(seat: SeatCommand, observer: bool = False) -> str:
    """The shell command textual-serve runs per tab (it splits it with shlex)."""
    return shlex.join(seat.argv("observer" if observer else "operator"))


def serve_web(seat: SeatCommand, host: str = "127.0.0.1", port: int = 8000,
              public_url: str | None = None, observer: bool = False) -> None:
    """Serve until interrupted (SIGINT/SIGTERM); blocks."""
    from textual_serve.server import Server

    server = Server(web_command(seat, observer), host=host, port=port, title="devsim-tui",
                    public_url=public_url)
    server.serve()
