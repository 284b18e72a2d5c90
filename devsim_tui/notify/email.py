"""E-mail delivery over SMTP (smtplib) in a worker thread, with retry and exponential back-off.

The simulation thread only enqueues (`__call__` never blocks); the worker connects, upgrades
with STARTTLS or uses implicit TLS as configured, logs in when a user is set, and sends one
message per notification. A failure (server down, refused, auth) is reported through
`report(...)` as a `notify.failed` event with the retry delay, retried after 1, 2, 4, ... s (at
most `max_backoff_s`), and after `max_attempts` reported as `notify.dropped`. Back-off uses the
wall clock: delivery is real I/O, outside the simulated world.
"""

from __future__ import annotations

import os
import queue
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Callable

from devsim_tui.sim.notifications import Notification

Report = Callable[..., None]


def build_message(n: Notification, sender: str, to: list[str], profile: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = n.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="devsim-tui")
    msg["X-Devsim-Profile"] = profile
    msg["X-Devsim-Group"] = ",".join(f"{k}={v}" for k, v in n.group)
    body = (f"{n.subject}\n\n{n.body}\n"
            f"-- \nSent by devsim-tui ({profile}) at simulated t={n.t:.0f}s; "
            f"{len(n.alerts)} alert(s) in this group.\n")
    msg.set_content(body)
    return msg


class EmailSender:
    def __init__(self, smtp: Any, report: Report, profile: str = "", password: str | None = None,
                 max_attempts: int = 6, base_backoff_s: float = 1.0, max_backoff_s: float = 60.0):
        self.smtp = smtp
        self.report = report
        self.profile = profile
        self.password = password if password is not None else (
            os.environ.get(smtp.password_env) if smtp.password_env else None)
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.queue: queue.Queue[Notification | None] = queue.Queue()
        self._stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="devsim-email", daemon=True)
        self._thread.start()

    def __call__(self, n: Notification) -> None:
        self.queue.put(n)

    def status(self) -> dict[str, Any]:
        return {"email": "failing" if self.last_error else "ok", "email_sent": self.sent,
                "email_failed": self.failed, "email_dropped": self.dropped,
                "email_queued": self.queue.qsize(), "email_last_error": self.last_error}

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the queue drains (or at once if a retry is waiting)."""
        self.queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1.0)

    def _send(self, n: Notification) -> None:
        s = self.smtp
        msg = build_message(n, s.from_, list(s.to), self.profile)
        ctx = ssl.create_default_context()
        if s.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds,
                                                    context=ctx)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        with client:
            client.ehlo()
            if s.security == "starttls":
                client.starttls(context=ctx)
                client.ehlo()
            if s.username:
                client.login(s.username, self.password or "")
            client.send_message(msg)

    def _run(self) -> None:
        while True:
            n = self.queue.get()
            if n is None:
                return
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._send(n)
                except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
                    self.failed += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    if attempt >= self.max_attempts:
                        self.dropped += 1
                        self.report("notify.dropped", f"email '{n.subject}' dropped after "
                                    f"{attempt} attempts: {self.last_error}", "error",
                                    seq=n.seq, status=self.status())
                        break
                    delay = min(self.base_backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                    self.report("notify.failed", f"email to {self.smtp.host}:{self.smtp.port} "
                                f"failed ({self.last_error}); retry {attempt} in {delay:g}s",
                                "error", seq=n.seq, attempt=attempt, retry_in=delay,
                                status=self.status())
                    if self._stop.wait(delay):
                        return
                    continue
                self.sent += 1
                self.last_error = None
                self.report("notify.sent", f"emailed {', '.join(self.smtp.to)}: {n.subject}",
                            "info", seq=n.seq, attempts=attempt, status=self.status())
                break
