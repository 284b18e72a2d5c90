"""The profile schema: one declared model for every profile file.

Every row of the seed architecture's tables is a field here (app server, ports, scaling, database,
cache, monitoring, deployment, security) plus the simulation parameters the engine needs.
Autoscaler fields use Kubernetes' own names so users can paste from real HPA manifests.

This module must never import the UI; it is shared by the engine, the CLI and the control room.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devsim_tui.config.numbers import Count, Real, Seed


def informational(reason: str) -> dict[str, str]:
    """Mark a field as documentation only (`json_schema_extra=informational("why")`): nothing
    in the simulation reads it, on purpose. tests/test_schema_fields_read.py requires every other
    field to be read outside this module."""
    return {"informational": reason}


def pending(reason: str) -> dict[str, str]:
    """Mark a field whose behaviour is still being built (`json_schema_extra=pending("issue")`):
    read by nothing yet; the reason names the issue that gives it behaviour."""
    return {"pending": reason}



class Strict(BaseModel):
    """Base for every profile section: unknown keys are errors, values are immutable, and every
    number is finite and of sane size (`Real`, `Count`: config.numbers)."""

    # defer_build: the validators are built when a model first validates, so loading a profile
    # builds the Profile's one (with its sections inside it) instead of one per section at
    # import as well (a tenth of a second of the control room's start).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False, defer_build=True)


# --------------------------------------------------------------------------- application tier


class Port(Strict):
    name: str = Field(description="What the port serves, e.g. http, debug, inference")
    port: Count = Field(ge=1, le=65535)
    protocol: Literal["http", "https", "tcp", "inspector"] = Field(
        "http", json_schema_extra=informational(
            "documents what the port speaks (the seed's table); the simulation routes requests "
            "by server, not by port"))


class ServerSpec(Strict):
    """One app server (a pod / container) as the simulation sees it."""

    capacity_rps: Real = Field(
        100.0, gt=0, description="Service rate mu per server (requests/s it can complete)"
    )
    workers: Count = Field(
        4, ge=1, le=256, description="Concurrent request slots per server (c in M/M/c)"
    )
    cpu_request_millicores: Count = Field(1000, ge=10, description="Kubernetes CPU request")
    cpu_idle_fraction: Real = Field(0.05, ge=0, le=1, description="CPU used when idle")
    memory_request_mb: Count = Field(512, ge=16)
    memory_limit_mb: Count | None = Field(
        None, ge=16, description="Container memory limit: the OOM killer fires here (default: "
        "the request, i.e. Guaranteed QoS)"
    )
    memory_base_mb: Real = Field(180.0, ge=0, description="Resident memory at idle")
    memory_per_rps_mb: Real = Field(0.6, ge=0, description="Extra resident memory per rps")
    disk_gb: Real = Field(20.0, gt=0)
    log_mb_per_1k_requests: Real = Field(0.4, ge=0, description="Log volume written to disk")
    log_rotation_hours: Real = Field(6.0, gt=0, description="Logs are rotated this often")
    request_kb_in: Real = Field(2.0, ge=0)
    response_kb_out: Real = Field(12.0, ge=0)
    startup_seconds: Real = Field(20.0, ge=0, description="Start-up delay before Ready")
    max_queue: Count = Field(
        200, ge=0, le=20000,
        description="Requests queued per server (beyond its workers); arrivals finding the queue "
        "full are rejected with HTTP 503"
    )
    timeout_ms: Real = Field(
        5000.0, gt=0, description="Client timeout: requests whose response takes longer fail as "
        "timeouts"
    )
    base_error_rate: Real = Field(0.0005, ge=0, le=1, description="Errors of a healthy server")


class FleetVariation(Strict):
    """How servers of one deployment differ, as in a real fleet (set all to 0 for identical
    servers). Drawn from the simulation seed: the same seed gives the same fleet."""

    capacity_spread: Real = Field(
        0.03, ge=0, le=0.5, description="Per-server capacity factor, drawn once when the pod is "
        "created: log-normal with this standard deviation (hardware, node neighbours)"
    )
    capacity_wander: Real = Field(
        0.02, ge=0, le=0.5, description="Slow per-server capacity noise (GC, noisy neighbours): "
        "standard deviation"
    )
    wander_seconds: Real = Field(
        120.0, gt=0, description="Correlation time of the capacity noise and balancer imbalance"
    )
    balance_noise: Real = Field(
        0.03, ge=0, le=0.5, description="Load balancer imperfection: standard deviation of a "
        "server's share of traffic around its fair share"
    )
    hot_per_hour: Real = Field(
        0.5, ge=0, description="How often (per simulated hour) one server runs hot for a while "
        "(a noisy neighbour steals CPU: its capacity drops)"
    )
    hot_capacity: Real = Field(
        0.8, gt=0, le=1, description="Capacity factor of the hot server while it is hot"
    )
    hot_seconds: Real = Field(300.0, gt=0, description="How long a server stays hot")


class RegionPlacement(Strict):
    """One region's Kubernetes nodes, as the scheduler and the network see them."""

    cloud: str | None = Field(
        None, description="The cloud this region belongs to (one of deployment.clouds); "
        "default: the cloud the region is named after (aws, aws-eu-west-1), or the only cloud")
    node_capacity_pods: Count | None = Field(
        None, ge=0, description="Pods this region's nodes can hold (default: "
        "placement.node_capacity_pods)")
    latency_ms: Real | None = Field(
        None, ge=0, description="Network latency added to every request routed to a pod here "
        "(default: 0 in the ingress cloud, placement.cross_cloud_latency_ms elsewhere)")


class PlacementSpec(Strict):
    """Where the app's pods run: regions (clusters of nodes) mapped to clouds, what they hold,
    what reaching them costs, and how Kubernetes reacts when a region's nodes stop answering
    (docs/cloud.md)."""

    node_capacity_pods: Count | None = Field(
        None, ge=0, description="Pods each region's nodes can hold (default: enough for "
        "maxReplicas with one region lost, ceil(maxReplicas / (regions - 1)))")
    node_monitor_grace_period_seconds: Real = Field(
        40.0, ge=0, description="kube-controller-manager --node-monitor-grace-period: a node "
        "silent this long is NotReady (its pods Ready=False, out of the endpoints)")
    toleration_seconds: Real = Field(
        300.0, ge=0, description="tolerationSeconds of the pods' node.kubernetes.io/"
        "unreachable:NoExecute toleration: pods are evicted this long after the taint")
    ingress_cloud: str | None = Field(
        None, description="The cloud whose load balancer takes the users' requests (default: "
        "the cloud of the first region); requests routed to other clouds cross clouds")
    cross_cloud_latency_ms: Real = Field(
        20.0, ge=0, description="Default latency added to requests routed to a region in "
        "another cloud than the ingress")
    egress_usd_per_gb: dict[str, Real] = Field(
        default_factory=dict, description="Egress price per cloud ($/GB) for cross-cloud "
        "traffic (default: the cloud's list price for internet egress, docs/cloud.md)")
    regions: dict[str, RegionPlacement] = Field(
        default_factory=dict, description="Per-region settings, by name in app.regions")


class AppSpec(Strict):
    technology: str = Field(description="App server stack, as in the seed's table")
    service: str = Field("web", pattern=r"^[a-z][a-z0-9-]*$", description="Server name prefix")
    version: str = Field("v1.0.0", description="Release running at the start")
    ports: list[Port] = Field(min_length=1)
    features: list[str] = Field(default_factory=list, json_schema_extra=informational(
        "the seed's free-text feature list (TensorFlow.js, Kafka, ...); every feature with "
        "behaviour has its own section (streaming, monitoring.detector, scaling)"))
    regions: list[str] = Field(
        default_factory=lambda: ["local"], min_length=1, description="Where servers are placed"
    )
    placement: PlacementSpec = Field(
        default_factory=PlacementSpec, description="Regions, clouds, node capacity and "
        "taint-based eviction (docs/cloud.md)")
    server: ServerSpec = Field(default_factory=ServerSpec)
    load_balancing: Literal["round-robin", "least-connections"] = Field(
        "round-robin", description="How the load balancer spreads requests over ready servers: "
        "round-robin gives each the same share whatever its speed; least-connections sends "
        "fewer to slower or backed-up servers (nginx least_conn, Envoy LEAST_REQUEST)"
    )
    variation: FleetVariation = Field(default_factory=FleetVariation)


# --------------------------------------------------------------------------- scaling (HPA names)


class HPAPolicy(Strict):
    type: Literal["Pods", "Percent"]
    value: Count = Field(gt=0)
    periodSeconds: Count = Field(gt=0, le=1800)


class HPARules(Strict):
    stabilizationWindowSeconds: Count | None = Field(None, ge=0, le=3600)
    selectPolicy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[HPAPolicy] | None = None


class HPABehavior(Strict):
    scaleUp: HPARules | None = None
    scaleDown: HPARules | None = None


class ScalingSpec(Strict):
    mode: Literal["horizontal-autoscaling", "manual", "predictive"] = Field(
        description="What the seed asks for: horizontal auto-scaling, manual, AI predictive"
    )
    scaler: Literal["hpa", "predictive", "manual"] = Field(
        "hpa",
        description="The scaler the engine runs: the HPA, the predictive scaler (the HPA's "
        "decision raised to a traffic forecast's need) or none",
    )
    minReplicas: Count = Field(1, ge=0)
    maxReplicas: Count = Field(10, ge=1, le=100_000)
    initialReplicas: Count | None = Field(None, ge=0, description="Replicas at the start "
                                          "(default minReplicas); read through `initial`")
    targetCPUUtilizationPercentage: Count = Field(80, ge=1, le=1000)
    behavior: HPABehavior | None = None
    syncPeriodSeconds: Count = Field(15, ge=1, description="--horizontal-pod-autoscaler-sync-period")
    tolerance: Real = Field(0.1, ge=0, le=1)
    cpuInitializationPeriodSeconds: Count = Field(300, ge=0)
    initialReadinessDelaySeconds: Count = Field(30, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> ScalingSpec:
        if self.minReplicas > self.maxReplicas:
            raise ValueError(
                f"minReplicas ({self.minReplicas}) must not exceed maxReplicas ({self.maxReplicas})"
            )
        if self.initialReplicas is not None and not (
            self.minReplicas <= self.initialReplicas <= self.maxReplicas
        ):
            raise ValueError("initialReplicas must lie within [minReplicas, maxReplicas]")
        return self

    @property
    def initial(self) -> int:
        return self.initialReplicas if self.initialReplicas is not None else self.minReplicas


# --------------------------------------------------------------------------- traffic & SLO


class BurstSpec(Strict):
    per_hour: Real = Field(0.0, ge=0, description="Mean number of bursts per simulated hour")
    multiplier: Real = Field(1.8, ge=1)
    duration_seconds: Real = Field(120.0, gt=0)


class TrafficSpec(Strict):
    baseline_rps: Real = Field(gt=0, description="Mean offered load across the day")
    diurnal_amplitude: Real = Field(0.3, ge=0, lt=1, description="Relative day/night swing")
    peak_hour: Real = Field(14.0, ge=0, lt=24, description="Hour of day of the traffic peak")
    noise: Real = Field(0.03, ge=0, le=1, description="Relative per-tick noise")
    bursts: BurstSpec = Field(default_factory=BurstSpec)
    read_fraction: Real = Field(0.8, ge=0, le=1, description="Share of DB queries that read")
    queries_per_request: Real = Field(2.0, ge=0)
    shape: Literal["diurnal", "morning-ramp", "weekly", "flash-crowd"] = Field(
        "diurnal",
        description="Synthetic load shape around baseline_rps: a cosine day, a quiet night and "
        "a steep morning ramp, a day with quieter weekends, or flat with sudden flash crowds",
    )
    trace: str | None = Field(
        None,
        description="Replay a `timestamp,value` CSV (path relative to this file, or a built-in "
        "trace such as nyc_taxi.csv) instead of the synthetic shape",
    )
    peak_rps: Real | None = Field(
        None, gt=0, description="With trace: the trace is scaled so its maximum is this rate"
    )
    time_scale: Real = Field(
        1.0, gt=0, le=100_000,
        description="Seconds of the traffic pattern (trace or shape) played per simulated second",
    )

    @model_validator(mode="after")
    def _trace_fields(self) -> TrafficSpec:
        if self.trace is not None and self.peak_rps is None:
            raise ValueError("a trace needs peak_rps (the rate its maximum is scaled to)")
        if self.trace is None and self.peak_rps is not None:
            raise ValueError("peak_rps only applies with a trace")
        return self


class SLOSpec(Strict):
    p99_latency_ms: Real = Field(gt=0)
    availability: Real = Field(gt=0, lt=1, description="e.g. 0.999 (three nines)")
    window_days: Real = Field(30.0, gt=0, description="Error budget window")

    @property
    def error_budget(self) -> float:
        """Fraction of requests that may fail in the window."""
        return 1.0 - self.availability


# --------------------------------------------------------------------------- database & cache


class FailoverSpec(Strict):
    """Patroni's dynamic configuration (names and defaults as in Patroni,
    https://patroni.readthedocs.io/en/latest/dynamic_configuration.html)."""

    enabled: bool = Field(True, description="Patroni promotes a replica when the leader dies")
    ttl: Count = Field(
        30, ge=20, description="Leader key TTL (s): a dead leader's key expires ttl after its "
        "last renewal, which starts the failover"
    )
    loop_wait: Count = Field(10, ge=1, description="Seconds between runs of each node's HA loop")
    retry_timeout: Count = Field(
        10, ge=1, description="DCS and PostgreSQL retry timeout (s): a DCS outage shorter "
        "than this does not demote the leader, a longer one does (chaos dcs-outage); "
        "loop_wait + 2 x retry_timeout must not exceed ttl",
    )
    maximum_lag_on_failover: Count = Field(
        1_048_576, ge=0, description="Bytes a replica may lag and still be promoted"
    )
    synchronous_mode: bool = Field(
        False, description="Commits wait for a synchronous standby; only it may be promoted "
        "(nothing acknowledged is lost); losing it stalls commits until the leader's next HA loop"
    )
    synchronous_mode_strict: bool = Field(
        False, description="With no standby left, keep commits waiting instead of turning "
        "synchronous replication off"
    )
    dcs_watch: bool = Field(
        True, description="The DCS wakes replicas when the leader key is deleted (etcd3, "
        "Kubernetes, ZooKeeper): promotion ~ttl - loop_wait/2 after the crash; false: they "
        "notice on their own next HA loop (up to loop_wait later)"
    )
    reroute_seconds: Real = Field(2.0, ge=0, description="Proxy health check after promotion")

    @model_validator(mode="after")
    def _patroni_rule(self) -> FailoverSpec:
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            raise ValueError("Patroni requires loop_wait + 2*retry_timeout <= ttl")
        return self


class BackupSpec(Strict):
    mode: Literal["daily", "manual", "continuous"] = Field(
        description="Scheduled daily base backups, on request only, or continuous WAL archiving"
    )
    schedule_hour: Real = Field(2.0, ge=0, lt=24, description="Daily backups: hour of day")
    duration_seconds: Real = Field(600.0, ge=0, description="How long a base backup runs")
    archive_timeout_seconds: Real = Field(
        60.0, ge=0, description="Continuous: WAL archive switch interval (bounds the RPO)"
    )
    retention_days: Real = Field(7.0, gt=0, description="How long backups are kept")


class MultiMasterSpec(Strict):
    hot_write_share: Real = Field(
        0.2, ge=0, le=1, description="Share of writes that update the hot rows (counters, "
        "sessions, inventory): the rows two masters are likely to write at once")
    hot_rows: Count = Field(
        10_000, ge=1, description="How many rows the hot writes spread over (uniformly); the "
        "other writes spread over the rest of the table rows")
    commit_scope: Literal["async", "majority"] = Field(
        "async", description="As PGD's commit scopes: `async` commits locally (a partition "
        "leaves both sides writing: split brain); `majority` waits until a majority of the "
        "nodes has the commit, so each commit waits the round trip to the nearest majority and "
        "a side without a majority rejects writes")


class DatabaseSpec(Strict):
    engine: Literal["PostgreSQL"] = Field("PostgreSQL", description="Database engine")
    version: str = Field("14", description="PostgreSQL major version")
    topology: Literal["primary-replica", "single", "multi-master"] = Field(
        description="Streaming replicas behind one primary, one instance, or every node writable"
    )
    configuration: str = Field(description="As in the seed's table")
    nodes: Count = Field(ge=1, le=64, description="Database nodes (the first is the primary)")
    location: Literal["managed", "multi-cloud", "local"] = Field(
        "managed", description="Where the nodes run: `local` (one host or docker network: every "
        "pair of nodes is a LAN round trip apart, whatever `regions` says), `managed` (one "
        "provider's regions or zones) or `multi-cloud` (each region is another cloud); with "
        "`managed` and `multi-cloud` nodes in different regions are `replication_rtt_ms` apart "
        "(docs/data.md)")
    regions: list[str] = Field(default_factory=list, description="Geo placement of nodes")
    capacity_qps: Real = Field(2000.0, gt=0, description="Queries/s a node serves at 100% CPU")
    max_connections: Count = Field(200, ge=1, description="PostgreSQL max_connections per node")
    pool_size: Count = Field(20, ge=1, description="PgBouncer default_pool_size per app server")
    query_wait_timeout_seconds: Real = Field(
        120.0, gt=0, description="PgBouncer query_wait_timeout: queued clients fail after this"
    )
    query_ms: Real = Field(2.0, gt=0, description="Mean query service time")
    disk_gb: Real = Field(500.0, gt=0, description="Data disk size per node")
    data_gb: Real = Field(
        120.0, ge=0, description="Live data (tables and indexes) at the start; files start "
        "with autovacuum's dead-tuple headroom on top"
    )
    wal_kb_per_write: Real = Field(4.0, gt=0, description="WAL written per write query")
    replication_bandwidth_mb_s: Real = Field(
        50.0, gt=0, description="WAL a replica can apply per second"
    )
    replication_rtt_ms: Real = Field(
        1.0, ge=0, description="Network round trip between nodes in different regions or zones "
        "(same zone: 0.2 ms): WAL reaches a replica in half of it, a synchronous commit waits "
        "for all of it"
    )
    insert_fraction: Real = Field(
        0.2, ge=0, le=1, description="Share of write queries that add rows (the rest update or "
        "delete, leaving dead tuples for autovacuum)"
    )
    row_kb: Real = Field(1.0, gt=0, description="Heap and index space one row takes")
    data_retention_days: Real | None = Field(
        30.0, gt=0, description="A purge job deletes rows older than this (hourly), so the data "
        "reaches a steady size; null keeps every row and the disk grows without end"
    )
    autovacuum_vacuum_scale_factor: Real = Field(
        0.2, ge=0, le=1, description="Autovacuum runs when dead tuples pass this share of the "
        "live rows; the freed space is reused, the files never shrink"
    )
    max_wal_size_gb: Real = Field(
        1.0, ge=0, description="pg_wal kept on every node (max_wal_size); the primary also "
        "keeps what a down replica's replication slot still needs"
    )
    failover: FailoverSpec = Field(default_factory=FailoverSpec,
                                   description="Patroni's failover settings")
    backup: BackupSpec = Field(description="Base backups and WAL archiving")
    seed_test_data: bool = Field(False, description="Load test data at start (development)")
    geo_redundancy: bool = Field(
        False, description="The data survives a region outage: a region's unshipped writes "
        "wait on its geo-replicated storage and are merged when it returns; without it an "
        "outage loses the writes acknowledged only in that region (docs/data.md)")
    multi_master: MultiMasterSpec = Field(
        default_factory=lambda: MultiMasterSpec(),
        description="Write-conflict workload of a multi-master cluster (docs/data.md)")
    query_optimization: Literal["static", "ai"] = Field(
        "static",
        description="The optimiser choosing query plans: `static` (PostgreSQL's cost-based "
        "planner: a plan gone bad stays until ANALYZE) or `ai` (a learned optimiser that "
        "steers away from a plan observed to be slower); docs/database.md")
    notes: list[str] = Field(default_factory=list, description="Free text from the seed")

    @model_validator(mode="after")
    def _topology(self) -> DatabaseSpec:
        if self.topology == "single" and self.nodes != 1:
            raise ValueError("a single-instance database has exactly 1 node")
        if self.topology != "single" and self.nodes < 2:
            raise ValueError(f"topology {self.topology} needs at least 2 nodes")
        return self


class CacheSpec(Strict):
    enabled: bool = False
    technology: str = "Redis cluster"
    nodes: Count = Field(6, ge=1, le=64)
    hit_ratio: Real = Field(
        0.9, ge=0, le=0.9999,
        description="The hit ratio the team expects (the pane flags the cache 5 points below "
        "it); the simulated ratio comes from the workload model below",
    )
    keys: Count = Field(
        1_000_000, ge=1, le=10**10,
        description="Distinct keys the app reads (the key space); popularity is Zipf over them",
    )
    zipf_exponent: Real = Field(
        1.0, ge=0, le=3,
        description="Zipf exponent a of key popularity (key i is read with probability ~ i^-a); "
        "higher = a smaller hot set",
    )
    maxmemory_mb: Real = Field(
        2048.0, gt=0,
        description="Redis maxmemory summed over the masters; beyond it the policy evicts",
    )
    value_kb: Real = Field(
        4.0, gt=0, description="Mean memory per cached key (value plus Redis overhead), KiB"
    )
    lookup_ms: Real = Field(0.5, ge=0)
    optimization: Literal["none", "ml"] = Field(
        "none",
        description="ml: an online model learns which keys to admit from the access stream "
        "(bench/cache.py measures it against LRU)",
    )
    maxmemory_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] = Field(
        "allkeys-lru",
        description="Eviction policy as in Redis: *-lru, *-lfu, *-random (volatile-ttl is "
        "modelled as random), noeviction (writes fail once full)",
    )
    node_timeout_ms: Count = Field(15000, ge=100, description="cluster-node-timeout")
    require_full_coverage: bool = Field(
        True, description="cluster-require-full-coverage: reject queries while a slot is uncovered"
    )


class ConsumerGroupSpec(Strict):
    name: str = Field(description="Consumer group id (group.id)")
    consumers: Count = Field(3, ge=1, le=10000, description="Consumer instances in the group")
    rate_per_consumer: Real = Field(
        500.0, gt=0, description="Events per second one consumer processes"
    )
    feeds: Literal["notifications", "derived-data", "other"] = Field(
        "other",
        description="What the group's output feeds: `notifications` (users are notified as "
        "late as the group is behind), `derived-data` (dashboards, a feature store: the app "
        "serves data as old as the group is behind) or `other`",
    )


class StreamingSpec(Strict):
    """An event-streaming tier (Kafka): the app publishes events, consumer groups read them."""

    enabled: bool = Field(False, description="The estate runs an event-streaming broker")
    technology: str = Field("Kafka", description="Shown in the panes and events")
    topics: list[str] = Field(
        default_factory=lambda: ["events"], description="Topics the app publishes to",
        json_schema_extra=informational("topic names only: lag is modelled per consumer group "
                                        "over all of a group's topics"),
    )
    partitions: Count = Field(
        6, ge=1, le=100000,
        description="Partitions per topic: a group's consumers beyond this count sit idle",
    )
    events_per_request: Real = Field(
        1.0, ge=0, description="Events each served request publishes (producer rate)"
    )
    consumer_groups: list[ConsumerGroupSpec] = Field(
        default_factory=list, description="Groups reading every topic; lag is per group"
    )
    lag_alert_seconds: Real = Field(
        60.0, gt=0,
        description="Lag (seconds of a group's throughput) that logs a kafka.consumer_lag "
        "event; the KafkaConsumerLagHigh rule (profiles/rules) has its own threshold",
    )
    derived_read_share: Real = Field(
        1.0, ge=0, le=1,
        description="Share of served requests that read what `derived-data` groups produce",
    )
    stale_after_seconds: Real = Field(
        30.0, gt=0,
        description="Derived data older than this is stale: requests reading it are counted "
        "as stale responses (kafka.stale_data event, StaleDataServed alert)",
    )
    notification_slo_seconds: Real = Field(
        60.0, gt=0,
        description="A notification sent later than this after its event is late "
        "(kafka.notifications_delayed event, NotificationsDelayed alert)",
    )


# --------------------------------------------------------------------------- monitoring


class MonitoringTool(Strict):
    name: str
    metrics: list[str] = Field(default_factory=list)
    optional: bool = Field(False, json_schema_extra=informational(
        "the seed's table lists some tools as optional; every listed tool is modelled the same"))


MetricName = Literal[
    "cpu", "memory", "disk", "network", "rps", "latency", "errors", "build_time", "predictive",
    "cache_hit_ratio", "replication_lag",
]


def _duration_text(v: str) -> str:
    from devsim_tui.config.durations import parse_duration

    parse_duration(v)
    return v


class RouteSpec(Strict):
    """Alertmanager's route timing (names and defaults as in Alertmanager), in simulated time."""

    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    group_wait: str = Field("30s", description="Wait before the first notification of a group")
    group_interval: str = Field("5m", description="Wait before notifying a changed group again")
    repeat_interval: str = Field("4h", description="Re-send an unchanged firing group after")

    @field_validator("group_wait", "group_interval", "repeat_interval")
    @classmethod
    def _durations(cls, v: str) -> str:
        return _duration_text(v)


class SMTPSpec(Strict):
    """Where e-mail goes. Without `host` nothing is sent: notifications become events only."""

    host: str | None = None
    port: Count = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="STARTTLS upgrade, implicit TLS (port 465), or plain"
    )
    username: str | None = None
    password_env: str | None = Field(
        None, description="Environment variable holding the SMTP password"
    )
    from_: str = Field("devsim-tui@localhost", alias="from")
    to: list[str] = Field(default_factory=list)
    timeout_seconds: Real = Field(10.0, gt=0)


class EmailSpec(Strict):
    smtp: SMTPSpec = Field(default_factory=SMTPSpec)
    send_resolved: bool = Field(False, description="Alertmanager's e-mail default is false")


class NotificationSpec(Strict):
    """Alertmanager-like routing to the profile's `alert_channel`."""

    route: RouteSpec = Field(default_factory=RouteSpec)
    email: EmailSpec = Field(default_factory=EmailSpec)
    console_send_resolved: bool = True
    inhibit: bool = Field(
        True, description="A firing critical alert mutes warnings that share its labels"
    )
    inhibit_equal: list[str] = Field(default_factory=lambda: ["node"])


class DetectorSpec(Strict):
    """The anomaly detector over the estate's key signals (experimental's AI analysis)."""

    enabled: bool = Field(
        True, description="Run the detector (every profile does by default; its findings are "
        "events and sparkline marks)"
    )
    alerts: bool | None = Field(
        None, description="Also raise each finding as an AnomalyDetected alert; default: on when "
        "alert_channel is ai-analysis or security.anomaly_detection is set (experimental)"
    )
    every_ticks: Count = Field(
        15, ge=1, description="Feed the detector window means every N ticks (cost control)"
    )
    warmup_updates: Count = Field(150, ge=0, description="Detector updates before it may flag")
    warm_start: bool = Field(
        True, description="Pre-roll the warm-up on a seeded simulated history before t=0 (a "
        "shadow run of the same profile), so the detector is armed from the first tick"
    )
    rollback: bool = Field(
        True, description="The detector's verdict is an analysis check of canaries and rolling "
        "updates: a finding on the new version's signals fails the analysis (rolls back)"
    )
    severity: Literal["info", "warning", "critical"] = "warning"


class MonitoringSpec(Strict):
    tools: list[MonitoringTool] = Field(min_length=1)
    metrics: list[MetricName] = Field(min_length=1)
    alert_channel: Literal["email", "console", "ai-analysis"]
    alert_severity: Literal["info", "warning", "critical"] = "critical"
    dashboard: str | None = None
    scrape_interval_seconds: Count = Field(15, ge=1)
    evaluation_interval_seconds: Count = Field(60, ge=1)
    retention: str | None = None
    rules: str | None = Field(
        None, description="Alerting rule file (Prometheus format); default: the built-in rules "
        "of the profile's environment (profiles/rules/ENV.yaml)"
    )
    notifications: NotificationSpec = Field(default_factory=NotificationSpec)
    detector: DetectorSpec = Field(default_factory=DetectorSpec)


# --------------------------------------------------------------------------- deployment


class RollingUpdateSpec(Strict):
    maxSurge: Count | str = "25%"
    maxUnavailable: Count | str = "25%"


class CanaryStep(Strict):
    setWeight: Count | None = Field(None, ge=0, le=100)
    pause: dict[str, str | Count] | None = None
    analysis: dict[str, str | Count | Real] | None = None


class AnalysisSpec(Strict):
    """How a release's health is measured (Argo Rollouts AnalysisTemplate metric names and
    defaults; a canary step's `analysis` may override interval, count and the limits)."""

    interval_seconds: Real = Field(10.0, gt=0, description="Time between measurements")
    count: Count = Field(
        6, ge=1, description="Measurements of an `analysis` canary step; reaching it with "
        "failures <= failureLimit makes the run Successful"
    )
    failureLimit: Count = Field(
        0, ge=0, description="Failed measurements tolerated: the run is Failed when failed > "
        "failureLimit (Argo's default 0: the first failure fails it)"
    )
    inconclusiveLimit: Count = Field(
        0, ge=0, description="Inconclusive measurements tolerated: beyond it the run is "
        "Inconclusive and the rollout pauses for a human"
    )
    consecutiveErrorLimit: Count = Field(
        4, ge=0, description="Measurements that error in a row tolerated (a check that cannot "
        "answer): beyond it the run is Error and the rollout aborts"
    )
    background: bool = Field(
        True, description="Also judge the new version throughout the rollout, not only in steps"
    )
    abortScaleDownDelaySeconds: Real = Field(
        30.0, ge=0, description="Canary pods are deleted this long after an abort"
    )


class ReleaseSpec(Strict):
    """A version known in advance (a tag in the history), and how it behaves when deployed."""

    version: str
    kind: Literal[
        "good", "error-rate", "latency", "memory-leak", "crash-loop", "slow-start",
        "fails-readiness",
    ] = "good"


class HotReloadSpec(Strict):
    build_seconds: Real = Field(25.0, gt=0, description="Mean rebuild time")
    build_failure_probability: Real = Field(0.05, ge=0, le=1)
    test_seconds: Real = Field(15.0, ge=0, description="Unit tests after each rebuild")
    restart_gap_seconds: Real = Field(3.0, ge=0)


class DeploymentSpec(Strict):
    method: Literal["rolling-update", "compose-hot-reload", "canary"]
    orchestrator: str = Field(json_schema_extra=informational(
        "names the orchestrator of the seed's table; the engine models Kubernetes semantics "
        "(or compose hot reload, by `method`) whatever it says"))
    rollback: Literal["auto", "manual"]
    notes: list[str] = Field(default_factory=list)
    clouds: list[str] = Field(
        default_factory=list, description="The clouds the estate runs in; app.regions map onto "
        "them (app.placement, docs/cloud.md). Empty: one cloud, no cross-cloud traffic")
    custom_crds: bool = Field(
        False, description="The estate runs custom resources: the canary as an Argo Rollout, "
        "the predictive scaler as a PredictiveScaler (`profiles show --k8s`, docs/cloud.md)")
    chaos_engineering: bool = Field(False, json_schema_extra=informational(
        "chaos faults can be injected in every profile; the flag records that the seed's "
        "environment runs chaos experiments"))
    rollingUpdate: RollingUpdateSpec = Field(default_factory=RollingUpdateSpec)
    minReadySeconds: Count = Field(0, ge=0)
    progressDeadlineSeconds: Count = Field(600, ge=1)
    revisionHistoryLimit: Count = Field(10, ge=0)
    rollback_error_rate: Real = Field(0.05, gt=0, le=1, description="Auto-rollback threshold")
    rollback_p99_ms: Real | None = Field(None, gt=0, description="Auto-rollback threshold")
    canary_steps: list[CanaryStep] = Field(default_factory=list)
    hot_reload: HotReloadSpec | None = None
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    readiness_timeout_seconds: Real = Field(
        120.0, gt=0, description="Auto-rollback when a new pod is not Ready this long after start"
    )
    restart_limit: Count = Field(
        2, ge=1, description="Auto-rollback when the new version's pods crash this many times"
    )
    bake_seconds: Real = Field(
        600.0, ge=0, description="After a rollout completes, keep judging the new version"
    )
    releases: list[ReleaseSpec] = Field(
        default_factory=list, description="Upcoming tags and how each behaves (for drills)"
    )


# --------------------------------------------------------------------------- security


class SecuritySpec(Strict):
    tls: bool
    tls_version: str | None = None
    certificate_days_valid: Real | None = Field(None, gt=0)
    certificate_renewal: Literal["automated", "manual"] = Field(
        "automated", description="automated: renewed at 2/3 of the lifetime (cert-manager)")
    database_encryption: str | None = None
    encryption_algorithm: str | None = None
    audits: str | None = None
    credentials: Literal["vault", "plaintext", "secrets-manager"] = "vault"
    debug_endpoints: bool = False
    zero_trust: bool = False
    ai_auditing: bool = False
    anomaly_detection: bool = False
    notes: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- the profile


class SimulationSpec(Strict):
    tick_seconds: Real = Field(1.0, ge=0.01, le=60)
    seed: Seed = Field(42, ge=0)
    start_hour: Real = Field(9.0, ge=0, lt=24, description="Simulated time of day at t=0")
    history_ticks: Count = Field(
        86_400, ge=60, le=1_000_000, description="Ring buffer length (ticks kept for charts)"
    )
    event_history: Count = Field(5000, ge=100)


class Profile(Strict):
    """A whole environment of the estate."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    environment: Literal["production", "development", "experimental"]
    description: str = ""
    extends: str | None = Field(None, description="Built-in profile this one overrides")
    warnings: list[str] = Field(default_factory=list)
    workflow: list[str] = Field(default_factory=list)
    app: AppSpec
    scaling: ScalingSpec
    traffic: TrafficSpec
    slo: SLOSpec
    database: DatabaseSpec
    cache: CacheSpec = Field(default_factory=CacheSpec)
    streaming: StreamingSpec = Field(
        default_factory=StreamingSpec, description="Event streaming (Kafka), experimental"
    )
    monitoring: MonitoringSpec
    deployment: DeploymentSpec
    security: SecuritySpec
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)

    @model_validator(mode="after")
    def _consistency(self) -> Profile:
        if self.deployment.method == "compose-hot-reload" and self.deployment.hot_reload is None:
            raise ValueError("deployment.hot_reload is required for compose-hot-reload")
        return self
