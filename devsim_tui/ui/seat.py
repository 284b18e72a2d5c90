"""The control room of a shared seat: the ordinary app on a RemoteWorld (`devsim-tui attach`).

Kept out of cmd/attach.py so the command line does not import Textual until a seat opens.
Everything the screen shows comes through the World interface as usual; the differences are
those of a world whose clock runs elsewhere:

* no local driver: the host advances the world, the frame loop just draws the latest snapshot
  it published (space, +/- still send pause/speed, which the host allows a facilitator only);
* no `step`: ticks are the host's to run;
* the host's verdicts (a refused command, with its reason) and the link's state become
  notifications and event-log lines, and a header badge shows the seat's role and link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Static

from devsim_tui.sim.events import Event
from devsim_tui.ui import app as ui_app
from devsim_tui.ui.app import ControlRoomApp
from devsim_tui.ui.events import EventLog
from devsim_tui.ui.header import HeaderBar


class SeatBadge(Static):
    """`operator olga · HOST online`, coloured by the link's level."""

    DEFAULT_CSS = """
    SeatBadge { width: auto; padding: 0 1; margin-left: 1; text-style: bold; }
    SeatBadge.-ok { background: $success 40%; }
    SeatBadge.-warning { background: $warning 50%; }
    SeatBadge.-error { background: $error 60%; }
    """

    def show(self, role: str, seat: str, link: Any) -> None:
        for level in ("ok", "warning", "error"):
            self.set_class(level == link.level, f"-{level}")
        self.update(f"{role} {seat} · {link.short()}")


class RemoteControlRoom(ControlRoomApp):
    """The control room on a world hosted elsewhere (see the module docstring)."""

    RUNS_CLOCK = False  # the host advances the world

    # Textual resolves CSS_PATH next to the defining class's module: point at the app's own.
    CSS_PATH = [str(Path(ui_app.__file__).with_name(p)) for p in ControlRoomApp.CSS_PATH]

    def __init__(self, world: Any, *, theme: str | None = None, no_confirm: bool = False,
                 observer: bool = False, refresh_hz: float | None = None) -> None:
        try:
            from devsim_tui.ui import themes

            config_dir = themes.config_dir()
        except ImportError:
            config_dir = None
        extra = {"refresh_hz": refresh_hz} if refresh_hz is not None else {}
        super().__init__(world, theme=theme, no_confirm=no_confirm, config_dir=config_dir,
                         observer=observer, **extra)

    # Textual runs every class's on_mount in the MRO, this one first: the header exists.
    def on_mount(self) -> None:
        self.world.listeners.append(self._seat_news)
        self.world.start()
        badge = SeatBadge(id="seat-badge")
        self.query_one(HeaderBar).mount(badge)
        badge.show(self.world.role, self.world.seat, self.world.link)

    async def on_unmount(self) -> None:
        self.world.listeners.clear()
        await self.world.stop()

    def _seat_news(self, kind: str, message: str, body: dict) -> None:
        if not self.screen_stack:
            return  # closing
        for badge in self.query(SeatBadge):
            badge.show(self.world.role, self.world.seat, self.world.link)
        t = self.world.snapshot().t
        if kind == "link":
            level = self.world.link.level
            ev = Event(0, t, "seat.link", message,
                       {"ok": "info", "warning": "warning"}.get(level, "error"))
        else:
            title = "refused by the host" if kind == "refused" else "command failed"
            self.notify(message, severity="error", title=title)
            ev = Event(0, t, f"seat.{kind}", message, "error")
        self.query_one(EventLog).note(ev, self._visible("events"))
        self.draw(force=True)
