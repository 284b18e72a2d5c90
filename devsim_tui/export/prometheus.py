"""`/metrics` for Prometheus: a custom collector over the latest published snapshot.

The metric names and types are `devsim_tui.sim.metrics.METRICS`, the same names the alert rules
use, so `devsim-tui rules export` works against a real Prometheus scraping this exporter.

A scrape never touches the engine: the owner of the world (the control room's frame loop, the
headless runner) calls `handle.publish(snapshot)` with snapshots it already has, and a scrape
renders the newest one (an atomic reference read). The HTTP server runs in prometheus-client's
own daemon thread. See docs/exporter.md for a scrape config and a Grafana starting point.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from devsim_tui.sim.metrics import METRICS, SnapshotView, collect


class SnapshotCollector(Collector):
    """Renders the newest published snapshot; `up`-style info about the exporter itself too."""

    def __init__(self, service: str, profile: str, snapshot: Any = None):
        self.service = service
        self.profile = profile
        self._snapshot = snapshot
        self.scrapes = 0

    def publish(self, snapshot: Any) -> None:
        self._snapshot = snapshot  # a reference swap: atomic under the GIL

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        self.scrapes += 1
        info = GaugeMetricFamily("devsim_info", "The simulated estate being exported",
                                 labels=["profile", "environment", "service"])
        if snap is None:
            return iter([])
        info.add_metric([self.profile, snap.environment, self.service], 1.0)
        out: list[Metric] = [info]
        samples = collect(SnapshotView(snap, self.service))
        for m in METRICS:
            got = samples.get(m.name)
            if got is None:
                continue
            labels, values = got
            names = [k for k, _ in labels[0]] if labels else list(m.labels)
            fam: Metric
            if m.type == "counter":
                fam = CounterMetricFamily(m.name, m.help, labels=names)
            else:
                fam = GaugeMetricFamily(m.name, m.help, labels=names)
            for lb, v in zip(labels, values):
                fam.add_metric([val for _, val in lb], v)
            out.append(fam)
        return iter(out)


class ExporterHandle:
    """A running exporter: `publish(snapshot)`, `url`, `port`, `close()`."""

    def __init__(self, server: Any, thread: threading.Thread, collector: SnapshotCollector,
                 addr: str):
        self._server = server
        self._thread = thread
        self.collector = collector
        self.addr = addr
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.addr in ("0.0.0.0", "") else self.addr
        return f"http://{host}:{self.port}/metrics"

    def publish(self, snapshot: Any) -> None:
        self.collector.publish(snapshot)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ExporterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_exporter(world: Any, port: int, addr: str = "127.0.0.1") -> ExporterHandle:
    """Serve `/metrics` for a `World` on `addr:port` (port 0 picks a free one).

    Call it from the thread that owns the world (it takes the current snapshot once), then
    `handle.publish(world.snapshot())` whenever you have a fresh snapshot (the control room: on
    each frame; headless: a few times per wall second). Raises OSError if the port is taken.
    """
    snap = world.snapshot()
    collector = SnapshotCollector(world.profile.app.service, world.profile.name, snap)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return ExporterHandle(server, thread, collector, addr)
