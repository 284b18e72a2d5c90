"""Notification delivery: the I/O half of alerting (the engine decides what and when).

`sim.notifications.Notifier` groups and times notifications in simulated time and emits them as
events; this package delivers them: e-mail over SMTP in a worker thread with retry and back-off
(`email.EmailSender`), and lines on a stream for the console and AI-analysis channels
(`console.StreamSink`). `start_notifications(engine)` wires what the profile asks for. A
delivery failure is reported back to the engine (an event and `state()["delivery"]`) and never
raised into the caller.
"""

from devsim_tui.notify.console import StreamSink
from devsim_tui.notify.email import EmailSender, build_message
from devsim_tui.notify.setup import NotifyHandle, smtp_overrides, start_notifications

__all__ = ["EmailSender", "NotifyHandle", "StreamSink", "build_message", "smtp_overrides",
           "start_notifications"]
