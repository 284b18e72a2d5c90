"""Notifications: Alertmanager timing in simulated time, e-mail end to end over a real SMTP
server on loopback (aiosmtpd), failures retried and reported, console lines."""

from __future__ import annotations

import email
import io
import socket
import time

import pytest

from devsim_tui.notify import EmailSender, start_notifications
from devsim_tui.sim import commands as C
from devsim_tui.sim.notifications import notifier_of
from tests.helpers import engine

aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    port = free_port()
    ctl = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    yield inbox, port
    ctl.stop()


def mail_engine(port: int, **overrides):
    base = {"monitoring__notifications__email__smtp__host": "127.0.0.1",
            "monitoring__notifications__email__smtp__port": port,
            "monitoring__notifications__email__smtp__security": "none",
            "monitoring__notifications__email__smtp__to": ["oncall@example.com"],
            "monitoring__notifications__email__smtp__from": "devsim@example.com",
            "monitoring__notifications__route__group_by": ["severity"],
            "traffic__bursts__per_hour": 0,
            # no failover: the crashed primary stays down, so its alerts outlast group_wait
            # (a 28 s Patroni failover resolves them before the first flush)
            "database__failover__enabled": False}
    base.update(overrides)
    return engine("production", **base)


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_critical_alerts_are_emailed_grouped_and_timed_like_alertmanager(smtp_server):
    inbox, port = smtp_server
    e = mail_engine(port)
    handle = start_notifications(e)
    try:
        # DatabaseNotWritable + PrimaryDown are pending at t=1 and fire together at t=16
        # (their `for: 15s`, evaluated every 15 s)
        e.submit(C.CrashNode())
        e.step(35)
        assert not inbox.messages  # group_wait (30 s) not over yet
        e.step(15)  # t=50: first flush at 16 + 30
        assert wait_for(lambda: len(inbox.messages) == 1)
        first = inbox.messages[0]
        assert first["Subject"] == "[FIRING:2] critical"
        assert first["To"] == "oncall@example.com" and first["From"] == "devsim@example.com"
        body = first.get_payload()
        assert "DatabaseNotWritable" in body and "PrimaryDown" in body
        # Both resolve once the primary is back; e-mail does not send resolved notifications
        # (send_resolved: false), so nothing more until a new alert fires in the group.
        e.submit(C.RestartNode(node="pg-1"))
        e.extra_error = 0.2
        e.step(600)
        assert wait_for(lambda: len(inbox.messages) == 2)
        second = inbox.messages[1]
        assert second["Subject"].startswith("[FIRING:") and "HighErrorRate" in \
            second.get_payload()
        sent = [ev for ev in e.events if ev.type == "notify.email"]
        # the second went out at a group_interval (5 m) flush after the first
        assert (sent[1].t - sent[0].t) % 300 == pytest.approx(0, abs=1e-6)
    finally:
        handle.close()
    e.step(1)
    assert any(ev.type == "notify.sent" for ev in e.events)
    assert notifier_of(e).state()["delivery"]["email_sent"] == 2


def test_repeat_interval_resends_an_unchanged_group(smtp_server):
    inbox, port = smtp_server
    e = mail_engine(port, monitoring__notifications__route__repeat_interval="20m",
                    monitoring__notifications__route__group_interval="5m",
                    monitoring__notifications__route__group_by=["alertname"])
    handle = start_notifications(e)
    try:
        e.submit(C.CrashNode())
        e.submit(C.CrashNode(node="pg-2"))
        e.submit(C.CrashNode(node="pg-3"))  # nothing left to promote: stays down
        e.step(46 + 20 * 60 + 300)
        assert wait_for(lambda: len(inbox.messages) >= 2)
        times = [ev.t for ev in e.events if ev.type == "notify.email"
                 and ev.data["group"] == {"alertname": "DatabaseNotWritable"}]
        assert times[0] == pytest.approx(46.0)  # fired at 16 (for: 15s), group_wait 30 s
        # repeat at the first group_interval flush once 20 minutes have passed
        assert times[1] - times[0] == pytest.approx(20 * 60)
    finally:
        handle.close()


def test_without_smtp_notifications_are_events_only():
    e = engine("production", traffic__bursts__per_hour=0, database__failover__enabled=False)
    assert start_notifications(e).email is None
    e.submit(C.CrashNode())
    e.step(55)
    ev = [ev for ev in e.events if ev.type == "notify.email"]
    assert len(ev) == 2  # grouped by alertname (the default): one per alert
    assert all(x.message.startswith("would email") and "SMTP not configured" in x.message
               for x in ev)


def test_silenced_alerts_are_not_notified():
    e = engine("production", traffic__bursts__per_hour=0)
    e.submit_line("silence all 1h")
    e.submit(C.CrashNode())
    e.step(60)
    assert not [ev for ev in e.events if ev.type == "notify.email"]
    assert all(a.silenced_until for a in e.snapshot.alerts if a.state == "firing")


def test_smtp_down_is_reported_retried_and_recovers():
    port = free_port()  # nothing listens yet
    e = mail_engine(port)
    notifier = notifier_of(e)
    sender = EmailSender(e.profile.monitoring.notifications.email.smtp, notifier.report,
                         "production", base_backoff_s=0.2, max_backoff_s=0.4, max_attempts=50)
    notifier.attach(sender)
    e.submit(C.CrashNode())
    e.step(55)  # the first notification is queued (t=46) and fails
    assert wait_for(lambda: sender.failed >= 1)
    e.step(1)
    failed = [ev for ev in e.events if ev.type == "notify.failed"]
    assert failed and "retry 1 in" in failed[0].message
    assert notifier.state()["delivery"]["email"] == "failing"
    inbox = Inbox()
    ctl = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        assert wait_for(lambda: len(inbox.messages) == 1)
        assert wait_for(lambda: sender.sent == 1)
        e.step(1)
        assert notifier.state()["delivery"]["email"] == "ok"
        assert any(ev.type == "notify.sent" for ev in e.events)
    finally:
        sender.close()
        ctl.stop()


def test_undeliverable_mail_is_dropped_after_max_attempts_never_raised():
    e = mail_engine(free_port())
    notifier = notifier_of(e)
    sender = EmailSender(e.profile.monitoring.notifications.email.smtp, notifier.report,
                         base_backoff_s=0.01, max_backoff_s=0.01, max_attempts=3)
    notifier.attach(sender)
    e.submit(C.CrashNode())
    e.step(55)
    assert wait_for(lambda: sender.dropped == 1)
    e.step(1)
    assert [ev.type for ev in e.events if ev.type.startswith("notify.")].count(
        "notify.failed") == 2
    assert any(ev.type == "notify.dropped" for ev in e.events)
    sender.close()


def test_console_channel_prints_warnings_on_the_stream():
    e = engine("development")
    out = io.StringIO()
    start_notifications(e, stream=out)
    e.submit(C.CrashNode())
    e.step(60)
    text = out.getvalue()
    assert "WARNING alert: [FIRING:1] DatabaseNotWritable" in text
    assert any(ev.type == "notify.console" for ev in e.events)


# ---------------------------------------------------------------------- at exit (issue 11.6)


class Stalling(Inbox):
    """A real SMTP server that goes silent once a message's DATA is sent (never answers)."""

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        self.envelopes.append(envelope)
        await asyncio.sleep(3600)
        return "250 never"


def simulate_with_mail(tmp_path, port: int, timeout: float = 120):
    import json
    import subprocess
    import sys

    from tests.helpers import REPO

    commands = tmp_path / "crash.yaml"
    # Every database node down: nothing to promote, so alerts fire and stay (4 e-mails).
    commands.write_text("".join(f"- at: 10s\n  command: crash-node\n  args: {{node: pg-{i}}}\n"
                                for i in (1, 2, 3)))
    out = tmp_path / "run.jsonl"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "devsim_tui", "simulate", "--profile", "production", "--seed",
         "7", "--duration", "10m", "--out", str(out), "--commands", str(commands),
         "--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--smtp-security", "none",
         "--mail-to", "oncall@example.com", "--mail-from", "devsim@example.com"],
        capture_output=True, text=True, cwd=REPO, timeout=timeout)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    summary = lines[-1]
    assert summary["kind"] == "summary"
    emails = [ev for ev in lines if ev.get("type") == "notify.email"]
    return summary["email"], emails, done, elapsed


def test_mail_queued_at_the_end_is_flushed_and_counted(tmp_path, smtp_server):
    inbox, port = smtp_server
    email_, emails, done, _ = simulate_with_mail(tmp_path, port)
    assert email_["notifications"] == len(emails) >= 2
    assert email_ == {"notifications": len(emails), "sent": len(emails), "dropped": 0,
                      "failed": 0, "abandoned": 0}
    assert len(inbox.messages) == len(emails)
    line = f"e-mail: {len(emails)} notification(s): {len(emails)} sent, 0 dropped"
    assert line in done.stdout  # the human summary (stdout: the JSON went to a file)
    assert f"devsim-tui: {line}" in done.stderr


def test_a_silent_smtp_server_costs_a_bounded_wait_and_is_reported(tmp_path):
    """Issue 11.6: with a silent server, 4 notifications ended as 0 sent, 0 dropped."""
    inbox = Stalling()
    port = free_port()
    ctl = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        email_, emails, done, elapsed = simulate_with_mail(tmp_path, port)
    finally:
        ctl.stop()
    n = len(emails)
    assert n >= 2 and inbox.envelopes  # the server did get the mail, and never answered
    assert email_["notifications"] == n and email_["sent"] == 0 and email_["dropped"] == n
    assert email_["failed"] >= 1
    # The flush waits at most 10 s (the SMTP timeout is 10 s as well): the run itself is ~1 s.
    assert elapsed < 10 + 10 + 15, elapsed
    assert f"devsim-tui: e-mail: {n} notification(s): 0 sent, {n} dropped" in done.stderr


def test_a_closed_smtp_port_drops_every_notification_with_a_word(tmp_path):
    """Issue 11.6: with a closed port, 3 notifications were never accounted for."""
    email_, emails, done, elapsed = simulate_with_mail(tmp_path, free_port())
    n = len(emails)
    assert n >= 2
    assert email_["notifications"] == n and email_["sent"] == 0 and email_["dropped"] == n
    assert email_["failed"] >= n  # each tried at least once (the last try at exit)
    assert "ConnectionRefusedError" in done.stderr
    assert f"devsim-tui: e-mail: {n} notification(s): 0 sent, {n} dropped" in done.stderr


def test_close_counts_every_notification_exactly_once():
    """Notifications still queued or being retried at the deadline are dropped, not lost."""
    e = mail_engine(free_port(), monitoring__notifications__route__group_by=["alertname"])
    notifier = notifier_of(e)
    sender = EmailSender(e.profile.monitoring.notifications.email.smtp, notifier.report,
                         base_backoff_s=30.0, max_backoff_s=30.0, max_attempts=5)
    notifier.attach(sender)
    e.submit(C.CrashNode())
    e.step(90)  # PrimaryDown (for: 15s) fires, then Alertmanager's 30 s group_wait
    assert wait_for(lambda: sender.failed >= 1)  # now pausing 30 s before its retry
    started = time.monotonic()
    report = sender.close(timeout=3.0)
    assert time.monotonic() - started < 5  # the pause ended at close: one last try, no wait
    assert report.notifications == 2 and report.sent == 0 and report.dropped == 2
    assert sender.close() is report
    e.step(1)
    assert any(ev.type == "notify.dropped" and "at exit" in ev.message for ev in e.events)


async def test_the_control_room_keeps_the_delivery_report_for_its_exit(smtp_server):
    from devsim_tui.sim.world import LocalWorld
    from devsim_tui.ui.external import ExternalIO, IOOptions

    inbox, port = smtp_server
    world = LocalWorld(mail_engine(port))
    external = ExternalIO(IOOptions())
    assert external.start(world) is None
    world.submit(C.CrashNode())
    world.advance(90)  # PrimaryDown (for: 15s), then Alertmanager's 30 s group_wait
    await external.stop()
    report = external.delivery
    assert report is not None and report.notifications >= 1
    assert report.sent == report.notifications == len(inbox.messages)
