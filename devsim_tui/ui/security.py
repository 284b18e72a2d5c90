"""The Security pane (key 8) and a finding's detail screen.

The pane sits beside the alerts and events: a compact summary (posture score, failing controls,
certificate countdowns, live attack figures, the environment's warnings) above the table of the
last audit's findings; zoomed (`z`) the summary grows to every control, certificate and recent
security event. Enter on a finding, here or in the alerts pane, opens `FindingDetailScreen`: what
happened, the evidence, what is affected and the commands that mitigate it.

It reads only `snapshot.security` (sim/security.py, a plain dict) and the
chaos faults' targets, and never touches the engine. The line builders are pure (tests read
them); the widgets colour their parts through sec--* component classes (app.tcss).
"""

from __future__ import annotations

from typing import Any, Callable

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from devsim_tui.sim.security import CONTROL_ABOUT, DEBUG_PORT, EXPIRING_SOON_S, MESH_SOON_S
from devsim_tui.sim.snapshot import Snapshot
from devsim_tui.ui.database import KeyedTable
from devsim_tui.ui.format import age
from devsim_tui.ui.linetable import TableColumn
from devsim_tui.ui.operations import faults_of
from devsim_tui.ui.renderables import level_lines

Lines = list[list[tuple[str, str]]]
LEVELS = ("dim", "key", "ok", "warn", "bad")
SEVERITY_LEVEL = {"critical": "bad", "error": "bad", "warning": "warn", "info": "dim"}
#: Severities as the alerts pane writes them (four letters at most).
SEVERITY_SHORT = {"critical": "crit", "error": "err", "warning": "warn", "info": "info"}
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}
EVENTS_SHOWN = 8
#: The findings table: id, severity and control always; the detail and the fix where there is
#: room (zoomed, or a wide side column).
FINDING_COLUMNS = (TableColumn("id", "ID", 6), TableColumn("sev", "SEV", 4),
                   TableColumn("control", "CONTROL", 29, min_width=16),
                   TableColumn("fix", "FIX", 22, priority=2, min_width=12),
                   TableColumn("detail", "DETAIL", 30, priority=1, flex=True, min_width=16))


def security_of(snap: Snapshot) -> dict[str, Any] | None:
    return snap.security


def findings_of(snap: Snapshot) -> list[dict[str, Any]]:
    """The last audit's findings, worst first (none without a security model or an audit)."""
    sec = security_of(snap)
    return sorted(sec["findings"], key=lambda f: SEVERITY_ORDER.get(f["severity"], 4)) \
        if sec else []


def _left(seconds: float) -> str:
    if seconds <= 0:
        return "EXPIRED"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _cert_level(c: dict[str, Any]) -> str:
    left = c["expires_in_s"]
    soon = MESH_SOON_S if c["endpoint"] == "mesh" else EXPIRING_SOON_S
    return "bad" if left <= 0 or c["renewal_failing"] else "warn" if left < soon else "ok"


def _score_line(sec: dict[str, Any]) -> list[tuple[str, str]]:
    score = sec["score"]
    return [("posture ", "key"),
            (f"{score:.0f}/100", "ok" if score >= 80 else "warn" if score >= 50 else "bad")]


def _activity(sec: dict[str, Any]) -> list[tuple[str, str]]:
    r, tot = sec["rates"], sec["totals"]
    return [("ACTIVITY", "key"),
            (f"  intrusions {sec['intrusions']} · denials {r['denials_per_s']:.1f}/s · "
             f"attacker queries {r['anomalous_queries_per_s']:.0f}/s · login failures "
             f"{r['login_failures_per_s']:.0f}/s · records exposed "
             f"{tot['records_exposed']}/{tot['records_exfiltrated']}",
             "bad" if sec["intrusions"] or tot["records_exposed"] else "dim")]


def _findings_head(sec: dict[str, Any], clock: Callable[[float], str]) -> list[tuple[str, str]]:
    last = sec["last_audit_t"]
    return [(f"FINDINGS ({len(sec['findings'])})", "key"),
            (f"  audits run {sec['audits_run']}" + (f", last {clock(last)}" if last is not None
                                                    else "") + "  (enter: details)", "dim")]


def security_lines(sec: dict[str, Any] | None, clock: Callable[[float], str]
                   ) -> tuple[Lines, Lines]:
    """Everything, for the zoomed pane, as the lines above the findings table (posture,
    warnings, the findings' heading) and those below it (every control, the certificates,
    activity and recent security events)."""
    if not sec:
        return [[("no security model in this estate", "dim")]], []
    head: Lines = [_score_line(sec) + [
        (f"  {sec['environment']} · credentials {sec['credentials']} · at rest "
         f"{sec['encryption']['at_rest'] or 'unencrypted'} · in transit "
         f"{sec['encryption']['in_transit'] or 'plain HTTP'}", "dim")]]
    for w in sec.get("warnings") or ():
        head.append([("! ", "bad"), (w, "warn")])
    head.append(_findings_head(sec, clock))
    lines: Lines = [[("CONTROLS", "key")]]
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
        lines.append([(f"  {c['endpoint']:9}", "key"), (f"{_left(c['expires_in_s']):>8}",
                                                       _cert_level(c)),
                      (f"  {c['issuer']} · {c['renewal']}"
                       + (" · renewal failing" if c["renewal_failing"] else ""), "dim")])
    lines.append(_activity(sec))
    for ev in (sec.get("recent_events") or ())[-EVENTS_SHOWN:][::-1]:
        lines.append([(f"  {clock(ev['t'])} ", "dim"),
                      (ev["message"], SEVERITY_LEVEL.get(ev["severity"], "dim"))])
    return head, lines


def compact_lines(sec: dict[str, Any] | None, clock: Callable[[float], str]) -> Lines:
    """The pane beside the others (a ~44-cell side column at 120x40): the score, the controls
    failing now that no finding lists yet, the warnings, one line per certificate, live attack
    figures when there are any. Lines wrap at the pane's width rather than lose their end."""
    if not sec:
        return [[("no security model in this estate", "dim")]]
    failing = sec["failing"]
    found = {f["control"] for f in sec["findings"]}
    applicable = sum(c["status"] != "n/a" for c in sec["controls"])
    lines: Lines = [_score_line(sec) + [
        (f" · {len(failing)}/{applicable} controls fail" if failing
         else f" · all {applicable} controls pass", "bad" if failing else "ok")]]
    unlisted = [c for c in failing if c not in found]
    if unlisted:
        lines.append([("not yet found: " if found else "failing: ", "key"),
                      (", ".join(unlisted), "warn")])
    for w in sec.get("warnings") or ():
        lines.append([("! ", "bad"), (w, "warn")])
    for c in sec["certificates"]:
        lines.append([("cert ", "key"), (f"{c['endpoint']:9}", "dim"),
                      (f"{_left(c['expires_in_s']):>7}", _cert_level(c)),
                      ("  renewal failing" if c["renewal_failing"] else f"  {c['renewal']}",
                       "bad" if c["renewal_failing"] else "dim")])
    if not sec["certificates"]:
        lines.append([("cert ", "key"), ("none: TLS is off (plain HTTP)", "warn")])
    r, tot = sec["rates"], sec["totals"]
    if sec["intrusions"] or sec["attacks"] or r["denials_per_s"] or tot["records_exfiltrated"]:
        # Symptoms, not the attack's name: in a drill, naming it is the responder's job.
        figures = [f"{sec['intrusions']} session(s) inside"] if sec["intrusions"] else []
        denied = sum(a["denied"] for a in sec["attacks"])
        if denied:
            figures.append(f"{denied} attacker(s) denied")
        if r["anomalous_queries_per_s"]:
            figures.append(f"{r['anomalous_queries_per_s']:.0f} q/s")
        if r["login_failures_per_s"]:
            figures.append(f"{r['login_failures_per_s']:.0f} failed logins/s")
        if r["denials_per_s"]:
            figures.append(f"denials {r['denials_per_s']:.1f}/s")
        if tot["records_exfiltrated"]:
            figures.append(f"exposed {tot['records_exposed']}/{tot['records_exfiltrated']}")
        lines.append([("attack", "bad"),
                      ("".join(" · " + x for x in figures) or " · policy denials",
                       "bad" if sec["intrusions"] or tot["records_exposed"] else "dim")])
    return lines


def finding_row(f: dict[str, Any]) -> list[tuple[str, str]]:
    level = SEVERITY_LEVEL.get(f["severity"], "warn")
    level = "info" if level == "dim" else level
    return [(f["id"], level), (SEVERITY_SHORT.get(f["severity"], f["severity"]), level),
            (f["control"], ""), (f.get("mitigation") or "-", "info"), (f["detail"], "muted")]


def pane_subtitle(sec: dict[str, Any] | None, clock: Callable[[float], str]) -> str:
    if not sec:
        return ""
    n = len(sec["findings"])
    when = f"audit {clock(sec['last_audit_t'])}" if sec["last_audit_t"] is not None \
        else "no audit yet (:audit)"
    return f"{sec['score']:.0f}/100 · {n} finding{'s' if n != 1 else ''} · {when}"


# ---------------------------------------------------------------------- a finding in full


def _commands() -> Any:
    from devsim_tui.sim import commands as C

    return C


def _targets(f: dict[str, Any], sec: dict[str, Any], snap: Snapshot) -> list[str]:
    """What the finding is about, as names a responder can act on."""
    control = f["control"]
    certs = sec["certificates"]
    faults = {x.get("id"): x for x in faults_of(snap)}

    def attack_targets(kinds: tuple[str, ...] | None = None) -> list[str]:
        out = []
        for a in sec["attacks"]:
            if kinds is None or a["kind"] in kinds:
                fault = faults.get(a["fault"]) or {}
                where = ", ".join(fault.get("targets") or ()) or fault.get("scope") or "estate"
                how = "intrusion" if a["intrusion"] else "denied" if a["denied"] else "under way"
                what = f"{a['kind']} ({a['fault']})" if a["fault"] else a["kind"]
                out.append(f"{what} on {where}: {how}")
        return out

    if control == "certificates-valid":
        return [f"{c['endpoint']} certificate ({c['issuer']}): "
                + ("expired" if c["expires_in_s"] <= 0 else f"{_left(c['expires_in_s'])} left")
                for c in certs if _cert_level(c) != "ok"] or ["no certificate near expiry now"]
    if control == "certificate-renewal-automated":
        return [f"{c['endpoint']} certificate (manual renewal)" for c in certs
                if c["renewal"] == "manual"]
    if control == "tls-in-transit":
        return ["every client connection (plain HTTP)"]
    if control == "encryption-at-rest":
        return ["database volumes and backups (" + ", ".join(n.name for n in snap.db) + ")"]
    if control in ("secrets-managed", "credentials-rotated"):
        return [f"database and service credentials ({sec['credentials']})"] + attack_targets(
            ("credential-leak", "brute-force-login"))
    if control == "debug-endpoints-closed":
        names = list(snap.fleet.names)
        shown = ", ".join(names[:6]) + (f" (+{len(names) - 6})" if len(names) > 6 else "")
        return [f"port {DEBUG_PORT} on {shown or 'the app servers'}"] + attack_targets(
            ("debug-port-scan",))
    if control == "zero-trust":
        return ["service-to-service traffic (flat network)"]
    if control == "anomaly-detection":
        return ["auth and denial event streams (unwatched)"]
    if control == "no-active-attack":
        return attack_targets() or ["no attack active now"]
    return ["the estate"]


def _evidence(f: dict[str, Any], sec: dict[str, Any], clock: Callable[[float], str]
              ) -> list[tuple[str, str]]:
    control = f["control"]
    r, tot, enc = sec["rates"], sec["totals"], sec["encryption"]
    rows: list[tuple[str, str]] = []
    if control in ("certificates-valid", "certificate-renewal-automated", "tls-in-transit"):
        for c in sec["certificates"]:
            renew = f", renews in {_left(c['renew_in_s'])}" if c.get("renew_in_s") else ""
            rows.append((f"cert {c['endpoint']}",
                         f"{_left(c['expires_in_s'])} left of {c['lifetime_days']:g} days · "
                         f"{c['renewal']}{renew} · {c['renewals']} renewal(s)"
                         + (" · RENEWAL FAILING" if c["renewal_failing"] else "")))
    if control in ("tls-in-transit", "encryption-at-rest", "no-active-attack"):
        rows.append(("in transit", enc["in_transit"] or "plain HTTP"))
        rows.append(("at rest", enc["at_rest"] or "unencrypted"))
        rows.append(("records", f"{tot['records_exposed']} exposed of "
                                f"{tot['records_exfiltrated']} exfiltrated · egress "
                                f"{r['egress_bytes_per_s']:.0f} B/s"))
    if control in ("secrets-managed", "credentials-rotated", "no-active-attack",
                   "debug-endpoints-closed"):
        rows.append(("credentials", f"{sec['credentials']} · rotated "
                                    f"{tot['credential_rotations']} time(s) this session"))
        rows.append(("intrusions", f"{sec['intrusions']} attacker session(s) inside · "
                                   f"{tot['unknown_source_logins']} login(s) from unknown "
                                   "sources"))
        rows.append(("auth", f"{r['login_failures_per_s']:.0f} login failures/s "
                             f"({tot['login_failures']} in all) · attacker queries "
                             f"{r['anomalous_queries_per_s']:.0f}/s"))
    if control == "debug-endpoints-closed":
        rows.append(("debug port", f"{DEBUG_PORT} "
                                   + ("reachable" if sec["debug_endpoint_open"] else "closed")))
    if control in ("zero-trust", "no-active-attack"):
        rows.append(("mesh", f"{'zero trust' if sec['zero_trust'] else 'flat network'} · "
                             f"denials {r['denials_per_s']:.1f}/s ({tot['denials']} in all)"))
    if control in ("audits-scheduled", "anomaly-detection"):
        nxt = sec["next_audit_in_s"]
        rows.append(("audits", f"{sec['audits_run']} run · next "
                               + (f"in {age(nxt)}" if nxt is not None else "not scheduled")))
        det = sec["ai_detected_at"]
        rows.append(("AI auditing", ("on" if sec["ai_auditing"] else "off") + (
            f" · flagged an attack at {clock(det)}" if det is not None else "")))
    return rows


def _mitigations(f: dict[str, Any], sec: dict[str, Any]) -> list[tuple[str, str]]:
    """(what to type or change, what it does) for each fix the finding names."""
    C = _commands()
    out = []
    for fix in (f.get("mitigation") or "").split(", "):
        fix = fix.strip()
        if not fix:
            continue
        cls = C.lookup(fix.split()[0])
        if cls is None:
            profile = any(word.startswith("security.") for word in fix.split())
            out.append((f"profile: {fix}" if profile else fix,
                        "a change to the estate's " + ("profile" if profile else "set-up")
                        + ", not a command"))
            continue
        line = fix
        if fix == "renew-certificate":
            bad = [c["endpoint"] for c in sec["certificates"] if _cert_level(c) != "ok"]
            line = f"renew-certificate {bad[0] if len(bad) == 1 else 'all'}"
        out.append((f":{line}", cls.summary or ""))
    return out


def finding_lines(f: dict[str, Any], sec: dict[str, Any], snap: Snapshot,
                  clock: Callable[[float], str]) -> Lines:
    """One finding whole: what happened, evidence, affected targets, the mitigating commands."""
    level = SEVERITY_LEVEL.get(f["severity"], "warn")
    now = next((c for c in sec["controls"] if c["control"] == f["control"]), None)
    still = now is not None and now["status"] == "fail"
    lines: Lines = [
        [(f"{f['id']}  ", level), (f["control"], "key"), (f"  {f['severity']}", level)],
        [("found     ", "key"), (f"{clock(f['found_t'])} ({age(snap.t - f['found_t'])} ago) "
                                 f"by audit {sec['audits_run']}", "dim")],
        [("now       ", "key"),
         ("still failing" if still else "the control passes now: the next audit closes it",
          "bad" if still else "ok")],
        [],
        [("WHAT HAPPENED", "key")],
        [("  " + f["detail"], level)],
        [("  " + CONTROL_ABOUT.get(f["control"], ""), "dim")],
    ]
    if still and now["detail"] != f["detail"]:
        lines.append([("  now: " + now["detail"], "warn")])
    evidence = _evidence(f, sec, clock)
    if evidence:
        lines += [[], [("EVIDENCE", "key")]]
        lines += [[(f"  {k:13}", "key"), (v, "dim")] for k, v in evidence]
    lines += [[], [("AFFECTED", "key")]]
    lines += [[("  " + t, "warn")] for t in _targets(f, sec, snap)]
    lines += [[], [("MITIGATION", "key")]]
    fixes = _mitigations(f, sec)
    if not fixes:
        lines.append([("  none recorded", "dim")])
    for cmd, what in fixes:
        lines += [[(f"  {cmd}", "ok")], [(f"      {what}", "dim")]]
    if ":audit" not in (cmd for cmd, _w in fixes):
        lines.append([("  then :audit: the finding closes once the control passes", "dim")])
    return lines


# ---------------------------------------------------------------------- widgets


class SecurityView(Static):
    """Security lines, coloured through sec--* component classes."""

    COMPONENT_CLASSES = {f"sec--{lvl}" for lvl in LEVELS}

    def __init__(self, *args, wrap: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.wrap = wrap  # long lines wrap (a detail) or end in … (a pane)
        self._shown: Lines | None = None

    def show(self, lines: Lines) -> None:
        if lines == self._shown:
            return
        relayout = self._shown is None or len(lines) != len(self._shown)
        self._shown = lines
        st = self.get_component_rich_style
        styles: dict[str, Style] = {lvl: st(f"sec--{lvl}") for lvl in LEVELS}
        text = Text() if self.wrap else Text(no_wrap=True, overflow="ellipsis")
        self.update(level_lines(lines, styles, text), layout=relayout)

    def restyle(self) -> None:
        lines, self._shown = self._shown, None
        if lines is not None:
            self.show(lines)


class SecurityPane(VerticalScroll):
    """The summary above the findings table (its header hidden while there are none); it
    scrolls when zoomed on a short screen (every control and event is then listed)."""

    def __init__(self, clock: Callable[[float], str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self._zoomed = False

    def compose(self) -> ComposeResult:
        yield SecurityView(id="security-summary")
        yield KeyedTable(FINDING_COLUMNS, id="security-findings")
        yield SecurityView(id="security-more")  # zoomed: what follows the findings

    def on_mount(self) -> None:
        def restyle(_theme: object) -> None:
            for view in self.query(SecurityView):
                view.restyle()

        self.app.theme_changed_signal.subscribe(self, restyle)

    def show(self, snap: Snapshot, zoomed: bool) -> str:
        """Update from a snapshot (every line when zoomed); returns the pane's subtitle."""
        sec = security_of(snap)
        head, more = security_lines(sec, self.clock) if zoomed \
            else (compact_lines(sec, self.clock), [])
        self.query_one("#security-summary", SecurityView).show(head)
        rest = self.query_one("#security-more", SecurityView)
        rest.display = bool(more)
        rest.show(more)
        if zoomed != self._zoomed:  # a zoom starts (and a restore returns) at the posture line
            self._zoomed = zoomed
            self.scroll_home(animate=False, immediate=True)
        findings = findings_of(snap)
        table = self.query_one("#security-findings", KeyedTable)
        if table.show_header != bool(findings):
            table.show_header = bool(findings)
        table.set_rows([(f["id"], finding_row(f)) for f in findings])
        return pane_subtitle(sec, self.clock)


class FindingDetailScreen(ModalScreen[None]):
    """One finding in full: Enter on a finding (Security pane or alerts pane); Esc closes."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, lines: Lines) -> None:
        super().__init__()
        self.lines = lines

    @property
    def text(self) -> str:
        """The detail as plain text (tests read it)."""
        return "\n".join("".join(part for part, _l in line) for line in self.lines)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="finding-detail-box") as box:
            box.border_title = "Security finding"
            box.border_subtitle = "esc closes"
            yield SecurityView(id="finding-detail", wrap=True)

    def on_mount(self) -> None:
        self.query_one("#finding-detail", SecurityView).show(self.lines)


def finding_detail(snap: Snapshot, finding_id: str, clock: Callable[[float], str]
                   ) -> Lines | None:
    """The detail lines of one finding of the last audit (None: no such finding)."""
    sec = security_of(snap)
    f = next((x for x in (sec or {}).get("findings", ()) if x["id"] == finding_id), None)
    return None if f is None else finding_lines(f, sec, snap, clock)
