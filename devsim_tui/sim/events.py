"""Events: every command and notable state change, stamped with simulated time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

SEVERITIES = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class Event:
    seq: int  # strictly increasing per engine, so readers can ask for what is new
    t: float  # simulated seconds since the start
    type: str  # dotted, e.g. "scale.hpa", "db.failover.promoted", "command.rejected"
    message: str
    severity: str = "info"
    subject: str | None = None  # component name (server / node) the event is about
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "t": self.t, "type": self.type,
                               "severity": self.severity, "message": self.message}
        if self.subject is not None:
            out["subject"] = self.subject
        if self.data:
            out["data"] = self.data
        return out


class EventLog:
    """A bounded log of events (memory stays flat on long runs)."""

    def __init__(self, maxlen: int):
        self._events: deque[Event] = deque(maxlen=maxlen)
        self._seq = 0
        self.pending: list[Event] = []  # emitted during the current tick

    def emit(self, t: float, type_: str, message: str, severity: str = "info",
             subject: str | None = None, **data: Any) -> Event:
        self._seq += 1
        ev = Event(self._seq, t, type_, message, severity, subject, data)
        self._events.append(ev)
        self.pending.append(ev)
        return ev

    def take_pending(self) -> tuple[Event, ...]:
        out = tuple(self.pending)
        self.pending = []
        return out

    @property
    def last_seq(self) -> int:
        return self._seq

    def since(self, seq: int) -> list[Event]:
        """Events with a sequence number above seq that are still held."""
        if seq >= self._seq:
            return []
        # Events are in seq order; walk from the right to avoid a full copy on each call.
        out: list[Event] = []
        for ev in reversed(self._events):
            if ev.seq <= seq:
                break
            out.append(ev)
        out.reverse()
        return out

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)
