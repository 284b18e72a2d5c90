"""The baseline apps for bench/ui.py: an empty Textual app, and a minimal live dashboard.

`empty` shows one line of text (time-to-first-frame baseline). `minimal` redraws six sparklines
and a 30-row table at the control room's refresh rate from random data: what any Textual
dashboard of that size costs, against which the control room's CPU and output are compared.
"""

from __future__ import annotations

import sys

import numpy as np
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Sparkline, Static

REFRESH_HZ = 5.0


class EmptyApp(App):
    def compose(self) -> ComposeResult:
        yield Static("PRODUCTION empty app")


class MinimalApp(App):
    CSS = "Sparkline { height: 1; margin: 0 1; } DataTable { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield Static("PRODUCTION minimal dashboard")
        for _ in range(6):
            yield Sparkline([])
        yield DataTable()

    def on_mount(self) -> None:
        self.rng = np.random.default_rng(1)
        self.data = self.rng.random((6, 300))
        table = self.query_one(DataTable)
        for col in ("name", "state", "version", "region", "cpu", "mem", "rps", "p99", "err"):
            table.add_column(col, key=col, width=9)
        for i in range(30):
            table.add_row(f"web-{i:03d}", "ready", "v1", "eu", "0", "0", "0", "0", "0",
                          key=str(i))
        self.set_interval(1.0 / REFRESH_HZ, self.tick)

    def tick(self) -> None:
        self.data = np.roll(self.data, -1, axis=1)
        self.data[:, -1] = self.rng.random(6)
        for spark, row in zip(self.query(Sparkline), self.data):
            spark.data = row.tolist()
        table = self.query_one(DataTable)
        vals = self.rng.random((30, 5))
        with self.batch_update():
            for i in range(30):
                for j, col in enumerate(("cpu", "mem", "rps", "p99", "err")):
                    table.update_cell(str(i), col, f"{vals[i, j] * 100:.0f}")


if __name__ == "__main__":
    (EmptyApp if sys.argv[1:] == ["empty"] else MinimalApp)().run()
