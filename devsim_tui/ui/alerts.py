"""The alerts pane: firing, pending and resolved alerts with severity, age and acknowledgement.

Ages are simulated time (the snapshot's `t` minus when the alert became active or fired).
"""

from __future__ import annotations

from devsim_tui.sim.snapshot import AlertView, Snapshot
from devsim_tui.ui.database import KeyedTable
from devsim_tui.ui.format import age

ALERT_COLUMNS = (("state", "STATE", 8, "left"), ("sev", "SEVERITY", 8, "left"),
                 ("name", "ALERT", 22, "left"), ("age", "AGE", 6, "right"),
                 ("ack", "ACK", 3, "left"), ("summary", "SUMMARY", 60, "left"))
STATE_ORDER = {"firing": 0, "pending": 1, "resolved": 2}
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}


def alert_order(alerts: tuple[AlertView, ...]) -> list[AlertView]:
    """Firing first, then pending, then resolved; worst severity first; newest first."""
    return sorted(alerts, key=lambda a: (STATE_ORDER.get(a.state, 3),
                                         SEVERITY_ORDER.get(a.severity, 4),
                                         -(a.fired_at or a.active_at)))


def alert_row(a: AlertView, now: float) -> list[tuple[str, str]]:
    sev_l = {"critical": "bad", "error": "bad", "warning": "warn"}.get(a.severity, "info")
    state_l = {"firing": sev_l, "pending": "warn", "resolved": "muted"}.get(a.state, "")
    since = a.resolved_at if a.state == "resolved" else (a.fired_at or a.active_at)
    muted = "muted" if a.state == "resolved" or a.acknowledged else ""
    return [(a.state, state_l), (a.severity, muted or sev_l), (a.name, muted),
            (age(now - since) if since is not None else "-", muted),
            ("yes" if a.acknowledged else "no", "ok" if a.acknowledged else muted),
            (a.summary, muted)]


class AlertsTable(KeyedTable):
    """Alerts by id, worst first."""

    def __init__(self, **kwargs) -> None:
        super().__init__(ALERT_COLUMNS, **kwargs)

    def show(self, snap: Snapshot) -> tuple[int, int]:
        """Update the rows; returns (firing, pending) for the pane title."""
        alerts = alert_order(snap.alerts)
        self.set_rows([(a.id, alert_row(a, snap.t)) for a in alerts])
        firing = sum(a.state == "firing" for a in alerts)
        pending = sum(a.state == "pending" for a in alerts)
        return firing, pending
