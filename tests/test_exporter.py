"""The Prometheus exporter: real HTTP scrapes on loopback, promtool check metrics, the same
metric names as the alert rules, and the simulate --metrics-port flag."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from devsim_tui.export import start_exporter
from devsim_tui.sim import commands as C
from devsim_tui.sim import promql
from devsim_tui.sim.metrics import METRICS
from devsim_tui.sim.rules import rules_for
from devsim_tui.sim.world import LocalWorld
from tests.alert_fixtures import PROMTOOL
from tests.helpers import REPO, engine


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode(), r.headers["Content-Type"]


@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
def test_scrape_serves_fleet_server_and_database_metrics(profile):
    e = engine(profile)
    world = LocalWorld(e)
    world.advance(120)
    with start_exporter(world, 0) as h:
        h.publish(world.snapshot())
        text, ctype = scrape(h.url)
    assert ctype.startswith("text/plain")
    assert "# TYPE devsim_requests_total counter" in text
    assert re.search(r'^devsim_server_up\{instance="[a-z-]+-\d+",region="[^"]+",version="[^"]+"\}'
                     r" 1\.0$", text, re.M)
    assert re.search(r'^devsim_db_replication_lag_seconds\{node="pg-1"', text, re.M)
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert name.endswith(("_total", "_seconds", "_bytes", "_ratio", "_per_second")) or \
                name in ("devsim_servers", "devsim_servers_desired", "devsim_db_up",
                         "devsim_db_writable", "devsim_db_connections", "devsim_db_max_connections",
                         "devsim_server_up", "devsim_cache_node_up", "devsim_alerts",
                         "devsim_info", "devsim_db_queries_per_second",
                         "devsim_requests_in_flight", "devsim_security_control_passing",
                         "devsim_security_findings", "devsim_security_intrusions",
                         "devsim_security_debug_endpoint_open", "devsim_kafka_broker_up",
                             "devsim_db_mesh_split_brain",
                         # a count of messages, as kafka-exporter's kafka_consumergroup_lag
                         "devsim_kafka_consumergroup_lag",
                         # counts of pods per region, a state like devsim_servers
                         "devsim_region_nodes_ready", "devsim_region_pods",
                         "devsim_region_pods_ready", "devsim_region_pod_capacity"), name


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (CI installs it)")
def test_promtool_check_metrics_passes_on_a_scrape():
    e = engine("experimental")
    e.submit(C.CrashNode(node="pg-2"))
    world = LocalWorld(e)
    world.advance(300)
    with start_exporter(world, 0) as h:
        h.publish(world.snapshot())
        text, _ = scrape(h.url)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_use_only_exported_names():
    exported = {m.name for m in METRICS}
    for profile in ("production", "development", "experimental"):
        for rule in rules_for(engine(profile).profile).rules:
            for sel in promql.selectors(rule.tree):
                assert sel.name in exported, (rule.alert, sel.name)


def test_scrapes_read_the_published_snapshot_without_touching_the_engine():
    e = engine("production")
    world = LocalWorld(e)
    with start_exporter(world, 0) as h:
        first, _ = scrape(h.url)
        e.step(50)  # not published: a scrape still shows t=0
        again, _ = scrape(h.url)
        assert re.search(r"^devsim_simulated_time_seconds 0\.0$", again, re.M)
        h.publish(world.snapshot())
        now, _ = scrape(h.url)
        assert re.search(r"^devsim_simulated_time_seconds 50\.0$", now, re.M)
        assert h.collector.scrapes == 3


def test_simulate_metrics_port_flag_serves_during_the_run():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "simulate", "--profile", "development",
         "--duration", "10m", "--speed", "60", "--out", "/dev/null", "--metrics-port", str(port)],
        cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        text = ""
        for _ in range(100):
            try:
                text, _ = scrape(f"http://127.0.0.1:{port}/metrics")
                if "devsim_requests_total" in text:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert "devsim_requests_total" in text
    finally:
        proc.terminate()
        proc.wait(10)


def test_control_room_helper_starts_and_stops_the_exporter():
    from devsim_tui.export.control_room import start_control_room_io

    world = LocalWorld(engine("production"))
    io = start_control_room_io(world, metrics_port=0)
    try:
        world.advance(10)
        io.publish(world.snapshot())
        text, _ = scrape(io.metrics_url)
        assert re.search(r"^devsim_simulated_time_seconds 10\.0$", text, re.M)
    finally:
        io.close()


# ---------------------------------------------------------------------- hostile and idle peers


def threads_of(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/task"))


def test_idle_connections_do_not_hold_threads_and_metrics_still_answers():
    """Issue 11.14: prometheus-client's server held a thread per connection (300 idle
    connections, 303 threads). Idle and half-sent requests now cost no thread, and a scrape
    is answered while they are open."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "simulate", "--profile", "development",
         "--duration", "2h", "--speed", "60", "--out", "/dev/null", "--metrics-port", str(port)],
        cwd=REPO, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if "devsim_requests_total" in scrape(url)[0]:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "no exporter"
            time.sleep(0.1)
        before = threads_of(proc.pid)
        for i in range(300):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(c)
        started = time.monotonic()
        text, _ = scrape(url)
        answered_in = time.monotonic() - started
        assert "devsim_requests_total" in text
        assert answered_in < 5, answered_in
        during = threads_of(proc.pid)
        assert during <= before + 1, (before, during)
    finally:
        for c in idle:
            c.close()
        proc.terminate()
        proc.wait(10)


def test_the_server_times_out_idle_peers_keeps_alive_and_speaks_http():
    import gzip
    import http.client

    from devsim_tui.export.prometheus import MetricsServer

    world = LocalWorld(engine("production"))
    with start_exporter(world, 0) as h:
        server: MetricsServer = h.server
        server.idle_timeout = 0.5
        silent = socket.create_connection(("127.0.0.1", h.port), timeout=10)
        t0 = time.monotonic()
        assert silent.recv(100) == b""  # closed by the server, not by this timeout
        assert time.monotonic() - t0 < 5
        silent.close()

        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
        for _ in range(2):  # one connection, two scrapes (HTTP/1.1 keep-alive)
            conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
            r = conn.getresponse()
            body = gzip.decompress(r.read()).decode()
            assert r.status == 200 and "devsim_info" in body
        conn.request("GET", "/metrics?name[]=devsim_info")
        r = conn.getresponse()
        only = r.read().decode()
        assert "devsim_info{" in only and "devsim_requests_total" not in only
        conn.request("GET", "/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0"})
        r = conn.getresponse()
        assert r.getheader("Content-Type").startswith("application/openmetrics-text")
        assert r.read().decode().endswith("# EOF\n")
        conn.request("GET", "/nothing-here")
        r = conn.getresponse()
        assert r.status == 404 and r.read()
        conn.request("POST", "/metrics", body=b"x")
        r = conn.getresponse()
        assert r.status == 405
        r.read()
        conn.close()

        server.max_connections = 5
        server.idle_timeout = 60
        held = [socket.create_connection(("127.0.0.1", h.port), timeout=10) for _ in range(5)]
        text, _ = scrape(h.url)  # room is made by closing the longest-idle connection
        assert "devsim_info" in text
        assert held[0].recv(10) == b""
        for c in held:
            c.close()


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="prometheus not installed (CI installs it)")
def test_a_real_prometheus_scrapes_the_exporter(tmp_path):
    import json

    world = LocalWorld(engine("production"))
    world.advance(30)
    with start_exporter(world, 0) as h, socket.socket() as s:
        h.publish(world.snapshot())
        s.bind(("127.0.0.1", 0))
        prom_port = s.getsockname()[1]
        s.close()
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: devsim\n    static_configs: [{{targets: ['127.0.0.1:{h.port}']}}]\n")
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            api = f"http://127.0.0.1:{prom_port}/api/v1/query?query="
            deadline = time.monotonic() + 90
            result: list = []
            while time.monotonic() < deadline:
                try:
                    answer = json.loads(scrape(api + "devsim_simulated_time_seconds")[0])
                    result = answer["data"]["result"]
                    if result:
                        break
                except OSError:
                    pass
                assert prom.poll() is None, prom.stderr.read().decode()[-2000:]
                time.sleep(0.5)
            assert result and float(result[0]["value"][1]) == 30.0
            up = json.loads(scrape(api + "up")[0])["data"]["result"]
            assert up[0]["value"][1] == "1"
        finally:
            prom.terminate()
            prom.wait(30)
