"""A control room ends when it is told to, and when whoever drives it is gone, in every mode.

* SIGTERM (systemd, `kill`, `serve web` stopping): the app is asked to exit cleanly (terminal
  restored, recording closed, links stopped), and a watchdog thread ends the process anyway
  after `GRACE_S` seconds if the clean exit does not finish (an event loop stuck in a long
  computation, a hung link). A second SIGTERM ends it at once. The handler is a plain Python
  signal handler, so it runs even when the event loop is too busy to run callbacks; it replaces
  Textual's web driver's, which only posts an exit message to that same loop.
* Browser mode (textual-serve): the seat's input is a pipe from the server. When it reaches end
  of file (the server is gone) or the process is re-parented (the server died: it can no longer
  read our output or stop us), the app exits with 129, as if hung up.
* Terminal and SSH modes: the app watches its terminal itself (`_watch_terminal`); SIGHUP keeps
  its default action.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

GRACE_S = 15.0  # longer than a clean exit's own bounds (MQTT drain 1 s, e-mail flush 10 s)
TERMINATED = 128 + signal.SIGTERM  # 143, the shell's status for "killed by SIGTERM"
HUNG_UP = 128 + signal.SIGHUP  # 129


def _end_now(code: int, before: Callable[[], None] | None = None) -> None:
    """`os._exit(code)`, after `before()` (best effort)."""
    if before is not None:
        try:
            before()
        except Exception:  # noqa: BLE001 - leaving is what matters now
            pass
    os._exit(code)


def end_after(grace: float, code: int, before: Callable[[], None] | None = None) -> None:
    """A watchdog: `os._exit(code)` after `grace` seconds unless the process ended first."""

    def watchdog() -> None:
        threading.Event().wait(grace)
        _end_now(code, before)

    threading.Thread(target=watchdog, name="devsim-exit-watchdog", daemon=True).start()


def leave(app: Any, code: int, grace: float = GRACE_S) -> None:
    """Whoever drives the app is gone (its terminal, the browser server): exit with `code`, and
    end the process anyway after `grace` seconds if the clean exit does not finish, the world's
    recording closed first ("terminal gone", as the CLI closes it after a clean exit): Textual's
    shutdown writes its last bytes to the vanished terminal through the driver's writer thread
    and can wait on it for ever, while its input thread spins on the dead terminal (seen: a
    control room at 100% CPU for an hour after its pty closed). Once per app."""
    if getattr(app, "_devsim_leaving", False):
        return
    app._devsim_leaving = True
    end_after(grace, code, lambda: _close_recording(app, "terminal gone"))
    app.exit(code, return_code=code)


def install_sigterm(request_exit: Callable[[int], None], grace: float = GRACE_S,
                    restore: Callable[[], None] | None = None) -> None:
    """On SIGTERM: `request_exit(143)` (must be safe to call from a signal handler, e.g. a
    `loop.call_soon_threadsafe`), and `os._exit(143)` after `grace` seconds unless the process
    ended first (`restore()` runs just before, best effort). A second SIGTERM exits at once."""
    fired = threading.Event()

    def on_sigterm(signum: int, frame: Any) -> None:
        if fired.is_set():
            _end_now(TERMINATED, restore)
        fired.set()
        end_after(grace, TERMINATED, restore)
        try:
            request_exit(TERMINATED)
        except Exception:  # noqa: BLE001 - the watchdog still ends the process
            pass

    signal.signal(signal.SIGTERM, on_sigterm)


def _restore_terminal(driver: Any) -> None:
    """Best effort, for the watchdog: leave the alternate screen, show the cursor, put the
    terminal's modes back as the driver found them."""
    attrs = getattr(driver, "attrs_before", None)
    try:
        fd = sys.__stdout__.fileno()
    except (AttributeError, ValueError, OSError):
        return
    if not os.isatty(fd):
        return
    os.write(fd, b"\x1b[?1049l\x1b[?1000l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[0m\x1b[?25h\r\n")
    if attrs is not None:
        import termios

        termios.tcsetattr(sys.__stdin__.fileno(), termios.TCSANOW, attrs)


def keep(app: Any) -> None:
    """Called on mount, once the driver has started: SIGTERM handling, and in browser mode the
    watch on the server's pipe and on the parent process."""
    if app.is_headless:
        return
    import asyncio

    loop = asyncio.get_running_loop()
    driver = app._driver

    def request_exit(code: int) -> None:
        loop.call_soon_threadsafe(lambda: app.exit(code, return_code=code))

    if getattr(driver, "is_web", False):
        try:
            loop.remove_signal_handler(signal.SIGTERM)  # the web driver's: a message only
        except (RuntimeError, ValueError):
            pass
    install_sigterm(request_exit, restore=lambda: _restore_terminal(driver))
    if getattr(driver, "is_web", False):
        _watch_server(app, driver)


def _watch_server(app: Any, driver: Any) -> None:
    parent = os.getppid()
    reader = getattr(driver, "_key_thread", None)

    def check() -> None:
        # The input thread ends at end of file on stdin; a new parent means ours died.
        if (reader is not None and not reader.is_alive()) or os.getppid() != parent:
            leave(app, HUNG_UP)

    app.set_interval(1.0, check, name="server-watch")


def _close_recording(app: Any, reason: str) -> None:
    """The world's closing line (a recording's), for a watchdog ending the process before the
    CLI could write it (idempotent: a clean exit that gets there first writes it once)."""
    world = getattr(app, "world", None)
    if world is not None:
        world.close(reason)
