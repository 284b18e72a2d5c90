"""Console and AI-analysis delivery: one readable line per notification on a text stream.

Headless runs print to stderr; the control room shows the same notifications as toasts from the
`notify.console` / `notify.ai-analysis` events, so it needs no sink.
"""

from __future__ import annotations

import sys
from typing import TextIO

from devsim_tui.sim.notifications import Notification


class StreamSink:
    def __init__(self, clock, stream: TextIO | None = None):
        self.clock = clock  # t -> "Day 1 09:14:00"
        self.stream = stream or sys.stderr

    def __call__(self, n: Notification) -> None:
        level = "WARNING" if n.status == "firing" else "RESOLVED"
        tag = "AI analysis" if n.channel == "ai-analysis" else "alert"
        lines = [f"[{self.clock(n.t)}] {level} {tag}: {n.subject}"]
        lines += ["    " + line for line in n.body.rstrip().splitlines()]
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stream must not stop the simulation
