"""The alerts pane: firing, pending and resolved alerts with severity, age and acknowledgement.

Each row also names the instance (server, node) its labels point at, how long a silence still
mutes it, and marks the anomaly detector's findings (source "detector"). Ages are simulated
time (the snapshot's `t` minus when the alert became active or fired).
"""

from __future__ import annotations

from devsim_tui.sim.snapshot import AlertView, Snapshot
from devsim_tui.ui.database import KeyedTable
from devsim_tui.ui.format import age

ALERT_COLUMNS = (("state", "STATE", 8, "left"), ("sev", "SEVERITY", 8, "left"),
                 ("name", "ALERT", 22, "left"), ("on", "ON", 8, "left"),
                 ("age", "AGE", 6, "right"), ("ack", "ACK", 3, "left"),
                 ("muted", "MUTED", 6, "left"), ("summary", "SUMMARY", 60, "left"))
#: Labels that say where an alert is, in order of preference.
WHERE_LABELS = ("instance", "node", "server", "service", "episode")
STATE_ORDER = {"firing": 0, "pending": 1, "resolved": 2}
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}


def alert_order(alerts: tuple[AlertView, ...]) -> list[AlertView]:
    """Firing first, then pending, then resolved; worst severity first; newest first."""
    return sorted(alerts, key=lambda a: (STATE_ORDER.get(a.state, 3),
                                         SEVERITY_ORDER.get(a.severity, 4),
                                         -(a.fired_at or a.active_at)))


def where(a: AlertView) -> str:
    """The instance / node / service an alert's labels name ("" for estate-wide alerts)."""
    labels = dict(a.labels)
    return next((labels[k] for k in WHERE_LABELS if labels.get(k)), "")


def silenced_for(a: AlertView, now: float) -> float | None:
    """Seconds of silence left, or None when the alert is not silenced."""
    if a.silenced_until is None or a.silenced_until <= now:
        return None
    return a.silenced_until - now


def alert_row(a: AlertView, now: float) -> list[tuple[str, str]]:
    sev_l = {"critical": "bad", "error": "bad", "warning": "warn"}.get(a.severity, "info")
    state_l = {"firing": sev_l, "pending": "warn", "resolved": "muted"}.get(a.state, "")
    since = a.resolved_at if a.state == "resolved" else (a.fired_at or a.active_at)
    left = silenced_for(a, now)
    muted = "muted" if a.state == "resolved" or a.acknowledged or left is not None else ""
    summary = a.summary if a.source != "detector" else f"◆ detector: {a.summary}"
    return [(a.state, state_l), (a.severity, muted or sev_l),
            (a.name, muted or ("info" if a.source == "detector" else "")),
            (where(a) or "-", muted),
            (age(now - since) if since is not None else "-", muted),
            ("yes" if a.acknowledged else "no", "ok" if a.acknowledged else muted),
            (age(left) if left is not None else "", "info"),
            (summary, muted)]


class AlertsTable(KeyedTable):
    """Alerts by id, worst first; with a row per server alert only the rows on screen are
    formatted each frame."""

    def __init__(self, **kwargs) -> None:
        super().__init__(ALERT_COLUMNS, **kwargs)

    def show(self, snap: Snapshot) -> tuple[int, int]:
        """Update the rows; returns (firing, pending) for the pane title."""
        alerts = alert_order(snap.alerts)
        now = snap.t
        self.set_source([a.id for a in alerts], lambda i: alert_row(alerts[i], now))
        firing = sum(a.state == "firing" for a in alerts)
        pending = sum(a.state == "pending" for a in alerts)
        return firing, pending
