"""E-mail delivery over SMTP (smtplib) in a worker thread, with retry and exponential back-off.

The simulation thread only enqueues (`__call__` never blocks); the worker connects, upgrades
with STARTTLS or uses implicit TLS as configured, logs in when a user is set, and sends one
message per notification. A failure (server down, refused, auth) is reported through
`report(...)` as a `notify.failed` event with the retry delay, retried after 1, 2, 4, ... s (at
most `max_backoff_s`), and after `max_attempts` reported as `notify.dropped`. Back-off uses the
wall clock: delivery is real I/O, outside the simulated world.

At exit, `close(timeout)` flushes within a bounded wait: back-off pauses end, every notification
still waiting gets one more attempt while time is left (its connection timeout cut to what is
left), and whatever is undelivered when the time is up is counted as dropped. It returns a
`DeliveryReport` (notifications sent and dropped, failed attempts), so the program can say what
happened to the mail instead of abandoning it without a word.
"""

from __future__ import annotations

import os
import queue
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DeliveryReport:
    """What happened to the e-mail notifications of a run, final at exit."""

    notifications: int  # handed to the sender
    sent: int  # delivered
    dropped: int  # never delivered: gave up after retries, or still undelivered at exit
    failed: int  # failed attempts (a notification retried three times counts three)
    abandoned: int = 0  # of `dropped`: still queued or being retried when the time was up
    last_error: str | None = None

    def text(self) -> str:
        line = (f"e-mail: {self.notifications} notification(s): {self.sent} sent, "
                f"{self.dropped} dropped, {self.failed} failed attempt(s)")
        if self.abandoned:
            line += f"; {self.abandoned} undelivered at exit"
        if self.last_error and (self.dropped or self.failed):
            line += f"; last error: {self.last_error}"
        return line

    def record(self) -> dict[str, Any]:
        return {"notifications": self.notifications, "sent": self.sent,
                "dropped": self.dropped, "failed": self.failed, "abandoned": self.abandoned}


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
        self._flush = threading.Event()  # closing: no more back-off pauses
        self._deadline = float("inf")  # monotonic time by which the flush must end
        self._lock = threading.Lock()  # guards the counters; close() settles them for good
        self._closed = False
        self.notifications = 0
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.abandoned = 0
        self.last_error: str | None = None
        self.report_at_close: DeliveryReport | None = None
        self._thread = threading.Thread(target=self._run, name="devsim-email", daemon=True)
        self._thread.start()

    def __call__(self, n: Notification) -> None:
        with self._lock:
            if self._closed:
                return
            self.notifications += 1
        self.queue.put(n)

    def status(self) -> dict[str, Any]:
        return {"email": "failing" if self.last_error else "ok", "email_sent": self.sent,
                "email_failed": self.failed, "email_dropped": self.dropped,
                "email_queued": self.queue.qsize(), "email_last_error": self.last_error}

    def close(self, timeout: float = 10.0) -> DeliveryReport:
        """Flush within `timeout` seconds (see the module doc) and stop; the final report.
        Idempotent: a second call returns the same report."""
        with self._lock:
            if self.report_at_close is not None:
                return self.report_at_close
        self._deadline = time.monotonic() + timeout
        self._flush.set()
        self.queue.put(None)
        self._thread.join(timeout)
        self._stop.set()
        with self._lock:
            self._closed = True
            # Every notification is sent or dropped in the end; whatever is neither now (still
            # queued, or being tried) will not be delivered by this process.
            self.abandoned = self.notifications - self.sent - self.dropped
            self.dropped += self.abandoned
            self.report_at_close = DeliveryReport(
                self.notifications, self.sent, self.dropped, self.failed, self.abandoned,
                self.last_error)
        return self.report_at_close

    def _left(self) -> float:
        return self._deadline - time.monotonic()

    def _send(self, n: Notification) -> None:
        s = self.smtp
        msg = build_message(n, s.from_, list(s.to), self.profile)
        ctx = ssl.create_default_context()
        timeout = s.timeout_seconds
        if self._flush.is_set():  # closing: a silent server may not hold the exit longer
            timeout = max(0.1, min(timeout, self._left()))
        if s.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout,
                                                    context=ctx)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=timeout)
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
            if n is None or self._stop.is_set():
                return
            self._deliver(n)

    def _settle(self, sent: int = 0, dropped: int = 0, failed: int = 0,
                error: str | None = None) -> bool:
        """Count an outcome, unless close() has already settled the books (then False)."""
        with self._lock:
            if self._closed:
                return False
            self.sent += sent
            self.dropped += dropped
            self.failed += failed
            if failed:
                self.last_error = error
            elif sent:
                self.last_error = None
            return True

    def _deliver(self, n: Notification) -> None:
        attempt = 0
        while True:
            if self._flush.is_set() and self._left() <= 0:
                self._settle(dropped=1)  # out of time at exit: never tried (again)
                return
            attempt += 1
            try:
                self._send(n)
            except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                # Closing: no more pauses; this one has had its last try.
                give_up = attempt >= self.max_attempts or self._flush.is_set()
                if not self._settle(failed=1, dropped=int(give_up), error=error):
                    return
                if give_up:
                    why = "at exit" if attempt < self.max_attempts else f"after {attempt} attempts"
                    self.report("notify.dropped", f"email '{n.subject}' dropped {why}: "
                                f"{error}", "error", seq=n.seq, status=self.status())
                    return
                delay = min(self.base_backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
                self.report("notify.failed", f"email to {self.smtp.host}:{self.smtp.port} "
                            f"failed ({error}); retry {attempt} in {delay:g}s",
                            "error", seq=n.seq, attempt=attempt, retry_in=delay,
                            status=self.status())
                # The pause ends early when closing starts: then one last try.
                self._flush.wait(delay)
                if self._stop.is_set():
                    return
                continue
            if self._settle(sent=1):
                self.report("notify.sent", f"emailed {', '.join(self.smtp.to)}: {n.subject}",
                            "info", seq=n.seq, attempts=attempt, status=self.status())
            return
