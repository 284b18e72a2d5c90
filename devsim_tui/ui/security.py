"""The Security screen (key 8; 7 is the drill pane): posture score, controls, certificates, findings, security events
and the environment's warnings.

It reads only `snapshot.security` (sim/security.py, a plain dict) and
never touches the engine. `security_lines` is pure (tests read it); the widget colours its parts
through sec--* component classes (app.tcss).
"""

from __future__ import annotations

from typing import Any, Callable

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from devsim_tui.ui.renderables import level_lines
from devsim_tui.sim.snapshot import Snapshot

LEVELS = ("dim", "key", "ok", "warn", "bad")
SEVERITY_LEVEL = {"critical": "bad", "error": "bad", "warning": "warn", "info": "dim"}
EVENTS_SHOWN = 8


def security_of(snap: Snapshot) -> dict[str, Any] | None:
    return snap.security


def _left(seconds: float) -> str:
    if seconds <= 0:
        return "EXPIRED"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def security_lines(sec: dict[str, Any] | None, clock: Callable[[float], str]
                   ) -> list[list[tuple[str, str]]]:
    """The screen's lines as (text, level) parts; levels are LEVELS."""
    if not sec:
        return [[("no security model in this estate", "dim")]]
    score = sec["score"]
    lines: list[list[tuple[str, str]]] = [[
        ("posture ", "key"), (f"{score:.0f}/100", "ok" if score >= 80 else
                              "warn" if score >= 50 else "bad"),
        (f"  {sec['environment']} · credentials {sec['credentials']} · at rest "
         f"{sec['encryption']['at_rest'] or 'unencrypted'} · in transit "
         f"{sec['encryption']['in_transit'] or 'plain HTTP'}", "dim")]]
    for w in sec.get("warnings") or ():
        lines.append([("! ", "bad"), (w, "warn")])
    lines.append([("CONTROLS", "key")])
    for c in sec["controls"]:
        status = c["status"]
        level = {"pass": "ok", "fail": "bad"}.get(status, "dim")
        part = [(f"  {status.upper():4} ", level), (f"{c['control']:30}", "key"),
                (c["detail"], "dim")]
        if status == "fail" and c.get("mitigation"):
            part.append((f"  → {c['mitigation']}", "warn"))
        lines.append(part)
    lines.append([("CERTIFICATES", "key")])
    if not sec["certificates"]:
        lines.append([("  none: TLS is off", "dim")])
    for c in sec["certificates"]:
        left = c["expires_in_s"]
        level = "bad" if left <= 0 or c["renewal_failing"] else \
            "warn" if left < (4 * 3600 if c["endpoint"] == "mesh" else 7 * 86400) else "ok"
        lines.append([(f"  {c['endpoint']:9}", "key"), (f"{_left(left):>8}", level),
                      (f"  {c['issuer']} · {c['renewal']}"
                       + (" · renewal failing" if c["renewal_failing"] else ""), "dim")])
    findings = sec["findings"]
    lines.append([(f"FINDINGS ({len(findings)})", "key"),
                  (f"  audits run {sec['audits_run']}" + (
                      f", last {clock(sec['last_audit_t'])}" if sec["last_audit_t"] is not None
                      else ""), "dim")])
    for f in findings:
        lines.append([(f"  {f['id']:6}", SEVERITY_LEVEL.get(f["severity"], "warn")),
                      (f"{f['control']:30}", "key"), (f["detail"], "dim")]
                     + ([(f"  → {f['mitigation']}", "warn")] if f.get("mitigation") else []))
    r, tot = sec["rates"], sec["totals"]
    lines.append([("ACTIVITY", "key"),
                  (f"  intrusions {sec['intrusions']} · denials {r['denials_per_s']:.1f}/s · "
                   f"attacker queries {r['anomalous_queries_per_s']:.0f}/s · login failures "
                   f"{r['login_failures_per_s']:.0f}/s · records exposed "
                   f"{tot['records_exposed']}/{tot['records_exfiltrated']}",
                   "bad" if sec["intrusions"] or tot["records_exposed"] else "dim")])
    for ev in (sec.get("recent_events") or ())[-EVENTS_SHOWN:][::-1]:
        lines.append([(f"  {clock(ev['t'])} ", "dim"),
                      (ev["message"], SEVERITY_LEVEL.get(ev["severity"], "dim"))])
    return lines


class SecurityView(Static):
    """The security lines, coloured through sec--* component classes."""

    COMPONENT_CLASSES = {f"sec--{lvl}" for lvl in LEVELS}

    def show(self, lines: list[list[tuple[str, str]]]) -> None:
        st = self.get_component_rich_style
        styles: dict[str, Style] = {lvl: st(f"sec--{lvl}") for lvl in LEVELS}
        self.update(level_lines(lines, styles, Text(no_wrap=True, overflow="ellipsis")))


class SecurityScreen(Screen[None]):
    """Key 8 opens this over the control room; Escape returns."""

    BINDINGS = [Binding("escape,q,8", "close", "Back")]

    def __init__(self, clock: Callable[[float], str]) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="security-pane", classes="pane") as pane:
            pane.border_title = "8 Security"
            yield SecurityView(id="security")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)

    def show(self, snap: Snapshot) -> None:
        self.query_one(SecurityView).show(security_lines(security_of(snap), self.clock))
