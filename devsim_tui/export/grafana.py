"""Grafana dashboards over the exporter's metric names, one per profile (contrib/grafana/).

    python -m devsim_tui.export.grafana contrib/grafana     # regenerate the JSON files

The panels are what a production on-call reads first: request rate, error ratio, p99 against
the SLO, saturation, replicas vs desired, database lag and writability, backups, SLO burn and the
engine's alerts, plus each profile's own (hot-reload build time for development, cache hit ratio
where a cache runs). Queries select `job="$job"` (a variable listing the jobs that scrape this
profile's exporter, from `devsim_info`), so several estates can share one Prometheus. Rate
windows are `$__rate_interval` and `rate()` appears only in ratios, so the panels read the same
at any `--speed` (docs/exporter.md). Never imported by the engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job="$job"'
RI = "$__rate_interval"


def _err_ratio(window: str = RI) -> str:
    return (f"sum(rate(devsim_requests_failed_total{{{SEL}}}[{window}]))"
            f" / sum(rate(devsim_requests_total{{{SEL}}}[{window}]))")


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref,
            "range": True}


def _panel(pid: int, title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int,
           w: int = 8, h: int = 8, kind: str = "timeseries", description: str = "",
           thresholds: list[tuple[str, float | None]] | None = None,
           max_: float | None = None) -> dict[str, Any]:
    steps = [{"color": c, "value": v} for c, v in (thresholds or [("green", None)])]
    defaults: dict[str, Any] = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if max_ is not None:
        defaults["max"] = max_
        defaults["min"] = 0
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                              "showPoints": "never", "spanNulls": False}
    panel = {
        "id": pid, "type": kind, "title": title, "description": description,
        "datasource": DS, "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [_target(e, lg, chr(ord("A") + i)) for i, (e, lg) in enumerate(targets)],
    }
    if kind == "timeseries":
        panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                            "tooltip": {"mode": "multi"}}
    else:
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                              "values": False},
                            "colorMode": "background", "graphMode": "area"}
    return panel


def dashboard(profile: Any) -> dict[str, Any]:
    """The dashboard of one profile (a `config.schema.Profile`)."""
    name = profile.name
    slo = profile.slo
    p99_s = slo.p99_latency_ms / 1000.0
    budget = 1.0 - slo.availability
    db = profile.database
    replicated = db.nodes > 1
    panels: list[dict[str, Any]] = []
    y = 0

    def add(*args: Any, **kw: Any) -> None:
        panels.append(_panel(len(panels) + 1, *args, **kw))

    # Row 1: the four golden signals at a glance.
    add("Request rate (simulated req/s)",
        [(f"sum(devsim_offered_requests_per_second{{{SEL}}})", "offered")], "reqps", 0, y, 6, 4,
        "stat", "Offered load of the app tier (a gauge in simulated requests per second)")
    add("Error ratio", [(_err_ratio(), "failed / offered")], "percentunit", 6, y, 6, 4, "stat",
        "Failed (errored or dropped) share of requests over the rate interval",
        [("green", None), ("orange", budget), ("red", 0.05)])
    add("p99 latency", [(f"max(devsim_request_duration_p99_seconds{{{SEL}}})", "p99")], "s",
        12, y, 6, 4, "stat", f"SLO: p99 at most {slo.p99_latency_ms:g} ms",
        [("green", None), ("red", p99_s)])
    add("Database writable", [(f"min(devsim_db_writable{{{SEL}}})", "writable")], "bool_yes_no",
        18, y, 6, 4, "stat", "1 when some node accepts writes",
        [("red", None), ("green", 1)])
    y += 4
    add("Request rate and errors", [
        (f"sum(devsim_offered_requests_per_second{{{SEL}}})", "offered req/s"),
        (f"sum(devsim_offered_requests_per_second{{{SEL}}} * devsim_request_error_ratio{{{SEL}}})",
         "failed req/s")], "reqps", 0, y, 8, 8)
    add("Error ratio", [(_err_ratio(), "over $__rate_interval"),
                        (f"max(devsim_request_error_ratio{{{SEL}}})", "this tick")],
        "percentunit", 8, y, 8, 8, thresholds=[("green", None), ("red", 0.05)])
    add("Latency", [(f"max(devsim_request_duration_p99_seconds{{{SEL}}})", "p99"),
                    (f"max(devsim_request_duration_p50_seconds{{{SEL}}})", "p50"),
                    (f"vector({p99_s:g})", "SLO p99")], "s", 16, y, 8, 8)
    y += 8
    add("Saturation", [(f"max(devsim_cpu_utilization_ratio{{{SEL}}})", "CPU (of request)"),
                       (f"max(devsim_memory_utilization_ratio{{{SEL}}})", "memory"),
                       (f"max(devsim_disk_utilization_ratio{{{SEL}}})", "fullest disk")],
        "percentunit", 0, y, 8, 8, max_=1.0)
    add("Replicas vs desired", [
        (f"sum by (state) (devsim_servers{{{SEL}}})", "{{state}}"),
        (f"max(devsim_servers_desired{{{SEL}}})", "desired")], "short", 8, y, 8, 8)
    add("Per-server CPU (top 10)", [
        (f"topk(10, devsim_server_cpu_utilization_ratio{{{SEL}}})", "{{instance}}")],
        "percentunit", 16, y, 8, 8)
    y += 8
    add("Database replication lag" if replicated else "Database",
        [(f"max by (node, role) (devsim_db_replication_lag_seconds{{{SEL}}})",
          "{{node}} ({{role}})")], "s", 0, y, 8, 8,
        description=f"{db.engine} {db.version}, {db.configuration}")
    add("Database up and writable", [
        (f"max by (node, role) (devsim_db_up{{{SEL}}})", "{{node}} up ({{role}})"),
        (f"min(devsim_db_writable{{{SEL}}})", "writable")], "short", 8, y, 8, 8, max_=1.0)
    add("Backups", [
        (f"max(devsim_db_last_backup_age_seconds{{{SEL}}})", "last base backup age"),
        (f"max(devsim_db_restore_point_age_seconds{{{SEL}}})", "newest restore point age")],
        "s", 16, y, 8, 8, description=f"Backup mode: {db.backup.mode}")
    y += 8
    add("SLO burn rate (1h)", [(f"max(devsim_slo_burn_rate_1h_ratio{{{SEL}}})", "burn rate")],
        "short", 0, y, 8, 8, thresholds=[("green", None), ("orange", 6), ("red", 14.4)],
        description="1 = burning the error budget exactly as fast as the SLO allows")
    add("Error budget", [
        (f"max(devsim_slo_error_budget_burned_ratio{{{SEL}}})", "budget used"),
        (f"min(devsim_slo_availability_ratio{{{SEL}}})", "availability")], "percentunit",
        8, y, 8, 8, description=f"Availability SLO {slo.availability:g} over "
        f"{slo.window_days} days")
    add("Firing alerts (engine)", [
        (f'count by (alertname, severity) (devsim_alerts{{{SEL},alertstate="firing"}}) '
         f"or on() vector(0)", "{{alertname}} ({{severity}})")], "short", 16, y, 8, 8)
    y += 8
    extra: list[tuple[str, list[tuple[str, str]], str]] = []
    if profile.deployment.hot_reload is not None:
        extra.append(("Hot-reload build time", [
            (f"max(devsim_build_duration_seconds{{{SEL}}})", "last build")], "s"))
    if profile.cache.enabled:
        extra.append(("Cache hit ratio", [
            (f"max(devsim_cache_hit_ratio{{{SEL}}})", "hit ratio"),
            (f"max(devsim_cache_target_hit_ratio{{{SEL}}})", "warm target")], "percentunit"))
    extra.append(("Network", [
        (f"sum(devsim_network_receive_bytes_per_second{{{SEL}}})", "in"),
        (f"sum(devsim_network_transmit_bytes_per_second{{{SEL}}})", "out")], "Bps"))
    for i, (title, targets, unit) in enumerate(extra):
        add(title, targets, unit, 8 * i, y, 8, 8)
    y += 8
    if len(profile.app.regions) > 1:  # placement in regions and clouds (docs/cloud.md)
        add("Ready pods by region", [
            (f"sum by (region, cloud) (devsim_region_pods_ready{{{SEL}}})",
             "{{region}} {{cloud}}"),
            (f"sum(devsim_servers{{{SEL},state=~\"pending|notready|evicted\"}}) by (state)",
             "{{state}}")], "short", 0, y, 12, 8,
            description="Ready pods per region; pods Pending (no region has room), on NotReady "
            "nodes, or evicted by the unreachable taint")
        if profile.deployment.clouds:
            add("Cross-cloud egress cost ($/h)", [
                (f"sum by (cloud) (rate(devsim_cloud_egress_cost_dollars_total{{{SEL}}}"
                 f"[{RI}])) * 3600", "{{cloud}}")], "currencyUSD", 12, y, 12, 8,
                description="What each cloud bills for the cross-cloud traffic leaving it, "
                "per simulated hour at this rate")
    return {
        "uid": f"devsim-{name}", "title": f"devsim-tui: {name}",
        "description": f"{profile.description.strip()} (devsim-tui exporter, docs/exporter.md)",
        "tags": ["devsim-tui", name], "timezone": "browser", "schemaVersion": 39,
        "version": 1, "editable": True, "refresh": "5s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Prometheus", "current": {}},
            {"name": "job", "type": "query", "datasource": DS, "label": "job",
             "query": {"query": f'label_values(devsim_info{{profile="{name}"}}, job)',
                       "refId": "job"},
             "definition": f'label_values(devsim_info{{profile="{name}"}}, job)',
             "refresh": 2, "current": {}},
        ]},
        "panels": panels,
    }


def expressions(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, and the variables' queries."""
    out = [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append((f"${v['name']}", v["definition"]))
    return out


def write_all(directory: str | Path) -> list[Path]:
    from devsim_tui.config.loader import builtin_profiles_dir, load_profile

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in sorted(builtin_profiles_dir().glob("*.yaml")):
        profile = load_profile(f.stem)
        p = d / f"devsim-{profile.name}.json"
        p.write_text(json.dumps(dashboard(profile), indent=2) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


if __name__ == "__main__":  # pragma: no cover - a maintenance entry point
    for path in write_all(sys.argv[1] if len(sys.argv) > 1 else "contrib/grafana"):
        print(f"wrote {path}")
