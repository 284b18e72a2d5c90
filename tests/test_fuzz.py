"""Hypothesis fuzzing of everything a user or a peer can send (issue 11's acceptance suite).

* command lines and JSON-style arguments, applied on live engines of every built-in profile
  (faults are kept short so that they also expire and revert while the test runs);
* MQTT command payloads through the bridge's decoder, the engine and the payload encoder;
* profile, drill scenario and commands-file YAML: random documents and mutations of real ones.

The promise checked: a command gets a verdict (`command.applied` or `command.rejected`) and never
raises; a file loads or raises ConfigError/UserError (a FILE:LINE message), nothing else; a
profile that loads runs. Bounded for a loaded 2-core CI (a few hundred examples each, no
deadline); DEVSIM_FUZZ_SCALE=N runs N times as many examples (offline hunting).
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devsim_tui.bridge import payloads as P
from devsim_tui.bridge.mqtt import MqttBridge
from devsim_tui.bridge.options import build_options
from devsim_tui.config.loader import load_profile
from devsim_tui.sim.command_file import load_commands
from devsim_tui.config.yamlsrc import parse_yaml
from devsim_tui.drill.schema import list_shipped, parse_scenario
from devsim_tui.errors import UserError
from devsim_tui.sim import commands as C
from devsim_tui.sim.chaos import CATALOGUE
from devsim_tui.sim.engine import Engine
from devsim_tui.sim.world import LocalWorld

SCALE = max(1, int(os.environ.get("DEVSIM_FUZZ_SCALE", "1")))


def fuzz_settings(examples: int):
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


C.load_feature_commands()
NAMES = sorted({*C.COMMANDS, *C.DRILL_COMMANDS, *C.ALIASES})
FIELDS = sorted({f for cls in (*C.COMMANDS.values(), *C.DRILL_COMMANDS.values())
                 for f in cls.model_fields} | {"name", "to", "full"})
SPECIAL = [
    "nan", "NaN", "inf", "-inf", "+inf", "Infinity", "1e400", "-1e400", "1e-300", "-0", "0",
    "-1", "1", "2", "7", "0.5", "0.95", "0.001", "100", "99999", "9" * 40, "9" * 400, "²", "٣",
    "½", "max", "MAX", "all", "primary", "replica", "master", "db", "db:pg-1", "pg-1", "pg-9",
    "fleet", "estate", "cache", "cache:redis-1", "eu-west-1a", "nowhere", "web-001", "web-999",
    "30%", "100%", "0%", "101%", "1e400%", "nan%", "-5%", "%", "percent:5", "percent:1e400",
    "servers:3", "servers:nan", "region:eu-west-1a", "1s", "5s", "30s", "1m", "0s", "10h",
    "3650d", "3651d", "1h30m", "1e3s", "ms", "1.5", "true", "false", "yes", "off", "full",
    "bad:latency", "bad:error-rate", "bad:crash-loop", "bad:oops", "v1.2.3", "v9.9.9", "F1", "F2",
    "S1", "HighErrorRate", "\x00", "\x07", "\ud800", "a\udc00b", "\u202e", "'", '"', "\\",
    "=", "key=", "=value", "--", ";", "$(id)", "", " ",
]
WORD = st.one_of(
    st.sampled_from(SPECIAL),
    st.sampled_from(sorted(CATALOGUE)),
    st.text(max_size=12),
    st.floats().map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(FIELDS), st.sampled_from(SPECIAL)),
)
FREE_LINE = st.builds(lambda name, words: " ".join([name, *words]),
                      st.one_of(st.sampled_from(NAMES), st.text(max_size=8)),
                      st.lists(WORD, max_size=5))


#: The values that broke commands before (issue 11), drawn most often in shaped lines.
NUMERIC = ["nan", "inf", "-inf", "1e400", "-1", "0", "1e-300", "²", "9" * 400, "1e400%", "nan%",
           "0%", "-5%", "percent:1e400", "servers:nan", "9" * 400 + "d", "1s", "5s", "0.001",
           "99999999999999999999"]
#: Commands weighted by how much they take: chaos has the widest surface.
WEIGHTED = NAMES + ["chaos"] * 40 + ["silence", "rollback", "set-speed", "scale", "deploy"] * 4


@st.composite
def shaped_line(draw) -> str:
    """A command's name and, mostly, one word per positional argument from the nasty values
    (a chaos line names a real fault type), so every argument of every command gets hit."""
    name = draw(st.sampled_from(WEIGHTED))
    cls = C.lookup(C.ALIASES.get(name, name))
    words = [name]
    for field in cls.positional:
        if not draw(st.integers(0, 9)):
            break
        if name == "chaos" and field == "type":
            words.append(draw(st.sampled_from(sorted(CATALOGUE))))
        else:
            words.append(draw(st.sampled_from(NUMERIC)) if draw(st.integers(0, 9)) < 7
                         else draw(st.one_of(st.sampled_from(SPECIAL), WORD)))
    return " ".join(shlex.quote(w) if draw(st.booleans()) else w for w in words)


LINE = st.one_of(shaped_line(), FREE_LINE)
VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-10**400, 10**400) | st.floats()
    | st.sampled_from(SPECIAL) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6)
ARGS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), VALUE,
                       max_size=4)

_ENGINES: dict[str, Engine] = {}


def live_engine(profile: str) -> Engine:
    """One engine per profile for the whole module: state piles up across examples (faults,
    releases, silences), as in a long session; rebuilt when it has run a simulated day."""
    eng = _ENGINES.get(profile)
    if eng is None or eng.t > 86400:
        eng = _ENGINES[profile] = Engine(load_profile(profile), seed=11)
        eng.step(30)
    return eng


def verdict_count(eng: Engine, since: int) -> int:
    """Verdicts since `since`; none may be the engine's last-resort rejection of an exception
    (validation is meant to refuse everything that cannot apply, before it is queued)."""
    found = [ev for ev in eng.events_since(since)
             if ev.type in ("command.applied", "command.rejected")]
    escaped = [ev.message for ev in found if "could not be applied" in ev.message]
    assert not escaped, escaped
    return len(found)


def run_line_on(eng: Engine, line: str) -> None:
    before = eng.events.last_seq
    eng.submit_line(line)  # never raises: a bad line is a command.rejected event
    eng.step(1)
    assert verdict_count(eng, before) >= 1, f"no verdict for {line!r}"
    eng.step(30)  # long enough for the short faults above to expire and revert


PROFILES = st.sampled_from(["production", "development", "experimental"])


def matrix_lines() -> list[str]:
    """Every argument of every command with every value of NUMERIC, the others left valid:
    random generation revisits its favourite values, this reaches each position once."""
    lines = []
    for name, ft in sorted(CATALOGUE.items()):
        for v in NUMERIC:
            lines += [f"chaos {name} {v}", f"chaos {name} {ft.default_scope} {v}",
                      f"chaos {name} {ft.default_scope} 1s {v}"]
    for name in sorted({*C.COMMANDS, *C.DRILL_COMMANDS} - {"chaos"}):
        cls = C.lookup(name)
        for k in range(len(cls.positional)):
            lines += [" ".join([name, *(["all"] * k), shlex.quote(v)]) for v in NUMERIC]
    return lines


@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
def test_every_argument_of_every_command_with_every_bad_value(profile):
    eng = Engine(load_profile(profile), seed=5)
    eng.step(30)
    for k, line in enumerate(matrix_lines()):
        before = eng.events.last_seq
        eng.submit_line(line)
        eng.step(3)  # a 1s fault expires and reverts within these ticks
        assert verdict_count(eng, before) >= 1, f"no verdict for {line!r}"
        if k % 50 == 49:
            eng.submit_line("chaos-stop all")  # revert what piled up (long faults)
            eng.step(2)


@fuzz_settings(400)
@given(profile=PROFILES, line=LINE)
def test_fuzzed_command_lines_get_a_verdict_on_a_live_engine(profile, line):
    run_line_on(live_engine(profile), line)


@fuzz_settings(300)
@given(profile=PROFILES, name=st.sampled_from(NAMES + ["nope"]), args=ARGS)
def test_fuzzed_command_arguments_build_or_are_refused_and_then_apply(profile, name, args):
    eng = live_engine(profile)
    try:
        cmd = C.build(C.ALIASES.get(name, name), args)
    except C.CommandError as exc:
        assert str(exc) and "Input should" not in str(exc)
        return
    before = eng.events.last_seq
    eng.submit(cmd)
    eng.step(1)
    assert verdict_count(eng, before) >= 1
    eng.step(30)


def _surrogate_json(text: str) -> bytes:
    return json.dumps({"command": "silence", "args": {"alert": text}}).encode()


PAYLOAD = st.one_of(
    st.binary(max_size=120),
    LINE.map(lambda s: s.encode("utf-8", "surrogatepass")),
    LINE.map(lambda s: json.dumps({"line": s, "id": 1}).encode()),
    st.builds(lambda n, a, extra: json.dumps({"command": n, "args": a, **extra}).encode(),
              st.sampled_from(NAMES), ARGS,
              st.dictionaries(st.sampled_from(["id", "seat", "role", "token", "x"]), VALUE,
                              max_size=2)),
    st.text(max_size=8).map(lambda s: _surrogate_json(s + "\ud800")),
)


_BRIDGES: dict[str, MqttBridge] = {}


@fuzz_settings(300)
@given(payload=PAYLOAD)
def test_fuzzed_mqtt_payloads_are_answered_applied_and_published(payload):
    eng = live_engine("production")
    bridge = _BRIDGES.get("b")
    if bridge is None or bridge.world.engine is not eng:
        bridge = _BRIDGES["b"] = MqttBridge(LocalWorld(eng), build_options(
            "mqtt://127.0.0.1:1", sim_id="fuzz", buffer_size=200))
    result = bridge.handle_command(payload)  # decodes, submits, queues the encoded result
    assert result["status"] in ("accepted", "rejected")
    if result["status"] == "rejected":
        assert isinstance(result["reason"], str) and result["reason"]
    for _ in range(3):
        eng.step(1)
        bridge.publish_tick(eng.snapshot)  # encodes every event, the command's verdict too
    eng.step(30)

# --------------------------------------------------------------------------- YAML files

_TMP = Path(tempfile.mkdtemp(prefix="devsim-fuzz-"))
YAML_SCALAR = st.one_of(
    st.sampled_from([".inf", "-.inf", ".nan", ".NaN", "1e400", "-1", "0", "1" * 5000, "9" * 400,
                     "~", "null", "yes", "[]", "{}", "*a", "&a x", "!!python/object:os.system",
                     "!!binary aGk=", "'\x00'", "\"\\x07\"", "\"\\ud800\"", "2e308", "-0.0",
                     "0x7fffffffffffffffffff", "0o777", "1_000", "3651d", "1m", "'30s'"]),
    st.integers(-10**30, 10**30).map(str),
    st.floats().map(repr),
    st.text(max_size=10).map(json.dumps),
)


def _yaml_lines(text: str) -> list[str]:
    return text.splitlines()


@st.composite
def mutated(draw, text: str) -> str:
    """A real document with a few lines changed: a value replaced, a character inserted, a
    line duplicated or deleted, deep brackets or an alias bomb appended."""
    lines = _yaml_lines(text)
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["value", "char", "dup", "del", "deep", "bomb"]))
        line = lines[k]
        if how == "value" and ":" in line:
            head = line.split(":", 1)[0]
            lines[k] = f"{head}: {draw(YAML_SCALAR)}"
        elif how == "char":
            at = draw(st.integers(0, len(line)))
            ch = draw(st.sampled_from(["\x00", "\x07", "\x1a", "\t", "[", "{", "&", "*", "!",
                                       "%", "@", "`", "|", ">", "\ufeff", "\u2028", "#"]))
            lines[k] = line[:at] + ch + line[at:]
        elif how == "dup":
            lines.insert(k, line)
        elif how == "del" and len(lines) > 1:
            del lines[k]
        elif how == "deep":
            depth = draw(st.integers(50, 1200))
            lines.append("zz: " + "[" * depth + "]" * depth)
        elif how == "bomb":
            lines.append("zz: &b0 [x, x, x, x, x, x, x, x, x, x]")
            lines += [f"z{n}: &b{n} [{', '.join([f'*b{n - 1}'] * 10)}]" for n in range(1, 8)]
    return "\n".join(lines) + "\n"


PROFILE_TEXT = (Path(__file__).resolve().parents[1] / "profiles" / "production.yaml").read_text()
DRILL_TEXTS = [p.read_text() for p in list_shipped()]


def _write(name: str, text: str) -> Path:
    path = _TMP / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


@fuzz_settings(150)
@given(text=mutated(PROFILE_TEXT))
def test_fuzzed_profile_yaml_loads_or_is_a_user_error_and_a_loaded_one_runs(text):
    path = _write("profile.yaml", text)
    try:
        profile = load_profile(str(path))
    except UserError as exc:  # ConfigError included: FILE:LINE problems
        assert str(exc) and "Traceback" not in str(exc)
        return
    eng = Engine(profile, seed=1)
    eng.step(20)


@fuzz_settings(100)
@given(data=st.data())
def test_fuzzed_drill_yaml_loads_or_is_a_config_error(data):
    text = data.draw(mutated(data.draw(st.sampled_from(DRILL_TEXTS))))
    try:
        parse_scenario(text, "fuzz-drill.yaml", check_profile=data.draw(st.booleans()))
    except UserError as exc:
        assert str(exc)


ENTRY = st.fixed_dictionaries(
    {"at": st.one_of(VALUE, st.sampled_from(["10s", "1m", "nan", "1e400s"])),
     "command": st.one_of(st.sampled_from(NAMES), st.text(max_size=6))},
    optional={"args": ARGS, "x": VALUE})


@fuzz_settings(150)
@given(entries=st.lists(ENTRY, max_size=5), raw=st.booleans(), data=st.data())
def test_fuzzed_commands_files_load_or_are_config_errors_and_apply(entries, raw, data):
    try:
        text = yaml.safe_dump(entries, allow_unicode=True)
    except yaml.YAMLError:
        return
    if raw:
        text = data.draw(mutated(text)) if text.strip() else text
    path = _write("commands.yaml", text)
    try:
        commands = load_commands(path)
    except UserError as exc:
        assert str(exc)
        return
    eng = live_engine("production")
    for timed in commands:
        before = eng.events.last_seq
        eng.submit(timed.build())
        eng.step(1)
        assert verdict_count(eng, before) >= 1


@fuzz_settings(200)
@given(text=st.one_of(st.text(max_size=200),
                      st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_fuzzed_yaml_text_parses_or_is_a_config_error(text):
    try:
        parse_yaml(text, "fuzz.yaml")
    except UserError as exc:
        assert str(exc).startswith("fuzz.yaml")


@pytest.fixture(autouse=True, scope="module")
def _cleanup():
    yield
    for path in _TMP.iterdir():
        path.unlink()
    _TMP.rmdir()
