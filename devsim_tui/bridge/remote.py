"""A World on the other side of a broker: what a seat's control room runs on (`attach`).

`RemoteWorld` implements `sim.world.World` from what a host publishes with `snapshots=True`
(bridge/seats.py, docs/mqtt.md "Shared seats"): the latest `snapshot` becomes a real `Snapshot`
(numpy columns and view objects, so the UI code is unchanged), `events` feed `events_since`,
and the per-tick rows carried by snapshots (plus the retained `history` for a late joiner) feed
`series` and `component_history`. Commands go to the host's `cmd` topic with the seat's name,
claimed role and token; the host decides (a refusal comes back on `cmd/result` and is reported
to `listeners`). The host runs the clock: `advance` only returns the latest snapshot.

All network work runs in one asyncio task on the caller's loop (the control room's), so the
World methods the UI calls are plain reads of state that task updates between frames.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from devsim_tui.bridge import payloads as P
from devsim_tui.bridge.options import MqttOptions
from devsim_tui.drill.views import hidden_of, participant_events, participant_snapshot
from devsim_tui.sim import commands as C
from devsim_tui.sim.events import Event
from devsim_tui.sim.fleet import HISTORY_FIELDS
from devsim_tui.sim.history import INDEX, NODE_HISTORY, NODE_SERIES, SERIES
from devsim_tui.sim.snapshot import Snapshot

MAX_EVENTS = 5000  # events held for events_since (the engine's log is bounded too)
MAX_POINTS = 100_000  # per-tick aggregate rows held (the 24h window at 1 s ticks fits)
COMPONENT_POINTS = NODE_HISTORY  # samples per server / node, like the engine's own rings

_log = logging.getLogger("devsim_tui.bridge.client")  # silenced in bridge.mqtt: never stderr


class HostUnavailable(Exception):
    """No host answered: nothing retained under the topic root, or the broker is unreachable."""


@dataclass(frozen=True)
class SeatLink:
    """The seat's link, shaped like bridge.mqtt.LinkState for the header badge and event log."""

    state: str  # connecting | connected | retrying | stopped
    url: str
    host_online: bool | None = None
    last_error: str | None = None

    @property
    def level(self) -> str:
        if self.state == "connected":
            return "ok" if self.host_online is not False else "warning"
        return "error" if self.state == "retrying" else "warning"

    def short(self) -> str:
        if self.state == "connected":
            return "HOST online" if self.host_online is not False else "HOST offline"
        return f"MQTT {self.state}"

    def describe(self) -> str:
        text = f"seat link {self.state} {self.url}"
        if self.state == "connected" and self.host_online is False:
            text += ", the host is offline (showing its last state)"
        if self.last_error and self.state != "connected":
            text += f" ({self.last_error})"
        return text


class RemoteWorld:
    """A hosted world seen from a seat. See the module docstring."""

    def __init__(self, options: MqttOptions, *, seat: str, role: str = "operator",
                 token: str | None = None, rng: random.Random | None = None,
                 client_factory: Callable[..., Any] | None = None):
        if role not in P.SEAT_ROLES:
            raise ValueError(f"role must be one of {', '.join(P.SEAT_ROLES)}")
        self.options = options
        self.prefix = options.prefix
        self.seat, self.role, self.token = seat, role, token
        self.profile: Any = None
        self.rng = rng or random.Random()
        self._client_factory = client_factory
        #: Called with (kind, message, body): "refused" (the host said no), "failed" (the
        #: world rejected it), "link" (the connection or the host's status changed).
        self.listeners: list[Callable[[str, str, dict[str, Any]], None]] = []
        self.results: deque[dict[str, Any]] = deque(maxlen=200)  # this seat's cmd/result
        self.facilitator: dict[str, Any] | None = None  # the drill's facilitator view, if sent
        self.host_online: bool | None = None
        self._snap: Snapshot | None = None
        self._view: tuple[Snapshot, Snapshot] | None = None  # (host's, participant's copy)
        self._secret: set[int] = set()  # seqs of events the host marked hidden from participants
        self._snap_run: str | None = None
        self._run: str | None = None
        self._speed: float | str = 1.0
        self._paused = False
        self._events: list[Event] = []
        self._seqs: list[int] = []
        self._rows: dict[int, np.ndarray] = {}
        self._rows_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._components: dict[str, deque[tuple[int, tuple[float, ...]]]] = {}
        self._corr = 0
        self._corr_prefix = f"{seat}-{uuid.uuid4().hex[:6]}-"
        self._state = "idle"
        self._last_error: str | None = None
        self._client: Any = None
        self._outbox: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Event | None = None
        self._stopping = False

    # ------------------------------------------------------------------ World

    def snapshot(self) -> Snapshot:
        if self._snap is None:
            raise HostUnavailable("no snapshot from the host yet")
        if not self._participant():
            return self._snap
        if self._view is None or self._view[0] is not self._snap:  # one copy per snapshot
            seqs, faults, _ = hidden_of(self._snap.drill)
            self._view = (self._snap, participant_snapshot(self._snap, faults, seqs))
        return self._view[1]

    def _participant(self) -> bool:
        """A drill's participant (operator or observer seat): the injects are not shown."""
        return (self.role != "facilitator" and self._snap is not None
                and self._snap.drill is not None)

    def submit(self, command: C.Command) -> None:
        """Send to the host; its verdict arrives on cmd/result (refusals reach `listeners`)."""
        self._send({"command": command.name, "args": command.args()}, command.name)

    def submit_line(self, line: str) -> None:
        # The host parses it, so a bad line is rejected there with the same reason as locally.
        self._send({"line": line}, line.split(maxsplit=1)[0] if line.strip() else line)

    def events_since(self, seq: int) -> list[Event]:
        events = self._events[bisect.bisect_right(self._seqs, seq):]
        if not self._participant():
            return events
        seqs, _, ended = hidden_of(self._snap.drill)
        return participant_events(events, seqs, ended, self._secret)

    def series(self, name: str, n: int) -> np.ndarray:
        """Per-tick values over the last n ticks, from the host's rows; ticks no message
        carried (decimated at high speed) are interpolated between their neighbours."""
        ticks, rows = self._row_arrays()
        if self._snap is None or not len(ticks):
            return np.zeros(0)
        end = max(self._snap.tick, int(ticks[-1]))
        want = np.arange(max(int(ticks[0]), end - max(int(n), 1) + 1), end + 1)
        return np.interp(want, ticks, rows[:, INDEX[name]])

    def component_history(self, name: str) -> dict[str, np.ndarray]:
        samples = self._components.get(name)
        if not samples or self._snap is None:
            return {}
        ticks = np.array([s[0] for s in samples], dtype=np.float64)
        values = np.array([s[1] for s in samples], dtype=np.float64)
        fields = HISTORY_FIELDS if name in self._snap.fleet.names else NODE_SERIES
        end = int(ticks[-1])
        want = np.arange(max(int(ticks[0]), end - COMPONENT_POINTS + 1), end + 1)
        return {f: np.interp(want, ticks, values[:, k]) for k, f in enumerate(fields)}

    def advance(self, ticks: int) -> Snapshot:
        """The host runs the clock: nothing to run here, the latest snapshot is the answer."""
        return self.snapshot()

    @property
    def speed(self) -> float | str:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def tick(self) -> int:
        return self._snap.tick if self._snap else 0

    @property
    def finished(self) -> bool:
        return False  # the host decides when its world ends; a seat keeps its last state

    def close(self, reason: str | None = None) -> None:
        """Nothing to write: the host records (the link itself ends with `stop`)."""

    def prepare(self) -> None:
        """Nothing to prepare: the host runs the engine."""

    # ------------------------------------------------------------------ seat extras

    @property
    def link(self) -> SeatLink:
        return SeatLink(self._state, self.options.url, self.host_online, self._last_error)

    @property
    def connected(self) -> bool:
        return self._state == "connected"

    def drill_state(self) -> dict[str, Any] | None:
        """The drill panel's data: the facilitator's view for a facilitator seat that has
        received it, else the participants' view carried in every snapshot."""
        if self.role == "facilitator" and self.facilitator is not None:
            return self.facilitator
        return self._snap.drill if self._snap else None

    # ------------------------------------------------------------------ commands out

    def _send(self, body: dict[str, Any], what: str) -> str | None:
        self._corr += 1
        corr = f"{self._corr_prefix}{self._corr}"
        body = {**body, "id": corr, "seat": self.seat, "role": self.role}
        if self.token is not None:
            body["token"] = self.token
        if self._outbox is None or not self.connected:
            self._tell("refused", f"{what}: not sent, the seat is not connected to the host",
                       {"status": "rejected", "id": corr, "reason": "not connected"})
            return None
        self._outbox.put_nowait(json.dumps(body, separators=(",", ":")).encode())
        return corr

    def _tell(self, kind: str, message: str, body: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(kind, message, body)
            except Exception:  # noqa: BLE001 - a UI callback must not end the link
                _log.exception("seat listener failed")

    # ------------------------------------------------------------------ messages in

    def handle(self, topic: str, payload: bytes) -> None:
        """Apply one message from the host (public so tests can feed payloads directly)."""
        if not topic.startswith(self.prefix + "/") or not payload:
            return
        stream = topic[len(self.prefix) + 1:]
        try:
            body = json.loads(payload)
            if not isinstance(body, dict) or body.get("schema") != P.SCHEMA_VERSION:
                return
            if stream == P.SNAPSHOT:
                self._on_snapshot(body)
            elif stream == P.EVENTS:
                ev = P.event_from(body["event"])
                if body.get("hidden"):
                    self._secret.add(ev.seq)
                self._add_event(ev)
            elif stream == P.HISTORY:
                self._on_history(body)
            elif stream == P.PROFILE:
                self._on_profile(body)
            elif stream == P.STATUS:
                online = bool(body.get("online"))
                if online != self.host_online:
                    self.host_online = online
                    self._tell("link", self.link.describe(), body)
            elif stream == P.CMD_RESULT:
                self._on_result(body)
            elif stream == P.DRILL_FACILITATOR:
                self.facilitator = {k: v for k, v in body.items()
                                    if k not in ("schema", "sim", "stream", "seq")}
        except (KeyError, TypeError, ValueError) as exc:
            # A malformed message (another program on the topic, a newer schema) is skipped;
            # the next snapshot carries the full state again.
            self._last_error = f"bad {stream} message: {exc}"[:200]

    def _reset_if_new_run(self, run: Any) -> bool:
        """Forget another run's history (the host restarted); True if `run` is a new one.
        The snapshot itself is kept until the new run's first one replaces it, so the screen
        always has something to draw."""
        if run is None or run == self._run:
            return False
        if self._run is not None:
            self._events, self._seqs = [], []
            self._secret = set()
            self._rows, self._rows_cache = {}, None
            self._components.clear()
        self._run = run
        return True

    def _on_snapshot(self, body: dict[str, Any]) -> None:
        new_run = self._reset_if_new_run(body.get("run"))
        snap = P.snapshot_from_body(body)
        if self._snap is not None and not new_run and snap.tick < self._snap.tick \
                and body.get("run") == self._snap_run:
            return  # an older retained copy arriving after a newer live one
        self._snap, self._snap_run = snap, body.get("run")
        speed = body.get("speed")
        self._speed = speed if speed == "max" else float(speed) if speed is not None else 1.0
        self._paused = bool(body.get("paused"))
        self._add_rows(body.get("rows"))
        for d in body.get("recent") or ():
            self._add_event(P.event_from(d))
        f = snap.fleet
        cols = [getattr(f, name) for name in HISTORY_FIELDS]
        for i, name in enumerate(f.names):
            self._sample(name, snap.tick, tuple(float(c[i]) for c in cols))
        for n in snap.db:
            self._sample(n.name, snap.tick, tuple(float(getattr(n, k)) for k in NODE_SERIES))
        if self._ready is not None and self.profile is not None:
            self._ready.set()

    def _sample(self, name: str, tick: int, values: tuple[float, ...]) -> None:
        ring = self._components.get(name)
        if ring is None:
            ring = self._components[name] = deque(maxlen=COMPONENT_POINTS)
        if ring and ring[-1][0] >= tick:
            return  # one sample per tick, like the engine's rings
        ring.append((tick, values))

    def _add_rows(self, rows: dict[str, Any] | None, only_new: bool = False) -> None:
        if not rows:
            return
        ticks = rows["ticks"]
        cols = [np.array(rows["series"][name], dtype=np.float64) for name in SERIES]
        matrix = np.column_stack(cols) if cols else np.zeros((len(ticks), 0))
        for k, tick in enumerate(ticks):
            if only_new and tick in self._rows:
                continue
            self._rows[int(tick)] = matrix[k]
        if len(self._rows) > MAX_POINTS:
            for tick in sorted(self._rows)[:len(self._rows) - MAX_POINTS]:
                del self._rows[tick]
        self._rows_cache = None

    def _row_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._rows_cache is None:
            ticks = np.array(sorted(self._rows), dtype=np.float64)
            rows = np.array([self._rows[int(t)] for t in ticks]) if len(ticks) else \
                np.zeros((0, len(SERIES)))
            self._rows_cache = (ticks, rows)
        return self._rows_cache

    def _on_history(self, body: dict[str, Any]) -> None:
        self._reset_if_new_run(body.get("run"))
        # Live rows are finer than the history's decimated ones: the history only fills gaps.
        self._add_rows(body.get("rows"), only_new=True)
        for d in body.get("events") or ():
            self._add_event(P.event_from(d))

    def _on_profile(self, body: dict[str, Any]) -> None:
        if self.profile is None:
            from devsim_tui.config.schema import Profile

            self.profile = Profile.model_validate(body["profile"])
        if self._ready is not None and self._snap is not None:
            self._ready.set()

    def _add_event(self, ev: Event) -> None:
        seqs = self._seqs
        if seqs and ev.seq <= seqs[-1]:
            i = bisect.bisect_left(seqs, ev.seq)
            if i < len(seqs) and seqs[i] == ev.seq:
                return  # a QoS 1 duplicate, or history repeating what arrived live
            seqs.insert(i, ev.seq)
            self._events.insert(i, ev)
        else:
            seqs.append(ev.seq)
            self._events.append(ev)
        if len(seqs) > MAX_EVENTS:
            del seqs[:len(seqs) - MAX_EVENTS]
            del self._events[:len(self._events) - MAX_EVENTS]

    def _on_result(self, body: dict[str, Any]) -> None:
        corr = body.get("id")
        if not isinstance(corr, str) or not corr.startswith(self._corr_prefix):
            return  # another seat's command
        self.results.append(body)
        status = body.get("status")
        what = body.get("command") or "command"
        if status == "rejected":
            self._tell("refused", f"{what}: refused by the host: {body.get('reason')}", body)
        elif status == "failed":
            self._tell("failed", f"{what}: {body.get('reason')}", body)

    # ------------------------------------------------------------------ connection

    def start(self) -> asyncio.Task:
        """Connect and follow the host in a task on the running loop (reconnects by itself)."""
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            if self._snap is not None and self.profile is not None:
                self._ready.set()
            self._outbox = asyncio.Queue()
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run_link(),
                                                                name="seat-link")
        return self._task

    async def connect(self, timeout: float = 10.0) -> RemoteWorld:
        """`start()` and wait for the host's profile and first snapshot."""
        self.start()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            why = self._why_not()
            await self.stop()
            raise HostUnavailable(why) from None
        return self

    def _why_not(self) -> str:
        if self._state != "connected":
            return f"cannot reach the broker at {self.options.url}: {self._last_error or '?'}"
        return (f"nothing is hosted under {self.prefix}/ on {self.options.url} (is `devsim-tui "
                "drill host` running with this --sim-id?)")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._set_state("stopped")

    def _set_state(self, state: str, error: str | None = None) -> None:
        if error is not None:
            self._last_error = error
        if state != self._state:
            self._state = state
            self._tell("link", self.link.describe(), {"state": state})

    def _make_client(self) -> Any:
        import aiomqtt  # only here: importing this module stays offline

        o = self.options
        factory = self._client_factory or aiomqtt.Client
        return factory(
            hostname=o.host, port=o.port, username=o.username, password=o.password,
            identifier=o.client_id or f"devsim-seat-{uuid.uuid4().hex[:10]}",
            clean_session=True, timeout=o.connect_timeout, keepalive=o.keepalive,
            tls_params=o.tls_parameters(), logger=_log, max_queued_incoming_messages=10_000)

    async def _run_link(self) -> None:
        attempt = 0
        while not self._stopping:
            self._set_state("connecting")
            try:
                await self._session()
                error = "connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: retry later
                from devsim_tui.bridge.mqtt import _describe

                error = _describe(exc)
            if self._state == "connected":
                attempt = 0
            base = min(self.options.backoff_max, self.options.backoff_initial * 2 ** attempt)
            attempt += 1
            self._set_state("retrying", error)
            await asyncio.sleep(base / 2 + self.rng.uniform(0, base / 2))

    async def _session(self) -> None:
        async with self._make_client() as client:
            streams = [P.PROFILE, P.HISTORY, P.SNAPSHOT, P.STATUS, P.EVENTS, P.CMD_RESULT]
            if self.role == "facilitator":
                streams.append(P.DRILL_FACILITATOR)
            for stream in streams:
                await client.subscribe(f"{self.prefix}/{stream}", qos=1)
            self._set_state("connected")
            writer = asyncio.create_task(self._writer(client))
            try:
                async for message in client.messages:
                    self.handle(str(message.topic), bytes(message.payload or b""))
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _writer(self, client: Any) -> None:
        topic = f"{self.prefix}/{P.CMD}"
        while True:
            payload = await self._outbox.get()
            await client.publish(topic, payload, qos=1, timeout=10.0)


async def fetch(world: RemoteWorld, timeout: float = 10.0) -> RemoteWorld:
    """Connect once, take the host's retained state (profile, snapshot, history), disconnect:
    the control room needs the profile before it is built; it then `start()`s for good on its
    own event loop."""
    started = time.monotonic()
    try:
        await world.connect(timeout)
        # The retained history normally arrives with the snapshot; give it a moment.
        while not world._rows and time.monotonic() - started < min(timeout, 1.0):
            await asyncio.sleep(0.02)
    finally:
        await world.stop()
    world._state = "idle"
    return world
