"""Exporters: the simulated estate seen by real monitoring tools (Prometheus `/metrics`).

Never imported by the engine; reads only published snapshots, so it can never block a tick.
"""

from devsim_tui.export.prometheus import ExporterHandle, SnapshotCollector, start_exporter

__all__ = ["ExporterHandle", "SnapshotCollector", "start_exporter"]
