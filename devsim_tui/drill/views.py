"""What a drill's participants may see: the world without the facilitator's secrets.

A participant works from symptoms, as in a real incident: the events an inject caused (its
`chaos.*`, `release.*` ... lines and the `drill.inject*` ones) and the faults it started (in the
operations pane, and as the fault badge on servers and nodes) would name the root cause, so they
are taken out of a participant's events and snapshots. The drill controller publishes what to
take out in its participant state (`hidden`: event seq ranges and fault ids; opaque, they say
nothing about the cause). Used by the local control room (`ui.drill_panel.DrillWorld`) and by
remote seats (`bridge.remote.RemoteWorld`). Never imports the UI.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from devsim_tui import access
from devsim_tui.sim.events import Event
from devsim_tui.sim.extensions import CHAOS, SECURITY

#: Event types a participant never sees (which inject fired, was skipped, or failed).
HIDDEN_TYPES = ("drill.inject",)


def is_secret(ev: Event, ranges: Iterable[Iterable[int]]) -> bool:
    """An inject's doing: a drill.inject* event, or one in the seq ranges its injects made."""
    return ev.type.startswith(HIDDEN_TYPES) or any(a <= ev.seq <= b for a, b in ranges)


def participant_events(events: Iterable[Event], hidden: Iterable[Iterable[int]], ended: bool,
                       secret: frozenset[int] | set[int] = frozenset()) -> list[Event]:
    """Drop what the drill's injects did (their seq ranges, drill.inject* events, and the seqs
    in `secret`: what a host marked so) and, until the drill ends, the verdict on a root-cause
    declaration."""
    ranges = [tuple(r) for r in hidden]
    out = []
    for ev in events:
        if ev.seq in secret or is_secret(ev, ranges):
            continue
        if ev.type.startswith("drill.root_cause.") and not ended:
            ev = dataclasses.replace(
                ev, type="drill.root_cause", data={"text": ev.data.get("text")},
                message=f"root cause declared: {ev.data.get('text')!r} (judged at the end)")
        out.append(ev)
    return out


def participant_snapshot(snap: Any, hidden_faults: Iterable[str],
                         hidden_seqs: Iterable[Sequence[int]] = ()) -> Any:
    """`snap` without the faults the drill injected: not in the operations pane's list, no
    badge on a server or node that only those faults act on, and in the security posture no
    name or id of an injected attack (its symptoms - sessions inside, denials, failed logins -
    stay: seeing them is the drill) and none of its security events the event log hides."""
    hidden = set(hidden_faults)
    chaos = snap.chaos
    if not hidden or not chaos:
        return snap
    active = chaos.get("active") or []
    view = snap
    if any(f.get("id") in hidden for f in active):
        shown = [f for f in active if f.get("id") not in hidden]
        still = {n for f in shown for n in f.get("targets", ())}
        secret = {n for f in active if f.get("id") in hidden
                  for n in f.get("targets", ())} - still
        view = view.with_extension(CHAOS, {
            **chaos, "active": shown,
            "faulted_servers": [n for n in chaos.get("faulted_servers", ()) if n not in secret],
            "faulted_db_nodes": [n for n in chaos.get("faulted_db_nodes", ())
                                 if n not in secret]})
    sec = snap.security
    if sec:
        view = view.with_extension(SECURITY, _security_view(sec, hidden, hidden_seqs))
    return view


#: What an auditor sees of each injected attack, in place of its name: the symptom.
ATTACK_SYMPTOMS = {"credential-leak": "logins with valid but unexpected credentials",
                   "brute-force-login": "bursts of failed logins",
                   "debug-port-scan": "probes of the debug port",
                   "data-exfiltration": "data leaving the estate",
                   "policy-misconfig": "requests denied by policy",
                   "cert-renewal-failure": "certificate renewals failing"}


def _security_view(sec: dict[str, Any], hidden: set[str],
                   hidden_seqs: Iterable[Sequence[int]]) -> dict[str, Any]:
    """The security posture without the injected attacks' names, ids, fixes and hidden events."""
    kinds = {a.get("kind") for a in sec.get("attacks") or () if a.get("fault") in hidden}
    ranges = [tuple(r) for r in hidden_seqs]

    def redact(item: dict[str, Any]) -> dict[str, Any]:
        detail = str(item.get("detail") or "")
        said = detail
        for kind in kinds:
            said = said.replace(str(kind), ATTACK_SYMPTOMS.get(str(kind), "attacker activity"))
        # The fix would name the attack: finding it is the responder's part of the drill.
        return item if said == detail else {**item, "detail": said, "mitigation": None}

    controls = [redact(c) for c in sec.get("controls") or ()]
    return {**sec,
            "attacks": [{**a, "kind": ATTACK_SYMPTOMS.get(a.get("kind"), "attacker activity"),
                         "fault": None} if a.get("fault") in hidden else a
                        for a in sec.get("attacks") or ()],
            "controls": controls,
            "findings": [redact(f) for f in sec.get("findings") or ()],
            "recent_events": [ev for ev in sec.get("recent_events") or ()
                              if not any(a <= ev.get("seq", -1) <= b for a, b in ranges)]}


def hidden_of(drill_state: dict[str, Any] | None) -> tuple[list, list[str], bool]:
    """(event seq ranges, fault ids, drill ended) from a drill controller's participant state."""
    if not drill_state:
        return [], [], False
    hidden = drill_state.get("hidden") or {}
    return (list(hidden.get("seqs", ())), list(hidden.get("faults", ())),
            bool(drill_state.get("ended")))


def participant_refusal(cmd: Any) -> str | None:
    """Why a drill's participant may not send `cmd`, or None (devsim_tui/access.py decides)."""
    return access.participant_refusal(cmd)