"""Shared seats: one hosted world, remote control rooms attached through a real mosquitto.

The wire format and the host's role checks are tested without a broker; the seats themselves
against a broker started here (tests/mosquitto.py), skipped where mosquitto is not installed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import numpy as np
import pytest

from devsim_tui.access import role_refusal as refusal
from devsim_tui.bridge import payloads as P
from devsim_tui.bridge.mqtt import MqttBridge
from devsim_tui.bridge.options import build_options
from devsim_tui.bridge.remote import HostUnavailable, RemoteWorld
from devsim_tui.bridge.seats import SeatPolicy, host
from devsim_tui.drill.runner import DrillSession
from devsim_tui.drill.schema import load_scenario, resolve
from devsim_tui.errors import UserError
from devsim_tui.sim import commands as C
from helpers import engine

SIM = "seats"
FACILITATOR_TOKEN = "f-secret-123"


def options(url: str, sim_id: str = SIM, **extra):
    return build_options(url, sim_id=sim_id, **{"tick_rate": 20.0, "backoff_initial": 0.1,
                                             "backoff_max": 0.5, **extra})


# ---------------------------------------------------------------------- without a broker


def test_snapshot_round_trip_rebuilds_what_the_ui_reads():
    eng = engine("production", seed=5)
    eng.step(120)
    eng.submit(C.CrashNode(node="primary"))
    eng.step(60)
    snap = eng.snapshot
    body = json.loads(P.encode(P.snapshot_body(snap, speed="max", paused=True, run="r")))
    back = P.snapshot_from_body(body)
    assert (back.tick, back.t, back.clock, back.health) == (snap.tick, snap.t, snap.clock,
                                                           snap.health)
    assert back.agg == snap.agg and back.db == snap.db and back.alerts == snap.alerts
    assert back.extensions == json.loads(P.encode({"x": snap.extensions}))["x"]
    f, g = back.fleet, snap.fleet
    assert f.names == g.names and len(f) == len(g)
    for name, dtype in P.FLEET_COLUMNS:
        assert getattr(f, name).dtype == np.dtype(dtype)
        assert not getattr(f, name).flags.writeable
        np.testing.assert_allclose(getattr(f, name), getattr(g, name), rtol=1e-5)
    assert body["speed"] == "max" and body["paused"] is True


def test_seat_fields_are_parsed_and_checked():
    cmd, corr, claim = P.decode_seat_command(json.dumps(
        {"command": "scale", "args": {"replicas": 4}, "id": "a-1", "seat": "alice",
         "role": "operator", "token": "t0ken-123"}))
    assert cmd == C.Scale(replicas=4) and corr == "a-1"
    assert claim == P.SeatClaim("alice", "operator", "t0ken-123")
    assert P.decode_seat_command("scale 3")[2] == P.SeatClaim()
    with pytest.raises(P.CommandRejected, match="role: 'root'"):
        P.decode_seat_command(json.dumps({"command": "scale", "args": {"replicas": 1},
                                          "role": "root"}))


def test_roles_and_the_host_policy():
    assert refusal("observer", "ack-alert") and refusal("observer", "scale")
    assert refusal("operator", "scale") is None and refusal("operator", "remedy") is None
    assert refusal("operator", "declare-root-cause") is None
    for name in ("pause", "set-speed", "hint", "inject-next", "skip-inject", "end-drill"):
        assert "only a facilitator" in refusal("operator", name)
        assert refusal("facilitator", name) is None

    open_host = SeatPolicy.from_flags(None, None)
    scale = C.Scale(replicas=3)
    assert open_host.authorize(P.SeatClaim(), scale) == ("operator", None)
    assert open_host.authorize(P.SeatClaim(role="facilitator"), C.Pause())[1].startswith(
        "role facilitator needs a seat token")

    tokens = SeatPolicy.from_flags([f"facilitator={FACILITATOR_TOKEN}",
                                    "operator=op-secret-1"], None)
    assert tokens.authorize(P.SeatClaim(token=FACILITATOR_TOKEN), C.Pause()) == (
        "facilitator", None)
    # Tokens configured: tokenless seats only watch, a claim cannot promote a token.
    assert "needs a seat token" in tokens.authorize(P.SeatClaim(role="operator"), scale)[1]
    assert tokens.authorize(P.SeatClaim(token="op-secret-1", role="facilitator"),
                            C.Pause())[1] == "this seat's token is for role operator, " \
                                             "not facilitator"
    assert tokens.authorize(P.SeatClaim(token="guess-guess"), scale) == (
        None, "unknown seat token")
    with pytest.raises(UserError, match="ROLE=TOKEN"):
        SeatPolicy.from_flags(["admin=whatever-long"], None)
    with pytest.raises(UserError, match="at least 8"):
        SeatPolicy.from_flags(["operator=short"], None)
    with pytest.raises(UserError, match="unknown role"):
        SeatPolicy.from_flags(None, "operator,god")


def test_a_remote_world_interpolates_rows_and_keeps_events_in_order():
    eng = engine("production", seed=2)
    eng.step(30)
    world = RemoteWorld(options("mqtt://127.0.0.1:1"), seat="s")
    snap = eng.snapshot
    rows = P.series_rows([10, 20, 30], {n: [1.0, 2.0, 3.0] for n in P_SERIES()})
    body = P.envelope(SIM, P.SNAPSHOT, 1, P.snapshot_body(snap, speed=1.0, paused=False,
                                                         run="r", rows=rows))
    world.handle(f"devsim/{SIM}/snapshot", P.encode(body))
    np.testing.assert_allclose(world.series("p99_ms", 5), [2.6, 2.7, 2.8, 2.9, 3.0])
    assert len(world.series("p99_ms", 1000)) == 21  # from the first row held
    for seq in (3, 1, 2, 2):
        ev = {"seq": seq, "t": 1.0, "type": "x", "severity": "info", "message": str(seq)}
        world.handle(f"devsim/{SIM}/events", P.encode(P.envelope(SIM, P.EVENTS, seq,
                                                                 {"event": ev})))
    assert [e.seq for e in world.events_since(0)] == [1, 2, 3]
    assert [e.seq for e in world.events_since(2)] == [3]
    assert world.advance(100) is world.snapshot()  # the host runs the clock


def P_SERIES():
    from devsim_tui.sim.history import SERIES

    return SERIES


# ---------------------------------------------------------------------- with a broker


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def hosted_drill(url: str, policy: SeatPolicy) -> tuple[DrillSession, MqttBridge]:
    session = DrillSession(load_scenario(resolve("primary-crash-failover")), seed=3)
    bridge = MqttBridge(session, options(url), rng=random.Random(1), snapshots=True,
                        policy=policy, submit=session.submit,
                        extras=lambda snap: {P.DRILL_FACILITATOR:
                                             session.drill.facilitator_state()})
    return session, bridge


async def test_two_seats_share_one_world_and_the_observer_cannot_act(broker):
    policy = SeatPolicy.from_flags([f"facilitator={FACILITATOR_TOKEN}"], "operator,observer")
    session, bridge = hosted_drill(broker.url, policy)
    stop = asyncio.Event()
    hosting = asyncio.create_task(host(session, bridge, speed=40.0, stop=stop))
    operator = RemoteWorld(options(broker.url), seat="olga", role="operator")
    observer = RemoteWorld(options(broker.url), seat="otto", role="observer")
    facilitator = RemoteWorld(options(broker.url), seat="fay", role="facilitator",
                              token=FACILITATOR_TOKEN)
    told: list[tuple[str, str]] = []
    observer.listeners.append(lambda kind, msg, body: told.append((kind, msg)))
    try:
        for seat in (operator, observer, facilitator):
            await seat.connect(10)
        assert operator.profile.name == session.profile.name
        await until(lambda: operator.snapshot().tick > 40 and observer.snapshot().tick > 40,
                    what="the seats to follow the host")

        # The operator acts; everyone sees the command's effect and its event.
        desired = session.engine.snapshot.agg.desired + 3
        operator.submit(C.Scale(replicas=desired))
        await until(lambda: observer.snapshot().agg.desired == desired, what="the scale")
        await until(lambda: any(e.type == "command.applied" and e.data.get("command") == "scale"
                                for e in observer.events_since(0)), what="the scale's event")
        await until(lambda: [r["status"] for r in operator.results] == ["accepted", "applied"],
                    what="the host's two answers to the operator")

        # The operator may not touch the clock; the facilitator may.
        operator.submit(C.Pause(paused=True))
        await until(lambda: operator.results[-1]["status"] == "rejected", what="a refusal")
        assert "only a facilitator" in operator.results[-1]["reason"]
        assert not session.paused
        facilitator.submit(C.Pause(paused=True))
        await until(lambda: session.paused and operator.paused and observer.paused
                    and operator.snapshot().tick == observer.snapshot().tick
                    == session.engine.tick
                    and operator.events_since(0)[-1:] == observer.events_since(0)[-1:]
                    and observer.events_since(0)[-1].seq == session.engine.events.last_seq,
                    what="both seats to show the paused world")

        # Same state, same events on both seats (and the host's, seq for seq).
        a, b = operator.snapshot(), observer.snapshot()
        assert (a.tick, a.t, a.agg, a.db, a.alerts) == (b.tick, b.t, b.agg, b.db, b.alerts)
        seen_a = [(e.seq, e.type, e.message) for e in operator.events_since(0)]
        seen_b = [(e.seq, e.type, e.message) for e in observer.events_since(0)]
        assert seen_a == seen_b and len(seen_a) > 5
        host_events = {e.seq: (e.seq, e.type, e.message) for e in session.engine.events}
        assert all(host_events.get(s[0], s) == s for s in seen_a)
        np.testing.assert_array_equal(operator.series("p99_ms", 50),
                                      observer.series("p99_ms", 50))
        assert facilitator.drill_state()["notes"]  # the facilitator's own view
        assert "notes" not in observer.drill_state()

        # The observer's command reaches the host and is refused there, with a reason;
        # nothing changes: no command queued or recorded, no event, the same world.
        before_seq, before_cmds = session.engine.events.last_seq, len(session.commands)
        observer.submit(C.Scale(replicas=1))
        observer.submit_line("ack-alert all")
        await until(lambda: len(observer.results) == 2, what="the observer's refusals")
        assert [r["status"] for r in observer.results] == ["rejected", "rejected"]
        assert all(r["reason"] == "observers cannot act: this seat is read-only"
                   and r["role"] == "observer" for r in observer.results)
        assert [k for k, _ in told].count("refused") == 2
        facilitator.submit(C.Pause(paused=False))
        await until(lambda: session.engine.tick > a.tick + 5, what="the clock to run again")
        assert session.engine.snapshot.agg.desired != 1
        assert len(session.commands) == before_cmds + 1  # only the facilitator's resume
        assert not [e for e in session.engine.events.since(before_seq)
                    if e.data.get("command") in ("scale", "ack-alert")]
    finally:
        stop.set()
        await hosting
        for seat in (operator, observer, facilitator):
            await seat.stop()
    scale = next(c for c in session.commands if c["name"] == "scale")
    assert scale["by"] == "olga (operator)"  # the drill's record says who acted


async def test_attaching_to_nothing_says_so(broker):
    seat = RemoteWorld(options(broker.url, sim_id="nobody-here"), seat="x")
    with pytest.raises(HostUnavailable, match="nothing is hosted under devsim/nobody-here/"):
        await seat.connect(0.5)


async def test_the_control_room_runs_on_a_remote_world(broker, config_home, settle):
    """The same app, on a seat: it draws the host's ticks, never drives the clock itself, and
    shows the host's refusal of a command this role may not send."""
    from devsim_tui.ui.app import create_app
    from devsim_tui.ui.seat import RemoteControlRoom, SeatBadge

    session, bridge = hosted_drill(broker.url, SeatPolicy.from_flags(None, None))
    stop = asyncio.Event()
    hosting = asyncio.create_task(host(session, bridge, speed=20.0, stop=stop))
    seat = RemoteWorld(options(broker.url), seat="olga", role="operator")
    try:
        await seat.connect(10)
        await seat.stop()  # the app starts its own link, as `attach` does after fetching
        app = create_app(seat, app_class=RemoteControlRoom)
        app.animation_level = "none"
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert "operator olga" in str(app.query_one(SeatBadge).render())
            await until(lambda: app.world.connected, what="the seat's link")
            first = app.world.snapshot().tick
            await until(lambda: app.world.snapshot().tick > first + 10, what="host ticks")
            # The frame loop drew a tick the host ran (the drawn key starts with the tick).
            await until(lambda: app._drawn is not None and app._drawn[0] > first + 10,
                        what="a frame of a later host tick")
            await pilot.press("space")  # pause: a facilitator's command
            await until(lambda: any("only a facilitator" in n.message
                                    for n in app._notifications), what="the refusal")
            assert not session.paused
    finally:
        stop.set()
        await hosting


async def test_drill_host_on_the_command_line_ends_when_the_facilitator_says(broker, tmp_path):
    """`drill host` with a facilitator token: a tokenless operator claim is refused (tokens
    configured), the facilitator's end-drill ends the run, and the host exits with a report."""
    import subprocess
    import sys

    from helpers import REPO

    token = tmp_path / "facilitator.token"
    token.write_text(FACILITATOR_TOKEN + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "drill", "host", "primary-crash-failover",
         "--mqtt", broker.url, "--sim-id", "cli", "--speed", "30",
         "--seat-token", f"facilitator=@{token}", "--report", str(tmp_path / "rep")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    operator = RemoteWorld(options(broker.url, sim_id="cli"), seat="olga")
    facilitator = RemoteWorld(options(broker.url, sim_id="cli"), seat="fay",
                              role="facilitator", token=f"{FACILITATOR_TOKEN}")
    try:
        await operator.connect(20)
        await facilitator.connect(10)
        operator.submit(C.Scale(replicas=2))
        await until(lambda: operator.results, what="the refusal")
        assert "role operator needs a seat token" in operator.results[-1]["reason"]
        facilitator.submit(C.EndDrill())
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        proc.kill()
        await operator.stop()
        await facilitator.stop()
    assert proc.returncode == 0, err
    assert "--sim-id cli" in err and "ended at" in out and "(facilitator)" in out
    assert (tmp_path / "rep.md").exists()


def test_attach_and_host_flag_errors_exit_2(broker):
    from helpers import run_cli

    r = run_cli("attach", "--mqtt", broker.url, "--sim-id", "nobody", "--wait", "0.5")
    assert r.returncode == 2 and "nothing is hosted under devsim/nobody/" in r.stderr
    r = run_cli("drill", "host", "primary-crash-failover")
    assert r.returncode == 2 and "needs --mqtt" in r.stderr
    r = run_cli("drill", "host", "primary-crash-failover", "--mqtt", broker.url,
                "--seat-token", "root=abcdefghij")
    assert r.returncode == 2 and "ROLE=TOKEN" in r.stderr


def test_participant_seats_see_neither_the_injects_events_nor_their_faults():
    """A drill host marks what its injects did; an operator's or observer's seat drops those
    events and the injected faults (pane and badges), a facilitator's keeps them."""
    from devsim_tui.bridge.mqtt import MqttBridge

    session = DrillSession(load_scenario(resolve("tls-certificate-expiry")), seed=42)
    session.advance(300)  # the certificate fault was injected at 2m (after a 1m warm-up)
    injected = session.drill.injected_faults()
    assert injected
    snap = session.snapshot()
    assert {f["id"] for f in snap.extensions["ChaosController"]["active"]} >= set(injected)
    # What the host's bridge would publish (its outbox, as a broker would deliver it).
    bridge = MqttBridge(session, options("mqtt://127.0.0.1:1"), snapshots=True)
    bridge.publish_tick(None, session.events_since(0))
    published = [(m.topic, m.payload) for m in bridge._out if m.topic.endswith("/events")]
    secret = [json.loads(p)["event"]["seq"] for _, p in published if json.loads(p).get("hidden")]
    assert secret
    seats = {role: RemoteWorld(options("mqtt://127.0.0.1:1"), seat=role, role=role)
             for role in ("operator", "observer", "facilitator")}
    snap_body = P.envelope(SIM, P.SNAPSHOT, 1, P.snapshot_body(snap, speed=1.0, paused=False,
                                                               run="r", rows=None))
    for world in seats.values():
        world.handle(f"devsim/{SIM}/snapshot", P.encode(snap_body))
        for topic, payload in published:
            world.handle(topic.replace(bridge.options.prefix, f"devsim/{SIM}"), payload)
    every = [e.seq for e in seats["facilitator"].events_since(0)]
    assert set(secret) <= set(every)
    for role in ("operator", "observer"):
        world = seats[role]
        seen = [e.seq for e in world.events_since(0)]
        assert not set(secret) & set(seen) and len(seen) < len(every)
        assert not [e for e in world.events_since(0) if e.type.startswith("drill.inject")]
        chaos = world.snapshot().extensions["ChaosController"]
        assert not {f["id"] for f in chaos["active"]} & set(injected)
    fac = seats["facilitator"].snapshot().extensions["ChaosController"]
    assert {f["id"] for f in fac["active"]} >= set(injected)


def test_a_hosted_drill_refuses_participants_faults_and_bad_releases():
    """Operators may scale, fail over, ack and apply remedies, but the faults and the bad
    releases are the facilitator's script: `chaos`, `chaos-stop` (by id or all) and `deploy
    bad:` are refused before the world sees them; the facilitator may send them."""
    session, bridge = hosted_drill("mqtt://127.0.0.1:1", SeatPolicy.from_flags(
        ["facilitator=f-token-123456"], "operator,observer"))
    before = list(session.commands)
    for line in ("chaos cpu-hog 2 5m", "chaos-stop all", "chaos-stop f1", "deploy bad:latency"):
        result = bridge.handle_command(json.dumps({"line": line, "role": "operator"}))
        assert result["status"] == "rejected" and "facilitator's" in result["reason"], line
    assert session.commands == before
    for line in ("scale 4", "deploy v2.15.0", "ack-alert all"):
        assert bridge.handle_command(json.dumps({"line": line}))["status"] == "accepted"
    result = bridge.handle_command(json.dumps({"line": "chaos cpu-hog 2 5m",
                                               "token": "f-token-123456"}))
    assert result["status"] == "accepted"
