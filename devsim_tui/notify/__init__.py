"""Notification delivery: the I/O half of alerting (the engine decides what and when).

`sim.notifications.Notifier` groups and times notifications in simulated time and emits them as
events; this package delivers them: e-mail over SMTP in a worker thread with retry and back-off
(`email.EmailSender`), and lines on a stream for the console and AI-analysis channels
(`console.StreamSink`). `start_notifications(engine)` wires what the profile asks for. A
delivery failure is reported back to the engine (an event and `state()["delivery"]`) and never
raised into the caller.
"""

from __future__ import annotations

import importlib
from typing import Any

#: What the package offers, by the module it lives in: imported when first asked for, so the
#: control room's start (which wires notifications with no SMTP in sight) never loads smtplib.
_WHERE = {"StreamSink": "console", "EmailSender": "email", "build_message": "email",
          "NotifyHandle": "setup", "smtp_overrides": "setup", "start_notifications": "setup"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"devsim_tui.notify.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EmailSender", "NotifyHandle", "StreamSink", "build_message", "smtp_overrides",
           "start_notifications"]
