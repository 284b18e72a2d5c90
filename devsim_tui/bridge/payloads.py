"""What travels over MQTT: topic names, JSON payloads and the decoding of incoming commands.

Pure functions only (no sockets), so the wire format is tested without a broker and documented in
one place (docs/mqtt.md mirrors this module). Every payload is a JSON object carrying `schema`
(SCHEMA_VERSION), `sim` (the sim id), `stream` and a per-stream `seq`, so a subscriber can tell
versions apart and spot a gap or a duplicate without trusting the transport.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from devsim_tui.access import ROLES
from devsim_tui.sim import commands as C
from devsim_tui.sim.events import Event
from devsim_tui.sim.snapshot import (
    STATE_NAMES, Aggregates, AlertView, CacheNodeView, CacheView, DBNodeView, FleetView, Snapshot,
)

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
# Shared seats (docs/mqtt.md, "Shared seats"): what a remote control room rebuilds a world from.
SNAPSHOT = "snapshot"  # retained, the full latest state, at most --mqtt-rate per wall second
HISTORY = "history"  # retained, decimated history and recent events for a seat that joins late
PROFILE = "profile"  # retained, the profile the host runs (the UI reads SLOs, tick length...)
DRILL_FACILITATOR = "drill/facilitator"  # retained, the facilitator's view of a hosted drill

# Events are published on `events` (the complete stream) and, by type prefix, also on a narrower
# stream, so an alert pager or a detector dashboard subscribes to only what it needs.
SECURITY = "security"  # security.* events: attacks, certificate renewals/expiry, audits
ROUTES: tuple[tuple[str, str], ...] = (("alert.", ALERTS), ("detector.", DETECTOR),
                                       ("security.", SECURITY))


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
    # "replace": a lone surrogate echoed from a hostile payload (a reason quoting it) must not
    # make publishing fail; decode_command refuses such payloads, this is the last line.
    return _ENCODER.encode(_clean(obj)).encode("utf-8", "replace")


def _has_surrogate(obj: Any) -> bool:
    """A lone surrogate anywhere in decoded JSON (`"\\ud800"` is valid JSON, invalid text)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


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
    if isinstance(state, Snapshot):
        from devsim_tui.sim.security import summary

        head["security"] = summary(state.security)
    return head


def event_body(ev: Event, hidden: bool = False) -> dict[str, Any]:
    """An event message; `hidden` marks what a drill's participants must not be shown (their
    seats drop it; the facilitator's shows it)."""
    body: dict[str, Any] = {"event": ev.to_dict()}
    if hidden:
        body["hidden"] = True
    return body


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
            "lag_bytes": _r(n.lag_bytes, -3),
            "lag_seconds": _r(n.lag_seconds, 3),
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


_JSON_KEYS = {"command", "args", "id", "line", "seat", "role", "token"}
SEAT_ROLES = ROLES  # devsim_tui/access.py
MAX_SEAT_CHARS = 64


@dataclass(frozen=True)
class SeatClaim:
    """Who a command says it comes from. Only a claim: the host decides what it is worth
    (a token the host knows, or a role it allows without one; see bridge/seats.py)."""

    seat: str | None = None
    role: str | None = None
    token: str | None = None


def decode_seat_command(payload: bytes | bytearray | str
                        ) -> tuple[C.Command, str | int | None, SeatClaim]:
    """Like `decode_command`, plus the optional `seat`, `role` and `token` fields of a JSON
    command (a plain command line carries no claim)."""
    claim = SeatClaim()
    try:
        text = bytes(payload if not isinstance(payload, str) else payload.encode(
            "utf-8", "surrogatepass"))[:MAX_COMMAND_BYTES + 1].decode("utf-8").strip()
        obj = json.loads(text) if text.startswith("{") else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        obj = None  # decode_command below gives the precise reason
    if isinstance(obj, dict):
        corr = obj.get("id") if isinstance(obj.get("id"), (str, int)) else None
        values = {}
        for key, limit in (("seat", MAX_SEAT_CHARS), ("role", MAX_SEAT_CHARS),
                           ("token", MAX_ID_CHARS)):
            v = obj.get(key)
            if v is not None and (not isinstance(v, str) or not v or len(v) > limit):
                raise CommandRejected(f"{key}: must be a non-empty string of at most {limit} "
                                      "characters", corr)
            values[key] = v
        if values["role"] is not None and values["role"] not in SEAT_ROLES:
            raise CommandRejected(f"role: {values['role']!r} is not one of "
                                  f"{', '.join(SEAT_ROLES)}", corr)
        claim = SeatClaim(**values)
    cmd, corr = decode_command(payload)
    return cmd, corr, claim


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
    if _has_surrogate(obj):
        raise CommandRejected("not valid Unicode text (a lone surrogate such as \\ud800)")
    corr = obj.get("id")
    if corr is not None and (isinstance(corr, bool) or not isinstance(corr, (str, int))
                             or len(str(corr)) > MAX_ID_CHARS):
        raise CommandRejected(f"id: must be a string or integer of at most {MAX_ID_CHARS} "
                              "characters")
    extra = sorted(set(obj) - _JSON_KEYS)
    if extra:
        raise CommandRejected(f"unknown field(s) {', '.join(map(repr, extra))}; expected "
                              "command, args, id (or line, id), and seat, role, token from a seat", corr)
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


# --------------------------------------------------------------------------- shared seats
#
# A seat's control room reads everything through the World interface, so the host publishes
# whole snapshots (not just the aggregates of `tick`) and a seat rebuilds the very objects the UI
# reads: FleetView columns as numpy arrays, DBNodeView, AlertView... Floats are rounded to six
# significant digits: plenty for a screen, and a third of the bytes of a full repr.

#: FleetView columns and the dtypes the UI (and numpy code in it) expects back.
FLEET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ids", "int64"), ("state", "int8"), ("version", "int16"), ("region", "int16"),
    *((name, "float64") for name in (
        "cpu", "memory_mb", "memory_pct", "disk_pct", "net_in_kbps", "net_out_kbps", "rps",
        "served_rps", "p99_ms", "error_rate", "served_total", "errors_total", "uptime_s")),
    ("restarts", "int32"))
SIG_DIGITS = 6


def round_sig(values: Any, digits: int = SIG_DIGITS) -> np.ndarray:
    """Round to `digits` significant digits, vectorised (NaN and inf pass through)."""
    a = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        mag = np.floor(np.log10(np.abs(a)))
        mag = np.where(np.isfinite(mag), mag, 0.0)
        scale = 10.0 ** (digits - 1 - mag)
        out = np.round(a * scale) / scale
    return np.where(np.isfinite(a), out, a)


def _floats(values: Any) -> list[float | None]:
    return [None if not math.isfinite(x) else x for x in round_sig(values).tolist()]


def _hpa_dict(hpa: dict[str, Any]) -> dict[str, Any]:
    """The scaler's state; its record of syncs (the scaler detail's charts) rounded like the
    other series, since it is the larger part of it."""
    out = dict(hpa)
    record = out.get("record")
    if record:
        out["record"] = {name: _floats(np.asarray(col, dtype=float))
                         for name, col in record.items()}
    return out


def _view_dict(view: Any) -> dict[str, Any]:
    return {f.name: getattr(view, f.name) for f in fields(view)}


def snapshot_body(snap: Snapshot, *, speed: float | str, paused: bool, run: str,
                  rows: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the control room reads of one snapshot, plus the clock's speed and pause
    state (World.speed/paused) and `rows`: per-tick aggregate history since the previous
    snapshot message (see `series_rows`), so a seat's sparklines are the host's."""
    f = snap.fleet
    fleet: dict[str, Any] = {"names": list(f.names)}
    for name, dtype in FLEET_COLUMNS:
        col = getattr(f, name)
        fleet[name] = _floats(col) if dtype == "float64" else np.asarray(col).tolist()
    return {
        "run": run, "tick": snap.tick, "t": snap.t, "clock": snap.clock, "profile": snap.profile,
        "environment": snap.environment, "scaler": snap.scaler,
        "scaling_mode": snap.scaling_mode, "speed": speed, "paused": bool(paused),
        "agg": snap.agg.to_dict(), "fleet": fleet, "versions": list(snap.versions),
        "regions": list(snap.regions), "db": [_view_dict(n) for n in snap.db],
        "cache": None if snap.cache is None else {
            "technology": snap.cache.technology, "hit_ratio": snap.cache.hit_ratio,
            "target_hit_ratio": snap.cache.target_hit_ratio,
            "nodes": [_view_dict(n) for n in snap.cache.nodes]},
        "alerts": [_view_dict(a) for a in snap.alerts],
        "last_event_seq": snap.last_event_seq, "hpa": _hpa_dict(snap.hpa),
        "health": snap.health,
        "extensions": dict(snap.extensions), "rows": rows,
    }


def series_rows(ticks: list[int], columns: dict[str, Any]) -> dict[str, Any]:
    """Per-tick aggregate history: `ticks` and, per series name, one value per tick."""
    return {"ticks": [int(t) for t in ticks],
            "series": {name: _floats(v) for name, v in columns.items()}}


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _opt(x: Any) -> float | None:
    return None if x is None else float(x)


def aggregates_from(d: dict[str, Any]) -> Aggregates:
    """Aggregates from `agg` (JSON null back to NaN where the field is a plain float)."""
    out: dict[str, Any] = {}
    for f in fields(Aggregates):
        v = d.get(f.name)
        if f.type in ("float", float):
            v = _num(v)
        elif f.type in ("int", int):
            v = int(v or 0)
        elif f.type in ("float | None",):
            v = _opt(v)
        out[f.name] = v
    return Aggregates(**out)


def _pairs(x: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(x, dict):
        return tuple((str(k), str(v)) for k, v in x.items())
    return tuple((str(k), str(v)) for k, v in (x or ()))


def snapshot_from_body(body: dict[str, Any]) -> Snapshot:
    """Rebuild a Snapshot from a `snapshot` message (read-only numpy columns, like the engine's).

    Raises KeyError/TypeError/ValueError on a payload that is not a snapshot body."""
    fl = body["fleet"]
    cols: dict[str, Any] = {"names": tuple(str(n) for n in fl["names"])}
    for name, dtype in FLEET_COLUMNS:
        arr = np.array(fl[name], dtype=np.float64 if dtype == "float64" else None)
        arr = arr.astype(dtype) if arr.size else np.zeros(0, dtype=dtype)
        arr.flags.writeable = False
        cols[name] = arr
    db = tuple(DBNodeView(
        name=n["name"], role=n["role"], state=n["state"], region=n["region"],
        connections=int(n["connections"]), max_connections=int(n["max_connections"]),
        qps=_num(n["qps"]), read_qps=_num(n["read_qps"]), write_qps=_num(n["write_qps"]),
        cpu=_num(n["cpu"]), disk_pct=_num(n["disk_pct"]), lag_bytes=_opt(n["lag_bytes"]),
        lag_seconds=_opt(n["lag_seconds"]), last_backup_age_s=_opt(n["last_backup_age_s"]))
        for n in body["db"])
    c = body.get("cache")
    cache = None if c is None else CacheView(
        technology=c["technology"], hit_ratio=_num(c["hit_ratio"]),
        target_hit_ratio=_num(c["target_hit_ratio"]),
        nodes=tuple(CacheNodeView(name=n["name"], state=n["state"], role=n["role"],
                                  ops=_num(n["ops"]), memory_pct=_num(n["memory_pct"]))
                    for n in c["nodes"]))
    alerts = tuple(AlertView(
        id=a["id"], name=a["name"], state=a["state"], severity=a["severity"],
        summary=a["summary"], active_at=_num(a["active_at"]), fired_at=_opt(a["fired_at"]),
        resolved_at=_opt(a["resolved_at"]), acknowledged=bool(a["acknowledged"]),
        value=_num(a["value"]), source=a.get("source", "rules"), labels=_pairs(a.get("labels")),
        silenced_until=_opt(a.get("silenced_until")),
        annotations=_pairs(a.get("annotations"))) for a in body["alerts"])
    return Snapshot(
        tick=int(body["tick"]), t=float(body["t"]), clock=body["clock"], profile=body["profile"],
        environment=body["environment"], scaler=body["scaler"],
        scaling_mode=body["scaling_mode"], agg=aggregates_from(body["agg"]),
        fleet=FleetView(**cols), versions=tuple(body["versions"]),
        regions=tuple(body["regions"]), db=db, cache=cache, alerts=alerts, events=(),
        last_event_seq=int(body["last_event_seq"]), hpa=dict(body.get("hpa") or {}),
        health=body.get("health", "ok"), extensions=dict(body.get("extensions") or {}))


def event_from(d: dict[str, Any]) -> Event:
    """An Event back from its `to_dict()` form (the `event` field of an events message)."""
    return Event(seq=int(d["seq"]), t=float(d["t"]), type=str(d["type"]),
                 message=str(d.get("message", "")), severity=str(d.get("severity", "info")),
                 subject=d.get("subject"), data=dict(d.get("data") or {}))
