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
from typing import Any, Iterable

from devsim_tui import access
from devsim_tui.sim.events import Event
from devsim_tui.sim.extensions import CHAOS

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


def participant_snapshot(snap: Any, hidden_faults: Iterable[str]) -> Any:
    """`snap` without the faults the drill injected: not in the operations pane's list, and no
    badge on a server or node that only those faults act on."""
    hidden = set(hidden_faults)
    chaos = snap.chaos
    if not hidden or not chaos:
        return snap
    active = chaos.get("active") or []
    if not any(f.get("id") in hidden for f in active):
        return snap
    shown = [f for f in active if f.get("id") not in hidden]
    still = {n for f in shown for n in f.get("targets", ())}
    secret = {n for f in active if f.get("id") in hidden for n in f.get("targets", ())} - still
    view = {**chaos, "active": shown,
            "faulted_servers": [n for n in chaos.get("faulted_servers", ()) if n not in secret],
            "faulted_db_nodes": [n for n in chaos.get("faulted_db_nodes", ())
                                 if n not in secret]}
    return snap.with_extension(CHAOS, view)


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