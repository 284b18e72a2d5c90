"""The Prometheus exporter: real HTTP scrapes on loopback, promtool check metrics, the same
metric names as the alert rules, and the simulate --metrics-port flag."""

from __future__ import annotations

import re
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
                         "devsim_requests_in_flight"), name


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
