"""One call for the control room: the exporter and notification delivery around a world.

    io = start_control_room_io(world, metrics_port=args.metrics_port)   # on mount
    io.publish(snapshot)                                                # each frame (cheap)
    io.close()                                                          # on exit

Call it from the thread that owns the world. E-mail is sent only when the profile (or flags
turned into profile overrides) configures SMTP; console and AI-analysis notifications are left
to the UI, which shows the `notify.*` events as toasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devsim_tui.notify.setup import NotifyHandle, start_notifications

if TYPE_CHECKING:
    from devsim_tui.export.prometheus import ExporterHandle


@dataclass
class ControlRoomIO:
    notify: NotifyHandle
    exporter: ExporterHandle | None = None

    @property
    def metrics_url(self) -> str | None:
        return self.exporter.url if self.exporter is not None else None

    def publish(self, snapshot: Any) -> None:
        if self.exporter is not None:
            self.exporter.publish(snapshot)

    def close(self):
        """Stop the exporter and flush the e-mail (bounded); the DeliveryReport or None."""
        if self.exporter is not None:
            self.exporter.close()
        return self.notify.close()


def start_control_room_io(world: Any, metrics_port: int | None = None,
                          metrics_addr: str = "127.0.0.1") -> ControlRoomIO:
    engine = getattr(world, "engine", None)
    notify = start_notifications(engine, console=False) if engine is not None else NotifyHandle()
    exporter = None
    if metrics_port is not None:
        from devsim_tui.export.prometheus import start_exporter  # prometheus_client

        try:
            exporter = start_exporter(world, metrics_port, metrics_addr)
        except OSError:
            notify.close()
            raise
    return ControlRoomIO(notify, exporter)
