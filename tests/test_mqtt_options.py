"""The MQTT bridge without a broker: URL and flag validation, the wire format, command decoding."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devsim_tui.bridge import payloads as P
from devsim_tui.bridge.options import (
    build_options, default_sim_id, options_from_args, parse_mqtt_url,
)
from devsim_tui.errors import UserError
from devsim_tui.sim import commands as C
from helpers import REPO, run_cli


# ---------------------------------------------------------------- URLs and flags

@pytest.mark.parametrize("url, expected", [
    ("mqtt://broker", ("broker", 1883, False, None, None)),
    ("mqtt://127.0.0.1:1884", ("127.0.0.1", 1884, False, None, None)),
    ("mqtts://broker.example", ("broker.example", 8883, True, None, None)),
    ("mqtt://ops:s%40cret@broker:2000/", ("broker", 2000, False, "ops", "s@cret")),
    ("MQTT://[::1]:1883", ("::1", 1883, False, None, None)),
    ("mqtt://user@broker", ("broker", 1883, False, "user", None)),
])
def test_url_forms(url, expected):
    p = parse_mqtt_url(url)
    assert (p["host"], p["port"], p["tls"], p["username"], p["password"]) == expected


@pytest.mark.parametrize("url, fragment", [
    ("broker:1883", "expected mqtt://"),
    ("http://broker", "unsupported scheme"),
    ("mqtt://", "missing host"),
    ("mqtt://broker:99999", "out of range"),
    ("mqtt://broker:0", "port must be"),
    ("mqtt://broker:abc", "--mqtt"),
    ("mqtt://broker/devsim", "unexpected path"),
    ("mqtt://broker?x=1", "unexpected path"),
    ("mqtt://:pw@broker", "needs a user name"),
])
def test_bad_urls_are_user_errors(url, fragment):
    with pytest.raises(UserError) as info:
        parse_mqtt_url(url)
    assert fragment in str(info.value)


def test_flag_family_checks(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until connect")
    opts = build_options("mqtts://b", sim_id="x", ca_file=str(ca), cert_file=str(ca))
    assert opts.tls and opts.ca_file == str(ca) and opts.url == "mqtts://b:8883"
    assert build_options("mqtt://u:p@b", sim_id="x").url == "mqtt://u@b:1883"  # no password
    for kwargs, fragment in [
        ({"url": "mqtt://b", "ca_file": str(ca)}, "need an mqtts:// URL"),
        ({"url": "mqtts://b", "key_file": str(ca)}, "--mqtt-key needs --mqtt-cert"),
        ({"url": "mqtts://b", "ca_file": str(tmp_path / "missing.pem")}, "no such file"),
        ({"url": "mqtt://b", "buffer_size": 0}, "--mqtt-buffer"),
        ({"url": "mqtt://b", "tick_rate": 0}, "--mqtt-rate"),
        ({"url": "mqtt://b", "sim_id": "a/b"}, "--sim-id"),
        ({"url": "mqtt://b", "sim_id": "#"}, "--sim-id"),
    ]:
        kwargs.setdefault("sim_id", "x")
        with pytest.raises(UserError) as info:
            build_options(kwargs.pop("url"), **kwargs)
        assert fragment in str(info.value)


def test_sim_id_defaults_to_profile_and_seed():
    assert default_sim_id("production", 42) == "production-42"
    assert default_sim_id("my profile/v2", 7) == "my-profile-v2-7"
    import argparse

    from devsim_tui.bridge.options import add_mqtt_arguments

    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser)
    assert options_from_args(parser.parse_args([]), "production", 42) is None
    opts = options_from_args(parser.parse_args(["--mqtt", "mqtt://h"]), "production", 42)
    assert opts.prefix == "devsim/production-42"
    opts = options_from_args(parser.parse_args(["--mqtt", "mqtt://h", "--sim-id", "drill"]),
                             "production", 42)
    assert opts.prefix == "devsim/drill"
    with pytest.raises(UserError, match="needs --mqtt"):
        options_from_args(parser.parse_args(["--mqtt-cert", "c.pem"]), "production", 42)


def test_simulate_rejects_bad_mqtt_flags_with_exit_2():
    for args, fragment in [
        (["--mqtt", "http://broker"], "unsupported scheme"),
        (["--mqtt", "mqtt://broker", "--mqtt-ca", "ca.pem"], "mqtts://"),
        (["--mqtt-ca", "ca.pem"], "needs --mqtt"),
    ]:
        res = run_cli("simulate", "--duration", "10s", *args)
        assert res.returncode == 2, res.stderr
        assert fragment in res.stderr and "Traceback" not in res.stderr
        assert res.stdout == ""


def test_no_network_code_without_mqtt():
    # Without --mqtt nothing may touch the network: the MQTT client is not even imported.
    code = ("import io, sys\n"
            "from devsim_tui.cli import main\n"
            "sys.stdout = io.StringIO()\n"
            "rc = main(['simulate', '--duration', '30s'])\n"
            "sys.stdout = sys.__stdout__\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('aiomqtt', 'paho', 'socket') or m == 'devsim_tui.bridge.mqtt'))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    rc, mods = res.stdout.strip().split(" ", 1)
    assert rc == "0"
    assert "aiomqtt" not in mods and "paho" not in mods and "bridge.mqtt" not in mods


# ---------------------------------------------------------------- payloads

def test_envelope_and_encoding_are_strict_json():
    body = P.envelope("s", "events", 3, {"x": math.nan, "y": (1, 2), "z": float("inf")})
    doc = json.loads(P.encode(body))
    assert doc == {"schema": P.SCHEMA_VERSION, "sim": "s", "stream": "events", "seq": 3,
                   "x": None, "y": [1, 2], "z": None}


def test_event_routing_by_type():
    assert P.streams_for("alert.firing") == ["events", "alerts"]
    assert P.streams_for("alert.resolved") == ["events", "alerts"]
    assert P.streams_for("detector.anomaly") == ["events", "detector"]
    assert P.streams_for("scale.hpa") == ["events"]


# ---------------------------------------------------------------- command decoding

@pytest.mark.parametrize("payload, name, args, corr", [
    (b'{"command": "scale", "args": {"replicas": 6}, "id": "c-1"}', "scale", {"replicas": 6},
     "c-1"),
    (b'{"command": "speed", "args": {"speed": "max"}}', "set-speed", {"speed": "max"}, None),
    (b'{"command": "pause", "id": 17}', "pause", {}, 17),
    (b'{"line": "failover db-2", "id": "x"}', "failover", {"target": "db-2"}, "x"),
    (b"scale 6", "scale", {"replicas": 6}, None),
    (b":ack all\n", "ack-alert", {"alert": "all"}, None),
    ("crash-node node=primary", "crash-node", {"node": "primary"}, None),
])
def test_valid_commands(payload, name, args, corr):
    cmd, got_corr = P.decode_command(payload)
    assert (cmd.name, cmd.args(), got_corr) == (name, args, corr)


@pytest.mark.parametrize("payload, fragment, corr", [
    (b'{"command": "scale", "args": {"replicas": 6}', "malformed JSON", None),
    (b'{"command": "explode", "id": "e"}', "unknown command 'explode'", "e"),
    (b'{"command": "scael", "args": {"replicas": 6}}', "did you mean 'scale'", None),
    (b'{"command": "scale", "args": {"replicas": -1}, "id": "n"}', "replicas", "n"),
    (b'{"command": "scale", "args": {"replica": 6}}', "did you mean 'replicas'", None),
    (b'{"command": "scale", "args": [6]}', "args must be an object", None),
    (b'{"command": "scale", "args": {"replicas": 6}, "extra": 1, "id": "q"}', "unknown field",
     "q"),
    (b'{"args": {"replicas": 6}}', "command: missing", None),
    (b'{"command": 6}', "command: missing or not a string", None),
    (b'{"command": "pause", "id": true}', "id: must be", None),
    (b'{"line": "scale 6", "command": "scale"}', "either line or command", None),
    (b"\xff\xfe", "not UTF-8", None),
    (b"   ", "empty command", None),
    (b"scale many", "replicas", None),
    (b"scale 1 2", "too many arguments", None),
    (b"scale 'unterminated", "quotation", None),
    (b"{" * 20000, "too large", None),
    (b"[" * 5000, "command line too long", None),
    (b"[" * 400, "unknown command", None),
])
def test_rejected_commands(payload, fragment, corr):
    with pytest.raises(P.CommandRejected) as info:
        P.decode_command(payload)
    assert fragment in info.value.reason and info.value.corr_id == corr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=200),
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                       max_size=4),
                 max_leaves=12).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"command": st.sampled_from(sorted(C.COMMANDS) + ["nope", ""])},
                          optional={"args": st.dictionaries(st.text(max_size=8), st.integers()
                                                            | st.text(max_size=5), max_size=3),
                                    "id": st.text(max_size=5)}).map(
        lambda d: json.dumps(d).encode()),
))
def test_decoding_never_raises_anything_but_a_rejection(payload):
    try:
        cmd, _ = P.decode_command(payload)
    except P.CommandRejected as exc:
        assert isinstance(exc.reason, str) and exc.reason
    else:
        assert cmd.name in C.COMMANDS
