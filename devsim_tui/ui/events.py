"""The event log: scaling, failovers, commands and errors, each with its simulated time.

Lines are capped (`max_lines`); new events are fetched with `world.events_since(seq)` and only
written while the pane is shown; otherwise they wait in a bounded backlog, so a hidden log
never costs layout work. A long event wraps at the pane's width, and a resize (a zoom, a
bigger terminal) writes the kept events again at the new width: no message is ever cut.
"""

from __future__ import annotations

from collections import deque

from rich.style import Style
from rich.text import Text
from textual.widgets import RichLog

from devsim_tui.sim.events import Event
from devsim_tui.ui.format import sim_clock

MAX_LINES = 500
#: Events of the security model (sim/security.py) draw their message in the theme's
#: `$security-event` colour; the mark keeps the severity's colour and glyph.
SECURITY_PREFIX = "security."
SEVERITY_MARK = {"debug": "·", "info": "•", "warning": "▲", "error": "✖", "critical": "✖"}


def concerns(ev: Event, name: str) -> bool:
    """Whether an event is about one component (its subject, or named in its `servers`)."""
    return ev.subject == name or name in (ev.data.get("servers") or ())


def event_line(ev: Event, start_hour: float, styles: dict[str, Style]) -> Text:
    """`d1 09:05:00 ▲ scaled to 6; ...  scale.manual` coloured by severity, type last; a
    security event's message in the security colour (bold from `error` up)."""
    sev = ev.severity
    style = styles.get(sev, styles["info"])
    text = Text(overflow="fold")
    text.append(sim_clock(start_hour, ev.t), styles["time"])
    text.append(f" {SEVERITY_MARK.get(sev, '•')} ", style)
    if ev.type.startswith(SECURITY_PREFIX):
        message = styles["security-alarm" if sev in ("error", "critical") else "security"]
    else:
        message = style if sev in ("warning", "error", "critical") else styles["msg"]
    text.append(ev.message, message)
    text.append(f"  {ev.type}", styles["type"])
    return text


class EventLog(RichLog):
    """The estate's event log (newest at the bottom)."""

    COMPONENT_CLASSES = {"events--time", "events--type", "events--msg", "events--debug",
                         "events--info", "events--warning", "events--error", "events--critical",
                         "events--security", "events--security-alarm"}

    def __init__(self, start_hour: float, subject: str | None = None,
                 types: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(max_lines=MAX_LINES, wrap=True, min_width=1, markup=False,
                         auto_scroll=True, **kwargs)
        self.start_hour = start_hour
        self.subject = subject  # only events about this component, when set
        self.types = types  # only events whose type starts with one of these, when set
        self.last_seq = 0
        self._backlog: deque[Event] = deque(maxlen=MAX_LINES)
        self._written: deque[Event] = deque(maxlen=MAX_LINES)  # to write again on a resize
        self._width = 0  # the width they were wrapped at
        self.filter_text = ""  # the `/` filter

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width == self._width or not width:
            return
        self._width = width
        if self._written:
            self._rewrite()

    def set_filter(self, text: str) -> None:
        """Show only the events whose line matches `text` (regex; a leading `!` inverts)."""
        self.filter_text = text
        self._rewrite()

    def _shows(self, ev: Event) -> bool:
        if not self.filter_text:
            return True
        from devsim_tui.ui.servers import compile_filter

        pattern, invert = compile_filter(self.filter_text)
        if pattern is None:
            return True
        return invert != bool(pattern.search(f"{ev.message}  {ev.type}"))

    def _rewrite(self) -> None:
        styles = self._styles()
        self.clear()
        for ev in self._written:
            if self._shows(ev):
                self.write(event_line(ev, self.start_hour, styles))

    def _styles(self) -> dict[str, Style]:
        st = self.get_component_rich_style
        return {"time": st("events--time"), "type": st("events--type"), "msg": st("events--msg"),
                **{s: st(f"events--{s}") for s in
                   ("debug", "info", "warning", "error", "critical", "security",
                    "security-alarm")}}

    def pull(self, world, visible: bool) -> list[Event]:
        """Fetch events newer than the last seen; write them if the log is on screen.

        Returns every new event (before the subject filter), so the app can react to some
        (toasts) without asking the world a second time.
        """
        fetched = new = world.events_since(self.last_seq)
        if new:
            self.last_seq = new[-1].seq
            if self.subject is not None:
                new = [ev for ev in new if concerns(ev, self.subject)]
            if self.types:
                new = [ev for ev in new if ev.type.startswith(self.types)]
            self._backlog.extend(new)
        self._flush(visible)
        return fetched

    def reset(self) -> None:
        """Forget every line and the last seq seen (the world was rebuilt: a replay's seek)."""
        self.clear()
        self.last_seq = 0
        self._backlog.clear()
        self._written.clear()

    def note(self, ev: Event, visible: bool) -> None:
        """Add a line that does not come from the world (the MQTT link's state changes)."""
        self._backlog.append(ev)
        self._flush(visible)

    def _flush(self, visible: bool) -> None:
        if visible and self._backlog:
            styles = self._styles()
            for ev in self._backlog:
                if self._shows(ev):
                    self.write(event_line(ev, self.start_hour, styles))
            self._written.extend(self._backlog)
            self._backlog.clear()
