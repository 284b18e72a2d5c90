"""The control room's panes, as data: one `PaneSpec` per pane (key, title, digit, column, how
to build it, what its digit focuses, how a frame draws it, what `/` filters). Compose, titles,
digit bindings, focus, drawing, filters and the palette's "focus" entries all loop over
`PANE_SPECS`; adding a pane is one entry (a subclass may extend the tuple).

Also home of `W`, the panes' and screens' classes imported on first use, so the first frame of a
CLI start waits for none of them (numpy, the tables). Draw functions take the app and the
snapshot and return the pane's subtitle (None: leave it); they never touch the world.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from devsim_tui.ui.format import WINDOWS, sim_clock

if TYPE_CHECKING:
    from textual.widget import Widget

    from devsim_tui.sim.snapshot import Snapshot


class Widgets:
    """The panes and screens, each imported on first use.

    A CLI start shows the header and the footer first and builds the world in a worker; that
    worker also imports these (numpy, the tables), so the first frame waits for none of them.
    """

    WHERE = {
        "AlertsTable": "alerts", "AlertDetailScreen": "alerts", "alert_detail": "alerts",
        "ConfirmScreen": "confirm", "DatabasePane": "database",
        "KeyedTable": "database", "DetailScreen": "detail", "EventLog": "events",
        "HelpScreen": "help", "MetricsPane": "metrics", "metrics_for": "metrics",
        "OperationsPane": "operations", "chaos_arguments": "operations",
        "chaos_types": "operations", "deploy_arguments": "operations", "fault_ids": "operations",
        "faults_of": "operations", "rollback_arguments": "operations",
        "ServersTable": "servers", "RegionSummary": "servers", "AlertPreview": "alerts",
        "Router": "routing", "Context": "routing", "ScalerDetailScreen": "scaler",
        "SecurityPane": "security", "FindingDetailScreen": "security",
        "finding_detail": "security", "findings_of": "security",
    }

    def __getattr__(self, name: str) -> Any:
        try:
            module = self.WHERE[name]
        except KeyError:
            raise AttributeError(name) from None
        value = getattr(importlib.import_module(f"devsim_tui.ui.{module}"), name)
        setattr(self, name, value)
        return value

    #: The modules the panes are built from (the rest: dialogs, help, the router).
    PANES = frozenset({"alerts", "database", "events", "metrics", "operations", "security",
                       "servers"})

    def load_panes(self) -> None:
        """Import what the panes are built from now (from the start-up worker)."""
        for name, module in self.WHERE.items():
            if module in self.PANES:
                getattr(self, name)

    def load_all(self) -> None:
        """Import them all now (from the start-up worker, off the event loop)."""
        for name in self.WHERE:
            getattr(self, name)


W = Widgets()


@dataclass(frozen=True)
class PaneSpec:
    """One pane of the main screen (its container's id is `{key}-pane`)."""

    key: str
    title: str
    digit: int  # the key that focuses it, and the number in its title
    column: str  # "left", "right", or "side" (under the metrics, beside or below them)
    build: Callable[[Any], Widget]  # app -> the pane's content
    focus: str  # selector of the widget its digit focuses
    draw: Callable[[Any, Snapshot], str | None] | None = None  # -> subtitle, when visible
    filter: str | None = None  # selector of the widget `/` filters (has `set_filter`)
    footer: Callable[[Any], Widget] | None = None  # app -> a line under the content

    @property
    def filter_box(self) -> str:
        """The id of its `/` line (the servers' is plain `filter`)."""
        return "filter" if self.key == "servers" else f"{self.key}-filter"


def _draw_servers(app: Any, snap: Snapshot) -> None:
    app.query_one(W.ServersTable).show(snap)
    app.query_one("#region-summary", W.RegionSummary).show(snap)
    app._set_servers_subtitle(len(snap.fleet))
    return None


def _draw_database(app: Any, snap: Snapshot) -> str:
    app.query_one(W.DatabasePane).show(snap)
    table = app.query_one("#db-table", W.KeyedTable)
    return f"filter /{table.filter_text} (esc clears)" if table.filter_text else ""


def _draw_metrics(app: Any, snap: Snapshot) -> str:
    app.query_one(W.MetricsPane).show(app.world, snap, WINDOWS[app.window],
                                      app.profile.slo.p99_latency_ms)
    return f"window {app.window} (w)"


def _draw_alerts(app: Any, snap: Snapshot) -> str:
    table = app.query_one(W.AlertsTable)
    firing, pending = table.show(snap)
    if app.screen.maximized is not None and app.screen.maximized.id == "alerts-pane":
        app.query_one("#alerts-preview", W.AlertPreview).show(table)
    note = f"filter /{table.filter_text} · " if table.filter_text else ""
    found = f" · {table.findings} finding{'s' if table.findings != 1 else ''}" \
        if table.findings else ""
    return f"{note}{firing} firing · {pending} pending{found}"


def _draw_events(app: Any, _snap: Snapshot) -> str:
    # The log itself is pulled every frame, shown or not (its events also make the toasts).
    log = app.query_one("#events", W.EventLog)
    return f"filter /{log.filter_text} (esc clears)" if log.filter_text else ""


def _draw_security(app: Any, snap: Snapshot) -> str:
    maximized = app.screen.maximized
    return app.query_one(W.SecurityPane).show(
        snap, maximized is not None and maximized.id == "security-pane")


def _draw_operations(app: Any, snap: Snapshot) -> str:
    return app.query_one(W.OperationsPane).show(snap)


PANE_SPECS: tuple[PaneSpec, ...] = (
    PaneSpec("servers", "Servers", 1, "left",
             lambda app: W.ServersTable(app.profile.slo.p99_latency_ms, id="servers"),
             "#servers", _draw_servers, filter="#servers",
             footer=lambda app: W.RegionSummary(id="region-summary")),
    PaneSpec("database", "Database", 2, "left",
             lambda app: W.DatabasePane(app.profile.cache.enabled, app.profile.streaming.enabled,
                                        app.profile.database.topology == "multi-master",
                                        id="database"),
             "#db-table", _draw_database, filter="#db-table"),
    PaneSpec("metrics", "Metrics", 3, "right", lambda app: W.MetricsPane(id="metrics"),
             "#metrics", _draw_metrics),
    PaneSpec("alerts", "Alerts", 4, "side", lambda app: W.AlertsTable(id="alerts"),
             "#alerts", _draw_alerts, filter="#alerts",
             footer=lambda app: W.AlertPreview(id="alerts-preview")),
    PaneSpec("security", "Security", 8, "side",
             lambda app: W.SecurityPane(lambda t: sim_clock(app._start_hour, t), id="security"),
             "#security-findings", _draw_security),
    PaneSpec("events", "Events", 5, "side",
             lambda app: W.EventLog(app._start_hour, id="events"),
             "#events", _draw_events, filter="#events"),
    PaneSpec("operations", "Operations", 6, "left",
             lambda app: W.OperationsPane(lambda t: sim_clock(app._start_hour, t),
                                          id="operations"),
             "#faults-table", _draw_operations),
)
