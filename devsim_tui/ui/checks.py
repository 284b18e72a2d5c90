"""What the control room can tell about a command before it leaves: a target that does not
exist, a replica count outside the profile's bounds, a rollback with nowhere to go.

The engine stays the judge (it checks again when it applies the command, and records any
rejection); these checks only let the screen refuse at once, with a toast, before asking for a
confirmation that would be pointless, and while the clock is paused (a paused engine applies
nothing until it runs again). Pure functions of the snapshot and the profile; one entry per
command class in CHECKS. Never changes the world.
"""

from __future__ import annotations

from typing import Any, Callable

from devsim_tui.sim import commands as C
from devsim_tui.sim.chaos import ChaosStop
from devsim_tui.sim.releases import Rollback
from devsim_tui.sim.snapshot import Snapshot
from devsim_tui.ui.operations import faults_of, rollback_target

Check = Callable[[Any, Snapshot, Any], "str | None"]


def _node(name: str | None, snap: Snapshot) -> str | None:
    names = [n.name for n in snap.db]
    if name is None or name == "primary" or name in names:
        return None
    return f"no database node '{name}' (have: {', '.join(names)})"


def _scale(cmd: C.Scale, snap: Snapshot, profile: Any) -> str | None:
    spec = profile.scaling
    if cmd.replicas > spec.maxReplicas:
        return f"above maxReplicas ({spec.maxReplicas})"
    if spec.scaler == "hpa" and cmd.replicas < spec.minReplicas:
        return f"below minReplicas ({spec.minReplicas}) of the HPA"
    return None


def _failover(cmd: C.Failover, snap: Snapshot, _profile: Any) -> str | None:
    if cmd.target is None:
        return None
    node = next((n for n in snap.db if n.name == cmd.target), None)
    if node is None:
        return _node(cmd.target, snap)
    if node.role == "primary":
        return f"'{cmd.target}' is the primary already"
    return None


def _rollback(cmd: Rollback, snap: Snapshot, _profile: Any) -> str | None:
    if rollback_target(snap, cmd.to) is not None:
        return None
    if cmd.to is None:
        return "no earlier revision that passed its checks (name one: rollback N)"
    return f"no revision or version '{cmd.to}' kept"


def _chaos_stop(cmd: ChaosStop, snap: Snapshot, _profile: Any) -> str | None:
    ids = [str(f.get("id")) for f in faults_of(snap)]
    if cmd.id == "all" or cmd.id in ids:  # `all` is the emergency stop: always let it through
        return None
    return f"no active fault '{cmd.id}' (have: {', '.join(ids) or 'none'})"


CHECKS: dict[type, Check] = {
    C.Scale: _scale,
    C.Failover: _failover,
    C.CrashNode: lambda cmd, snap, _p: _node(cmd.node, snap),
    C.RestartNode: lambda cmd, snap, _p: _node(cmd.node, snap),
    C.Backup: lambda cmd, snap, _p: _node(cmd.node, snap),
    Rollback: _rollback,
    ChaosStop: _chaos_stop,
}


def precheck(cmd: C.Command, snap: Snapshot, profile: Any) -> str | None:
    """Why `cmd` cannot apply now, or None when the engine may take it."""
    check = CHECKS.get(type(cmd))
    return check(cmd, snap, profile) if check is not None else None


def confirm_question(cmd: C.Command, snap: Snapshot) -> str:
    """The confirmation's question: it names what the command acts on."""
    if isinstance(cmd, Rollback):
        target = rollback_target(snap, cmd.to)
        return f"Really roll back to {target}?" if target else f"Really {cmd.describe()}?"
    return f"Really {cmd.describe()}?"
