"""What travels over MQTT: topic names, JSON payloads and the decoding of incoming commands.

Pure functions only (no sockets), so the wire format is tested without a broker and documented in
one place (docs/mqtt.md mirrors this module). Every payload is a JSON object carrying `schema`
(SCHEMA_VERSION), `sim` (the sim id), `stream` and a per-stream `seq`, so a subscriber can tell
versions apart and spot a gap or a duplicate without trusting the transport.
"""

from __future__ import annotations

import json
import math
from typing import Any

from devsim_tui.sim import commands as C
from devsim_tui.sim.events import Event
from devsim_tui.sim.snapshot import STATE_NAMES, Aggregates, DBNodeView, FleetView, Snapshot

SCHEMA_VERSION = 1
MAX_COMMAND_BYTES = 16 * 1024  # a command is a few dozen bytes; anything huge is hostile or wrong
MAX_ID_CHARS = 200

# Stream names double as topic suffixes under devsim/<sim-id>/.
TICK = "tick"
EVENTS = "events"
ALERTS = "alerts"
DETECTOR = "detector"
SERVERS = "servers"  # servers/<name>, retained
DB = "db"  # db/<node>, retained
STATUS = "status"  # retained, with a last will
CMD = "cmd"
CMD_RESULT = "cmd/result"

# Events are published on `events` (the complete stream) and, by type prefix, also on a narrower
# stream, so an alert pager or a detector dashboard subscribes to only what it needs.
ROUTES: tuple[tuple[str, str], ...] = (("alert.", ALERTS), ("detector.", DETECTOR))


def streams_for(event_type: str) -> list[str]:
    out = [EVENTS]
    for prefix, stream in ROUTES:
        if event_type.startswith(prefix):
            out.append(stream)
    return out


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null (JSON has neither), numpy scalars and tuples become plain."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [_clean(v) for v in x]
    item = getattr(x, "item", None)  # numpy scalar
    if callable(item):
        try:
            return _clean(item())
        except (TypeError, ValueError):
            pass
    return str(x)


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def encode(obj: dict[str, Any]) -> bytes:
    return _ENCODER.encode(_clean(obj)).encode("utf-8")


def envelope(sim_id: str, stream: str, seq: int, body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "sim": sim_id, "stream": stream, "seq": seq}
    out.update(body)
    return out


def _r(x: float | None, digits: int) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def tick_body(state: Snapshot | Aggregates) -> dict[str, Any]:
    """Aggregates of one tick; a bare Aggregates (no snapshot at hand) leaves tick/t/clock null."""
    if isinstance(state, Snapshot):
        agg = state.agg
        head = {"tick": state.tick, "t": state.t, "clock": state.clock, "health": state.health,
                "profile": state.profile}
    else:
        agg = state
        head = {"tick": None, "t": None, "clock": None, "health": None, "profile": None}
    values = {k: (_r(v, 6) if isinstance(v, float) else v) for k, v in agg.to_dict().items()}
    head["agg"] = values
    return head


def event_body(ev: Event) -> dict[str, Any]:
    return {"event": ev.to_dict()}


def server_states(snap: Snapshot) -> dict[str, dict[str, Any]]:
    """Current state of every live server, by name.

    Only slowly-changing, rounded fields: the retained topic is re-published when this changes,
    and ever-growing counters (uptime, totals) would make every tick a change.
    """
    f: FleetView = snap.fleet
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(f.names):
        code = int(f.state[i])
        state = STATE_NAMES[code] if 0 <= code < len(STATE_NAMES) else str(code)
        if state == "terminated":
            continue  # a terminated server's retained topic is cleared, not updated
        v, g = int(f.version[i]), int(f.region[i])
        out[name] = {
            "name": name, "state": state,
            "version": snap.versions[v] if 0 <= v < len(snap.versions) else None,
            "region": snap.regions[g] if 0 <= g < len(snap.regions) else None,
            "cpu": _r(f.cpu[i], 2), "memory_pct": _r(f.memory_pct[i], 0),
            "disk_pct": _r(f.disk_pct[i], 0), "rps": _r(f.rps[i], 0),
            "p99_ms": _r(f.p99_ms[i], 0), "error_rate": _r(f.error_rate[i], 3),
            "restarts": int(f.restarts[i]),
        }
    return out


def db_states(snap: Snapshot) -> dict[str, dict[str, Any]]:
    """Current state of every database node, by name (rounded like server_states)."""
    out: dict[str, dict[str, Any]] = {}
    for n in snap.db:
        n: DBNodeView
        out[n.name] = {
            "name": n.name, "role": n.role, "state": n.state, "region": n.region,
            "connections": int(n.connections), "max_connections": int(n.max_connections),
            "qps": _r(n.qps, 0), "read_qps": _r(n.read_qps, 0), "write_qps": _r(n.write_qps, 0),
            "cpu": _r(n.cpu, 2), "disk_pct": _r(n.disk_pct, 0),
            "lag_bytes": _r(n.lag_bytes, -3), "lag_seconds": _r(n.lag_seconds, 1),
        }
    return out


class CommandRejected(Exception):
    """An incoming command that cannot be built; `reason` goes back on cmd/result."""

    def __init__(self, reason: str, corr_id: str | int | None = None):
        # Reasons echo the payload (an unknown name, a bad value): keep an echo of junk short.
        reason = reason if len(reason) <= 500 else reason[:497] + "..."
        super().__init__(reason)
        self.reason = reason
        self.corr_id = corr_id


_JSON_KEYS = {"command", "args", "id", "line"}


def decode_command(payload: bytes | bytearray | str) -> tuple[C.Command, str | int | None]:
    """A command payload -> (Command, correlation id), or raise CommandRejected.

    Two forms: a JSON object `{"command": NAME, "args": {...}, "id": ...}` (or `{"line": ...}`)
    when the payload starts with `{`, and otherwise a `:` command line as typed in the UI.
    Validation is the shared command schema, so MQTT accepts exactly what the keys and
    `--commands` accept.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandRejected(f"payload too large ({len(payload)} bytes, at most "
                              f"{MAX_COMMAND_BYTES})")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise CommandRejected("payload is not UTF-8 text") from None
    text = text.strip()
    if not text:
        raise CommandRejected("empty command")
    if not text.startswith("{"):
        return _from_line(text), None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CommandRejected(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):  # '{' always opens an object, but be explicit
        raise CommandRejected("a JSON command must be an object")
    corr = obj.get("id")
    if corr is not None and (isinstance(corr, bool) or not isinstance(corr, (str, int))
                             or len(str(corr)) > MAX_ID_CHARS):
        raise CommandRejected(f"id: must be a string or integer of at most {MAX_ID_CHARS} "
                              "characters")
    extra = sorted(set(obj) - _JSON_KEYS)
    if extra:
        raise CommandRejected(f"unknown field(s) {', '.join(map(repr, extra))}; expected "
                              "command, args, id (or line, id)", corr)
    if "line" in obj:
        if "command" in obj or "args" in obj:
            raise CommandRejected("give either line or command/args, not both", corr)
        if not isinstance(obj["line"], str):
            raise CommandRejected("line: must be a string", corr)
        try:
            return _from_line(obj["line"]), corr
        except CommandRejected as exc:
            raise CommandRejected(exc.reason, corr) from None
    name = obj.get("command")
    if not isinstance(name, str) or not name.strip():
        raise CommandRejected("command: missing or not a string", corr)
    args = obj.get("args")
    if args is not None and not isinstance(args, dict):
        raise CommandRejected(f"{name}: args must be an object", corr)
    name = C.ALIASES.get(name.strip(), name.strip())
    try:
        return C.build(name, args), corr
    except C.CommandError as exc:
        raise CommandRejected(str(exc), corr) from None
    except Exception as exc:  # noqa: BLE001 - a hostile payload must never reach the engine
        raise CommandRejected(f"{name}: invalid arguments ({type(exc).__name__})", corr) from None


def _from_line(line: str) -> C.Command:
    try:
        return C.parse_line(line)
    except C.CommandError as exc:
        raise CommandRejected(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - same: reject, never crash the bridge
        raise CommandRejected(f"invalid command line ({type(exc).__name__})") from None
