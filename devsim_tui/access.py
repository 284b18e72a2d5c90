"""Who may do what: the seat roles, the commands only a facilitator sends, and the one
`refusal(role, command, in_drill)` every place that lets a command through asks.

A role is one of ROLES. A facilitator may send anything; an observer nothing; an operator the
ordinary commands and, in a drill, the participants' own (declare-root-cause, remedy) but not
the clock, the drill's steering, the faults or the bad releases (those are the facilitator's
script). Pure data and functions: imports nothing of the project, so every layer may use it.
"""

from __future__ import annotations

from typing import Any

#: The seat roles, least powerful first.
ROLES = ("observer", "operator", "facilitator")
#: Commands only a facilitator may send: the clock (`step` is the control room's own), and
#: steering the drill itself.
FACILITATOR_ONLY = frozenset({"pause", "set-speed", "step", "hint", "inject-next",
                              "skip-inject", "end-drill"})
#: The drill commands a participant (operator) may send.
PARTICIPANT_DRILL_COMMANDS = ("declare-root-cause", "remedy")


def participant_refusal(cmd: Any) -> str | None:
    """Why a drill's participant may not send `cmd`, or None. The faults and the bad releases
    are the facilitator's script: a participant who could start or stop faults (`chaos`,
    `chaos-stop`, the `!` emergency stop) or ship a known-bad release would rewrite the drill,
    and stopping the injected fault by id would "fix" it without finding anything. Participants
    mend what they find with the ordinary commands and the scenario's remedies."""
    if cmd.name in ("chaos", "chaos-stop"):
        return (f"{cmd.name}: in a drill the faults are the facilitator's; fix what you find "
                "with the ordinary commands and the remedies (`:remedy`)")
    if cmd.name == "deploy" and str(cmd.args().get("version", "")).startswith("bad:"):
        return "deploy bad:...: in a drill the bad releases are the facilitator's"
    return None


def role_refusal(role: str, command: str) -> str | None:
    """Why `role` may not send the command named `command` at all, or None if it may."""
    if role == "facilitator":
        return None
    if role == "observer":
        return "observers cannot act: this seat is read-only"
    if role == "operator":
        if command in FACILITATOR_ONLY:
            return f"{command}: only a facilitator may (this seat is an operator)"
        return None
    return f"unknown role {role!r}"


def refusal(role: str, cmd: Any, in_drill: bool = False) -> str | None:
    """Why `role` may not send `cmd` (a command: `.name`, `.args()`), or None if it may;
    `in_drill`: the world is a hosted drill, where a participant's hands are tied further."""
    why = role_refusal(role, cmd.name)
    if why is None and in_drill and role != "facilitator":
        why = participant_refusal(cmd)
    return why
