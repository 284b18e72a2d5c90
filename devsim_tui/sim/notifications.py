"""Alertmanager in simulated time: group, wait, repeat, silence, inhibit, route to a channel.

Each profile sends to one channel (`monitoring.alert_channel`): `email` (production: critical
alerts), `console` (development: warnings) or `ai-analysis` (experimental: the detector's
findings with their explanation, and rule alerts). Timing follows Alertmanager
(sim_semantics.md §3): a group's first notification goes out `group_wait` after it appears,
then its alerts are re-checked every `group_interval` and notified if a new alert fires (or,
with `send_resolved`, one resolves); an unchanged firing group is re-sent after
`repeat_interval`. Silenced and inhibited alerts are tracked but not notified.

Every notification is an engine event (`notify.email`, `notify.console`, `notify.ai-analysis`):
without a delivery sink the email event reads "would email ...". Delivery itself is I/O and
lives in `devsim_tui.notify`, which attaches a sink here and reports outcomes back through
`report()` (a thread-safe inbox drained at the next tick, so the failure shows as an event).
This module does no I/O, reads no wall clock and never imports the UI.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from devsim_tui.config.durations import format_duration, parse_duration
from devsim_tui.sim import commands as C
from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register
from devsim_tui.sim.snapshot import AlertView

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


@dataclass(frozen=True)
class Notification:
    """One message to a receiver: a group's alerts at a flush."""

    t: float
    channel: str  # email | console | ai-analysis
    receiver: str  # the addresses for email, else the channel name
    group: tuple[tuple[str, str], ...]
    status: str  # firing | resolved
    subject: str
    body: str
    alerts: tuple[dict[str, Any], ...]
    seq: int = 0


@dataclass
class _Group:
    key: tuple[tuple[str, str], ...]
    created: float
    next_flush: float
    notified_firing: frozenset = frozenset()
    notified_resolved: frozenset = frozenset()
    last_sent: float | None = None
    alerts: dict[tuple, AlertView] = field(default_factory=dict)


class Notifier:
    state_key = extensions.NOTIFICATIONS
    commands = (C.Silence, C.Unsilence)

    def __init__(self, engine: Engine):
        self.engine = engine
        mon = engine.profile.monitoring
        spec = mon.notifications
        self.channel = mon.alert_channel
        self.min_rank = SEVERITY_RANK[mon.alert_severity]
        route = spec.route
        self.group_by = tuple(route.group_by)
        self.group_wait = parse_duration(route.group_wait)
        self.group_interval = parse_duration(route.group_interval)
        self.repeat_interval = parse_duration(route.repeat_interval)
        self.send_resolved = (spec.email.send_resolved if self.channel == "email"
                              else spec.console_send_resolved)
        self.inhibit = spec.inhibit
        self.inhibit_equal = tuple(spec.inhibit_equal)
        smtp = spec.email.smtp
        self.email_to = tuple(smtp.to)
        self.smtp_configured = bool(smtp.host) and bool(smtp.to)
        self.sinks: list[Callable[[Notification], None]] = []
        self.inbox: deque[tuple[str, str, str, dict]] = deque()  # reports from delivery threads
        self.groups: dict[tuple, _Group] = {}
        self._seen_version = -1
        self._next_flush = float("inf")
        self.sent = 0
        self.seq = 0
        self.delivery: dict[str, Any] = {}  # status reported by the delivery side

    # ------------------------------------------------------------------ delivery side

    def attach(self, sink: Callable[[Notification], None]) -> None:
        """Called with every notification, on the simulation thread: it must not block."""
        self.sinks.append(sink)

    def report(self, type_: str, message: str, severity: str = "info", **data: Any) -> None:
        """Thread-safe: a delivery outcome to become an engine event at the next tick."""
        self.inbox.append((type_, message, severity, data))

    # ------------------------------------------------------------------ controller

    def apply(self, cmd: C.Command) -> str | None:
        alerts = self.engine.alerts
        t = self.engine.t
        if isinstance(cmd, C.Silence):
            dur = parse_duration(cmd.duration)
            s = alerts.silence(cmd.alert, dur, t, cmd.comment or "")
            if s is None:
                return f"no alert or rule matches '{cmd.alert}'"
            self.engine.emit(t, "alert.silenced", f"silence {s.id}: {cmd.alert} for "
                             f"{format_duration(dur)} (until {self.engine.clock(s.ends_at)})",
                             "info", None, silence=s.id, alert=cmd.alert, until=s.ends_at)
            return None
        if isinstance(cmd, C.Unsilence):
            gone = alerts.unsilence(cmd.alert, t)
            if not gone:
                return f"no silence matches '{cmd.alert}'"
            self.engine.emit(t, "alert.unsilenced", f"silences ended: {', '.join(gone)}",
                             "info", None, silences=gone)
            return None
        return "not a notification command"

    def before_tick(self, t: float) -> None:
        while self.inbox:
            type_, message, severity, data = self.inbox.popleft()
            if type_ == "notify.status":
                self.delivery.update(data)
                continue
            self.delivery.update(data.pop("status", {}))
            self.engine.emit(t, type_, message, severity, None, **data)
        alerts = self.engine.alerts
        if alerts.version != self._seen_version:
            self._seen_version = alerts.version
            self._regroup(t, alerts.views)
        if t >= self._next_flush - 1e-9:
            self._flush_due(t)

    def after_tick(self, t: float, agg: Any) -> None:
        return None

    def state(self) -> dict:
        return {"channel": self.channel, "groups": len(self.groups), "sent": self.sent,
                "smtp": self.smtp_configured, "delivery": dict(self.delivery),
                "silences": [{"id": s.id, "matchers": dict(s.matchers), "ends_at": s.ends_at}
                             for s in self.engine.alerts.silences]}

    # ------------------------------------------------------------------ routing

    def _eligible(self, a: AlertView) -> bool:
        if SEVERITY_RANK.get(a.severity, 1) < self.min_rank and a.source != "detector":
            return False
        return a.state in ("firing", "resolved")

    def _inhibited(self, a: AlertView, sources: list[AlertView]) -> bool:
        if not self.inhibit or a.severity != "warning":
            return False
        mine = dict(a.labels)
        for s in sources:
            theirs = dict(s.labels)
            if all(mine.get(k, "") == theirs.get(k, "") for k in self.inhibit_equal):
                return True
        return False

    def _regroup(self, t: float, views: tuple[AlertView, ...]) -> None:
        sources = [a for a in views if a.state == "firing" and a.severity == "critical"]
        current: dict[tuple, dict[tuple, AlertView]] = {}
        for a in views:
            if not self._eligible(a) or self._inhibited(a, sources):
                continue
            if a.silenced_until is not None and a.silenced_until > t:
                continue
            lb = dict(a.labels)
            key = tuple((k, lb.get(k, "")) for k in self.group_by)
            current.setdefault(key, {})[a.labels] = a
        for key, members in current.items():
            g = self.groups.get(key)
            if g is None:
                if not any(a.state == "firing" for a in members.values()):
                    continue  # a group only starts with a firing alert
                # the group appears when the evaluation that produced the alert ran (the
                # notifier looks at the alerts at the start of the next tick)
                born = self.engine.alerts.last_eval_t
                born = t if born is None else born
                g = self.groups[key] = _Group(key, born, born + self.group_wait)
            g.alerts = members
        for key, g in self.groups.items():
            if key not in current:
                g.alerts = {}
        self._next_flush = min([g.next_flush for g in self.groups.values()] or [float("inf")])

    def _flush_due(self, t: float) -> None:
        for key, g in list(self.groups.items()):
            if t < g.next_flush - 1e-9:
                continue
            g.next_flush = t + self.group_interval
            firing = frozenset(lb for lb, a in g.alerts.items() if a.state == "firing")
            resolved = frozenset(lb for lb, a in g.alerts.items() if a.state == "resolved")
            if self._needs_update(g, firing, resolved, t):
                if firing or self.send_resolved:
                    self._notify(t, g, firing, resolved)
                g.notified_firing, g.notified_resolved = firing, resolved
                g.last_sent = t
            if not g.alerts or (not firing and g.notified_firing == frozenset()):
                del self.groups[key]  # Alertmanager drops a group once nothing is left in it
        self._next_flush = min([g.next_flush for g in self.groups.values()] or [float("inf")])

    def _needs_update(self, g: _Group, firing: frozenset, resolved: frozenset,
                      t: float) -> bool:
        # Alertmanager's DedupStage.needsUpdate
        if g.last_sent is None:
            return bool(firing)
        if not firing <= g.notified_firing:
            return True
        if not firing:
            return bool(g.notified_firing)
        if self.send_resolved and not resolved <= g.notified_resolved:
            return True
        return t - g.last_sent >= self.repeat_interval - 1e-9

    # ------------------------------------------------------------------ rendering

    def _notify(self, t: float, g: _Group, firing: frozenset, resolved: frozenset) -> None:
        shown = [a for lb, a in sorted(g.alerts.items()) if lb in firing
                 or (self.send_resolved and lb in resolved)]
        status = "firing" if firing else "resolved"
        group_vals = " ".join(v for _, v in g.key if v)
        common = _common_labels(shown)
        extra = " ".join(v for k, v in sorted(common.items())
                         if k not in self.group_by and k != "alertname")
        subject = (f"[{status.upper()}{':' + str(len(firing)) if firing else ''}] "
                   f"{group_vals}" + (f" ({extra})" if extra else ""))
        lines = []
        for a in shown:
            lb = ", ".join(f"{k}={v}" for k, v in a.labels if k not in ("alertname",))
            when = a.fired_at if a.state == "firing" else a.resolved_at
            lines.append(f"{a.state.upper()} {a.name} [{a.severity}] {a.summary}")
            lines.append(f"  since {self.engine.clock(when or a.active_at)} ({lb})")
            for k, v in a.annotations:
                if k not in ("summary",):
                    lines.append(f"  {k}: {v}")
        body = "\n".join(lines) + "\n"
        receiver = ", ".join(self.email_to) if self.channel == "email" else self.channel
        self.seq += 1
        n = Notification(
            t=t, channel=self.channel, receiver=receiver, group=g.key, status=status,
            subject=subject, body=body, seq=self.seq,
            alerts=tuple({"id": a.id, "name": a.name, "state": a.state, "severity": a.severity,
                          "summary": a.summary, "labels": dict(a.labels), "source": a.source,
                          "annotations": dict(a.annotations)} for a in shown))
        self.sent += 1
        worst = "critical" if any(a.severity == "critical" and a.state == "firing"
                                  for a in shown) else "warning" if firing else "info"
        data = {"channel": self.channel, "title": subject, "status": status,
                "alerts": [a.name for a in shown], "group": dict(g.key), "seq": self.seq}
        if self.channel == "email":
            if self.sinks and self.smtp_configured:
                msg = f"email to {receiver}: {subject}"
                data["delivery"] = "queued"
            else:
                why = "SMTP not configured" if not self.smtp_configured else "no mail sender"
                msg = f"would email {receiver or 'the on-call'}: {subject} ({why})"
                data["delivery"] = "not-sent"
            self.engine.emit(t, "notify.email", msg, worst, None, **data)
        elif self.channel == "console":
            self.engine.emit(t, "notify.console", f"{subject}: " + "; ".join(
                a.summary for a in shown), worst, None, **data)
        else:
            self.engine.emit(t, "notify.ai-analysis", f"{subject}: " + "; ".join(
                a.summary for a in shown), worst, None, **data)
        for sink in self.sinks:
            sink(n)


def _common_labels(alerts: list[AlertView]) -> dict[str, str]:
    if not alerts:
        return {}
    common = dict(alerts[0].labels)
    for a in alerts[1:]:
        d = dict(a.labels)
        common = {k: v for k, v in common.items() if d.get(k) == v}
    return common


def notifier_of(engine: Engine) -> Notifier | None:
    return next((c for c in engine.controllers if isinstance(c, Notifier)), None)


register(Notifier)
