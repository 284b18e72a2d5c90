"""`/metrics` for Prometheus: a custom collector over the latest published snapshot.

The metric names and types are `devsim_tui.sim.metrics.METRICS`, the same names the alert rules
use, so `devsim-tui rules export` works against a real Prometheus scraping this exporter.

A scrape never touches the engine: the owner of the world (the control room's frame loop, the
headless runner) calls `handle.publish(snapshot)` with snapshots it already has, and a scrape
renders the newest one (an atomic reference read). See docs/exporter.md for a scrape config and
a Grafana starting point.

The HTTP server (`MetricsServer`) is one asyncio loop in one daemon thread, whatever the number
of clients: prometheus-client's own server starts a thread per connection, so 300 idle
connections held 303 threads. Here a connection costs a coroutine; one that sends no complete
request within `idle_timeout` seconds is closed, and beyond `max_connections` the longest-idle
one is closed to make room, so idle peers can never keep a scrape out. The exposition itself is
prometheus-client's (`choose_encoder`: the text format or OpenMetrics, as the scraper's Accept
header asks; gzip when accepted).
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
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


MAX_HEAD = 16 * 1024  # bytes of request line and headers (a scrape sends a few hundred)


class _Only:
    """`?name[]=a&name[]=b`: only those metric families (by family or sample name)."""

    def __init__(self, registry: CollectorRegistry, names: set[str]) -> None:
        self.registry, self.names = registry, names

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            if family.name in self.names or any(s.name in self.names for s in family.samples):
                yield family


class MetricsServer:
    """`/metrics` over HTTP/1.1 from one asyncio loop in one thread (see the module doc).

    `MetricsServer(registry, port, addr).start()` binds (raising OSError in the caller if it
    cannot) and serves until `close()`."""

    def __init__(self, registry: CollectorRegistry, port: int, addr: str = "127.0.0.1", *,
                 idle_timeout: float = 60.0, max_connections: int = 256) -> None:
        self.registry = registry
        self.addr, self.requested_port = addr, port
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.server_port = 0
        self.served = 0
        # Open connections -> since when each has been waiting for a request (None: busy).
        self._waiting: dict[asyncio.StreamWriter, float | None] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="devsim-metrics", daemon=True)

    @property
    def connections(self) -> int:
        return len(self._waiting)

    def start(self) -> "MetricsServer":
        self.thread.start()
        self._ready.wait()
        if self._error is not None:
            self.thread.join()
            raise self._error
        return self

    def close(self, timeout: float = 5.0) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:
                pass  # the loop already ended
        self.thread.join(timeout)

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(self._client, self.addr or None,
                                                  self.requested_port,
                                                  limit=MAX_HEAD, reuse_address=True)
        self.server_port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            self._server.close()
            for writer in list(self._waiting):
                writer.close()  # their reads end: the handlers return by themselves
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2.0)
            await self._server.wait_closed()

    def _make_room(self) -> None:
        """Over the limit: close the connection that has waited longest for a request."""
        idle = [(since, w) for w, since in self._waiting.items() if since is not None]
        if idle:
            idle.sort(key=lambda pair: pair[0])
            idle[0][1].close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._waiting) >= self.max_connections:
            self._make_room()
        self._waiting[writer] = time.monotonic()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                self._waiting[writer] = time.monotonic()
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                  self.idle_timeout)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._respond(writer, 431, b"request header too large\n", close=True)
                    return
                self._waiting[writer] = None
                if not await self._request(head, writer):
                    return
        except (ConnectionError, OSError):
            return
        finally:
            self._waiting.pop(writer, None)
            self._tasks.discard(task)
            writer.close()

    async def _request(self, head: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be closed."""
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
        except ValueError:
            await self._respond(writer, 400, b"bad request\n", close=True)
            return False
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            keep = False  # a body we do not read: close after answering
        if method not in ("GET", "HEAD"):
            await self._respond(writer, 405, b"only GET\n", close=True,
                                extra=[("Allow", "GET, HEAD")])
            return False
        url = urlsplit(target)
        if url.path == "/favicon.ico":
            await self._respond(writer, 200, b"", close=not keep, head_only=method == "HEAD")
            return keep
        if url.path not in ("/", "/metrics"):
            await self._respond(writer, 404, b"not found: try /metrics\n", close=not keep)
            return keep
        registry: Any = self.registry
        names = parse_qs(url.query).get("name[]")
        if names:
            registry = _Only(registry, set(names))
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        try:
            body = encoder(registry)
        except Exception as exc:  # noqa: BLE001 - a broken collector is a 500, not a hang
            await self._respond(writer, 500, f"collecting failed: {exc}\n".encode(), close=True)
            return False
        extra = []
        if "gzip" in headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=6)
            extra.append(("Content-Encoding", "gzip"))
        self.served += 1
        await self._respond(writer, 200, body, content_type=content_type, close=not keep,
                            extra=extra, head_only=method == "HEAD")
        return keep

    async def _respond(self, writer: asyncio.StreamWriter, status: int, body: bytes, *,
                       content_type: str = "text/plain; charset=utf-8", close: bool = False,
                       extra: list[tuple[str, str]] = (), head_only: bool = False) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  431: "Request Header Fields Too Large", 500: "Internal Server Error"}[status]
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in extra]
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(body)
        # A client that does not read its answer cannot hold the loop: bounded like a request.
        await asyncio.wait_for(writer.drain(), self.idle_timeout)


class ExporterHandle:
    """A running exporter: `publish(snapshot)`, `url`, `port`, `close()`."""

    def __init__(self, server: MetricsServer, collector: SnapshotCollector, addr: str):
        self._server = server
        self.collector = collector
        self.addr = addr
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.addr in ("0.0.0.0", "") else self.addr
        return f"http://{host}:{self.port}/metrics"

    def publish(self, snapshot: Any) -> None:
        self.collector.publish(snapshot)

    @property
    def server(self) -> MetricsServer:
        return self._server

    def close(self) -> None:
        self._server.close()

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
    server = MetricsServer(registry, port, addr).start()
    return ExporterHandle(server, collector, addr)
