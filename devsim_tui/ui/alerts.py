"""The alerts pane: firing, pending and resolved alerts with severity, age and acknowledgement.

Each row also names the instance (server, node) its labels point at, how long a silence still
mutes it, and marks the anomaly detector's findings (source "detector"). The last security
audit's findings are rows too (state "finding", between the pending and the resolved alerts),
so a responder watching alerts sees them; Enter opens a finding's detail like an alert's. Ages
are simulated time (the snapshot's `t` minus when the alert became active or fired).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from devsim_tui.sim.snapshot import AlertView, Snapshot
from devsim_tui.ui.database import KeyedTable
from devsim_tui.ui.format import age
from devsim_tui.ui.linetable import TableColumn

#: At 120x40 (a projector) the pane is ~45 cells: state, severity, name and age stay, the
#: summary takes what is left; zoomed (z) or wider, every column and the whole summary show.
ALERT_COLUMNS = (TableColumn("state", "STATE", 8), TableColumn("sev", "SEV", 4),
                 TableColumn("name", "ALERT", 24, min_width=14),
                 TableColumn("on", "ON", 10, priority=2, min_width=6),
                 TableColumn("age", "AGE", 5, "right"),
                 TableColumn("ack", "ACK", 3, priority=3),
                 TableColumn("muted", "MUTED", 5, priority=3),
                 TableColumn("summary", "SUMMARY", 40, priority=1, flex=True, min_width=24))
#: Severities as four letters (the column stays narrow; the colour says it too).
SEVERITY_SHORT = {"critical": "crit", "error": "err", "warning": "warn", "info": "info"}
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
    return [(a.state, state_l), (SEVERITY_SHORT.get(a.severity, a.severity), muted or sev_l),
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
        self.findings = 0  # security findings listed (the pane's subtitle counts them)

    def show(self, snap: Snapshot) -> tuple[int, int]:
        """Update the rows; returns (firing, pending) for the pane title."""
        from devsim_tui.ui.security import findings_of

        alerts = alert_order(snap.alerts)
        open_ = [a for a in alerts if a.state != "resolved"]
        resolved = alerts[len(open_):]  # resolved ones sort last
        findings = findings_of(snap)
        self.findings = len(findings)
        now = snap.t
        n, m = len(open_), len(findings)

        def cells(i: int) -> list[tuple[str, str]]:
            if i < n:
                return alert_row(open_[i], now)
            if i < n + m:
                return finding_alert_row(findings[i - n], now)
            return alert_row(resolved[i - n - m], now)

        self.set_source([a.id for a in open_] + [f["id"] for f in findings]
                        + [a.id for a in resolved], cells)
        firing = sum(a.state == "firing" for a in alerts)
        pending = sum(a.state == "pending" for a in alerts)
        return firing, pending


class AlertPreview(Static):
    """Under the zoomed alerts table: the selected row whole (its name, where, and the summary
    wrapped), so a projector at 120x40 reads a summary the table had to cut. Hidden unzoomed
    (app.tcss); it follows the cursor and every draw."""

    COMPONENT_CLASSES = {"alert-preview--name", "alert-preview--dim"}

    def on_mount(self) -> None:
        # The pane's table (its sibling) tells it when the cursor moves.
        self.parent.query_one(AlertsTable).followers.append(self.show)

    def show(self, table: KeyedTable) -> None:
        key = table.selected_key
        if key is None:
            self.update("")
            return
        cells = dict(zip((c.key for c in ALERT_COLUMNS), table.get_row(key)))
        on = cells["on"] if cells["on"] not in ("", "-") else ""
        name = self.get_component_rich_style("alert-preview--name")
        dim = self.get_component_rich_style("alert-preview--dim")
        self.update(Text.assemble(("▸ ", dim), (cells["name"], name),
                                  (f" on {on}" if on else "", name), "  ", cells["summary"],
                                  ("  (enter: details)", dim)))


def finding_alert_row(f: dict, now: float) -> list[tuple[str, str]]:
    """A security finding as an alerts-pane row: its severity, the failing control, the fix."""
    sev_l = {"critical": "bad", "error": "bad", "warning": "warn"}.get(f["severity"], "info")
    fix = f" → {f['mitigation']}" if f.get("mitigation") else ""
    return [("finding", sev_l), (SEVERITY_SHORT.get(f["severity"], f["severity"]), sev_l),
            (f["control"], "info"), (f["id"], ""), (age(now - f["found_t"]), ""),
            ("-", "muted"), ("", ""), (f"◆ security audit: {f['detail']}{fix}", "")]


def alert_detail(a: AlertView, now: float, clock) -> Text:
    """Every field of one alert, whole (the table cuts what does not fit; this never does)."""
    text = Text()

    def field(label: str, value: str) -> None:
        text.append(f"{label:<12}", "bold")
        text.append(f"{value}\n")

    field("alert", a.name)
    field("state", a.state)
    field("severity", a.severity)
    field("on", where(a) or "(the whole estate)")
    field("source", a.source)
    field("active", f"{clock(a.active_at)} ({age(now - a.active_at)} ago)")
    if a.fired_at is not None:
        field("fired", clock(a.fired_at))
    if a.resolved_at is not None:
        field("resolved", clock(a.resolved_at))
    field("value", f"{a.value:g}")
    field("acked", "yes" if a.acknowledged else "no")
    left = silenced_for(a, now)
    field("silenced", f"for {age(left)} more" if left is not None else "no")
    field("summary", a.summary)
    for key, value in a.annotations:
        if key != "summary":
            field(key, value)
    for key, value in a.labels:
        field(f"label {key}", value)
    return text


class AlertDetailScreen(ModalScreen[None]):
    """One alert in full: Enter on a row of the alerts pane; Esc closes."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, detail: Text) -> None:
        super().__init__()
        self.detail = detail

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="alert-detail-box"):
            yield Static(self.detail, id="alert-detail")
