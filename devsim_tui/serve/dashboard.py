"""`devsim-tui serve dashboard`: the development estate's web dashboard (the seed's "web dashboard
(dev)"): build times, unit-test results, console warnings and hot reloads of a simulated
developer session.

One world (normally the development profile) runs in a background thread at `--speed`, paced on
the monotonic clock; with `--code-change-every D` the developer saves a change every D simulated
seconds (a `code-change` command: rebuild, unit tests, hot reload). `sim.devloop.DevLoop` keeps
the record from the engine's events. A plain `http.server` serves:

- `/`: the page, rendered on the server (no JavaScript; it reloads itself every 2 s),
- `/dashboard.css`: its stylesheet (dashboard.css next to this module),
- `/api/dev.json`: the same numbers as JSON.

Requests read the newest published state (a reference swap), never the engine.
"""

from __future__ import annotations

import html
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Any

from devsim_tui.sim import commands as C
from devsim_tui.sim.devloop import DevLoop
from devsim_tui.sim.engine import Engine

HERE = Path(__file__).resolve().parent
PUBLISH_EVERY_S = 0.2


class DevDashboard:
    """A paced world plus its development record; `state` is the newest published dict."""

    def __init__(self, profile: Any, seed: int | None = None, speed: float = 10.0,
                 duration_s: float | None = None, code_change_every_s: float | None = None):
        self.engine = Engine(profile, seed=seed)
        self.loop = DevLoop(self.engine)
        self.engine.attach(self.loop)
        self.speed = float(speed)
        self.duration_s = duration_s
        self.every = code_change_every_s
        self._next_change = code_change_every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state: dict[str, Any] = self._collect()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="devsim-dashboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def finished(self) -> bool:
        return self.duration_s is not None and self.engine.t >= self.duration_s - 1e-9

    def _run(self) -> None:
        e = self.engine
        anchor_wall, anchor_t = time.monotonic(), e.t
        last = 0.0
        while not self._stop.is_set() and not self.finished():
            target = anchor_t + (time.monotonic() - anchor_wall) * self.speed
            if self.duration_s is not None:
                target = min(target, self.duration_s)
            while e.t + e.dt <= target + 1e-9 and not self._stop.is_set():
                if self._next_change is not None and e.t + e.dt >= self._next_change - 1e-9:
                    e.submit(C.parse_line("code-change"))
                    self._next_change += self.every
                e.step(1)
                if time.monotonic() - last >= PUBLISH_EVERY_S:
                    break
            if time.monotonic() - last >= PUBLISH_EVERY_S or self.finished():
                self.state = self._collect()
                last = time.monotonic()
            self._stop.wait(min(0.05, e.dt / self.speed))
        self.state = self._collect()

    def _collect(self) -> dict[str, Any]:
        e = self.engine
        snap = e.snapshot
        a = snap.agg
        hr = e.profile.deployment.hot_reload
        return {
            "profile": e.profile.name, "environment": e.profile.environment,
            "service": e.profile.app.service, "technology": e.profile.app.technology,
            "t": e.t, "clock": snap.clock, "speed": self.speed, "finished": self.finished(),
            "health": snap.health, "version": e.versions[e.current_version],
            "ready": a.ready, "total": a.total, "rps": round(a.offered_rps, 1),
            "p99_ms": round(a.p99_ms, 1), "error_rate": a.error_rate,
            "workflow": list(getattr(e.profile, "workflow", None) or []),
            "hot_reload": hr is not None,
            "dev": self.loop.state(),
        }


# --------------------------------------------------------------------------- rendering


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"


def _bars(builds: list[dict]) -> str:
    """An SVG bar chart of build durations, newest right; failed builds in the error colour."""
    done = [b for b in builds if b["seconds"] is not None][-30:]
    width, height, pad = 600, 160, 20
    if not done:
        return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
                'aria-label="no builds yet"><text x="20" y="80">no builds yet</text></svg>')
    top = max(b["seconds"] for b in done) * 1.15
    bw = (width - 2 * pad) / max(len(done), 10)
    parts = []
    for i, b in enumerate(done):
        h = (height - 2 * pad) * b["seconds"] / top
        x = pad + i * bw
        cls = "bar-ok" if b["outcome"] == "succeeded" else "bar-failed"
        parts.append(f'<rect class="{cls}" x="{x + 2:.1f}" y="{height - pad - h:.1f}" '
                     f'width="{bw - 4:.1f}" height="{h:.1f}"><title>{html.escape(b["version"])}'
                     f': {b["seconds"]:.1f} s ({b["outcome"]})</title></rect>')
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="build durations">'
            f'<line class="axis" x1="{pad}" y1="{height - pad}" x2="{width - pad}" '
            f'y2="{height - pad}"/>{"".join(parts)}</svg>')


def _rows(items: list[dict], cols: list[tuple[str, Any]], limit: int = 12) -> str:
    out = []
    for it in reversed(items[-limit:]):
        cells = "".join(f"<td>{html.escape(str(fn(it)))}</td>" for _, fn in cols)
        out.append(f'<tr class="{html.escape(str(it.get("outcome", it.get("level", ""))))}">'
                   f"{cells}</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in cols)
    body = "".join(out) or f'<tr><td colspan="{len(cols)}">none yet</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_page(state: dict[str, Any]) -> str:
    dev = state["dev"]
    c = dev["counts"]
    clock = lambda t: f"t+{t:.0f}s"  # noqa: E731 - simulated seconds since the start
    last_tests = dev["tests"][-1] if dev["tests"] else None
    tests_text = (f"{last_tests['passed']}/{last_tests['total']} passed" if last_tests
                  else "not run yet")
    values = {
        "title": f"devsim-tui dev dashboard: {state['service']} ({state['profile']})",
        "profile": state["profile"], "service": state["service"],
        "technology": state["technology"], "clock": state["clock"],
        "status": "finished" if state["finished"] else f"running at {state['speed']:g}x",
        "health": state["health"], "version": state["version"],
        "ready": f"{state['ready']}/{state['total']}",
        "last_build": _fmt_s(dev["last_build_seconds"]),
        "mean_build": _fmt_s(dev["mean_build_seconds"]),
        "builds": c["builds"], "builds_failed": c["builds_failed"],
        "tests": tests_text, "tests_passed": c["tests_passed"],
        "tests_failed": c["tests_failed"], "suite": dev["suite_size"],
        "reloads": c["reloads"], "warnings": c["warnings"], "errors": c["errors"],
        "workflow": " &rarr; ".join(html.escape(s) for s in state["workflow"]),
        "chart": _bars(dev["builds"]),
        "builds_table": _rows(dev["builds"], [
            ("version", lambda b: b["version"]), ("started", lambda b: clock(b["started_t"])),
            ("build time", lambda b: _fmt_s(b["seconds"])), ("result", lambda b: b["outcome"])]),
        "tests_table": _rows(dev["tests"], [
            ("version", lambda r: r["version"]), ("at", lambda r: clock(r["t"])),
            ("passed", lambda r: r["passed"]), ("failed", lambda r: r["failed"]),
            ("of", lambda r: r["total"]), ("duration", lambda r: _fmt_s(r["seconds"]))]),
        "reloads_table": _rows(dev["reloads"], [
            ("version", lambda r: r["version"]), ("at", lambda r: clock(r["t"])),
            ("back in", lambda r: _fmt_s(r["seconds"]))]),
        "console": _rows(dev["console"], [
            ("at", lambda ln: clock(ln["t"])), ("level", lambda ln: ln["level"]),
            ("source", lambda ln: ln["source"]), ("message", lambda ln: ln["message"])], 20),
    }
    template = Template((HERE / "dashboard.html").read_text(encoding="utf-8"))
    return template.substitute({k: v if k in _RAW else html.escape(str(v))
                                for k, v in values.items()})


_RAW = {"workflow", "chart", "builds_table", "tests_table", "reloads_table", "console"}


# --------------------------------------------------------------------------- HTTP


def make_server(board: DevDashboard, host: str = "127.0.0.1", port: int = 8001
                ) -> ThreadingHTTPServer:
    css = (HERE / "dashboard.css").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, "text/html; charset=utf-8", render_page(board.state).encode())
            elif path == "/dashboard.css":
                self._send(200, "text/css; charset=utf-8", css)
            elif path == "/api/dev.json":
                self._send(200, "application/json", json.dumps(board.state).encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet: the dashboard polls every 2 s

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
