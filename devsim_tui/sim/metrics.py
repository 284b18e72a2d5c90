"""The estate's metrics under Prometheus names: one catalogue for the exporter and the alert rules.

`METRICS` declares every metric once (name, type, help, labels) following Prometheus' naming
conventions: base units in the name (`_seconds`, `_bytes`, `_ratio`), `_total` on counters only.
`collect(view, wanted)` turns a snapshot-like view into samples, so the exporter serves exactly
what the rules evaluate; rules evaluated inside the engine ask only for the names they use, which
keeps scrapes cheap on large fleets. Never imports the UI; never reads the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from devsim_tui.sim.extensions import CLOUD, SECURITY
from devsim_tui.sim.snapshot import STATE_NAMES, READY

Labels = tuple[tuple[str, str], ...]  # sorted by label name
#: name -> (label sets, values); label sets and values have the same length.
Samples = dict[str, tuple[list[Labels], list[float]]]


@dataclass(frozen=True)
class Metric:
    name: str
    type: str  # counter | gauge
    help: str
    labels: tuple[str, ...] = ()


M = Metric
METRICS: tuple[Metric, ...] = (
    # Fleet (the app tier behind its load balancer)
    M("devsim_requests_total", "counter", "Requests offered to the app tier", ("service",)),
    M("devsim_requests_failed_total", "counter",
      "Requests that failed (errored, timed out, rejected or reset)", ("service",)),
    M("devsim_requests_served_total", "counter", "Requests completed successfully",
      ("service",)),
    M("devsim_requests_rejected_total", "counter",
      "Requests rejected with HTTP 503 (server queue full, or no ready server)", ("service",)),
    M("devsim_requests_timed_out_total", "counter",
      "Requests that took longer than the client timeout", ("service",)),
    M("devsim_requests_reset_total", "counter",
      "Requests whose connection was reset by a dying server (kill, crash, OOM)",
      ("service",)),
    M("devsim_requests_in_flight", "gauge",
      "Requests inside the servers (in service or queued)", ("service",)),
    M("devsim_request_error_ratio", "gauge",
      "Share of this tick's requests that failed", ("service",)),
    M("devsim_request_duration_p50_seconds", "gauge", "Median response time", ("service",)),
    M("devsim_request_duration_p99_seconds", "gauge",
      "99th percentile response time", ("service",)),
    M("devsim_request_duration_mean_seconds", "gauge", "Mean response time", ("service",)),
    M("devsim_offered_requests_per_second", "gauge", "Offered load this tick", ("service",)),
    M("devsim_servers", "gauge", "App servers by lifecycle state", ("service", "state")),
    M("devsim_servers_desired", "gauge", "Replicas the scaler wants", ("service",)),
    M("devsim_forecast_requests_per_second", "gauge",
      "Predictive scaler: offered request rate forecast one scale-up lead time ahead",
      ("service",)),
    M("devsim_cpu_utilization_ratio", "gauge",
      "Mean CPU utilisation of ready servers (of the request)", ("service",)),
    M("devsim_memory_utilization_ratio", "gauge",
      "Mean memory of ready servers (of the request)", ("service",)),
    M("devsim_disk_utilization_ratio", "gauge", "Fullest app server disk", ("service",)),
    M("devsim_network_receive_bytes_per_second", "gauge", "Inbound traffic", ("service",)),
    M("devsim_network_transmit_bytes_per_second", "gauge", "Outbound traffic", ("service",)),
    M("devsim_build_duration_seconds", "gauge", "Last hot-reload build time", ("service",)),
    # Per server
    M("devsim_server_up", "gauge", "1 if the server is ready and serving",
      ("instance", "region", "version")),
    M("devsim_server_cpu_utilization_ratio", "gauge", "CPU utilisation of the request",
      ("instance", "region", "version")),
    M("devsim_server_memory_bytes", "gauge", "Resident memory",
      ("instance", "region", "version")),
    M("devsim_server_memory_utilization_ratio", "gauge", "Resident memory of the request",
      ("instance", "region", "version")),
    M("devsim_server_disk_utilization_ratio", "gauge", "Disk used",
      ("instance", "region", "version")),
    M("devsim_server_requests_served_total", "counter",
      "Requests served by the current container (starts at 0 when it restarts)",
      ("instance", "region", "version")),
    M("devsim_server_request_errors_total", "counter",
      "Requests failed (errored, timed out, rejected) by the current container",
      ("instance", "region", "version")),
    M("devsim_server_request_duration_p99_seconds", "gauge", "99th percentile response time",
      ("instance", "region", "version")),
    M("devsim_server_restarts_total", "counter", "Container restarts",
      ("instance", "region", "version")),
    # Placement in regions and clouds (sim/cloud.py, docs/cloud.md)
    M("devsim_region_nodes_ready", "gauge",
      "1 if the region's nodes are Ready, 0 while they are unreachable or NotReady",
      ("region", "cloud")),
    M("devsim_region_pods", "gauge", "Pods bound to the region's nodes (evicted ones included)",
      ("region", "cloud")),
    M("devsim_region_pods_ready", "gauge", "Ready pods in the region", ("region", "cloud")),
    M("devsim_region_pod_capacity", "gauge", "Pods the region's nodes can hold",
      ("region", "cloud")),
    M("devsim_pod_evictions_total", "counter",
      "Pods evicted by the node.kubernetes.io/unreachable:NoExecute taint"),
    M("devsim_pods_rescheduled_total", "counter",
      "Replacements of evicted pods bound to another region"),
    M("devsim_cloud_egress_bytes_total", "counter",
      "Bytes of cross-cloud traffic leaving the cloud (requests routed to, and responses "
      "from, pods in another cloud than the ingress)", ("cloud",)),
    M("devsim_cloud_egress_cost_dollars_total", "counter",
      "What the cloud bills for that egress, at app.placement.egress_usd_per_gb", ("cloud",)),
    # Database
    M("devsim_db_up", "gauge", "1 if the node is running", ("node", "role", "region")),
    M("devsim_db_writable", "gauge", "1 if some node accepts writes"),
    M("devsim_db_replication_lag_seconds", "gauge", "Replay lag behind the primary",
      ("node", "role", "region")),
    M("devsim_db_replication_lag_bytes", "gauge", "WAL not yet replayed",
      ("node", "role", "region")),
    M("devsim_db_connections", "gauge", "Open server connections", ("node", "role", "region")),
    M("devsim_db_max_connections", "gauge", "PostgreSQL max_connections",
      ("node", "role", "region")),
    M("devsim_db_queries_per_second", "gauge", "Queries served", ("node", "role", "region")),
    M("devsim_db_cpu_utilization_ratio", "gauge", "CPU utilisation",
      ("node", "role", "region")),
    M("devsim_db_disk_utilization_ratio", "gauge", "Data disk used", ("node", "role", "region")),
    M("devsim_db_last_backup_age_seconds", "gauge", "Age of the node's last base backup",
      ("node", "role", "region")),
    M("devsim_db_lost_writes_total", "counter",
      "Acknowledged writes lost (failovers, restores, a region lost without geo-redundancy)"),
    M("devsim_db_write_conflicts_total", "counter",
      "Multi-master: the node's writes discarded by last-update-wins conflict resolution",
      ("node", "role", "region")),
    M("devsim_db_mesh_write_conflicts_total", "counter",
      "Multi-master: write conflicts resolved in the whole cluster (each discards one write)"),
    M("devsim_db_mesh_split_brain", "gauge",
      "Multi-master: 1 while the mesh is partitioned and both sides accept writes"),
    M("devsim_db_restore_point_age_seconds", "gauge", "Age of the newest restore point"),
    M("devsim_db_query_plan_cost_ratio", "gauge",
      "Mean work per query relative to the healthy plans (a plan regression raises it)"),
    M("devsim_db_plan_regressions_total", "counter", "Query plans that flipped to a worse one"),
    # Cache
    M("devsim_cache_hit_ratio", "gauge", "Cache hit ratio"),
    M("devsim_cache_target_hit_ratio", "gauge", "Hit ratio the team expects (cache.hit_ratio)"),
    M("devsim_cache_node_up", "gauge", "1 if the cache node is running", ("node", "role")),
    # Event streaming (kafka-exporter's kafka_consumergroup_lag, per group)
    M("devsim_kafka_consumergroup_lag", "gauge", "Messages produced but not yet consumed",
      ("consumergroup",)),
    M("devsim_kafka_consumergroup_lag_seconds", "gauge",
      "Consumer group lag in seconds of the group's throughput", ("consumergroup",)),
    M("devsim_kafka_broker_up", "gauge", "1 if the event-stream broker is up"),
    M("devsim_kafka_produced_events_per_second", "gauge", "Events the app publishes"),
    M("devsim_kafka_lost_events_total", "counter",
      "Events producers dropped after delivery.timeout.ms"),
    M("devsim_kafka_consumergroup_data_age_seconds", "gauge",
      "Seconds since the group's oldest unread event was produced (0 when caught up)",
      ("consumergroup", "feeds")),
    M("devsim_kafka_stale_responses_total", "counter",
      "Responses served with derived data older than streaming.stale_after_seconds"),
    M("devsim_kafka_notifications_sent_total", "counter",
      "Notifications sent by notifications consumer groups"),
    M("devsim_kafka_late_notifications_total", "counter",
      "Notifications sent later than streaming.notification_slo_seconds after their event"),
    # SLO and the simulation itself
    M("devsim_slo_availability_ratio", "gauge", "Availability since the start"),
    M("devsim_slo_error_budget_burned_ratio", "gauge", "Share of the window's budget used"),
    M("devsim_slo_burn_rate_1h_ratio", "gauge", "Error budget burn rate over the last hour"),
    M("devsim_simulated_time_seconds", "gauge", "Simulated seconds since the start"),
    M("devsim_alerts", "gauge", "Alerts held by the engine",
      ("alertname", "severity", "alertstate", "source")),
    # Security posture (sim/security.py, docs/security.md)
    M("devsim_certificate_expiry_seconds", "gauge",
      "Seconds until the endpoint's TLS certificate expires (negative once expired; like the "
      "blackbox exporter's probe_ssl_earliest_cert_expiry minus time())", ("endpoint", "issuer")),
    M("devsim_certificate_renewals_total", "counter", "Certificate renewals", ("endpoint",)),
    M("devsim_security_posture_score_ratio", "gauge", "Share of applicable controls passing"),
    M("devsim_security_control_passing", "gauge", "1 if the control passes, 0 if it fails",
      ("control",)),
    M("devsim_security_findings", "gauge", "Open findings of the last audit", ("severity",)),
    M("devsim_security_audits_total", "counter", "Security audits run"),
    M("devsim_security_intrusions", "gauge", "Attacker sessions inside the estate"),
    M("devsim_security_policy_denials_per_second", "gauge",
      "Calls denied by the zero-trust service policy"),
    M("devsim_security_policy_denials_total", "counter",
      "Calls denied by the zero-trust service policy"),
    M("devsim_security_login_failures_total", "counter", "Failed database logins"),
    M("devsim_security_unknown_source_logins_total", "counter",
      "Successful logins from an unknown source"),
    M("devsim_security_anomalous_queries_per_second", "gauge",
      "Queries issued by attacker sessions"),
    M("devsim_security_egress_bytes_per_second", "gauge", "Data leaving through an exfiltration"),
    M("devsim_security_records_exfiltrated_total", "counter", "Records copied out"),
    M("devsim_security_records_exposed_total", "counter",
      "Records copied out in plaintext (no encryption where they were taken)"),
    M("devsim_security_debug_endpoint_open", "gauge", "1 if the Node inspector port is reachable"),
)
BY_NAME = {m.name: m for m in METRICS}
NAMES = frozenset(BY_NAME)


_label_cache: list[Any] = [None, None, None, None, None, []]


def _server_labels(fleet: Any, versions: tuple[str, ...], regions: tuple[str, ...]) -> list[Labels]:
    """Per-server label sets, rebuilt only when membership, versions or regions change.

    The engine replaces a column whenever it changes (it never mutates published arrays), so
    identity of the name tuple and of the version/region columns tells whether the labels of
    the last scrape still hold; on a steady 10,000-server fleet this saves building 10,000
    tuples per scrape.
    """
    c = _label_cache
    if not (c[0] is fleet.names and c[1] is fleet.region and c[2] is fleet.version
            and c[3] == versions and c[4] == regions):
        where = (*regions, "")  # a Pending pod is in no region yet
        labels = [(("instance", n), ("region", where[r]), ("version", versions[v]))
                  for n, r, v in zip(fleet.names, fleet.region.tolist(), fleet.version.tolist())]
        _label_cache[:] = [fleet.names, fleet.region, fleet.version, versions, regions, labels]
    return c[5]


def collect(view: Any, wanted: Iterable[str] | None = None) -> Samples:
    """Samples of one moment from a snapshot-like view (attributes of `Snapshot`).

    `view` needs `t`, `agg`, `fleet`, `db`, `cache`, `versions`, `regions`, `service` (or the
    fleet's name prefix is used), `desired` via agg, and optionally `alerts` and `max_conns`.
    Metrics without a value at this moment (no cache, no build) are simply absent.
    """
    want = NAMES if wanted is None else frozenset(wanted)
    out: Samples = {}
    a = view.agg
    svc = (("service", view.service),)

    def one(name: str, value: float | None, labels: Labels = svc) -> None:
        if name in want and value is not None:
            out[name] = ([labels], [float(value)])

    one("devsim_requests_total", a.offered_total)
    one("devsim_requests_failed_total", a.failed_total)
    one("devsim_requests_served_total", a.served_total)
    one("devsim_requests_rejected_total", a.rejected_total)
    one("devsim_requests_timed_out_total", a.timed_out_total)
    one("devsim_requests_reset_total", a.reset_total)
    one("devsim_requests_in_flight", a.queued)
    one("devsim_request_error_ratio", a.error_rate)
    one("devsim_request_duration_p50_seconds", a.p50_ms / 1000.0)
    one("devsim_request_duration_p99_seconds", a.p99_ms / 1000.0)
    one("devsim_request_duration_mean_seconds", a.mean_ms / 1000.0)
    one("devsim_offered_requests_per_second", a.offered_rps)
    one("devsim_servers_desired", a.desired)
    one("devsim_forecast_requests_per_second", getattr(a, "forecast_rps", None))
    one("devsim_cpu_utilization_ratio", a.cpu)
    one("devsim_memory_utilization_ratio", a.memory_pct / 100.0)
    one("devsim_disk_utilization_ratio", a.disk_pct / 100.0)
    one("devsim_network_receive_bytes_per_second", a.net_in_kbps * 125.0)
    one("devsim_network_transmit_bytes_per_second", a.net_out_kbps * 125.0)
    one("devsim_build_duration_seconds", a.build_time_s)
    one("devsim_db_writable", 1.0 if a.db_writable else 0.0, ())
    one("devsim_db_lost_writes_total", a.lost_writes, ())
    one("devsim_db_restore_point_age_seconds", a.restore_point_age_s, ())
    plans = getattr(view, "query_plans", None)
    if plans is not None:
        one("devsim_db_query_plan_cost_ratio", plans["cost_factor"], ())
        one("devsim_db_plan_regressions_total", plans["regressions"], ())
    mesh = getattr(view, "mesh", None)
    if mesh is not None:
        one("devsim_db_mesh_write_conflicts_total", mesh["conflicts"], ())
        one("devsim_db_mesh_split_brain", 1.0 if mesh["split_brain"] else 0.0, ())
    one("devsim_slo_availability_ratio", a.availability, ())
    one("devsim_slo_error_budget_burned_ratio", a.error_budget_burned, ())
    one("devsim_slo_burn_rate_1h_ratio", a.burn_rate_1h, ())
    one("devsim_simulated_time_seconds", view.t, ())

    fleet = view.fleet
    if "devsim_servers" in want:
        counts = np.bincount(fleet.state, minlength=len(STATE_NAMES)) if len(fleet) else \
            np.zeros(len(STATE_NAMES), np.int64)
        out["devsim_servers"] = (
            [(("service", view.service), ("state", s)) for s in STATE_NAMES if s != "terminated"],
            [float(counts[i]) for i, s in enumerate(STATE_NAMES) if s != "terminated"])
    per_server = {
        "devsim_server_up": lambda: (fleet.state == READY).astype(np.float64),
        "devsim_server_cpu_utilization_ratio": lambda: fleet.cpu,
        "devsim_server_memory_bytes": lambda: fleet.memory_mb * 1048576.0,
        "devsim_server_memory_utilization_ratio": lambda: fleet.memory_pct / 100.0,
        "devsim_server_disk_utilization_ratio": lambda: fleet.disk_pct / 100.0,
        "devsim_server_requests_served_total": lambda: fleet.served_total,
        "devsim_server_request_errors_total": lambda: fleet.errors_total,
        "devsim_server_request_duration_p99_seconds": lambda: fleet.p99_ms / 1000.0,
        "devsim_server_restarts_total": lambda: fleet.restarts,
    }
    needed = [n for n in per_server if n in want]
    if needed and len(fleet):
        labels = _server_labels(fleet, view.versions, view.regions)
        for name in needed:
            values = np.asarray(per_server[name](), np.float64)
            if name == "devsim_server_request_duration_p99_seconds":
                # a server that is not ready has no latency: no sample (not a 0)
                keep = np.flatnonzero(~np.isnan(values))
                out[name] = ([labels[i] for i in keep.tolist()], values[keep].tolist())
            else:
                out[name] = (labels, values.tolist())

    db_fields = {
        "devsim_db_up": lambda n: 1.0 if n.state in ("running", "backing-up") else 0.0,
        "devsim_db_replication_lag_seconds": lambda n: n.lag_seconds,
        "devsim_db_replication_lag_bytes": lambda n: n.lag_bytes,
        "devsim_db_connections": lambda n: n.connections,
        "devsim_db_max_connections": lambda n: n.max_connections,
        "devsim_db_queries_per_second": lambda n: n.qps,
        "devsim_db_cpu_utilization_ratio": lambda n: n.cpu,
        "devsim_db_disk_utilization_ratio": lambda n: n.disk_pct / 100.0,
        "devsim_db_last_backup_age_seconds": lambda n: n.last_backup_age_s,
        "devsim_db_write_conflicts_total": lambda n: n.conflicts if mesh is not None else None,
    }
    for name, fn in db_fields.items():
        if name not in want:
            continue
        labels, values = [], []
        for node in view.db:
            v = fn(node)
            if v is not None:
                labels.append((("node", node.name), ("region", node.region),
                               ("role", node.role)))
                values.append(float(v))
        out[name] = (labels, values)

    cache = view.cache
    if cache is not None:
        one("devsim_cache_hit_ratio", cache.hit_ratio, ())
        one("devsim_cache_target_hit_ratio", cache.target_hit_ratio, ())
        if "devsim_cache_node_up" in want:
            out["devsim_cache_node_up"] = (
                [(("node", n.name), ("role", n.role)) for n in cache.nodes],
                [1.0 if n.state == "running" else 0.0 for n in cache.nodes])

    cloud = getattr(view, "cloud", None)
    if cloud:
        _cloud_samples(cloud, want, out)
    sec = getattr(view, "security", None)
    if sec:
        _security_samples(sec, want, out)
    stream = getattr(view, "event_stream", None)
    if stream is not None:
        groups = stream["groups"]
        for name, key in (("devsim_kafka_consumergroup_lag", "lag_messages"),
                          ("devsim_kafka_consumergroup_lag_seconds", "lag_seconds")):
            if name in want:
                out[name] = ([(("consumergroup", g["name"]),) for g in groups],
                             [float(g[key]) for g in groups])
        one("devsim_kafka_broker_up", 1.0 if stream["broker_up"] else 0.0, ())
        one("devsim_kafka_produced_events_per_second", stream["produce_rate"], ())
        one("devsim_kafka_lost_events_total", stream["lost_events"], ())
        if "devsim_kafka_consumergroup_data_age_seconds" in want:
            out["devsim_kafka_consumergroup_data_age_seconds"] = (
                [(("consumergroup", g["name"]), ("feeds", g["feeds"])) for g in groups],
                [float(g["age_seconds"]) for g in groups])
        one("devsim_kafka_stale_responses_total", stream["stale_responses"], ())
        one("devsim_kafka_notifications_sent_total", stream["notifications_sent"], ())
        one("devsim_kafka_late_notifications_total", stream["late_notifications"], ())

    alerts = getattr(view, "alerts", None)
    if alerts is not None and "devsim_alerts" in want:
        counts: dict[Labels, float] = {}
        for al in alerts:
            key = (("alertname", al.name), ("alertstate", al.state), ("severity", al.severity),
                   ("source", al.source))
            counts[key] = counts.get(key, 0.0) + 1.0
        out["devsim_alerts"] = (list(counts), list(counts.values()))
    return out


def _cloud_samples(cloud: dict, want: frozenset[str], out: Samples) -> None:
    """Samples of the placement controller's published state (`CloudController.state`)."""
    regions = cloud["regions"]
    labels = [(("cloud", r["cloud"]), ("region", r["name"])) for r in regions]
    for name, value in (("devsim_region_nodes_ready", lambda r: r["status"] == "Ready"),
                        ("devsim_region_pods", lambda r: r["pods"]),
                        ("devsim_region_pods_ready", lambda r: r["ready"]),
                        ("devsim_region_pod_capacity", lambda r: r["capacity"])):
        if name in want:
            out[name] = (labels, [float(value(r)) for r in regions])
    for name, key in (("devsim_pod_evictions_total", "evictions_total"),
                      ("devsim_pods_rescheduled_total", "rescheduled_total")):
        if name in want:
            out[name] = ([()], [float(cloud[key])])
    egress = cloud["egress"]
    for name, key in (("devsim_cloud_egress_bytes_total", "bytes"),
                      ("devsim_cloud_egress_cost_dollars_total", "usd")):
        if name in want and egress:
            out[name] = ([(("cloud", c),) for c in egress],
                         [float(v[key]) for v in egress.values()])


def _security_samples(sec: dict, want: frozenset[str], out: Samples) -> None:
    """Samples of the security controller's published state (`SecurityController.state`)."""

    def put(name: str, labels: list[Labels], values: list[float]) -> None:
        if name in want:
            out[name] = (labels, [float(v) for v in values])

    certs = sec.get("certificates", [])
    put("devsim_certificate_expiry_seconds",
        [(("endpoint", c["endpoint"]), ("issuer", c["issuer"])) for c in certs],
        [c["expires_in_s"] for c in certs])
    put("devsim_certificate_renewals_total", [(("endpoint", c["endpoint"]),) for c in certs],
        [c["renewals"] for c in certs])
    put("devsim_security_posture_score_ratio", [()], [sec["score"] / 100.0])
    ctl = [c for c in sec["controls"] if c["status"] != "n/a"]
    put("devsim_security_control_passing", [(("control", c["control"]),) for c in ctl],
        [c["status"] == "pass" for c in ctl])
    sev: dict[str, float] = {"critical": 0.0, "warning": 0.0}
    for f in sec["findings"]:
        sev[f["severity"]] = sev.get(f["severity"], 0.0) + 1.0
    put("devsim_security_findings", [(("severity", k),) for k in sev], list(sev.values()))
    put("devsim_security_audits_total", [()], [sec["audits_run"]])
    put("devsim_security_intrusions", [()], [sec["intrusions"]])
    r, tot = sec["rates"], sec["totals"]
    put("devsim_security_policy_denials_per_second", [()], [r["denials_per_s"]])
    put("devsim_security_policy_denials_total", [()], [tot["denials"]])
    put("devsim_security_login_failures_total", [()], [tot["login_failures"]])
    put("devsim_security_unknown_source_logins_total", [()], [tot["unknown_source_logins"]])
    put("devsim_security_anomalous_queries_per_second", [()], [r["anomalous_queries_per_s"]])
    put("devsim_security_egress_bytes_per_second", [()], [r["egress_bytes_per_s"]])
    put("devsim_security_records_exfiltrated_total", [()], [tot["records_exfiltrated"]])
    put("devsim_security_records_exposed_total", [()], [tot["records_exposed"]])
    put("devsim_security_debug_endpoint_open", [()], [sec["debug_endpoint_open"]])


class EngineView:
    """What `collect` needs, read straight from an engine mid-tick (no full snapshot built)."""

    __slots__ = ("t", "agg", "fleet", "db", "cache", "versions", "regions", "service", "alerts",
                 "security", "event_stream", "query_plans", "cloud", "mesh")

    def __init__(self, engine: Any, agg: Any, wanted: frozenset[str]):
        self.t = engine.t
        self.agg = agg
        self.service = engine.profile.app.service
        self.versions = tuple(engine.versions)
        self.regions = tuple(engine.profile.app.regions)
        self.fleet = engine.fleet.view(engine.t) if any(
            n.startswith("devsim_server") for n in wanted) else _NoFleet(engine.fleet)
        self.db = engine.db.views(engine.t, engine.profile.database.max_connections) if any(
            n.startswith("devsim_db_") for n in wanted) else ()
        self.cache = engine.cache.view() if engine.cache is not None else None
        self.alerts = None
        sec = engine.controller(SECURITY) if any(n.startswith(("devsim_security", "devsim_certificate"))
                                for n in wanted) else None
        self.security = sec.state() if sec is not None else None
        self.query_plans = engine.db.planner.view(engine.t) if any(
            n.startswith(("devsim_db_query_plan", "devsim_db_plan")) for n in wanted) else None
        cloud = engine.controller(CLOUD) if any(
            n.startswith(("devsim_region", "devsim_pod", "devsim_cloud")) for n in wanted) else None
        self.cloud = cloud.state() if cloud is not None else None
        self.mesh = engine.db.mesh.view() if engine.db.mesh is not None and any(
            n.startswith(("devsim_db_mesh", "devsim_db_write_conflicts")) for n in wanted) \
            else None
        self.event_stream = None
        if any(n.startswith("devsim_kafka") for n in wanted):
            from devsim_tui.sim.chaos import ChaosController

            ctl = next((c for c in engine.controllers if isinstance(c, ChaosController)), None)
            if ctl is not None and ctl.stream is not None:
                self.event_stream = ctl.stream.view()


class _NoFleet:
    """Stands in for a FleetView when no per-server metric is wanted (only states counted)."""

    def __init__(self, fleet: Any):
        self.state = fleet.state

    def __len__(self) -> int:
        return len(self.state)


class SnapshotView:
    """A `collect` view of a published Snapshot (what the exporter scrapes)."""

    __slots__ = ("t", "agg", "fleet", "db", "cache", "versions", "regions", "service", "alerts",
                 "security", "event_stream", "query_plans", "cloud", "mesh")

    def __init__(self, snap: Any, service: str):
        self.t, self.agg, self.fleet, self.db = snap.t, snap.agg, snap.fleet, snap.db
        self.cache, self.versions, self.regions = snap.cache, snap.versions, snap.regions
        self.alerts = snap.alerts
        self.security = snap.security
        self.service = service
        self.event_stream = (snap.chaos or {}).get("event_stream")
        self.query_plans = snap.query_plans
        self.cloud = snap.cloud
        self.mesh = snap.mesh


def engine_sampler(engine: Any):
    """A sampler for `AlertEngine`: the wanted metrics of the engine at its current tick."""

    def sample(t: float, agg: Any, wanted: frozenset[str]) -> Samples:
        return collect(EngineView(engine, agg, wanted), wanted)

    return sample
