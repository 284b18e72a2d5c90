"""Exporters: the simulated estate seen by real monitoring tools (Prometheus `/metrics`).

Never imported by the engine; reads only published snapshots, so it can never block a tick.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Imported when asked for: the control room imports `export.control_room` on every start,
    # and prometheus_client only matters with --metrics-port.
    if name in __all__:
        from devsim_tui.export import prometheus

        return getattr(prometheus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ExporterHandle", "SnapshotCollector", "start_exporter"]
