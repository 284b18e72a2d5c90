"""The control room's optional links to the outside: Prometheus exporter, e-mail, MQTT bridge.

Opt-in only: the CLI passes `IOOptions` built from `--metrics-port`, the SMTP flags and
`--mqtt`; the tests, SSH seats and browser tabs pass none, and then nothing here runs. Every
link is owned by `ExternalIO`, started once the world exists and stopped when the app unmounts.
A broker that is down never blocks or crashes the screen: the bridge retries in its own task
and only reports its state (`LinkState`), which the header badge and the event log show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual.widgets import Static

from devsim_tui.sim.events import Event

#: LinkState.level -> the badge class that colours it (app.tcss).
LINK_CLASSES = {"ok": "-ok", "warning": "-warning", "error": "-error"}
#: LinkState.level -> the severity of its event-log line.
LINK_SEVERITY = {"ok": "info", "warning": "warning", "error": "error"}


@dataclass(frozen=True)
class IOOptions:
    """What the command line asked for."""

    metrics_port: int | None = None  # serve /metrics (0 = any free port)
    metrics_addr: str = "127.0.0.1"
    mqtt: Any = None  # devsim_tui.bridge.MqttOptions, or None for no bridge
    notifications: bool = True  # deliver e-mail when the profile (or flags) configure SMTP


class LinkBadge(Static):
    """`MQTT connected` / `MQTT retry 4s (12 buffered)` in the header, coloured by level."""

    def __init__(self) -> None:
        super().__init__("", id="mqtt-badge")
        self._shown: tuple[str, str] | None = None

    def show(self, state: Any) -> None:
        wanted = (f" {state.short()} ", state.level)
        if wanted == self._shown:
            return
        self._shown = wanted
        for cls in LINK_CLASSES.values():
            self.set_class(cls == LINK_CLASSES.get(state.level, "-warning"), cls)
        self.update(wanted[0])


class MetricsBadge(Static):
    """Where the exporter serves: `/metrics :9108` (the full URL is in the help screen)."""

    def __init__(self, url: str) -> None:
        port = url.rsplit(":", 1)[-1].split("/", 1)[0]
        super().__init__(f" /metrics :{port} ", id="metrics-badge")
        self.tooltip = url


class ExternalIO:
    """Starts, feeds and stops the links one control room asked for."""

    def __init__(self, options: IOOptions,
                 on_link: Callable[[Any], None] | None = None) -> None:
        self.options = options
        self.on_link = on_link
        self.io: Any = None  # devsim_tui.export.control_room.ControlRoomIO
        self.bridge: Any = None  # devsim_tui.bridge.mqtt.MqttBridge
        # What became of the e-mail (notify.email.DeliveryReport), once stopped with SMTP on:
        # the launcher prints it when the screen is gone.
        self.delivery: Any = None

    @property
    def metrics_url(self) -> str | None:
        return self.io.metrics_url if self.io is not None else None

    def start(self, world: Any, read_only: bool = False) -> str | None:
        """Open the links (on the event loop, with the world built); an error message or None.

        `read_only` (an observer's control room): commands arriving over MQTT are refused like
        the observer's own keys, so the broker is no back door into a read-only session.
        """
        opts = self.options
        if opts.notifications or opts.metrics_port is not None:
            from devsim_tui.export.control_room import start_control_room_io

            try:
                self.io = start_control_room_io(world, metrics_port=opts.metrics_port,
                                                metrics_addr=opts.metrics_addr)
            except OSError as exc:
                return f"--metrics-port {opts.metrics_port}: {exc.strerror or exc}"
        if opts.mqtt is not None:
            from devsim_tui.bridge.mqtt import MqttBridge

            self.bridge = MqttBridge(world, opts.mqtt,
                                     policy=_ReadOnlyPolicy() if read_only else None)
            if self.on_link is not None:
                self.bridge.listeners.append(self.on_link)
            self.bridge.start(follow=True)
        return None

    def publish(self, snapshot: Any) -> None:
        """Hand the exporter the latest snapshot (cheap: it only keeps a reference)."""
        if self.io is not None:
            self.io.publish(snapshot)

    async def stop(self) -> None:
        """Close everything; bounded, so quitting never hangs on a dead broker."""
        bridge, self.bridge = self.bridge, None
        if bridge is not None:
            bridge.listeners.clear()  # the screen is going away: no more badge or log updates
            try:
                await bridge.stop(drain_timeout=1.0)
            except Exception:  # noqa: BLE001 - leaving the screen must not fail on the link
                pass
        io, self.io = self.io, None
        if io is not None:
            # The e-mail flush waits (bounded) for the SMTP server: off the event loop.
            import asyncio

            self.delivery = await asyncio.to_thread(io.close)


def link_event(state: Any, t: float) -> Event:
    """An event-log line for a link state change (not an engine event: seq 0)."""
    return Event(0, t, "mqtt.link", state.describe(),
                 LINK_SEVERITY.get(state.level, "warning"))


class _ReadOnlyPolicy:
    """The bridge's command policy for an observer's control room: every command is refused."""

    def authorize(self, claim: Any, cmd: Any) -> tuple[str, str]:
        return "observer", "this control room is read-only (--observer): commands are refused"
