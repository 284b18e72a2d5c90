"""The control room of a shared seat: the ordinary app on a RemoteWorld (`devsim-tui attach`).

Built by `create_app(world, app_class=RemoteControlRoom)` like every control room; cmd/attach.py
imports it only when a seat opens, so the command line does not import Textual before.
Everything the screen shows comes through the World interface as usual; the differences are
those of a world whose clock runs elsewhere:

* no local driver: the host advances the world, the frame loop just draws the latest snapshot
  it published (space, +/- still send pause/speed, which the host allows a facilitator only);
* no `step`: ticks are the host's to run;
* the host's verdicts (a refused command, with its reason) and the link's state become
  notifications and event-log lines, and a header badge shows the seat's role and link.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from devsim_tui.sim.events import Event
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
