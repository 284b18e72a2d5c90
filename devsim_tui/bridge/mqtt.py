"""The MQTT bridge: telemetry out, commands in, for one World, as an asyncio task.

It sits outside the deterministic engine: it reads snapshots and events, submits commands through
`World.submit`, and owns everything non-deterministic (sockets, wall-clock rate limits, reconnect
jitter from its own `random.Random`). A broker that is down at start or vanishes mid-run never
stops the simulation: the bridge reconnects with capped exponential backoff, events produced
meanwhile wait in a bounded buffer, and the link state is readable at any time (`link_state`).

Delivery guarantees, per stream (topic tree and payloads: docs/mqtt.md):

* events / alerts / detector / cmd/result: QoS 1, every message queued in order in one bounded
  buffer and removed only once the broker acknowledged it, so a reconnect re-sends rather than
  loses (at-least-once: a subscriber de-duplicates by `seq`). Beyond the bound the oldest are
  dropped and counted, which shows as a `seq` gap.
* tick: the latest aggregates, at most `tick_rate` per wall second (QoS 0): a subscriber wants
  the current figures, not every tick of a run at --speed max.
* servers/<name>, db/<node>: retained current state, published when it changes (checked at the
  tick rate), cleared with an empty retained payload when a server goes away, and re-published
  in full after every reconnect (the broker may have restarted without persistence).
* snapshot, history, profile (only with `snapshots=True`, for shared seats, bridge/seats.py):
  the full latest snapshot (retained, QoS 0, at the tick rate, with the per-tick aggregate rows
  since the previous one), a decimated history with recent events every few seconds (retained,
  for a seat that joins late) and the profile (retained, QoS 1).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from devsim_tui.bridge import payloads as P
from devsim_tui.bridge.options import MqttOptions, build_options
from devsim_tui.sim.events import Event
from devsim_tui.sim.history import SERIES
from devsim_tui.sim.snapshot import Aggregates, Snapshot

BATCH = 100  # QoS 1 publishes in flight at once: enough to fill a link, few to re-send
PUBLISH_TIMEOUT = 10.0
PENDING_COMMANDS = 1000  # accepted commands awaiting their command.applied/rejected event
# Shared seats: per-tick rows per snapshot message at most (more ticks than that since the last
# message, at a high speed, are evenly decimated: a sparkline is ~60 cells wide anyway), how
# many ticks back a message looks at most, and the history a late-joining seat starts from.
ROWS_MAX = 150
ROWS_LOOKBACK = 20_000
HISTORY_PERIOD = 5.0  # wall seconds between history messages
HISTORY_ROWS = 400
HISTORY_EVENTS = 200
RECENT_EVENTS = 100  # events a snapshot repeats at most (those since the last history message)

# aiomqtt logs through this logger (and enables paho's logging on it). It must not reach stderr:
# under the control room that would scribble over the screen. Problems surface in link_state.
_client_log = logging.getLogger("devsim_tui.bridge.client")
_client_log.addHandler(logging.NullHandler())
_client_log.propagate = False


@dataclass(frozen=True)
class LinkState:
    """What the control room's header shows about the broker link."""

    state: str  # idle | connecting | connected | retrying | stopped
    url: str
    last_error: str | None = None
    next_retry_in: float | None = None  # seconds, while retrying
    attempts: int = 0  # failed attempts since the last successful connection
    connects: int = 0  # successful connections so far
    buffered: int = 0  # QoS 1 messages waiting for the broker
    dropped: int = 0  # QoS 1 messages discarded beyond the buffer bound (or never seen)
    published: dict[str, int] = field(default_factory=dict)
    commands_accepted: int = 0
    commands_rejected: int = 0

    def describe(self) -> str:
        """One line for a status bar or the event log."""
        text = f"mqtt {self.state} {self.url}"
        if self.state == "retrying" and self.next_retry_in is not None:
            text += f", retry in {self.next_retry_in:.1f}s"
        if self.last_error and self.state != "connected":
            text += f" ({self.last_error})"
        if self.buffered:
            text += f", {self.buffered} buffered"
        if self.dropped:
            text += f", {self.dropped} dropped"
        return text

    @property
    def level(self) -> str:
        """ok / warning / error: the colour of a header indicator."""
        if self.state == "connected":
            return "warning" if self.dropped else "ok"
        return "error" if self.state == "retrying" else "warning"

    def short(self) -> str:
        """A few words for the header: `MQTT connected`, `MQTT retry 4s (12 buffered)`."""
        if self.state == "retrying":
            text = "MQTT retry" + (f" {self.next_retry_in:.0f}s"
                                   if self.next_retry_in is not None else "")
        else:
            text = f"MQTT {self.state}"
        if self.buffered and self.state != "connected":
            text += f" ({self.buffered} buffered)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(slots=True)
class _Msg:
    topic: str
    payload: bytes
    stream: str


@dataclass(slots=True)
class _PendingCommand:
    cmd_seq: int
    corr: str | int | None
    name: str
    args: dict[str, Any]


def _describe(exc: BaseException) -> str:
    """A short reason for the header: aiomqtt wraps the telling part (the code) in the cause."""
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    detail = str(cause).strip() if cause is not None else ""
    if detail and detail not in text:
        text = f"{text}: {detail}" if text else detail
    return (text or type(exc).__name__)[:200]


class MqttBridge:
    """Publish a World's telemetry to MQTT and feed commands from MQTT into it.

    Drive it one of two ways:

    * the loop that advances the world calls `publish_tick(snapshot_or_callable, events)` after
      each tick (headless does, passing the tick's events, so none can age out of the engine's
      bounded log); or
    * `start(follow=True)` and the bridge polls `world.snapshot()` / `world.events_since()`
      itself every `poll_interval` seconds (the control room, which advances in chunks).

    Both only enqueue; the network work happens in the task started by `start()` / `run()`.
    """

    def __init__(self, world: Any, options: MqttOptions | str, *, sim_id: str | None = None,
                 rng: random.Random | None = None, poll_interval: float = 0.1,
                 client_factory: Callable[..., Any] | None = None, snapshots: bool = False,
                 policy: Any = None,
                 submit: Callable[[Any, str | None], None] | None = None,
                 extras: Callable[[Snapshot], dict[str, dict[str, Any]]] | None = None):
        if isinstance(options, str):
            options = build_options(options, sim_id=sim_id or "devsim")
        self.world = world
        self.options = options
        self.prefix = options.prefix
        self.rng = rng if rng is not None else random.Random()
        self.poll_interval = poll_interval
        self._client_factory = client_factory
        self.listeners: list[Callable[[LinkState], None]] = []

        self._out: deque[_Msg] = deque()
        self._inflight: list[_Msg] = []
        self._seq: dict[str, int] = {}
        self._seen_seq = 0  # highest engine event seq already queued
        self._retained: dict[str, bytes] = {}  # topic -> wanted retained payload (b"" = clear)
        self._dirty: dict[str, None] = {}  # retained topics to (re)publish, in order
        self._servers: dict[str, dict[str, Any]] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        self._latest: Snapshot | Aggregates | Callable[[], Any] | None = None
        self._tick_dirty = False
        self._last_tick_wall = -1e9
        self._pending: deque[_PendingCommand] = deque(maxlen=PENDING_COMMANDS)
        self._cmd_seq = 0

        self._state = "idle"
        self._last_error: str | None = None
        self._retry_at: float | None = None
        self._attempts = 0
        self._connects = 0
        self._dropped = 0
        self._published: dict[str, int] = {}
        self._accepted = 0
        self._rejected = 0

        # Shared seats (bridge/seats.py). `policy.authorize(claim, cmd)` -> (role, refusal or
        # None) decides every incoming command; `submit(cmd, who)` hands an allowed one to the
        # world with the seat's name (a drill records who acted); `extras(snapshot)` gives more
        # retained streams (a drill's facilitator view), published when they change.
        self.snapshots = snapshots
        # Without an explicit policy, the one the options carry (the command line's: read-only
        # unless --mqtt-allow-commands or --mqtt-token); None takes every command.
        self.policy = policy if policy is not None else options.command_policy
        self._submit = submit
        self.extras = extras
        self.run_id = uuid.uuid4().hex[:12]  # a seat resets what it holds when the run changes
        self._rows_tick: int | None = None
        self._last_history_wall = -1e9
        self._history_seq = 0  # the last event seq the latest history message carried
        self._extra_last: dict[str, Any] = {}

        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._poller: asyncio.Task | None = None
        if snapshots and getattr(world, "profile", None) is not None:
            self._retain(P.PROFILE, {"run": self.run_id,
                                     "profile": world.profile.model_dump(mode="json")})

    # ------------------------------------------------------------------ topics and state

    def topic(self, stream: str, name: str | None = None) -> str:
        return f"{self.prefix}/{stream}" + (f"/{name}" if name else "")

    @property
    def link_state(self) -> LinkState:
        retry = None
        if self._state == "retrying" and self._retry_at is not None:
            retry = max(0.0, self._retry_at - time.monotonic())
        return LinkState(
            state=self._state, url=self.options.url, last_error=self._last_error,
            next_retry_in=retry, attempts=self._attempts, connects=self._connects,
            buffered=self.buffered, dropped=self._dropped, published=dict(self._published),
            commands_accepted=self._accepted, commands_rejected=self._rejected)

    @property
    def buffered(self) -> int:
        return len(self._out) + len(self._inflight)

    @property
    def connected(self) -> bool:
        return self._state == "connected"

    def _set_state(self, state: str, error: str | None = None, retry_at: float | None = None
                   ) -> None:
        changed = state != self._state or (error is not None and error != self._last_error)
        self._state = state
        if error is not None:
            self._last_error = error
        self._retry_at = retry_at
        if changed:
            snap = self.link_state
            for listener in list(self.listeners):
                try:
                    listener(snap)
                except Exception:  # noqa: BLE001 - a UI callback must not kill the link
                    _client_log.exception("link listener failed")

    def _next_seq(self, stream: str) -> int:
        n = self._seq.get(stream, 0) + 1
        self._seq[stream] = n
        return n

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ the producer side

    def publish_tick(self, state: Snapshot | Aggregates | Callable[[], Any] | None = None,
                     events: Any = None) -> None:
        """Enqueue one tick: its state (or a callable giving the latest snapshot) and events.

        Non-blocking. With `events=None` the bridge takes what is new from the world's event
        log. A callable state is only called when the rate limit lets an update out, so a
        runner at --speed max does not build a snapshot per tick for nothing.
        """
        if events is None:
            events = self.world.events_since(self._seen_seq) if self.world is not None else ()
        for ev in events:
            self._ingest(ev)
        if state is not None:
            self._latest = state
            self._tick_dirty = True
        self._poke()

    def _ingest(self, ev: Event) -> None:
        if ev.seq <= self._seen_seq:
            return  # already queued (a caller may hand the same event twice)
        if self._seen_seq and ev.seq > self._seen_seq + 1:
            # The engine's bounded log forgot these before we saw them: count them as dropped.
            self._dropped += ev.seq - self._seen_seq - 1
        self._seen_seq = ev.seq
        hidden = getattr(self.world, "hidden_event", None)  # a drill session's injects
        body = P.event_body(ev, hidden=bool(hidden is not None and hidden(ev)))
        for stream in P.streams_for(ev.type):
            self._enqueue(stream, body)
        if ev.type in ("command.applied", "command.rejected") and self._pending:
            self._match_command(ev)

    def _enqueue(self, stream: str, body: dict[str, Any]) -> None:
        """Queue a QoS 1 message; its seq is fixed now, so a dropped one leaves a visible gap."""
        seq = self._next_seq(stream)
        payload = P.encode(P.envelope(self.options.sim_id, stream, seq, body))
        self._out.append(_Msg(self.topic(stream), payload, stream))
        while self.buffered > self.options.buffer_size and self._out:
            self._out.popleft()
            self._dropped += 1
        self._poke()

    # ------------------------------------------------------------------ commands in

    def handle_command(self, payload: bytes | str) -> dict[str, Any]:
        """Validate and submit one command payload; queue and return its cmd/result body."""
        try:
            cmd, corr, claim = P.decode_seat_command(payload)
        except P.CommandRejected as exc:
            return self._result({"status": "rejected", "id": exc.corr_id, "reason": exc.reason})
        who = claim.seat
        if self.policy is not None:
            role, refusal = self.policy.authorize(claim, cmd)
            drill_rule = getattr(self.world, "participant_refusal", None)  # a hosted drill's
            if refusal is None and role != "facilitator" and drill_rule is not None:
                refusal = drill_rule(cmd)
            if refusal is not None:
                # Refused before the world sees it: nothing changes, not even the event log
                # (a drill's recording must replay without the host's seat configuration).
                return self._result({"status": "rejected", "id": corr, "command": cmd.name,
                                     "args": cmd.args(), "seat": claim.seat, "role": role,
                                     "reason": refusal})
            who = f"{claim.seat} ({role})" if claim.seat else role
        try:
            if self._submit is not None:
                self._submit(cmd, who)
            else:
                self.world.submit(cmd)
        except Exception as exc:  # noqa: BLE001 - the engine should not raise; never crash here
            return self._result({"status": "rejected", "id": corr, "command": cmd.name,
                                 "reason": f"not accepted by the world: {_describe(exc)}"})
        self._cmd_seq += 1
        self._pending.append(_PendingCommand(self._cmd_seq, corr, cmd.name, cmd.args()))
        self._accepted += 1
        out = self._result({"status": "accepted", "id": corr, "cmd_seq": self._cmd_seq,
                            "command": cmd.name, "args": cmd.args()})
        # Pause and speed apply at once (they steer the clock): take the world's new events now
        # (all of them, in order, so none is skipped) to report the verdict without waiting.
        try:
            for ev in self.world.events_since(self._seen_seq):
                self._ingest(ev)
        except Exception as exc:  # noqa: BLE001 - a world without a local log just reports later
            self._last_error = f"reading events: {_describe(exc)}"
        return out

    def _result(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["status"] == "rejected":
            self._rejected += 1
        self._enqueue(P.CMD_RESULT, body)
        return body

    def _match_command(self, ev: Event) -> None:
        """Tie the engine's verdict to the MQTT command it answers (same name and arguments)."""
        name, args = ev.data.get("command"), ev.data.get("args")
        for i, p in enumerate(self._pending):
            if p.name == name and p.args == args:
                del self._pending[i]
                applied = ev.type == "command.applied"
                body = {"status": "applied" if applied else "failed", "id": p.corr,
                        "cmd_seq": p.cmd_seq, "command": p.name, "args": p.args,
                        "event_seq": ev.seq, "t": ev.t}
                if not applied:
                    body["reason"] = ev.message
                    self._rejected += 1
                self._enqueue(P.CMD_RESULT, body)
                return

    # ------------------------------------------------------------------ lifecycle

    def start(self, follow: bool = False) -> asyncio.Task:
        """Run the bridge as a task on the running loop; `follow` also polls the world."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="mqtt-bridge")
        if follow and (self._poller is None or self._poller.done()):
            self._poller = asyncio.get_running_loop().create_task(self._follow(),
                                                                  name="mqtt-bridge-follow")
        return self._task

    async def _follow(self) -> None:
        while True:
            try:
                self.publish_tick(self.world.snapshot)
            except Exception as exc:  # noqa: BLE001 - a bad snapshot must not end the poller
                self._last_error = f"reading the world: {_describe(exc)}"
            await asyncio.sleep(self.poll_interval)

    async def stop(self, drain_timeout: float = 3.0) -> LinkState:
        """Deliver what is buffered (while connected, up to `drain_timeout` s), then disconnect."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._task is not None and not self._task.done():
            # A run shorter than the first connection attempt (a fast headless run) would stop
            # before the broker ever answered, and report nothing about it: let that first
            # attempt finish (connected, or refused and retrying) before deciding.
            deadline = time.monotonic() + drain_timeout
            while not self.connected and self._attempts == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if self.connected:
                await self.flush(drain_timeout)
            if self._stop is not None:
                self._stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=drain_timeout + 2.0)
            except asyncio.TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        self._set_state("stopped")
        return self.link_state

    async def flush(self, timeout: float) -> bool:
        """Wait until nothing is waiting for the broker; False if the time ran out first."""
        deadline = time.monotonic() + timeout
        while self._has_work():
            if not self.connected or time.monotonic() >= deadline:
                return False
            self._poke()
            await asyncio.sleep(0.01)
        return True

    async def wait_writable(self, timeout: float = 5.0) -> None:
        """Back-pressure for a runner at --speed max: while the link is up and the buffer is
        half full, wait for it to drain to a quarter, so no event is dropped on a healthy link.
        Returns at once while the link is down (the simulation never waits for a broker)."""
        high = max(1, self.options.buffer_size // 2)
        if self.buffered < high:
            return
        low = self.options.buffer_size // 4
        deadline = time.monotonic() + timeout
        while self.connected and self.buffered > low and time.monotonic() < deadline:
            self._poke()
            await asyncio.sleep(0.005)

    def _has_work(self) -> bool:
        return bool(self._out or self._inflight or self._dirty or self._tick_dirty)

    async def run(self) -> None:
        """Connect, publish and take commands until `stop()`; reconnect on any failure."""
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        attempt = 0
        try:
            while not self._stop.is_set():
                self._set_state("connecting")
                try:
                    await self._session()
                    if self._stop.is_set():
                        break
                    raise ConnectionError("connection closed")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure means: retry later
                    error = _describe(exc)
                if self._connected_once_this_round:
                    attempt = 0
                self._attempts += 1
                base = min(self.options.backoff_max, self.options.backoff_initial * 2 ** attempt)
                # "Equal jitter": at least half the backoff, so retries still spread out but a
                # flapping broker is never hammered.
                delay = base / 2 + self.rng.uniform(0, base / 2)
                attempt += 1
                self._set_state("retrying", error, time.monotonic() + delay)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._client = None
            if self._state != "stopped":
                self._set_state("stopped")

    _connected_once_this_round = False
    _client: Any = None

    def _make_client(self) -> Any:
        import aiomqtt  # only here: a run without --mqtt never imports network code

        o = self.options
        seq = self._next_seq(P.STATUS)
        will = aiomqtt.Will(self.topic(P.STATUS), P.encode(P.envelope(
            o.sim_id, P.STATUS, seq, {"online": False, "reason": "connection lost"})),
            qos=1, retain=True)
        factory = self._client_factory or aiomqtt.Client
        return factory(
            hostname=o.host, port=o.port, username=o.username, password=o.password,
            identifier=o.client_id or f"devsim-{o.sim_id}-{uuid.uuid4().hex[:8]}",
            will=will, clean_session=True, timeout=o.connect_timeout, keepalive=o.keepalive,
            tls_params=o.tls_parameters(), logger=_client_log, max_queued_incoming_messages=1000)

    async def _session(self) -> None:
        self._connected_once_this_round = False
        async with self._make_client() as client:
            self._client = client
            await client.subscribe(self.topic(P.CMD), qos=1)
            self._connected_once_this_round = True
            self._connects += 1
            self._attempts = 0
            # After any reconnect the broker may have lost retained state: publish it all again.
            for topic in self._retained:
                self._dirty[topic] = None
            if self._latest is not None:
                self._tick_dirty = True
            self._last_history_wall = -1e9  # and the history a joining seat starts from
            self._set_state("connected")
            await self._publish(client, self.topic(P.STATUS), P.encode(P.envelope(
                self.options.sim_id, P.STATUS, self._next_seq(P.STATUS),
                {"online": True, "url": self.options.url})), qos=1, retain=True, stream=P.STATUS)
            tasks = [asyncio.create_task(self._reader(client)),
                     asyncio.create_task(self._writer(client)),
                     asyncio.create_task(self._stop.wait())]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._requeue_inflight()
            # Reader first: when the link drops, both may fail in the same loop turn, and the
            # reader's error (the broker's reason) explains the writer's ("not connected").
            # Iterating the `done` set instead would pick one by memory address.
            for t in tasks[:2]:
                if t in done and t.exception() is not None:
                    raise t.exception()
            if self._stop.is_set():
                await self._publish(client, self.topic(P.STATUS), P.encode(P.envelope(
                    self.options.sim_id, P.STATUS, self._next_seq(P.STATUS),
                    {"online": False, "reason": "stopped"})), qos=1, retain=True,
                    stream=P.STATUS, timeout=2.0)

    async def _reader(self, client: Any) -> None:
        async for message in client.messages:
            self.handle_command(message.payload if message.payload is not None else b"")

    async def _publish(self, client: Any, topic: str, payload: bytes, *, qos: int, retain: bool,
                       stream: str, timeout: float = PUBLISH_TIMEOUT) -> None:
        await client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)
        self._published[stream] = self._published.get(stream, 0) + 1

    def _requeue_inflight(self) -> None:
        """Put unacknowledged messages back at the head, in order, for the next connection."""
        if self._inflight:
            self._out.extendleft(reversed(self._inflight))
            self._inflight = []
            while len(self._out) > self.options.buffer_size:
                self._out.popleft()
                self._dropped += 1

    async def _writer(self, client: Any) -> None:
        wake = self._wake
        while True:
            wake.clear()
            did = False
            wait: float | None = None
            if self._tick_dirty:
                wait = self._last_tick_wall + 1.0 / self.options.tick_rate - time.monotonic()
                if wait <= 0:
                    await self._publish_state(client)
                    did, wait = True, None
            if self._dirty:
                await self._publish_retained(client)
                did = True
            if self._out:
                await self._publish_buffer(client)
                did = True
            if not did:
                try:
                    await asyncio.wait_for(wake.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass

    async def _publish_buffer(self, client: Any) -> None:
        n = min(BATCH, len(self._out))
        self._inflight = [self._out.popleft() for _ in range(n)]
        results = await asyncio.gather(
            *(client.publish(m.topic, m.payload, qos=1, timeout=PUBLISH_TIMEOUT)
              for m in self._inflight), return_exceptions=True)
        failed = [m for m, r in zip(self._inflight, results) if isinstance(r, BaseException)]
        for m, r in zip(self._inflight, results):
            if not isinstance(r, BaseException):
                self._published[m.stream] = self._published.get(m.stream, 0) + 1
        self._inflight = failed
        if failed:
            self._requeue_inflight()
            raise next(r for r in results if isinstance(r, BaseException))

    async def _publish_retained(self, client: Any) -> None:
        topics = list(self._dirty)[:BATCH]
        sent = [self._retained[t] for t in topics]
        results = await asyncio.gather(
            *(client.publish(t, p, qos=1, retain=True, timeout=PUBLISH_TIMEOUT)
              for t, p in zip(topics, sent)), return_exceptions=True)
        error = None
        for t, p, r in zip(topics, sent, results):
            if isinstance(r, BaseException):
                error = error or r
                continue
            stream = t[len(self.prefix) + 1:]
            stream = stream.split("/", 1)[0] if stream.startswith((P.DB + "/", P.SERVERS + "/")) \
                else stream
            self._published[stream] = self._published.get(stream, 0) + 1
            if self._retained.get(t) is p:  # unchanged while we waited
                self._dirty.pop(t, None)
                if p == b"":
                    del self._retained[t]  # cleared on the broker: forget the topic
        if error is not None:
            raise error

    async def _publish_state(self, client: Any) -> None:
        state = self._latest
        self._tick_dirty = False
        self._last_tick_wall = time.monotonic()
        if callable(state):
            state = state()
        if not isinstance(state, (Snapshot, Aggregates)):
            return
        sim = self.options.sim_id
        if isinstance(state, Snapshot):
            self._diff(P.SERVERS, P.server_states(state), self._servers, "server")
            self._diff(P.DB, P.db_states(state), self._nodes, "node")
            if self.extras is not None:
                for stream, body in self.extras(state).items():
                    if self._extra_last.get(stream) != body:
                        self._extra_last[stream] = body
                        self._retain(stream, body)
        body = P.tick_body(state)
        await self._publish(client, self.topic(P.TICK),
                            P.encode(P.envelope(sim, P.TICK, self._next_seq(P.TICK), body)),
                            qos=0, retain=False, stream=P.TICK)
        if self.snapshots and isinstance(state, Snapshot):
            await self._publish_snapshot(client, state)

    # ------------------------------------------------------------------ shared seats

    def _retain(self, stream: str, body: dict[str, Any]) -> None:
        """Queue a retained QoS 1 message (re-published after every reconnect)."""
        topic = self.topic(stream)
        self._retained[topic] = P.encode(P.envelope(self.options.sim_id, stream,
                                                    self._next_seq(stream), body))
        self._dirty[topic] = None
        self._poke()

    def _columns(self, ticks: int) -> tuple[int, dict[str, np.ndarray]]:
        """The last `ticks` per-tick values of every aggregate series (fewer if the world holds
        fewer): (how many, name -> values)."""
        cols = {name: np.asarray(self.world.series(name, ticks), dtype=np.float64)
                for name in SERIES}
        return min(len(v) for v in cols.values()), cols

    def _rows_since(self, snap: Snapshot, *, lookback: int, limit: int
                    ) -> dict[str, Any] | None:
        n, cols = self._columns(lookback)
        if n <= 0:
            return None
        idx = np.arange(n)
        if n > limit:
            idx = np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))
        ticks = (snap.tick - n + 1 + idx).tolist()
        return P.series_rows(ticks, {name: v[len(v) - n:][idx] for name, v in cols.items()})

    async def _publish_snapshot(self, client: Any, snap: Snapshot) -> None:
        sim = self.options.sim_id
        if time.monotonic() - self._last_history_wall >= HISTORY_PERIOD:
            self._last_history_wall = time.monotonic()
            events = self.world.events_since(max(0, snap.last_event_seq - HISTORY_EVENTS))
            self._history_seq = events[-1].seq if events else snap.last_event_seq
            hist = {"run": self.run_id, "tick": snap.tick,
                    "rows": self._rows_since(snap, lookback=1 << 30, limit=HISTORY_ROWS),
                    "events": [ev.to_dict() for ev in events]}
            await self._publish(client, self.topic(P.HISTORY), P.encode(P.envelope(
                sim, P.HISTORY, self._next_seq(P.HISTORY), hist)), qos=0, retain=True,
                stream=P.HISTORY)
        last, self._rows_tick = self._rows_tick, snap.tick
        span = snap.tick - last if last is not None and snap.tick >= last else ROWS_MAX
        rows = self._rows_since(snap, lookback=min(span, ROWS_LOOKBACK), limit=ROWS_MAX) \
            if span > 0 else None
        body = P.snapshot_body(snap, speed=self.world.speed, paused=self.world.paused,
                               run=self.run_id, rows=rows)
        # The events since the retained history: a seat that subscribes between two history
        # messages gets them from the retained snapshot, so it misses none (`events` is not
        # retained). Capped: beyond that, the live stream and the next history fill in.
        body["recent"] = [ev.to_dict() for ev in self.world.events_since(
            max(self._history_seq, snap.last_event_seq - RECENT_EVENTS))]
        await self._publish(client, self.topic(P.SNAPSHOT), P.encode(P.envelope(
            sim, P.SNAPSHOT, self._next_seq(P.SNAPSHOT), body)), qos=0, retain=True,
            stream=P.SNAPSHOT)

    def _diff(self, stream: str, current: dict[str, dict[str, Any]],
              last: dict[str, dict[str, Any]], key: str) -> None:
        """Mark changed components for a retained publish and vanished ones for clearing."""
        for name, st in current.items():
            if last.get(name) != st:
                topic = self.topic(stream, name)
                self._retained[topic] = P.encode(P.envelope(
                    self.options.sim_id, stream, self._next_seq(stream), {key: st}))
                self._dirty[topic] = None
        for name in [n for n in last if n not in current]:
            topic = self.topic(stream, name)
            self._retained[topic] = b""
            self._dirty[topic] = None
        last.clear()
        last.update(current)
