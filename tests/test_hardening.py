"""Issue 11's reproductions, one named test each: nothing anyone sends (a `:` line, an MQTT
payload, a commands file, a drill) and no local file stops a run or crashes with a traceback.

Fuzzing over the same surfaces is in tests/test_fuzz.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devsim_tui.bridge import payloads as P
from devsim_tui.bridge.mqtt import MqttBridge
from devsim_tui.bridge.options import CommandPolicy, build_options
from devsim_tui.config.durations import parse_duration
from devsim_tui.config.loader import load_profile
from devsim_tui.sim.command_file import load_commands
from devsim_tui.config.yamlsrc import MAX_DEPTH, load_yaml, parse_yaml
from devsim_tui.drill import conditions
from devsim_tui.drill.schema import load_scenario, parse_scenario, resolve
from devsim_tui.errors import ConfigError, UserError
from devsim_tui.sim import commands as C
from devsim_tui.sim.world import LocalWorld
from helpers import REPO, engine, run_cli

NINES_400 = "9" * 400


async def ticking_until(eng, bridge, done, timeout: float = 20.0) -> None:
    """Step the engine and publish its ticks (as `simulate --mqtt` does) until `done` finishes."""

    async def tick() -> None:
        while True:
            eng.step(1)
            bridge.publish_tick(eng.snapshot)
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.wait_for(done, timeout)
    finally:
        ticker.cancel()


def verdicts(eng, since: int = 0) -> list:
    return [ev for ev in eng.events_since(since)
            if ev.type in ("command.applied", "command.rejected")]


def submit_and_run(eng, line: str, seconds: float = 0.0):
    """Submit a `:` line, run a tick (and `seconds` more), return the line's verdict event."""
    before = eng.events.last_seq
    eng.submit_line(line)
    eng.step(1)
    if seconds:
        eng.run_until(eng.t + seconds)
    found = verdicts(eng, before)
    assert found, f"no verdict for {line!r}"
    return found[0]


# --------------------------------------------------------------------------- command lines

CRASHERS = [  # (profile, line, what the rejection says)
    ("production", "chaos cpu-hog 1e400%", "percentage from 0 to 100"),
    ("production", "chaos cpu-hog nan%", "percentage from 0 to 100"),
    ("production", "chaos cpu-hog percent:1e400", "percentage from 0 to 100"),
    ("production", "chaos cpu-hog 99999999999999999999", "number of servers"),
    ("production", "rollback ²", "revision number or a version name"),
    ("production", "chaos replication-lag db 1m 0", "intensity: must be in [0.001, 1]"),
    ("experimental", "chaos consumer-lag estate 1m 0", "intensity: must be in [0.01, 1]"),
    ("production", f"silence all {NINES_400}d", "at most 3650d"),
    ("production", f"silence all {NINES_400}", "at most 3650d"),
    ("production", f"chaos cpu-hog 1 {NINES_400}s", "at most 3650d"),
    ("production", "set-speed 1e-300", "from 0.01 to 1000000"),
    ("production", "set-speed nan", "from 0.01 to 1000000"),
    ("production", "chaos network-latency 1 1m 1e400", "must be a finite number"),
    ("production", "chaos cpu-hog 1 1m nan", "must be a finite number"),
    ("production", "scale 1e400", "expected an integer"),
    ("production", "declare-root-cause \"a\x07b\"", "control characters"),
]


@pytest.mark.parametrize("profile,line,says", CRASHERS, ids=[c[1][:40] for c in CRASHERS])
def test_issue_command_lines_are_rejected_and_the_engine_runs_on(profile, line, says):
    eng = engine(profile)
    verdict = submit_and_run(eng, line, seconds=120)
    assert verdict.type == "command.rejected"
    assert says in verdict.message
    eng.step(5)  # still ticking


@pytest.mark.parametrize("profile,fault,intensity", [
    ("production", "replication-lag db", 0.001), ("experimental", "consumer-lag estate", 0.01)])
def test_lag_faults_at_their_lowest_intensity_revert_on_expiry_and_on_stop(profile, fault,
                                                                          intensity):
    eng = engine(profile)
    assert submit_and_run(eng, f"chaos {fault} 1m {intensity}", seconds=90).type \
        == "command.applied"
    assert any(ev.type == "chaos.reverted" for ev in eng.events_since(0)), "the fault expired"
    assert submit_and_run(eng, f"chaos {fault} 10m {intensity}").type == "command.applied"
    assert submit_and_run(eng, "chaos-stop all", seconds=30).type == "command.applied"


def test_a_revert_that_raises_on_expiry_is_reported_and_the_run_goes_on(monkeypatch):
    """Expiry runs inside the tick, outside any command: it gets the same guard as `apply`."""
    from devsim_tui.sim.chaos import ChaosController

    eng = engine("production")
    assert submit_and_run(eng, "chaos cpu-hog 1 1m 0.5", seconds=5).type == "command.applied"

    def broken(self, t, fault, how):
        raise RuntimeError("undo table corrupt")

    monkeypatch.setattr(ChaosController, "_revert", broken)
    eng.step(120)  # past the fault's minute: the expiry raises inside before_tick
    failed = [ev for ev in eng.events_since(0) if ev.type == "chaos.revert_failed"]
    assert len(failed) == 1 and "undo table corrupt" in failed[0].message
    chaos = next(c for c in eng.controllers if isinstance(c, ChaosController))
    assert not chaos.active  # the fault is gone, not retried every tick
    eng.step(5)


def test_messages_have_no_doubled_prefix_and_no_library_wording():
    for line in ("set-speed 0", "set-speed -3", "chaos cpu-hog 1 1m 7", "scale lots",
                 "pause maybe", "silence all 0s", "chaos cpu-hog 1 0s"):
        with pytest.raises(C.CommandError) as excinfo:
            C.parse_line(line)
        message = str(excinfo.value)
        name = message.split(":", 1)[0]
        assert not message.startswith(f"{name}: {name}:"), message
        assert "Input should" not in message and "Value error" not in message, message
        assert "pydantic" not in message, message


def test_an_exception_while_applying_becomes_a_rejection(monkeypatch):
    """The last line of defence: whatever validation missed is rejected, never raised."""
    eng = engine()
    ctl = next(c for c in eng.controllers if type(c).__name__ == "ChaosController")

    def explode(cmd):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(ctl, "apply", explode)
    verdict = submit_and_run(eng, "chaos cpu-hog 1")
    assert verdict.type == "command.rejected"
    assert "OverflowError" in verdict.message
    eng.step(10)


def test_durations_are_finite_and_bounded():
    for bad in (float("nan"), float("inf"), -1, 10**400, NINES_400, "1e400s", "nan", ".inf",
                f"{NINES_400}d", "²s", "3651d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_duration("3650d") == 3650 * 86400
    assert parse_duration(0) == 0.0


# --------------------------------------------------------------------------- the control room


async def test_control_room_survives_the_issue_lines_and_a_failing_apply(make_app, settle,
                                                                         monkeypatch):
    from pilot import type_line

    app = make_app("production", no_confirm=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for line in ("chaos cpu-hog 1e400%", "rollback ²", "chaos replication-lag db 1m 0",
                     f"silence all {NINES_400}d", "set-speed 1e-300"):
            await type_line(pilot, line)
        engine_ = app.world.inner.engine
        ctl = next(c for c in engine_.controllers if type(c).__name__ == "ChaosController")
        monkeypatch.setattr(ctl, "apply", lambda cmd: 1 / 0)
        await type_line(pilot, "chaos cpu-hog 1")
        app.world.advance(3)
        await pilot.pause()
        assert app.is_running
        rejected = [ev.message for ev in app.world.events_since(0)
                    if ev.type == "command.rejected"]
        assert len(rejected) == 6, rejected
        assert "ZeroDivisionError" in rejected[-1]


# --------------------------------------------------------------------------- hosted drills


def test_hosted_drill_rejects_and_keeps_running(monkeypatch):
    from devsim_tui.drill.runner import DrillSession

    session = DrillSession(load_scenario(resolve("primary-crash-failover")), seed=3)
    bridge = MqttBridge(session, build_options("mqtt://127.0.0.1:1", sim_id="h"),
                        submit=session.submit)
    for payload in ('{"command": "chaos", "args": {"type": "cpu-hog", "scope": "1e400%"}}',
                    "rollback ²", '{"line": "set-speed 1e-300"}',
                    '{"command": "silence", "args": {"alert": "\\ud800"}}'):
        result = bridge.handle_command(payload)
        assert result["status"] == "rejected", result
    ctl = next(c for c in session.engine.controllers if type(c).__name__ == "ChaosController")
    monkeypatch.setattr(ctl, "apply", lambda cmd: 1 / 0)
    assert bridge.handle_command("chaos cpu-hog 1")["status"] == "accepted"
    session.advance(5)
    assert any(ev.type == "command.rejected" and "ZeroDivisionError" in ev.message
               for ev in session.engine.events_since(0))
    assert not session.finished


# --------------------------------------------------------------------------- MQTT payloads


def test_lone_surrogate_json_is_rejected_and_never_breaks_publishing():
    eng = engine()
    bridge = MqttBridge(LocalWorld(eng), build_options("mqtt://127.0.0.1:1", sim_id="s"))
    for payload in ('{"command": "silence", "args": {"alert": "\\ud800"}, "id": "x"}',
                    '{"command": "\\ud800"}', '{"line": "ack \\udc00"}',
                    '{"command": "scale", "args": {"replicas": 3}, "id": "\\ud800"}'):
        result = bridge.handle_command(payload)
        assert result["status"] == "rejected" and "lone surrogate" in result["reason"]
    for _ in range(3):
        eng.step(1)
        bridge.publish_tick(eng.snapshot)
    body = P.encode({"reason": "unknown command '\ud800'"})  # the encoder's own last line
    assert json.loads(body)["reason"] == "unknown command '?'"


# --------------------------------------------------------------------------- commands files


def test_commands_file_with_nan_at_is_an_error_with_file_and_line(tmp_path):
    path = tmp_path / "cmds.yaml"
    path.write_text("- at: 1m\n  command: scale\n  args: {replicas: 6}\n"
                    "- at: .nan\n  command: backup\n"
                    "- at: 2m\n  command: scale\n  args: {replicas: 7}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_commands(path)
    assert excinfo.value.problems == [
        f"{path}:4: commands.1.at: a duration must be a finite number, got nan"]
    res = run_cli("simulate", "--duration", "3m", "--commands", str(path), "--out", os.devnull)
    assert res.returncode == 2 and f"{path}:4:" in res.stderr and "Traceback" not in res.stderr


# --------------------------------------------------------------------------- YAML files


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1a"], ids=["NUL", "BEL", "SUB"])
def test_control_characters_are_file_line_errors(tmp_path, char):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: production\nname: x\ndescription: a{char}b\n")
    res = run_cli("profiles", "validate", str(profile))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"{profile}:3: yaml: character U+{ord(char):04X} is not allowed" in res.stderr
    drill = tmp_path / "d.yaml"
    drill.write_text(f"title: t\nsummary: s{char}\n")
    with pytest.raises(ConfigError, match=f"{drill}:2: yaml: character"):
        load_scenario(drill)
    cmds = tmp_path / "c.yaml"
    cmds.write_text(f"- at: 1m\n  command: backup{char}\n")
    with pytest.raises(ConfigError, match=f"{cmds}:2: yaml: character"):
        load_commands(cmds)


def test_deep_nesting_is_an_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("app:\n  ports: " + "[" * 1000 + "]" * 1000 + "\n")
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels"):
        load_yaml(path)
    res = run_cli("profiles", "validate", str(path))
    assert res.returncode == 2 and f"{path}:2: yaml: nested" in res.stderr
    assert "Traceback" not in res.stderr
    data, _ = parse_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1), "ok.yaml")
    assert isinstance(data["a"], list)


@pytest.mark.parametrize("text", ["(" * 2000 + "t > 1" + ")" * 2000, "not " * 5000 + "t",
                                  "(" * 60 + "t > 1" + ")" * 60, "not " * 60 + "t"])
def test_deeply_nested_drill_conditions_are_errors(text):
    with pytest.raises(conditions.ConditionError, match="too long|nested too deeply"):
        conditions.parse(text)


def test_deep_condition_in_a_drill_file_is_a_file_line_error():
    text = (resolve("primary-crash-failover") and
            Path(resolve("primary-crash-failover")).read_text())
    bad = text.replace("condition: ", "condition: " + "not " * 5000, 1)
    with pytest.raises(ConfigError) as excinfo:
        parse_scenario(bad, "drill.yaml", check_profile=False)
    assert any(p.startswith("drill.yaml:") and "condition" in p and "too long" in p
               for p in excinfo.value.problems), excinfo.value.problems


BOMB = "".join(f"{chr(97 + k)}: &{chr(97 + k)} [" + ",".join(
    [f"*{chr(96 + k)}"] * 9 if k else ['"lol"'] * 9) + "]\n" for k in range(9))


def test_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text("extends: production\n" + BOMB)
    assert len(path.read_bytes()) < 600
    started = time.monotonic()
    with pytest.raises(ConfigError, match="aliases are expanded"):
        load_profile(str(path))
    assert time.monotonic() - started < 10
    cmds = tmp_path / "cmds.yaml"
    cmds.write_text(BOMB.replace("i: &i", "commands: &i"))
    with pytest.raises(ConfigError, match="aliases are expanded"):
        load_commands(cmds)


def test_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="infinitely large"):
        parse_yaml("a: &a [1, *a]\n", "r.yaml")


def test_only_regular_files_of_bounded_size_are_read(tmp_path):
    with pytest.raises(UserError, match="not a regular file"):
        load_profile("/dev/zero")
    fifo = tmp_path / "profile.yaml"
    os.mkfifo(fifo)
    res = run_cli("profiles", "validate", str(fifo))  # would block forever if it were opened
    assert res.returncode == 2 and "not a regular file" in res.stderr
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(9 * 1024 * 1024)
    with pytest.raises(UserError, match="too large"):
        load_commands(big)


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("override,says", [
    ({"traffic.baseline_rps": float("inf")}, "traffic.baseline_rps: must be a finite number"),
    ({"traffic.baseline_rps": float("nan")}, "traffic.baseline_rps: must be a finite number"),
    ({"traffic.baseline_rps": 1e300}, "traffic.baseline_rps: must be between -1e12 and 1e12"),
    ({"database.max_connections": 10**30}, "database.max_connections: must be between"),
    ({"simulation.seed": 2**64}, "simulation.seed: must be <= 2**63-1"),
    ({"monitoring.notifications.route.group_wait": f"{NINES_400}s"}, "at most 3650d"),
])
def test_profiles_refuse_non_finite_and_absurd_numbers(override, says):
    with pytest.raises(ConfigError) as excinfo:
        load_profile("production", override)
    assert any(says in p for p in excinfo.value.problems), excinfo.value.problems
    assert not any("Input should" in p for p in excinfo.value.problems)


def test_profile_file_with_inf_is_a_file_line_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("extends: production\ntraffic:\n  baseline_rps: .inf\n")
    res = run_cli("profiles", "validate", str(path))
    assert res.returncode == 2
    assert f"{path}:3: traffic.baseline_rps: must be a finite number, got inf" in res.stderr


def drill_text(**replace: str) -> str:
    text = Path(resolve("primary-crash-failover")).read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize("old,new,says", [
    ("duration: 35m", "duration: .nan", "duration: a duration must be a finite number"),
    ("duration: 35m", "duration: .inf", "duration: a duration must be a finite number"),
    ("profile: production", "profile: production\nwarmup: .inf", "warmup: a duration must"),
    ("profile: production", "profile: production\nwarmup: .nan", "warmup: a duration must"),
    ("profile: production", "profile: production\nseed: -5", "seed: must be >= 0, got -5"),
])
def test_drills_refuse_non_finite_times_and_negative_seeds(tmp_path, old, new, says):
    path = tmp_path / "d.yaml"
    path.write_text(drill_text(**{old: new}))
    with pytest.raises(ConfigError) as excinfo:
        load_scenario(path)
    assert any(p.startswith(f"{path}:") and says in p for p in excinfo.value.problems), \
        excinfo.value.problems


def test_drill_overrides_errors_name_the_override_line(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(drill_text(**{"overrides:\n": "overrides:\n  simulation.seed: -3\n"
                                  "  traffic:\n    baseline_rps: .inf\n"}))
    lines = path.read_text().splitlines()
    seed_line = next(k for k, x in enumerate(lines, 1) if "simulation.seed" in x)
    rps_line = next(k for k, x in enumerate(lines, 1) if "baseline_rps" in x)
    res = run_cli("drill", "show", str(path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{path}:{seed_line}: overrides.simulation.seed: must be >= 0, got -3" in res.stderr
    assert f"{path}:{rps_line}: overrides.traffic.baseline_rps: must be a finite number" \
        in res.stderr


# --------------------------------------------------------------------------- MQTT command policy


async def _results(broker, sim: str, payloads: list[str | bytes], bridge: MqttBridge,
                   eng) -> list[dict]:
    import aiomqtt

    bridge.start()
    docs: list[dict] = []
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"devsim/{sim}/cmd/result", qos=1)
        deadline = time.monotonic() + 20
        while not bridge.connected:
            assert time.monotonic() < deadline, bridge.link_state
            await asyncio.sleep(0.02)
        for payload in payloads:
            await client.publish(f"devsim/{sim}/cmd", payload, qos=1)

        async def collect() -> None:
            async for m in client.messages:
                docs.append(json.loads(m.payload))
                if sum(d["status"] in ("accepted", "rejected") for d in docs) >= len(payloads):
                    return

        await ticking_until(eng, bridge, collect())
    await bridge.stop()
    return docs


@pytest.mark.parametrize("policy,expect", [
    (CommandPolicy(), ["rejected", "rejected", "rejected"]),
    (CommandPolicy(tokens=("s3cret-token",)), ["rejected", "rejected", "accepted"]),
    (CommandPolicy(allow_without_token=True), ["accepted", "rejected", "rejected"]),
], ids=["read-only", "token", "allow-commands"])
async def test_command_policy_against_a_real_broker(broker, policy, expect):
    eng = engine()
    opts = build_options(broker.url, sim_id="pol", tick_rate=50.0, backoff_initial=0.1,
                         command_policy=policy)
    bridge = MqttBridge(LocalWorld(eng), opts, rng=random.Random(1))
    payloads = ['{"command": "scale", "args": {"replicas": 5}, "id": 1}',
                '{"command": "scale", "args": {"replicas": 6}, "id": 2, "token": "wrong-token"}',
                '{"command": "scale", "args": {"replicas": 7}, "id": 3, "token": "s3cret-token"}']
    docs = await _results(broker, "pol", payloads, bridge, eng)
    first = {d["id"]: d for d in docs if d["status"] in ("accepted", "rejected")}
    assert [first[k]["status"] for k in (1, 2, 3)] == expect, docs
    if expect[0] == "rejected":
        assert "read-only" in first[1]["reason"] or "token" in first[1]["reason"]
    applied = [ev.data["args"]["replicas"] for ev in eng.events_since(0)
               if ev.type == "command.applied"]
    assert applied == [r for r, s in zip((5, 6, 7), expect) if s == "accepted"]


def test_simulate_mqtt_is_read_only_by_default_and_takes_its_token(broker, tmp_path):
    token = tmp_path / "cmd.token"
    token.write_text("a-long-enough-token\n")

    def run(sim: str, *flags: str, payload: str) -> tuple[list[dict], str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devsim_tui", "simulate", "--seed", "5", "--duration", "2m",
             "--speed", "20", "--mqtt", broker.url, "--sim-id", sim, *flags, "--out",
             os.devnull], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t",
                            f"devsim/{sim}/status", "-C", "1", "-W", "30"], capture_output=True,
                           timeout=40, check=True)
            sub = Subscriber(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q",
                              "1", "-t", f"devsim/{sim}/cmd/result"], broker.port).start()
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q",
                            "1", "-t", f"devsim/{sim}/cmd", "-m", payload], check=True, timeout=10)
            out = "\n".join(sub.lines(1, timeout=40))
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0 and "Traceback" not in err, err
        return [json.loads(x) for x in out.splitlines()], err

    from mosquitto import Subscriber, client_binary

    if client_binary("mosquitto_pub") is None or client_binary("mosquitto_sub") is None:
        pytest.skip("mosquitto-clients are not installed")
    docs, err = run("ro", payload="scale 9")
    assert docs[0]["status"] == "rejected" and "read-only" in docs[0]["reason"]
    assert "read-only: commands are refused" in err
    docs, err = run("tok", "--mqtt-token", f"@{token}",
                    payload='{"line": "scale 9", "token": "a-long-enough-token"}')
    assert docs[0]["status"] == "accepted", docs
    assert "1 commands accepted" in err


def test_yaml_escapes_of_lone_surrogates_are_file_line_errors(tmp_path):
    """Found by the fuzz suite: `"\\ud800\\udc00"` in a commands file reached pydantic, which
    cannot even format an error about such text (UnicodeEncodeError, a traceback)."""
    path = tmp_path / "cmds.yaml"
    path.write_text('- at: 10s\n  command: "\\ud800\\udc00"\n- at: 10s\n  command: abort\n')
    res = run_cli("simulate", "--commands", str(path), "--duration", "10s", "--out", os.devnull)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{path}:2: yaml: not valid Unicode text" in res.stderr
    with pytest.raises(C.CommandError, match="argument name: not valid Unicode"):
        C.build("scale", {"\ud800": 1})
    with pytest.raises(C.CommandError, match="command name: not valid Unicode"):
        C.build("\ud800")


def test_seed_flags_are_bounded(tmp_path):
    for bad in ("-5", str(2**64)):
        res = run_cli("simulate", f"--seed={bad}", "--duration", "10s", "--out", os.devnull)
        assert res.returncode == 2 and "a seed is a whole number" in res.stderr
        assert "Traceback" not in res.stderr


def _doc_acl() -> str:
    text = (REPO / "docs" / "mqtt.md").read_text()
    start = text.index("# /etc/mosquitto/devsim.acl (with allow_anonymous false")
    return text[start:text.index("```", start)]


async def test_the_documented_simulate_acl_keeps_watchers_from_commanding(tmp_path):
    """docs/mqtt.md's ACL for a `simulate` run, on a real mosquitto: `ops` commands, `dash`
    cannot (its publish to `cmd` is dropped by the broker), and `ops` cannot read `cmd`."""
    import shutil

    import aiomqtt

    from mosquitto import Mosquitto

    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed (apt-get install mosquitto)")
    broker = Mosquitto(tmp_path / "broker")
    passwd, acl = broker.workdir / "passwd", broker.workdir / "devsim.acl"
    for k, user in enumerate(("sim", "ops", "dash")):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if k == 0 else []), str(passwd), user,
                        f"{user}-pw"], check=True, capture_output=True)
    acl.write_text(_doc_acl())
    broker.conf.write_text(broker.conf.read_text().replace(
        "allow_anonymous true\n",
        # `user root`: run as root (CI), mosquitto would drop to its own user, which cannot
        # read these files in the test's private temporary directory; ignored otherwise.
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\nuser root\n"))
    broker.start()
    try:
        eng = engine()
        opts = build_options(f"mqtt://sim:sim-pw@127.0.0.1:{broker.port}", sim_id="production-42",
                             tick_rate=50.0, backoff_initial=0.1,
                             command_policy=CommandPolicy(allow_without_token=True))
        bridge = MqttBridge(LocalWorld(eng), opts, rng=random.Random(1))
        bridge.start()
        topic = "devsim/production-42"
        results: list[dict] = []
        seen_cmd: list[bytes] = []
        async with aiomqtt.Client("127.0.0.1", broker.port, username="ops",
                                  password="ops-pw") as ops, \
                aiomqtt.Client("127.0.0.1", broker.port, username="dash",
                               password="dash-pw") as dash:
            await ops.subscribe(f"{topic}/cmd/result", qos=1)
            await ops.subscribe(f"{topic}/cmd", qos=1)  # denied by the ACL: nothing arrives
            deadline = time.monotonic() + 20
            while not bridge.connected:
                assert time.monotonic() < deadline, bridge.link_state
                await asyncio.sleep(0.02)
            await dash.publish(f"{topic}/cmd", '{"line": "scale 6", "id": "dash"}', qos=1)
            await ops.publish(f"{topic}/cmd", '{"line": "scale 5", "id": "ops"}', qos=1)

            async def collect() -> None:
                async for m in ops.messages:
                    if str(m.topic).endswith("/cmd"):
                        seen_cmd.append(bytes(m.payload))
                    else:
                        results.append(json.loads(m.payload))
                        if any(r["id"] == "ops" and r["status"] == "applied" for r in results):
                            return

            await ticking_until(eng, bridge, collect())
        await bridge.stop()
    finally:
        broker.stop()
    assert {r["id"] for r in results} == {"ops"}, results
    assert seen_cmd == []
    applied = [ev.data["args"] for ev in eng.events_since(0) if ev.type == "command.applied"]
    assert applied == [{"replicas": 5}]
