"""The MQTT bridge against a real mosquitto on a free loopback port (tests/mosquitto.py).

Skipped, with the reason, where mosquitto is not installed; CI installs it.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devsim_tui.bridge import payloads as P
from devsim_tui.bridge.mqtt import MqttBridge
from devsim_tui.bridge.options import build_options
from devsim_tui.sim import commands as C
from devsim_tui.sim.world import LocalWorld
from helpers import REPO, engine, run_cli
from mosquitto import Subscriber, client_binary, free_port

SIM = "t"


def make_bridge(broker, eng, **extra) -> MqttBridge:
    opts = build_options(broker.url, sim_id=SIM, **{"tick_rate": 50.0, "backoff_initial": 0.1,
                                                    "backoff_max": 0.5, **extra})
    return MqttBridge(LocalWorld(eng), opts, rng=random.Random(1))


class Collector:
    """A subscriber that keeps every message by topic, decoded."""

    def __init__(self, port: int, topics: tuple[str, ...] = (f"devsim/{SIM}/#",)):
        self.port, self.topics = port, topics
        self.messages: list[tuple[str, bytes, bool]] = []
        self.task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    async def _run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            for topic in self.topics:
                await client.subscribe(topic, qos=1)
            self.ready.set()
            async for m in client.messages:
                self.messages.append((str(m.topic), bytes(m.payload or b""), bool(m.retain)))

    async def __aenter__(self) -> "Collector":
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 5)
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def docs(self, stream: str) -> list[dict]:
        topic = f"devsim/{SIM}/{stream}"
        return [json.loads(p) for t, p, _ in self.messages if t == topic and p]

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out waiting for MQTT messages"
            await asyncio.sleep(0.02)


async def connected(bridge: MqttBridge, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not bridge.connected:
        assert time.monotonic() < deadline, f"bridge never connected: {bridge.link_state}"
        await asyncio.sleep(0.01)


async def drive(bridge: MqttBridge, eng, ticks: int, every: int = 20) -> None:
    """Advance the engine like the headless runner does, yielding to the loop now and then."""
    snap = lambda: eng.snapshot  # noqa: E731
    for k in range(ticks):
        _, events = eng.advance()
        bridge.publish_tick(snap, events)
        if k % every == 0:
            await asyncio.sleep(0)


def contiguous(seqs: list[int]) -> bool:
    s = sorted(set(seqs))
    return s == list(range(s[0], s[0] + len(s))) if s else True


async def test_telemetry_round_trip(broker):
    eng = engine("production", seed=3)
    bridge = make_bridge(broker, eng)
    async with Collector(broker.port) as sub:
        bridge.start()
        bridge.publish_tick(lambda: eng.snapshot, eng.last_events)
        await drive(bridge, eng, 600)
        eng.submit(C.CrashNode(node="primary"))  # alerts and failover events to route
        await drive(bridge, eng, 300)
        await sub.wait_for(lambda: len(sub.docs("events")) >= eng.events.last_seq)
        state = await bridge.stop()
        await asyncio.sleep(0.2)

    assert state.state == "stopped" and state.dropped == 0 and state.buffered == 0
    events = sub.docs("events")
    for doc in events + sub.docs("tick") + sub.docs("alerts"):
        assert doc["schema"] == P.SCHEMA_VERSION and doc["sim"] == SIM
    # Every engine event, once, in order, on a gap-free per-stream sequence.
    assert [d["seq"] for d in events] == list(range(1, len(events) + 1))
    assert [d["event"]["seq"] for d in events] == list(range(1, eng.events.last_seq + 1))
    assert events[0]["event"]["type"] == "sim.started"
    alerts = sub.docs("alerts")
    assert alerts and all(d["event"]["type"].startswith("alert.") for d in alerts)
    assert [d["seq"] for d in alerts] == list(range(1, len(alerts) + 1))
    assert {d["event"]["type"] for d in alerts} >= {"alert.firing"}
    assert sum(1 for d in events if d["event"]["type"].startswith("alert.")) == len(alerts)
    ticks = sub.docs("tick")
    assert ticks and [d["seq"] for d in ticks] == list(range(1, len(ticks) + 1))
    last = ticks[-1]
    assert last["tick"] == eng.tick and last["clock"] == eng.clock()
    assert set(last["agg"]) >= {"ready", "served_rps", "p99_ms", "error_rate", "db_primary"}
    # Rate-limited: far fewer tick messages than ticks.
    assert len(ticks) < eng.tick / 2
    status = sub.docs("status")
    assert status[0]["online"] is True and status[-1] == {**status[-1], "online": False,
                                                          "reason": "stopped"}


async def test_retained_state_and_cleared_servers(broker):
    eng = engine("production", seed=5, scaling__scaler="manual")
    bridge = make_bridge(broker, eng)
    bridge.start()
    await connected(bridge)
    await drive(bridge, eng, 30)
    before = set(eng.snapshot.fleet.names)
    eng.submit(C.Scale(replicas=4))
    await drive(bridge, eng, 400)
    assert await bridge.flush(5)
    after = {n for n, s in zip(eng.snapshot.fleet.names, eng.snapshot.fleet.state) if s != 3}
    assert len(after) == 4 and before - after
    # A subscriber arriving now sees only the retained state: the live servers and db nodes.
    async with Collector(broker.port, (f"devsim/{SIM}/servers/+", f"devsim/{SIM}/db/+")) as late:
        await late.wait_for(lambda: len([m for m in late.messages if "/db/" in m[0]])
                            >= len(eng.snapshot.db) and len(late.messages) >= 4 + 1)
        await asyncio.sleep(0.3)
    await bridge.stop()
    servers = {t.rsplit("/", 1)[1]: json.loads(p) for t, p, r in late.messages
               if "/servers/" in t}
    assert all(r for _, _, r in late.messages)
    assert set(servers) == after
    doc = next(iter(servers.values()))
    assert doc["stream"] == "servers" and doc["server"]["state"] in ("ready", "starting")
    assert set(doc["server"]) >= {"name", "state", "version", "region", "cpu", "p99_ms"}
    nodes = {t.rsplit("/", 1)[1]: json.loads(p)["node"] for t, p, _ in late.messages
             if "/db/" in t}
    assert set(nodes) == {n.name for n in eng.snapshot.db}
    assert {n["role"] for n in nodes.values()} >= {"primary"}


async def test_unchanged_state_is_not_republished(broker):
    eng = engine("production", seed=5)
    eng.submit(C.Pause(paused=True))
    bridge = make_bridge(broker, eng)
    async with Collector(broker.port, (f"devsim/{SIM}/servers/+",)) as sub:
        bridge.start()
        for _ in range(5):  # the same snapshot five times: one retained message per server
            bridge.publish_tick(eng.snapshot, ())
            await asyncio.sleep(0.05)
        await bridge.flush(5)
        await asyncio.sleep(0.2)
        await bridge.stop()
    assert len(sub.messages) == len(eng.snapshot.fleet)


async def test_follow_mode_polls_the_world(broker):
    # The control room advances the world itself; with follow=True the bridge polls it.
    eng = engine("production", seed=3)
    world = LocalWorld(eng)
    opts = build_options(broker.url, sim_id=SIM, tick_rate=50.0)
    bridge = MqttBridge(world, opts, poll_interval=0.02)
    seen = []
    bridge.listeners.append(seen.append)
    async with Collector(broker.port, (f"devsim/{SIM}/events", f"devsim/{SIM}/tick")) as sub:
        bridge.start(follow=True)
        await connected(bridge)
        for _ in range(10):
            world.advance(30)
            await asyncio.sleep(0.03)
        await sub.wait_for(lambda: len(sub.docs("events")) >= eng.events.last_seq
                           and sub.docs("tick") and sub.docs("tick")[-1]["tick"] == eng.tick)
        state = await bridge.stop()
    assert [d["event"]["seq"] for d in sub.docs("events")] == list(
        range(1, eng.events.last_seq + 1))
    assert [s.state for s in seen] == ["connecting", "connected", "stopped"]
    assert seen[1].short() == "MQTT connected" and seen[1].level == "ok"
    assert state.state == "stopped" and state.published["events"] == eng.events.last_seq


async def test_commands_and_results(broker):
    eng = engine("production", seed=3, scaling__scaler="manual")
    bridge = make_bridge(broker, eng)
    async with Collector(broker.port, (f"devsim/{SIM}/cmd/result",)) as sub, \
            aiomqtt.Client("127.0.0.1", broker.port) as pub:
        bridge.start()
        await drive(bridge, eng, 5)
        await connected(bridge)
        cmd_topic = f"devsim/{SIM}/cmd"
        await pub.publish(cmd_topic, json.dumps(
            {"command": "scale", "args": {"replicas": 6}, "id": "corr-1"}), qos=1)
        await sub.wait_for(lambda: len(sub.docs("cmd/result")) >= 1)
        await drive(bridge, eng, 2)  # the command applies at the next tick boundary
        await sub.wait_for(lambda: len(sub.docs("cmd/result")) >= 2)
        accepted, applied = sub.docs("cmd/result")[:2]
        assert accepted["status"] == "accepted" and accepted["id"] == "corr-1"
        assert accepted["cmd_seq"] == 1 and accepted["command"] == "scale"
        assert accepted["args"] == {"replicas": 6} and accepted["seq"] == 1
        assert applied["status"] == "applied" and applied["cmd_seq"] == 1
        assert applied["id"] == "corr-1" and applied["seq"] == 2
        ev = [e for e in eng.events if e.seq == applied["event_seq"]][0]
        assert ev.type == "command.applied" and ev.data["command"] == "scale"
        assert eng.desired == 6

        # A plain `:` line works the same; an engine-level refusal is reported as failed.
        await pub.publish(cmd_topic, ":scale 9999", qos=1)
        await sub.wait_for(lambda: len(sub.docs("cmd/result")) >= 3)
        await drive(bridge, eng, 2)
        await sub.wait_for(lambda: len(sub.docs("cmd/result")) >= 4)
        acc, failed = sub.docs("cmd/result")[2:4]
        assert acc["status"] == "accepted" and acc["cmd_seq"] == 2 and acc["id"] is None
        assert failed["status"] == "failed" and "maxReplicas" in failed["reason"]

        # Malformed, unknown, bad arguments: a reason each, and nothing changes in the world.
        before_seq, before_desired = eng.events.last_seq, eng.desired
        bad = [b'{"command": "scale", "args": {"replicas": 6}',  # truncated JSON
               b'{"command": "explode", "id": "u"}',
               b'{"command": "scale", "args": {"replicas": "six"}, "id": "b"}',
               b"\xff\xfe\x00", b"", b"scale"]
        for payload in bad:
            await pub.publish(cmd_topic, payload, qos=1)
        await sub.wait_for(lambda: len(sub.docs("cmd/result")) >= 4 + len(bad))
        await drive(bridge, eng, 3)
        rejected = sub.docs("cmd/result")[4:]
        assert [r["status"] for r in rejected] == ["rejected"] * len(bad)
        assert "malformed JSON" in rejected[0]["reason"]
        assert "unknown command 'explode'" in rejected[1]["reason"] and rejected[1]["id"] == "u"
        assert "replicas" in rejected[2]["reason"] and rejected[2]["id"] == "b"
        assert "UTF-8" in rejected[3]["reason"] and "empty" in rejected[4]["reason"]
        assert "missing argument" in rejected[5]["reason"]
        assert eng.desired == before_desired
        assert not [e for e in eng.events_since(before_seq) if e.type.startswith("command.")]
        assert [r["seq"] for r in sub.docs("cmd/result")] == list(
            range(1, len(sub.docs("cmd/result")) + 1))
        state = await bridge.stop()
    assert state.commands_accepted == 2 and state.commands_rejected == len(bad) + 1


async def test_pause_is_acknowledged_without_a_tick(broker):
    eng = engine("production", seed=3)
    bridge = make_bridge(broker, eng)
    async with Collector(broker.port, (f"devsim/{SIM}/cmd/result",)) as sub, \
            aiomqtt.Client("127.0.0.1", broker.port) as pub:
        bridge.start()
        await connected(bridge)
        await pub.publish(f"devsim/{SIM}/cmd", '{"command": "pause", "id": 5}', qos=1)
        await sub.wait_for(lambda: len(sub.docs("cmd/result")) >= 2)
        await bridge.stop()
    assert [d["status"] for d in sub.docs("cmd/result")] == ["accepted", "applied"]
    assert sub.docs("cmd/result")[1]["id"] == 5 and eng.paused


PAYLOADS = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(
                     st.sampled_from(["command", "args", "id", "line", "x"]) | st.text(max_size=6),
                     c, max_size=4), max_leaves=10).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(PAYLOADS, min_size=1, max_size=25))
def test_fuzzed_payloads_never_crash_and_always_get_a_result(broker, payloads):
    asyncio.run(_fuzz(broker, payloads))


async def _fuzz(broker, payloads: list[bytes]) -> None:
    eng = engine("production", seed=3)
    eng.submit(C.Pause(paused=True))  # nothing may apply: every verdict comes from decoding
    bridge = make_bridge(broker, eng)
    async with Collector(broker.port, (f"devsim/{SIM}/cmd/result",)) as sub, \
            aiomqtt.Client("127.0.0.1", broker.port) as pub:
        bridge.start()
        await connected(bridge)
        for payload in payloads:
            await pub.publish(f"devsim/{SIM}/cmd", payload, qos=1)
        # A sentinel after the junk proves the bridge is still alive and answered in order.
        await pub.publish(f"devsim/{SIM}/cmd", b'{"command": "backup", "id": "sentinel"}', qos=1)
        await sub.wait_for(lambda: any(d.get("id") == "sentinel" for d in sub.docs("cmd/result")))
        assert not bridge._task.done()
        await bridge.stop()
    first = [d for d in sub.docs("cmd/result") if d["status"] in ("accepted", "rejected")]
    assert len(first) == len(payloads) + 1 and first[-1]["id"] == "sentinel"
    for payload, doc in zip(payloads, first):
        try:
            P.decode_command(payload)
            expected = "accepted"
        except P.CommandRejected:
            expected = "rejected"
        assert doc["status"] == expected
        if expected == "rejected":
            assert isinstance(doc["reason"], str) and doc["reason"]


class GatedClient:
    """Wraps aiomqtt.Client so the test decides when the bridge may (re)connect.

    Without broker persistence, messages published while no subscriber is subscribed are gone
    by MQTT's rules; the gate lets the test's subscriber re-subscribe after a restart before the
    bridge re-delivers its buffer, so what is checked is the bridge, not that race.
    """

    def __init__(self, gate: asyncio.Event, **kwargs):
        self.gate, self.inner = gate, aiomqtt.Client(**kwargs)

    async def __aenter__(self):
        await self.gate.wait()
        await self.inner.__aenter__()
        return self.inner

    async def __aexit__(self, *exc):
        return await self.inner.__aexit__(*exc)


async def test_broker_killed_and_restarted_loses_no_event(broker):
    eng = engine("production", seed=9, scaling__scaler="manual")
    gate = asyncio.Event()
    gate.set()
    opts = build_options(broker.url, sim_id=SIM, tick_rate=50.0, backoff_initial=0.05,
                         backoff_max=0.2, keepalive=2)
    bridge = MqttBridge(LocalWorld(eng), opts, rng=random.Random(2),
                        client_factory=lambda **kw: GatedClient(gate, **kw))
    changes = []
    bridge.listeners.append(lambda s: changes.append(s.state))
    received: dict[int, dict] = {}

    def absorb(sub: Collector) -> None:
        for d in sub.docs("events"):
            received.setdefault(d["seq"], d)

    async with Collector(broker.port, (f"devsim/{SIM}/events",)) as sub:
        bridge.start()
        bridge.publish_tick(None, eng.last_events)
        await connected(bridge)
        for r in range(30):  # one command event per tick, besides what the engine emits
            eng.submit(C.Scale(replicas=4 + r % 3))
            await drive(bridge, eng, 1)
        await sub.wait_for(lambda: len(sub.docs("events")) >= eng.events.last_seq)
        absorb(sub)
    gate.clear()
    broker.kill()
    await sub.wait_for(lambda: bridge.link_state.state == "retrying", timeout=10)
    seq_at_kill = eng.events.last_seq
    for r in range(200):  # the simulation keeps running while the broker is away
        eng.submit(C.Scale(replicas=4 + r % 3))
        await drive(bridge, eng, 1)
    assert eng.events.last_seq > seq_at_kill + 200
    # (The gate holds the bridge in "connecting"; retry timing is checked on a dead port below.)
    assert bridge.link_state.buffered >= 200 and "Disconnected" in bridge.link_state.last_error
    broker.start()
    async with Collector(broker.port, (f"devsim/{SIM}/events",)) as sub2:
        gate.set()
        await sub2.wait_for(lambda: bridge.connected, timeout=10)
        await drive(bridge, eng, 20)
        await sub2.wait_for(lambda: max([d["event"]["seq"] for d in sub2.docs("events")],
                                        default=0) >= eng.events.last_seq, timeout=15)
        absorb(sub2)
        state = await bridge.stop()
    assert state.dropped == 0
    seqs = sorted(received)
    assert seqs == list(range(1, len(seqs) + 1))  # per-stream seq: no gap across the outage
    assert [received[s]["event"]["seq"] for s in seqs] == list(range(1, eng.events.last_seq + 1))
    assert changes[:2] == ["connecting", "connected"]
    assert "retrying" in changes and changes.count("connected") >= 2


async def test_bounded_buffer_counts_what_it_drops(tmp_path):
    eng = engine("production", seed=9, scaling__scaler="manual")
    port = free_port()  # nothing listens here
    opts = build_options(f"mqtt://127.0.0.1:{port}", sim_id=SIM, buffer_size=50,
                         backoff_initial=0.05, backoff_max=0.1)
    bridge = MqttBridge(LocalWorld(eng), opts, rng=random.Random(3))
    bridge.start()
    bridge.publish_tick(None, eng.last_events)
    for r in range(120):
        eng.submit(C.Scale(replicas=4 + r % 3))
        await drive(bridge, eng, 1)
    await asyncio.sleep(0.3)
    state = bridge.link_state
    assert state.state in ("retrying", "connecting") and "refused" in state.last_error.lower()
    for _ in range(200):  # catch it between attempts: the header shows when it tries next
        seen = bridge.link_state
        if seen.state == "retrying":
            break
        await asyncio.sleep(0.005)
    assert seen.state == "retrying" and 0 <= seen.next_retry_in <= opts.backoff_max
    assert "retry in" in seen.describe() and "50 buffered" in seen.describe()
    assert seen.short().startswith("MQTT retry") and seen.level == "error"
    assert state.buffered == 50 and state.dropped >= eng.events.last_seq - 50
    assert state.attempts >= 2
    final = await bridge.stop()
    assert final.state == "stopped"


def test_simulate_with_dead_broker_runs_to_completion(tmp_path):
    port = free_port()
    out = tmp_path / "run.jsonl"
    res = run_cli("simulate", "--duration", "10m", "--mqtt", f"mqtt://127.0.0.1:{port}",
                  "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "retrying" in res.stderr and "refused" in res.stderr.lower()
    assert "undelivered" in res.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[-1]["kind"] == "summary" and lines[-1]["ticks"] == 600


def doc_command(prefix: str, needle: str) -> list[str]:
    """A mosquitto_pub/_sub line from docs/mqtt.md, as argv (so the documented line is tested)."""
    import shlex

    for line in (REPO / "docs" / "mqtt.md").read_text().splitlines():
        if line.startswith(prefix) and needle in line:
            return shlex.split(line.rstrip("&").strip())
    raise AssertionError(f"docs/mqtt.md has no `{prefix} ... {needle}` line")


def test_simulate_publishes_and_takes_a_command_from_mosquitto_pub(broker, tmp_path):
    import sys

    if client_binary("mosquitto_pub") is None or client_binary("mosquitto_sub") is None:
        pytest.skip("mosquitto_pub/mosquitto_sub are not installed (apt-get install "
                    "mosquitto-clients)")

    def local(argv: list[str]) -> list[str]:
        # The documented lines say localhost:1883; the test broker is on a free port.
        return [str(broker.port) if a == "1883" else "127.0.0.1" if a == "localhost" else a
                for a in argv]

    out = tmp_path / "run.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "simulate", "--seed", "42", "--duration", "5m",
         "--speed", "50", "--mqtt", f"mqtt://localhost:{broker.port}", "--mqtt-allow-commands",
         "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The sim id defaults to <profile>-<seed>: production-42, as in the docs.
        status = subprocess.run(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t",
             "devsim/production-42/status", "-C", "1", "-W", "20"],
            capture_output=True, text=True, timeout=30)
        assert json.loads(status.stdout)["online"] is True
        results = Subscriber(local(doc_command("mosquitto_sub", "cmd/result")),
                             broker.port).start()
        subprocess.run(local(doc_command("mosquitto_pub", '"command": "scale"')), check=True,
                       timeout=10)
        docs = [json.loads(line) for line in results.lines(timeout=30)]
        assert [d["status"] for d in docs] == ["accepted", "applied"]
        assert all(d["id"] == "pub-1" for d in docs) and docs[0]["cmd_seq"] == 1
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert "mqtt connected" in err and "1 commands accepted" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    applied = [json.loads(x) for x in Path(out).read_text().splitlines()
               if '"command.applied"' in x]
    assert [a["data"]["args"] for a in applied] == [{"replicas": 20}]


def test_the_subscriber_helper_is_subscribed_when_started(broker):
    """tests/mosquitto.Subscriber: no sleep, yet nothing published after start() is lost."""
    if client_binary("mosquitto_pub") is None or client_binary("mosquitto_sub") is None:
        pytest.skip("mosquitto_pub/mosquitto_sub are not installed")
    sub = Subscriber(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                      "-t", "helper/t", "-C", "3"], broker.port).start()
    for word in ("one", "two", "three"):
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                        "-t", "helper/t", "-m", word], check=True, timeout=10)
    assert sub.lines(timeout=30) == ["one", "two", "three"]  # -C 3, probes not counted
    assert sub.proc.poll() is not None
