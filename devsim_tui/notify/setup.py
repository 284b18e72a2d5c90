"""Wiring: attach the deliveries a profile's channel needs to an engine's notifier."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from devsim_tui.sim.notifications import notifier_of

if TYPE_CHECKING:
    from devsim_tui.notify.email import EmailSender


@dataclass
class NotifyHandle:
    email: EmailSender | None = None
    sinks: list[Any] = field(default_factory=list)

    def close(self, timeout: float = 10.0):
        """Flush the e-mail within `timeout` seconds; its DeliveryReport (None without SMTP)."""
        if self.email is not None:
            return self.email.close(timeout)
        return None


def start_notifications(engine: Any, stream: TextIO | None = None,
                        console: bool = True) -> NotifyHandle:
    """Deliver the engine's notifications: e-mail when SMTP is configured (profile or flags),
    console / AI-analysis lines on `stream` (default stderr) when `console` is true."""
    notifier = notifier_of(engine)
    handle = NotifyHandle()
    if notifier is None:
        return handle
    if notifier.channel == "email":
        smtp = engine.profile.monitoring.notifications.email.smtp
        if notifier.smtp_configured:
            from devsim_tui.notify.email import EmailSender  # smtplib: only with SMTP

            handle.email = EmailSender(smtp, notifier.report, engine.profile.name)
            notifier.attach(handle.email)
    elif console:
        from devsim_tui.notify.console import StreamSink

        sink = StreamSink(engine.clock, stream or sys.stderr)
        notifier.attach(sink)
        handle.sinks.append(sink)
    return handle


def smtp_overrides(host: str | None = None, port: int | None = None,
                   security: str | None = None, username: str | None = None,
                   password_env: str | None = None, sender: str | None = None,
                   to: list[str] | None = None) -> dict[str, Any]:
    """Profile overrides (dotted) from command-line SMTP flags; only the flags given."""
    base = "monitoring.notifications.email.smtp."
    values = {"host": host, "port": port, "security": security, "username": username,
              "password_env": password_env, "from": sender, "to": to}
    return {base + k: v for k, v in values.items() if v is not None}
