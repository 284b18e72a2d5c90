"""The chaos catalogue: faults injected into the simulated estate, Chaos Mesh style.

Each fault has a type (CATALOGUE), a scope (one server, N servers, a percentage of the fleet, a
region, a database node, the cache, or the whole estate), a duration after which it reverts by
itself, and an intensity where one applies. A fault acts only through the model's own knobs, so
its effect propagates the way it would in reality: a CPU hog shrinks a server's capacity and its
queue grows; a cache flush sends reads to the database by 1/(1 - hit ratio); a partition fails
writes; a region outage kills the servers there and its traffic lands on the survivors.

Per-server faults compose with the knobs a release version sets (fleet.version_base): whenever
the set of active server faults changes, the knobs are recomputed from the version's values plus
every active fault, so reverting one fault never erases another or a bad release's effect.
Deterministic: targets are drawn from the engine's rng only. Never imports the UI.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import field_validator, model_validator

from devsim_tui.config.durations import format_duration, parse_duration
from devsim_tui.sim import commands as C
from devsim_tui.sim import extensions
from devsim_tui.sim.extensions import register
from devsim_tui.sim.snapshot import READY, STARTING

if TYPE_CHECKING:
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.snapshot import Aggregates

TCP_RTO_MS = 200.0  # Linux minimum retransmission timeout
PACKETS_PER_REQUEST = 10  # request + response segments of a typical API call
DEPENDENCY_TIMEOUT_MS = 2000.0  # the app's client timeout toward the third party
DISK_FULL_ERRORS = 0.5  # share of requests that write (logs, temp files) and fail on a full disk
DELIVERY_TIMEOUT_S = 120.0  # Kafka producer delivery.timeout.ms: buffered events expire after it


@dataclass(frozen=True)
class FaultType:
    name: str
    summary: str  # what it does
    effect: str  # how it shows in the metrics
    scopes: tuple[str, ...]  # accepted scope kinds, the first is the default
    default_scope: str
    duration: float | None  # default duration; None = one-shot (nothing to revert)
    intensity: str | None = None  # meaning and unit
    default_intensity: float | None = None
    bounds: tuple[float, float] = (0.0, math.inf)
    needs: str | None = None  # "cache" | "kafka" | "thanos": profiles without it reject it


SERVER_SCOPES = ("servers", "server", "percent", "region", "fleet")
CATALOGUE: dict[str, FaultType] = {f.name: f for f in (
    FaultType("server-kill", "kill app servers (pod-kill)",
              "killed pods restart after the CrashLoopBackOff delay; until then the others take "
              "their traffic", SERVER_SCOPES, "1", None),
    FaultType("crash-loop", "make app servers crash on every start",
              "pods crash at start-up and back off 10 s, 20 s, 40 s...; fewer ready servers, "
              "higher load on the rest", SERVER_SCOPES, "1", 300.0),
    FaultType("cpu-hog", "a process steals CPU on the servers (stress-ng)",
              "CPU up, capacity down by the stolen share: queueing latency and, past "
              "saturation, drops", SERVER_SCOPES, "1", 300.0,
              "share of the CPU taken (0-0.95)", 0.6, (0.0, 0.95)),
    FaultType("memory-leak", "the servers' heap grows steadily",
              "memory climbs until the OOM killer fires at the memory limit; the pod restarts "
              "and leaks again", SERVER_SCOPES, "1", 600.0, "MiB per second", 5.0, (0.0, 1e4)),
    FaultType("disk-fill", "fill the servers' disks (a runaway log file)",
              "disk usage jumps to the given fraction; at 100% writes fail and "
              f"{DISK_FULL_ERRORS:.0%} of requests error", SERVER_SCOPES, "1", 600.0,
              "fraction of the disk to fill (0-1)", 0.97, (0.0, 1.0)),
    FaultType("network-latency", "delay every packet to and from the servers (netem delay)",
              "adds the delay to every response: p50 and p99 rise, slow requests time out",
              SERVER_SCOPES, "fleet", 300.0, "milliseconds", 200.0, (0.0, 60000.0)),
    FaultType("packet-loss", "drop packets on the servers' links (netem loss)",
              f"lost segments cost a {TCP_RTO_MS:.0f} ms retransmission (p99) and requests "
              "whose segments are lost repeatedly fail (errors)", SERVER_SCOPES, "fleet", 300.0,
              "loss probability (0-1)", 0.1, (0.0, 1.0)),
    FaultType("db-partition", "partition the app tier from the database (or one node)",
              "queries to unreachable nodes fail: writes fail when the primary is cut off, "
              "reads too when every node is", ("db", "db-node"), "db", 120.0),
    FaultType("mesh-partition", "cut a multi-master database's mesh between a region and the rest",
              "with asynchronous commits (no write quorum) both sides keep accepting writes "
              "(split brain) and fall behind each other; when it heals the merge counts the "
              "rows written on both sides as conflicts, last-update-wins discards one write of "
              "each; a majority commit scope stops the side without a majority instead",
              ("db-region",), "db-region", 300.0),
    FaultType("dcs-outage", "Patroni's DCS (etcd, Consul) is unreachable",
              "the leader retries its key for retry_timeout: a shorter outage changes nothing; "
              "longer, it demotes itself to read-only (writes fail, reads go on) until the DCS "
              "is back and a node wins the leader race", ("db",), "db", 60.0),
    FaultType("db-primary-crash", "crash the database primary",
              "Patroni failover: writes fail until a replica is promoted and traffic rerouted; "
              "unreplicated writes are lost; the old primary rejoins as a replica on revert",
              ("db-node",), "primary", 300.0),
    FaultType("db-replica-crash", "crash a database replica",
              "reads move to the remaining nodes; the replica falls behind while down",
              ("db-node",), "replica", 300.0),
    FaultType("replication-lag", "slow WAL apply on replicas (I/O starvation)",
              "replication lag grows; a replica beyond maximum_lag_on_failover cannot be "
              "promoted", ("db-node", "db"), "db", 300.0,
              "apply speed factor (0.001-1, lower is slower)", 0.005, (0.001, 1.0)),
    FaultType("slow-queries", "slow queries / lock contention on database nodes",
              "each query takes longer and loads the node more: latency, CPU and, past "
              "saturation, timeouts", ("db-node", "db"), "primary", 300.0,
              "query time multiplier", 5.0, (1.0, 1000.0)),
    FaultType("pool-exhaustion", "PgBouncer pool exhausted by stuck transactions",
              "clients beyond the free server connections queue; they fail after "
              "query_wait_timeout, and requests time out first when the wait exceeds the app "
              "timeout", ("db",), "db", 300.0, "share of pool connections held (0-1)", 1.0,
              (0.0, 1.0)),
    FaultType("cache-node-down", "take a cache node down",
              "slots of a failed master are uncovered (the cluster rejects queries, reads hit "
              "the database) until its replica takes over after cluster-node-timeout",
              ("cache-node",), "master", 300.0, needs="cache"),
    FaultType("cache-flush", "flush the cache (FLUSHALL)",
              "hit ratio drops to 0 and refills; database reads jump by 1/(1 - hit ratio)",
              ("cache",), "cache", None, needs="cache"),
    FaultType("hot-key-shift", "the hot keys change (a viral item, a renamed key prefix)",
              "the given share of reads moves to keys the cache does not hold: hit ratio "
              "drops, database reads rise, and the ratio recovers as the cache learns the new "
              "keys; at the end the reads move back to keys partly evicted meanwhile",
              ("cache",), "cache", 600.0, "share of reads that moves (0-1)", 0.5, (0.0, 1.0),
              needs="cache"),
    FaultType("traffic-spike", "multiply incoming traffic",
              "offered load rises by the factor; the HPA scales up, latency and errors until "
              "it catches up", ("estate",), "estate", 600.0, "traffic multiplier", 3.0,
              (0.0, 100.0)),
    FaultType("region-outage", "a whole region (cloud) goes down",
              "its nodes and database nodes die: requests to its pods time out until the nodes "
              "are NotReady (40 s), then traffic shifts to the other regions; the pods are "
              "evicted after their toleration (300 s) and rescheduled elsewhere, capacity "
              "permitting", ("region",), "region",
              600.0),
    FaultType("tls-expiry", "the TLS certificate expires",
              "every TLS handshake fails, so every request errors; no effect where TLS is off",
              ("estate",), "estate", 600.0),
    FaultType("broker-down", "the event-stream broker (Kafka) goes down",
              "consumers stop and lag grows; producers buffer events and lose those older than "
              "delivery.timeout.ms", ("estate",), "estate", 300.0, needs="kafka"),
    FaultType("consumer-lag", "slow Kafka consumers (rebalance storm, slow handler)",
              "consumers process fewer events than are produced: consumer lag grows",
              ("estate",), "estate", 600.0, "consumer throughput factor (0.01-1)", 0.3,
              (0.01, 1.0),
              needs="kafka"),
    FaultType("rebalance-storm", "Kafka consumer groups rebalance over and over (flapping "
              "consumers, max.poll.interval.ms exceeded)",
              "consumption stops during each eager rebalance: the share of time spent "
              "rebalancing is lost throughput, so consumer lag grows", ("estate",), "estate",
              300.0, "share of time spent rebalancing (0-1)", 0.8, (0.0, 1.0), needs="kafka"),
    FaultType("partition-election", "a Kafka broker fails and its partitions elect new leaders",
              "the share of partitions it led is unavailable until the election ends: producers "
              "buffer those events, consumers of those partitions stop; lag grows then drains",
              ("estate",), "estate", 30.0, "share of partitions without a leader (0-1)", 0.34,
              (0.0, 1.0), needs="kafka"),
    FaultType("store-outage", "Thanos' object store is unreachable (store gateway, uploads)",
              "long metric windows show only Prometheus' local data (older is blank); sidecar "
              "uploads fail, and blocks past the local retention are lost",
              ("estate",), "estate", 1800.0, needs="thanos"),
    # Security faults (sim/security.py models them; docs/security.md)
    FaultType("credential-leak", "leaked database credentials are used by an attacker",
              "plaintext credentials: an unknown-source login and anomalous query volume until "
              "`rotate-credentials`; a vault lease ends by itself; zero trust denies the calls",
              ("estate",), "estate", 3600.0, "attacker queries per second", 40.0, (0.0, 1e5)),
    FaultType("debug-port-scan", "a scan finds the Node inspector port 9229",
              "where the debug endpoint is exposed the attacker attaches (remote code "
              "execution, anomalous queries) until `close-debug-endpoint`; else only logged",
              ("estate",), "estate", 3600.0, "attacker queries per second", 40.0, (0.0, 1e5)),
    FaultType("cert-renewal-failure", "the certificate issuer rejects renewals",
              "renewals fail and the certificate nears expiry (countdown, "
              "CertificateExpiringSoon); at expiry every request errors until "
              "`renew-certificate`", ("estate", "edge", "database", "mesh"), "edge", 7200.0,
              "hours of validity left", 0.25, (0.0, 24.0 * 365)),
    FaultType("policy-misconfig", "a bad zero-trust service policy is rolled out",
              "the intensity's share of legitimate calls is denied by policy (errors, denials/s) "
              "until `rollback-policy`; zero-trust profiles only", ("estate",), "estate", 1800.0,
              "share of legitimate calls denied (0-1)", 0.4, (0.0, 1.0)),
    FaultType("data-exfiltration", "an attacker copies data out (volume/backup, or the wire)",
              "records/s leave through egress; they are exposed only where the copy is "
              "plaintext (no encryption at rest for db, no TLS for wire) until `block-egress`",
              ("db", "wire"), "db", 1800.0, "records per second", 500.0, (0.0, 1e7)),
    FaultType("brute-force-login", "password guessing against the database login",
              "login failures/s; a plaintext never-rotated password falls after a few thousand "
              "guesses; managed credentials lock out; `block-source` stops it",
              ("estate",), "estate", 3600.0, "guesses per second", 20.0, (0.0, 1e5)),
    FaultType("archive-stall", "the backup target (object store) is slow or unreachable",
              "archive_command ships WAL at the given share of its throughput (0: not at all): "
              "closed segments queue in pg_wal, the restore point stops moving and ArchiveStale "
              "fires; continuous backups only", ("backup",), "backup", 900.0,
              "share of the archive throughput left (0-1)", 0.0, (0.0, 1.0)),
    FaultType("storage-full", "the backup target's storage is full",
              "archiving fails (WAL piles up on the primary's disk) and base backups fail until "
              "it reverts", ("backup",), "backup", 900.0),
    FaultType("drop-table", "an operator drops a table by mistake (DROP TABLE in production)",
              "writes to it fail and its rows are gone until a restore to a time before the drop "
              "(`restore --to`); `restore latest` replays the DROP too", ("db",), "db", None,
              "share of the rows and writes in the table (0-1)", 0.3, (0.01, 1.0)),
    FaultType("plan-regression", "a query plan flips to a much slower one (stale statistics)",
              "the share of queries on the flipped plan costs 10x: database CPU and query "
              "latency rise, past saturation queries time out; an `ai` optimiser reverts it in "
              "seconds, the static planner keeps it until `analyze` or autovacuum's "
              "auto-analyze", ("db",), "db", None, "share of the queries whose plan flips (0-1)",
              0.2, (0.01, 1.0)),
    FaultType("dependency-outage", "a third-party API is down",
              f"the share of requests calling it waits {DEPENDENCY_TIMEOUT_MS:.0f} ms and "
              "fails: latency and errors", ("estate",), "estate", 600.0,
              "share of requests calling it (0-1)", 0.3, (0.0, 1.0)),
)}
ALIASES = {"kill": "server-kill", "pod-kill": "server-kill", "cpu": "cpu-hog",
           "leak": "memory-leak", "disk": "disk-fill", "latency": "network-latency",
           "delay": "network-latency", "loss": "packet-loss", "partition": "db-partition",
           "dcs": "dcs-outage", "etcd-down": "dcs-outage",
           "primary-crash": "db-primary-crash", "replica-crash": "db-replica-crash",
           "lag": "replication-lag", "slow-query": "slow-queries", "locks": "slow-queries",
           "pool": "pool-exhaustion", "cache-down": "cache-node-down", "flush": "cache-flush",
           "spike": "traffic-spike", "region": "region-outage", "tls": "tls-expiry",
           "cert-expiry": "tls-expiry", "kafka-down": "broker-down",
           "key-shift": "hot-key-shift", "hot-keys": "hot-key-shift",
           "dependency": "dependency-outage", "third-party": "dependency-outage",
           "cred-leak": "credential-leak", "port-scan": "debug-port-scan",
           "renewal-failure": "cert-renewal-failure", "exfiltration": "data-exfiltration",
           "brute-force": "brute-force-login",
           "archive": "archive-stall", "backup-full": "storage-full", "drop": "drop-table",
           "plan-flip": "plan-regression", "bad-plan": "plan-regression"}
SECURITY_FAULTS = {"credential-leak", "debug-port-scan", "cert-renewal-failure",
                   "policy-misconfig", "data-exfiltration", "brute-force-login", "tls-expiry"}
SERVER_KNOB_FAULTS = {"crash-loop", "cpu-hog", "memory-leak", "disk-fill", "network-latency",
                      "packet-loss"}
ESTATE_FAULTS = {"traffic-spike", "tls-expiry", "dependency-outage", "pool-exhaustion"}


def fault_type(name: str) -> FaultType:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in CATALOGUE:
        import difflib

        close = difflib.get_close_matches(key, list(CATALOGUE), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"unknown fault type {name!r}{hint}; `devsim-tui chaos list` shows all")
    return CATALOGUE[key]


# --------------------------------------------------------------------------- commands


_DURATION_WITH_UNIT = re.compile(r"(\d+(\.\d+)?(ms|s|m|h|d|w))+")


class Chaos(C.Command):
    name = "chaos"
    positional = ("type", "scope", "duration", "intensity")
    summary = ("Inject a fault: chaos TYPE [SCOPE] [DURATION] [INTENSITY], e.g. 'chaos cpu-hog "
               "30% 5m 0.7' (`devsim-tui chaos list` for the catalogue)")
    hurts = True
    type: str
    scope: str | None = None
    duration: str | None = None
    intensity: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _scope_omitted(cls, data: Any) -> Any:
        """`chaos traffic-spike 10m 3`: a duration with a unit is never a scope, so the user
        left the scope out and the words belong one field further on."""
        if isinstance(data, dict) and isinstance(data.get("scope"), str) \
                and _DURATION_WITH_UNIT.fullmatch(data["scope"].strip()) \
                and data.get("intensity") is None:
            data = dict(data)
            data["intensity"] = data.get("duration")
            data["duration"] = data.pop("scope")
            if data["intensity"] is None:
                del data["intensity"]
        return cls._one_shot_intensity(data)

    @staticmethod
    def _one_shot_intensity(data: Any) -> Any:
        """`chaos drop-table db 0.4`: a one-shot fault has no duration, so a bare number after
        the scope is its intensity."""
        if not isinstance(data, dict) or data.get("intensity") is not None:
            return data
        try:
            ft = fault_type(str(data.get("type", "")))
        except ValueError:
            return data
        d = data.get("duration")
        if ft.duration is None and ft.intensity is not None and isinstance(d, (str, float, int)) \
                and re.fullmatch(r"[0-9]+(\.[0-9]+)?", str(d).strip()):
            data = dict(data)
            data["intensity"] = data.pop("duration")
        return data

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return fault_type(v).name

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None and parse_duration(v) <= 0:
            raise ValueError("must be positive")
        return v

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: str | None) -> str | None:
        """Numeric scopes are checked here, so applying one never meets `1e400%` or `nan%`."""
        if v is None:
            return v
        text = v.strip()
        kind, _, arg = text.partition(":")
        if text.endswith("%"):
            kind, arg = "percent", text[:-1]
        elif text.isdigit():
            kind, arg = "servers", text
        if kind == "percent" and not (re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,6})?", arg)
                                      and 0 < float(arg) <= 100):
            raise ValueError(f"a share of the fleet is a percentage from 0 to 100, like 30%, "
                             f"got {v!r}")
        if kind == "servers" and not (re.fullmatch(r"[0-9]{1,6}", arg) and int(arg) >= 1):
            raise ValueError(f"a number of servers is a whole number from 1 to 999999, got "
                             f"{v!r}")
        return v

    @model_validator(mode="after")
    def _intensity(self) -> Chaos:
        ft = CATALOGUE[self.type]
        if self.intensity is not None:
            if ft.intensity is None:
                raise ValueError(f"intensity: {ft.name} takes none")
            lo, hi = ft.bounds
            if not lo <= self.intensity <= hi:
                raise ValueError(f"intensity: must be in [{lo:g}, {hi:g}] for {ft.name} "
                                 f"({ft.intensity})")
        return self


class ChaosStop(C.Command):
    name = "chaos-stop"
    positional = ("id",)
    summary = "Revert an active fault by id (F3), or every active fault: 'chaos-stop all'"
    id: str = "all"


C.register(Chaos)
C.register(ChaosStop)


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    id: str
    type: FaultType
    scope: str
    intensity: float | None
    started_t: float
    until: float  # inf for one-shots already done (they are not kept)
    targets: list[str]
    server_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    undo: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def view(self, t: float) -> dict:
        return {"id": self.id, "type": self.type.name, "scope": self.scope,
                "intensity": self.intensity, "targets": list(self.targets),
                "started_t": self.started_t, "remaining_s": max(self.until - t, 0.0),
                "note": self.note}


class EventStream:
    """The profile's event stream (`streaming:`, Kafka): producers publish events_per_request
    events per served request; every consumer group reads every event. A group's throughput is
    min(consumers, partitions) x rate_per_consumer: Kafka assigns each partition to one consumer
    of a group, so consumers beyond the partition count sit idle
    (https://kafka.apache.org/documentation/#intro_concepts_and_terms). Lag per group =
    messages produced but not yet consumed, as kafka-exporter's kafka_consumergroup_lag."""

    def __init__(self, spec):
        self.spec = spec
        self.groups = [g.name for g in spec.consumer_groups] or ["consumers"]
        rates = [min(g.consumers, spec.partitions) * g.rate_per_consumer
                 for g in spec.consumer_groups] or [1.0]
        self.group_capacity = np.array(rates, dtype=float)
        self.group_lag = np.zeros(len(self.groups))
        self.group_rate = np.zeros(len(self.groups))
        self.capacity = float(self.group_capacity.min())
        self.buffered = 0.0  # held by producers while the broker is down
        self.buffer_age = 0.0
        self.lost = 0.0
        self.produce_rate = 0.0
        self.broker_up = True
        self.consumer_factor = 1.0
        self.leaderless = 0.0  # share of partitions without a leader (an election under way)
        self.warned = False
        # Downstream consequences (docs/streaming.md, "What lag does"): what each group feeds.
        feeds = [g.feeds for g in spec.consumer_groups] or ["other"]
        self.derived = np.array([f == "derived-data" for f in feeds])
        self.notifies = np.array([f == "notifications" for f in feeds])
        self.group_feeds = feeds
        self.group_age = np.zeros(len(self.groups))  # seconds since the oldest unread event
        self.stale_responses = 0.0
        self.stale_rps = 0.0
        self.late_notifications = 0.0
        self.notifications_sent = 0.0
        self.stale_warned = False
        self.notify_warned = False
        # Time lag the way kafka-lag-exporter estimates it: a table of (time, events produced
        # so far) interpolated at a group's position (https://github.com/seglo/kafka-lag-exporter).
        self.t = 0.0
        self.kept = 0.0  # events produced and not lost, so far
        self._ht = np.zeros(256)
        self._hc = np.zeros(256)
        self._hn = 0

    @property
    def lag(self) -> float:
        """The most-behind group's lag in messages."""
        return float(self.group_lag.max())

    @property
    def consume_rate(self) -> float:
        return float(self.group_rate.min())

    def step(self, dt: float, produced_rps: float) -> None:
        lost = self.lost
        self._move(dt, produced_rps)
        self.t += dt
        self._record(self.produce_rate * dt - (self.lost - lost))
        self._consequences(dt, produced_rps)

    def _record(self, kept: float) -> None:
        """Append (t, events kept so far) when it grew; drop rows no group needs any more."""
        if kept <= 0:
            return
        self.kept += kept
        if self._hn == len(self._ht):
            behind = self.kept - float((self.group_lag + self.buffered).max())
            k = max(int(np.searchsorted(self._hc[:self._hn], behind, "right")) - 1, 0)
            if k == 0:
                self._ht = np.concatenate([self._ht, np.zeros(len(self._ht))])
                self._hc = np.concatenate([self._hc, np.zeros(len(self._hc))])
            else:
                n = self._hn - k
                self._ht[:n] = self._ht[k:self._hn]
                self._hc[:n] = self._hc[k:self._hn]
                self._hn = n
        self._ht[self._hn] = self.t
        self._hc[self._hn] = self.kept
        self._hn += 1

    def _consequences(self, dt: float, served_rps: float) -> None:
        """Each group's data age (seconds since its oldest unread event was produced, 0 when
        caught up); requests reading derived data older than stale_after_seconds are stale
        responses; notifications sent later than notification_slo_seconds are late."""
        behind = self.group_lag + self.buffered
        age = np.zeros(len(self.groups))
        late = behind >= 0.5
        if late.any() and self._hn:
            pos = self.kept - behind[late]  # events before the oldest unread one
            # The oldest unread event is the one after `pos`: produced in the tick whose row
            # first exceeds pos.
            i = np.minimum(np.searchsorted(self._hc[:self._hn], pos, "right"), self._hn - 1)
            age[late] = self.t - self._ht[i] + dt
        self.group_age = age
        spec = self.spec
        derived_age = float(age[self.derived].max()) if self.derived.any() else 0.0
        self.stale_rps = served_rps * spec.derived_read_share \
            if derived_age > spec.stale_after_seconds else 0.0
        self.stale_responses += self.stale_rps * dt
        if self.notifies.any():
            sent = float(self.group_rate[self.notifies].sum()) * dt
            self.notifications_sent += sent
            if float(age[self.notifies].max()) > spec.notification_slo_seconds:
                self.late_notifications += sent

    @property
    def data_age(self) -> float:
        """The oldest derived data the app serves, in seconds (0 without derived-data groups)."""
        return float(self.group_age[self.derived].max()) if self.derived.any() else 0.0

    @property
    def notification_delay(self) -> float:
        """How late notifications go out now, in seconds (0 without notifications groups)."""
        return float(self.group_age[self.notifies].max()) if self.notifies.any() else 0.0

    def _move(self, dt: float, produced_rps: float) -> None:
        rate = produced_rps * self.spec.events_per_request
        self.produce_rate = rate
        produced = rate * dt
        if self.broker_up and self.leaderless > 0:
            # Events for leaderless partitions wait in the producers (retries) until the
            # election ends; their consumers have nothing to fetch meanwhile.
            held = produced * self.leaderless
            self.buffered += held
            self.buffer_age += dt
            available = self.group_lag + produced - held
            consumed = np.minimum(available, self.group_capacity * self.consumer_factor
                                  * (1.0 - self.leaderless) * dt)
            self.group_lag = available - consumed
            self.group_rate = consumed / dt
            return
        if not self.broker_up:
            # Producers retry until delivery.timeout.ms, then drop the oldest events.
            self.buffered += produced
            self.buffer_age += dt
            if self.buffer_age > DELIVERY_TIMEOUT_S:
                self.buffered -= produced
                self.lost += produced
            self.group_rate[:] = 0.0
            return
        if self.buffered:
            self.group_lag += self.buffered
            self.buffered = self.buffer_age = 0.0
        available = self.group_lag + produced
        consumed = np.minimum(available, self.group_capacity * self.consumer_factor * dt)
        self.group_lag = available - consumed
        self.group_rate = consumed / dt

    def group_lag_seconds(self) -> np.ndarray:
        """How far behind each group is, in seconds of its full throughput."""
        return (self.group_lag + self.buffered) / self.group_capacity

    @property
    def lag_seconds(self) -> float:
        return float(self.group_lag_seconds().max())

    def view(self) -> dict:
        secs = self.group_lag_seconds()
        return {"broker_up": self.broker_up, "consumer_lag_messages": round(self.lag
                                                                            + self.buffered),
                "consumer_lag_seconds": round(self.lag_seconds, 2),
                "consume_rate": round(self.consume_rate, 1),
                "produce_rate": round(self.produce_rate, 1),
                "consumer_factor": self.consumer_factor, "lost_events": round(self.lost),
                "data_age_seconds": round(self.data_age, 1),
                "notification_delay_seconds": round(self.notification_delay, 1),
                "stale_responses": round(self.stale_responses),
                "serving_stale": self.stale_rps > 0,
                "notifications_late": self.notification_delay
                > self.spec.notification_slo_seconds,
                "stale_rps": round(self.stale_rps, 1),
                "late_notifications": round(self.late_notifications),
                "notifications_sent": round(self.notifications_sent),
                "groups": [{"name": n, "feeds": f, "lag_messages": round(float(m + self.buffered)),
                            "lag_seconds": round(float(x), 2),
                            "age_seconds": round(float(a), 1),
                            "consume_rate": round(float(r), 1)}
                           for n, f, m, x, a, r in zip(self.groups, self.group_feeds,
                                                       self.group_lag, secs, self.group_age,
                                                       self.group_rate)]}


class ChaosController:
    """Injects, tracks and reverts faults (engine extension)."""
    state_key = extensions.CHAOS

    commands = (Chaos, ChaosStop)

    def __init__(self, engine: Engine):
        self.engine = engine
        self.active: list[Fault] = []
        self.count = 0
        self._next_expiry = math.inf
        self._estate = False  # an estate-level fault needs per-tick work
        self.pool_wait_s = 0.0
        self.pool_fail = 0.0
        self._sec_err = 0.0
        self._sec: tuple[int, Any] | None = None  # (controllers seen, the security controller)
        streaming = engine.profile.streaming
        self.stream = EventStream(streaming) if streaming.enabled else None

    # ------------------------------------------------------------------ commands

    def apply(self, cmd: C.Command) -> str | None:
        t = self.engine.t
        if isinstance(cmd, ChaosStop):
            return self._stop(t, cmd.id)
        assert isinstance(cmd, Chaos)
        ft = CATALOGUE[cmd.type]
        e = self.engine
        if ft.needs == "cache" and e.cache is None:
            return f"{ft.name}: this profile has no cache"
        if ft.needs == "kafka" and self.stream is None:
            return f"{ft.name}: this profile has no event-stream broker (Kafka: streaming.enabled)"
        if ft.needs == "thanos" and not _thanos(e).enabled:
            return f"{ft.name}: this profile's monitoring has no Thanos (experimental's has)"
        duration = parse_duration(cmd.duration) if cmd.duration else ft.duration
        intensity = cmd.intensity if cmd.intensity is not None else ft.default_intensity
        scope = cmd.scope or ft.default_scope
        self.count += 1
        fault = Fault(f"F{self.count}", ft, scope, intensity, t,
                      t + duration if duration is not None else t, [])
        if duration is not None:
            self.active.append(fault)  # before injecting: the knob recomputation includes it
        error = self._inject(t, fault)
        if error:
            self.count -= 1
            if fault in self.active:
                self.active.remove(fault)
            return error
        desc = f"{fault.id} {ft.name} on {_targets_text(fault)}"
        if intensity is not None:
            desc += f", intensity {intensity:g}"
        if duration is not None:
            desc += f", for {format_duration(duration)}"
        e.emit(t, "chaos.injected", f"chaos {desc}: {fault.note or ft.effect}", "warning",
               None, id=fault.id, fault=ft.name, scope=scope, targets=fault.targets[:50],
               intensity=intensity, duration=duration)
        if duration is not None:
            self._next_expiry = min(self._next_expiry, fault.until)
        self._estate = any(f.type.name in ESTATE_FAULTS for f in self.active)
        return None

    def _stop(self, t: float, which: str) -> str | None:
        if not self.active:
            return "no active fault"
        if which.lower() == "all":
            victims = list(self.active)
        else:
            victims = [f for f in self.active if f.id.lower() == which.lower()]
            if not victims:
                ids = ", ".join(f.id for f in self.active)
                return f"no active fault {which!r} (active: {ids})"
        for f in victims:
            self._revert(t, f, "stopped")
        if which.lower() == "all":
            self.engine.emit(t, "chaos.emergency_stop",
                             f"emergency stop: {len(victims)} faults reverted", "warning",
                             count=len(victims))
        return None

    # ------------------------------------------------------------------ scopes

    def _servers(self, t: float, fault: Fault) -> str | None:
        """Resolve a server scope to concrete servers (engine rng for random picks)."""
        e = self.engine
        f = e.fleet
        scope = fault.scope.strip()
        live = np.flatnonzero(f.active_mask())
        regions = e.profile.app.regions
        kind, _, arg = scope.partition(":")
        if scope.endswith("%"):
            kind, arg = "percent", scope[:-1]
        elif scope.isascii() and scope.isdigit():
            kind, arg = "servers", scope
        elif scope in ("all", "fleet"):
            kind = "fleet"
        elif scope in regions:
            kind, arg = "region", scope
        elif scope in f.names:
            kind, arg = "server", scope
        if kind not in fault.type.scopes:
            return (f"{fault.type.name}: scope {scope!r} not understood; use one of: "
                    f"{_scope_help(fault.type)}")
        if kind == "server":
            if arg not in f.names:
                return f"no app server {arg!r}"
            picked = np.array([f.names.index(arg)])
        elif kind in ("servers", "percent"):
            try:
                x = float(arg)
            except ValueError:
                return f"{kind} scope needs a number, got {arg!r}"
            n = int(x) if kind == "servers" else math.ceil(len(live) * x / 100.0 - 1e-9)
            if n <= 0:
                return "the scope selects no server"
            n = min(n, len(live))
            picked = np.sort(e.rng.choice(live, size=n, replace=False)) if n < len(live) \
                else live
        elif kind == "region":
            if arg not in regions:
                return f"no region {arg!r} (regions: {', '.join(regions)})"
            picked = live[f.region[live] == regions.index(arg)]
        else:
            picked = live
        if len(picked) == 0:
            return "the scope selects no running server"
        fault.server_ids = f.ids[picked].copy()
        fault.targets = [f.names[i] for i in picked]
        return None

    def _db_nodes(self, fault: Fault) -> tuple[list, str | None]:
        db = self.engine.db
        scope = fault.scope.removeprefix("db:")
        if scope == "db":
            return list(db.nodes), None
        if scope in ("primary", "replica", "master"):
            if scope == "replica":
                nodes = [n for n in db.nodes if n.role == "replica" and n.up]
                return nodes[:1], None if nodes else "no running replica"
            if db.spec.topology == "multi-master":
                nodes = [n for n in db.nodes if n.up]
                return nodes[:1], None if nodes else "no running node"
            p = db.primary()
            return ([p], None) if p is not None else ([], "no primary")
        node = db.node(scope)
        if node is None:
            names = ", ".join(n.name for n in db.nodes)
            return [], f"no database node {scope!r} (nodes: {names}, or primary/replica/db)"
        return [node], None

    # ------------------------------------------------------------------ inject / revert

    def _inject(self, t: float, fault: Fault) -> str | None:
        e = self.engine
        f = e.fleet
        name = fault.type.name
        x = fault.intensity
        if name in SERVER_KNOB_FAULTS or name == "server-kill":
            err = self._servers(t, fault)
            if err:
                return err
            mask = np.isin(f.ids, fault.server_ids)
            if name == "server-kill":
                f.crash(mask & ((f.state == READY) | (f.state == STARTING)), t)
                fault.note = "killed; they restart after the back-off"
                return None
            if name == "disk-fill":
                target = x * e.profile.app.server.disk_gb
                filler = np.where(mask, np.maximum(target - f.disk_gb, 0.0), 0.0)
                f.disk_gb = f.disk_gb + filler
                f.disk_fill_gb = f.disk_fill_gb + filler
                fault.undo["filler"] = dict(zip(f.ids[mask].tolist(), filler[mask].tolist()))
            self._recompose()
            if name == "crash-loop":
                f.crash(mask & ((f.state == READY) | (f.state == STARTING)), t)
            return None
        if name == "region-outage":
            regions = e.profile.app.regions
            region = fault.scope.removeprefix("region:")
            if region == "region":
                region = regions[-1]
            if region not in regions:
                return f"no region {region!r} (regions: {', '.join(regions)})"
            if len(regions) < 2:
                return f"{region} is the only region: an outage would be a full outage; kill " \
                    "the servers instead"
            fault.scope = region
            r = regions.index(region)
            # The region's nodes go silent; Kubernetes' node lifecycle runs in sim/cloud.py.
            cloud = _cloud(e)
            mask = cloud.region_down(t, r)
            fault.server_ids = f.ids[mask].copy()
            fault.targets = [f.names[i] for i in np.flatnonzero(mask)]
            self._recompose()  # until they leave the endpoints, requests to them time out
            crashed = e.db.region_down(t, region)
            fault.undo["db_nodes"] = crashed
            fault.targets += crashed
            pl = cloud.placement
            fault.note = (f"{int(mask.sum())} pods unreachable (requests to them time out until "
                          f"their nodes are NotReady in {pl.grace_s:g} s; evicted and "
                          f"rescheduled {pl.toleration_s:g} s later) and {len(crashed)} "
                          "database nodes down")
            return None
        if name == "mesh-partition":
            db = e.db
            region = fault.scope.removeprefix("db-region:").removeprefix("region:")
            err = db.mesh_partition(t, None if region == "db-region" else region, True)
            if err:
                return err
            fault.scope = db.mesh.split.region
            fault.targets = sorted(db.mesh.split.cut)
            return None
        if name in ("db-partition", "db-primary-crash", "db-replica-crash", "replication-lag",
                    "slow-queries"):
            nodes, err = self._db_nodes(fault)
            if err:
                return err
            fault.targets = [n.name for n in nodes]
            db = e.db
            if name == "db-partition":
                if fault.scope == "db":
                    db.partitioned = True
                else:
                    for n in nodes:
                        n.unreachable = True
            elif name in ("db-primary-crash", "db-replica-crash"):
                node = nodes[0]
                if name == "db-primary-crash" and node.role not in ("primary", "multi-master"):
                    return f"{node.name} is not the primary"
                error = db.crash(t, node.name)
                if error:
                    return error
            elif name == "replication-lag":
                nodes = [n for n in nodes if n.role in ("replica", "multi-master")]
                if not nodes:
                    return "replication-lag needs replicas (this database has none in scope)"
                fault.targets = [n.name for n in nodes]
                for n in nodes:
                    n.lag_factor *= x
            else:
                for n in nodes:
                    n.slow_factor *= x
            return None
        if name == "cache-node-down":
            cache = e.cache
            scope = fault.scope.removeprefix("cache:")
            if scope in ("master", "replica"):
                node = next((n for n in cache.nodes if n.role == scope and n.state == "running"),
                            None)
                if node is None:
                    return f"no running cache {scope}"
                scope = node.name
            error = cache.fail_node(t, scope)
            if error:
                return error
            fault.targets = [scope]
            return None
        if name == "cache-flush":
            e.cache.flush(t)
            fault.targets = ["cache"]
            return None
        if name in ("archive-stall", "storage-full", "drop-table"):
            return self._backup_fault(t, fault)
        if name == "dcs-outage":
            if fault.scope.removeprefix("db:") != "db":
                return f"{name}: scope {fault.scope!r} not understood; use db"
            err = e.db.dcs_outage(t, True)
            if err:
                return err
            fault.targets = ["db"]
            return None
        if name == "plan-regression":
            if fault.scope != "db":
                return f"{name}: scope {fault.scope!r} not understood; use db"
            e.db.planner.regress(t, x)
            fault.targets = ["db"]
            fault.note = (f"{x:.0%} of the queries on a plan costing 10x; "
                          + ("the AI optimiser is watching" if e.db.planner.mode == "ai"
                             else "stays until `analyze` or auto-analyze"))
            return None
        if name in SECURITY_FAULTS:
            return _security(e).inject(t, fault)
        if name == "hot-key-shift":
            e.cache.shift(t, x)
            fault.targets = ["cache"]
            return None
        # estate-level faults: applied every tick in before_tick
        fault.targets = ["estate"]
        if name == "broker-down":
            self.stream.broker_up = False
        elif name == "consumer-lag":
            self.stream.consumer_factor *= x
        elif name == "rebalance-storm":
            self.stream.consumer_factor *= 1.0 - x
        elif name == "partition-election":
            self.stream.leaderless = min(1.0, self.stream.leaderless + x)
        elif name == "store-outage":
            _thanos(e).set_store(t, False)
        return None

    def _backup_fault(self, t: float, fault: Fault) -> str | None:
        bk = self.engine.db.backups
        name = fault.type.name
        if name == "drop-table":
            err = self.engine.db.drop_table(t, fault.intensity)
            if err:
                return err
            fault.targets = ["db"]
            fault.note = (f"{fault.intensity:.0%} of the rows dropped; writes to the table fail "
                          "until a restore to a time before now")
            return None
        if fault.scope not in ("backup", "archive"):
            return f"{name}: scope {fault.scope!r} not understood; use backup"
        if name == "archive-stall" and not bk.archiving:
            # nothing to stall: only continuous backup archives WAL (a storage-full target
            # still fails the next base backup, so that one applies everywhere)
            return (f"archive-stall: no WAL archiving in {bk.spec.backup.mode} backup mode "
                    "(only continuous backup archives WAL); try storage-full")
        fault.targets = ["backup target"]
        if name == "archive-stall":
            bk.archive_factor = min(bk.archive_factor, fault.intensity)
        else:
            bk.target_full = True
        return None

    def _revert(self, t: float, fault: Fault, how: str) -> None:
        e = self.engine
        f = e.fleet
        name = fault.type.name
        self.active.remove(fault)
        if name in SERVER_KNOB_FAULTS:
            mask = np.isin(f.ids, fault.server_ids)
            if name == "disk-fill":
                filler = fault.undo.get("filler", {})
                amount = np.array([filler.get(i, 0.0) for i in f.ids.tolist()]) if len(f) \
                    else np.zeros(0)
                f.disk_gb = np.maximum(f.disk_gb - amount, 0.0)
                f.disk_fill_gb = np.maximum(f.disk_fill_gb - amount, 0.0)
            if name == "memory-leak":
                f.leak_mb = np.where(mask, 0.0, f.leak_mb)  # the hog's memory is freed
            self._recompose()
        elif name == "region-outage":
            r = e.profile.app.regions.index(fault.scope)
            if not any(g.type.name == name and g.scope == fault.scope for g in self.active):
                _cloud(e).region_up(t, r)
            self._recompose()
            e.db.region_up(t, fault.undo.get("db_nodes", []))
        elif name == "db-partition":
            if fault.scope == "db":
                e.db.partitioned = any(g.type.name == "db-partition" and g.scope == "db"
                                       for g in self.active)
            for nm in fault.targets:
                n = e.db.node(nm)
                if n is not None and fault.scope != "db":
                    n.unreachable = False
        elif name == "mesh-partition":
            e.db.mesh_partition(t, None, False)
        elif name == "dcs-outage":
            if not any(g.type.name == name for g in self.active):
                e.db.dcs_outage(t, False)
        elif name in ("db-primary-crash", "db-replica-crash"):
            n = e.db.node(fault.targets[0])
            if n is not None and n.state == "crashed":
                e.db.restart(t, n.name)
        elif name == "replication-lag":
            for nm in fault.targets:
                n = e.db.node(nm)
                if n is not None:
                    n.lag_factor /= fault.intensity
        elif name == "slow-queries":
            for nm in fault.targets:
                n = e.db.node(nm)
                if n is not None:
                    n.slow_factor /= fault.intensity
        elif name == "cache-node-down":
            e.cache.recover_node(t, fault.targets[0])
        elif name == "hot-key-shift":
            e.cache.shift(t, fault.intensity)  # the reads return to the old, now cold, keys
        elif name == "broker-down":
            self.stream.broker_up = not any(g.type.name == "broker-down" for g in self.active)
        elif name == "consumer-lag":
            self.stream.consumer_factor /= fault.intensity
        elif name == "rebalance-storm":
            rest = [1.0 - g.intensity for g in self.active if g.type.name == name]
            self.stream.consumer_factor = math.prod(
                g.intensity for g in self.active if g.type.name == "consumer-lag") \
                * math.prod(rest)
        elif name == "partition-election":
            self.stream.leaderless = min(1.0, sum(g.intensity for g in self.active
                                                  if g.type.name == name))
        elif name == "store-outage":
            _thanos(e).set_store(t, not any(g.type.name == name for g in self.active))
        elif name in SECURITY_FAULTS:
            _security(e).revert(t, fault)
        elif name == "archive-stall":
            e.db.backups.archive_factor = min(
                (g.intensity for g in self.active if g.type.name == name), default=1.0)
        elif name == "storage-full":
            e.db.backups.target_full = any(g.type.name == name for g in self.active)
        self._active_changed()
        verb = "reverted after its duration" if how == "expired" else "stopped"
        e.emit(t, "chaos.reverted", f"chaos {fault.id} {name} on {_targets_text(fault)} {verb}",
               "info", None, id=fault.id, fault=name, how=how)

    def _recompose(self) -> None:
        """Server knobs = the version's own values + every active per-server fault."""
        f = self.engine.fleet
        cap = f.version_base("cap_factor")
        err = f.version_base("err_extra")
        lat = f.version_base("lat_extra_ms")
        cpu = f.version_base("cpu_extra")
        leak = f.version_base("leak_rate_mb_s")
        loop = f.version_base("crash_loop")
        for fault in self.active:
            if fault.type.name == "region-outage":
                # Pods of a dead region still in the endpoints: requests wait for a response
                # that never comes, until the client's timeout.
                m = np.isin(f.ids, fault.server_ids)
                lat = np.where(m, lat + self.engine.profile.app.server.timeout_ms, lat)
        for fault in self._server_faults():
            m = np.isin(f.ids, fault.server_ids)
            x = fault.intensity
            name = fault.type.name
            if name == "cpu-hog":
                cap = np.where(m, cap * (1.0 - x), cap)
                cpu = np.where(m, cpu + x, cpu)
            elif name == "memory-leak":
                leak = np.where(m, leak + x, leak)
            elif name == "network-latency":
                lat = np.where(m, lat + x, lat)
            elif name == "packet-loss":
                p_any = 1.0 - (1.0 - x) ** PACKETS_PER_REQUEST
                # A request hit by one loss waits one retransmission timeout; it fails when a
                # segment is lost three times in a row (the client gives up).
                lat = np.where(m, lat + TCP_RTO_MS * min(1.0, p_any / 0.01), lat)
                err = np.where(m, err + 1.0 - (1.0 - x ** 3) ** PACKETS_PER_REQUEST, err)
            elif name == "crash-loop":
                loop = np.where(m, True, loop)
            elif name == "disk-fill" and x >= 1.0:
                err = np.where(m, err + DISK_FULL_ERRORS, err)
        f.cap_factor, f.err_extra, f.lat_extra_ms = cap, np.minimum(err, 1.0), lat
        f.cpu_extra, f.leak_rate_mb_s, f.crash_loop = cpu, leak, loop
        f.refresh_flags()

    def _server_faults(self):
        return [g for g in self.active if g.type.name in SERVER_KNOB_FAULTS]

    # ------------------------------------------------------------------ tick

    def before_tick(self, t: float) -> None:
        if t >= self._next_expiry:
            for fault in [g for g in self.active if g.until <= t]:
                self._expire(t, fault)
        # The security posture (expired certificates, denials by policy, a rotation's restart)
        # fails requests too; its share is folded in with the estate faults'.
        found = self._sec
        if found is None or found[0] != len(self.engine.controllers):
            # looked up once, and again only when a controller is attached
            found = self._sec = (len(self.engine.controllers), _security(self.engine))
        sec = found[1]
        sec_err = sec.error_share(t) if sec is not None else 0.0
        if self._estate or sec_err or self._sec_err:
            self._estate_effects(t, sec_err)
        self._sec_err = sec_err

    def _expire(self, t: float, fault: Fault) -> None:
        """Revert a fault whose time is up. Like a command, an expiry never stops the run: if
        reverting raises (validation should make that impossible), the fault leaves the active
        list anyway and an error event says what could not be undone."""
        try:
            self._revert(t, fault, "expired")
        except Exception as exc:  # noqa: BLE001 - an expiry never stops the simulation
            if fault in self.active:
                self.active.remove(fault)
            self._active_changed()
            with contextlib.suppress(Exception):
                self._recompose()
            self.engine.emit(t, "chaos.revert_failed",
                             f"{fault.type.name} expired but could not be fully reverted "
                             f"({type(exc).__name__}: {str(exc)[:200]})", "error",
                             fault=fault.type.name)

    def _active_changed(self) -> None:
        """Bookkeeping after a fault left the active list (reverted, or dropped when its revert
        raised): whether estate effects still apply, and when the next fault expires."""
        self._estate = any(g.type.name in ESTATE_FAULTS for g in self.active)
        if not self._estate:
            e = self.engine
            e.traffic_factor, e.extra_error, e.extra_latency_ms = 1.0, 0.0, 0.0
            self.pool_wait_s = self.pool_fail = 0.0
        self._next_expiry = min((g.until for g in self.active), default=math.inf)

    def _estate_effects(self, t: float, sec_err: float = 0.0) -> None:
        """Traffic, TLS, third-party and PgBouncer effects act on every request each tick."""
        e = self.engine
        traffic, err, lat = 1.0, sec_err, 0.0
        pool = None
        for g in self.active:
            n = g.type.name
            if n == "traffic-spike":
                traffic *= g.intensity
            elif n == "dependency-outage":
                err += g.intensity
                lat += g.intensity * DEPENDENCY_TIMEOUT_MS
            elif n == "pool-exhaustion":
                pool = g.intensity if pool is None else max(pool, g.intensity)
        if pool is not None:
            wait_ms, fail = self._pool(pool)
            lat += wait_ms
            err += fail
        e.traffic_factor = traffic
        e.extra_error = min(err, 1.0)
        e.extra_latency_ms = lat

    def _pool(self, held_share: float) -> tuple[float, float]:
        """PgBouncer with `held_share` of its server connections stuck: queries beyond what the
        free connections serve queue (FIFO); clients waiting longer than query_wait_timeout are
        dropped. Returns (added latency per request in ms, share of requests failing)."""
        e = self.engine
        spec = e.profile.database
        tr = e.profile.traffic
        dt = e.dt
        n_ready = max(int(np.count_nonzero(e.fleet.state == READY)), 1)
        free = n_ready * spec.pool_size * (1.0 - held_share)
        slow = max((n.slow_factor for n in e.db.nodes if n.up), default=1.0)
        capacity = free * 1000.0 / (spec.query_ms * slow)  # queries/s the free connections do
        demand = e.agg.offered_rps * tr.queries_per_request
        qwt = spec.query_wait_timeout_seconds
        if capacity <= 0:
            self.pool_wait_s = min(self.pool_wait_s + dt, qwt)
            self.pool_fail = 1.0 if self.pool_wait_s >= qwt else 0.0
        else:
            backlog = self.pool_wait_s * capacity + (demand - capacity) * dt
            backlog = max(backlog, 0.0)
            self.pool_wait_s = min(backlog / capacity, qwt)
            self.pool_fail = max(0.0, 1.0 - capacity / demand) \
                if self.pool_wait_s >= qwt and demand > 0 else 0.0
        return self.pool_wait_s * 1000.0 * tr.queries_per_request, self.pool_fail

    def after_tick(self, t: float, agg: Aggregates) -> None:
        s = self.stream
        if s is None:
            return
        s.step(self.engine.dt, agg.served_rps)
        lag = s.lag_seconds
        warn = s.spec.lag_alert_seconds
        if lag > warn and not s.warned:
            s.warned = True
            self.engine.emit(t, "kafka.consumer_lag", f"Kafka consumers {lag:.0f}s behind "
                             f"({s.lag + s.buffered:.0f} events)", "warning",
                             lag_seconds=round(lag, 1))
        elif s.warned and lag < warn / 6:
            s.warned = False
            self.engine.emit(t, "kafka.consumer_lag_recovered", f"Kafka consumers caught up "
                             f"({lag:.0f}s behind)", "info", lag_seconds=round(lag, 1))
        spec = s.spec
        age, delay = s.data_age, s.notification_delay
        emit = self.engine.emit
        stale = self._crossing("stale_warned", age > spec.stale_after_seconds,
                               age <= spec.stale_after_seconds)
        if stale == "on":
            emit(t, "kafka.stale_data", f"the app serves derived data {age:.0f}s old (stale "
                 f"after {spec.stale_after_seconds:g}s): {s.stale_rps:.0f} stale responses/s",
                 "warning", age_seconds=round(age, 1))
        elif stale == "off":
            emit(t, "kafka.stale_data_recovered", f"derived data fresh again ({age:.0f}s old; "
                 f"{s.stale_responses:.0f} stale responses served)", "info",
                 age_seconds=round(age, 1), stale_responses=round(s.stale_responses))
        late = self._crossing("notify_warned", delay > spec.notification_slo_seconds,
                              delay <= spec.notification_slo_seconds)
        if late == "on":
            emit(t, "kafka.notifications_delayed", f"notifications go out {delay:.0f}s after "
                 f"their event (SLO {spec.notification_slo_seconds:g}s)", "warning",
                 delay_seconds=round(delay, 1))
        elif late == "off":
            emit(t, "kafka.notifications_on_time", f"notifications on time again "
                 f"({delay:.0f}s; {s.late_notifications:.0f} sent late)", "info",
                 delay_seconds=round(delay, 1), late_notifications=round(s.late_notifications))

    def _crossing(self, flag: str, bad: bool, good: bool) -> str | None:
        """"on" when the stream's `flag` condition starts, "off" when it clears, else None:
        one event per crossing, not one per tick (messages are built only then)."""
        s = self.stream
        if bad and not getattr(s, flag):
            setattr(s, flag, True)
            return "on"
        if good and getattr(s, flag):
            setattr(s, flag, False)
            return "off"
        return None

    # ------------------------------------------------------------------ state

    def faulted_servers(self) -> list[str]:
        """Names of the servers an active fault targets (the UI's badge)."""
        ids = [g.server_ids for g in self.active if len(g.server_ids)]
        if not ids:
            return []
        f = self.engine.fleet
        m = np.isin(f.ids, np.concatenate(ids))
        return [f.names[i] for i in np.flatnonzero(m)]

    def signals(self) -> dict[str, float]:
        """The event stream's health for the anomaly detector (experimental's Kafka)."""
        if self.stream is None:
            return {}
        return {"events.consumer_lag": self.stream.lag_seconds,
                "events.consume_rate": self.stream.consume_rate}

    def state(self) -> dict:
        t = self.engine.t
        out: dict[str, Any] = {
            "active": [g.view(t) for g in self.active],
            "faulted_servers": self.faulted_servers(),
            "faulted_db_nodes": sorted({n for g in self.active for n in g.targets
                                        if self.engine.db.node(n) is not None}),
            "injected_total": self.count,
        }
        if any(g.type.name == "pool-exhaustion" for g in self.active):
            out["pool"] = {"wait_s": round(self.pool_wait_s, 2),
                           "failing": round(self.pool_fail, 4)}
        if self.stream is not None:
            out["event_stream"] = self.stream.view()
        return out


def _cloud(engine: Engine):
    """The engine's placement controller (sim/cloud.py)."""
    from devsim_tui.sim.cloud import cloud_of

    return cloud_of(engine)


def _thanos(engine: Engine):
    """The engine's Thanos controller (sim/thanos.py)."""
    from devsim_tui.sim.thanos import ThanosController

    return next(c for c in engine.controllers if isinstance(c, ThanosController))


def _security(engine: Engine):
    """The engine's security controller (sim/security.py), if loaded."""
    from devsim_tui.sim.security import security_of

    return security_of(engine)


def _scope_help(ft: FaultType) -> str:
    forms = {"server": "a server name (web-003)", "servers": "a count (3)",
             "percent": "a percentage (25%)", "region": "a region name", "fleet": "all",
             "db": "db (the whole database)",
             "db-region": "a database node's region (aws; default: the last node's)",
             "db-node": "primary, replica or a node (pg-2)",
             "cache": "cache", "cache-node": "master, replica or a node (redis-2)",
             "estate": "(none: the whole estate)", "edge": "edge (the public certificate)",
             "database": "database (its in-transit certificate)",
             "mesh": "mesh (workload mTLS certificates)",
             "wire": "wire (sniffed traffic)",
             "backup": "backup (the backup target: WAL archive and base backups)"}
    return ", ".join(forms[k] for k in ft.scopes)


def _targets_text(fault: Fault) -> str:
    if fault.targets == ["estate"]:
        return "the estate"
    shown = ", ".join(fault.targets[:4])
    more = len(fault.targets) - 4
    return shown + (f" (+{more} more)" if more > 0 else "")


register(lambda engine: ChaosController(engine))
