"""One answer to "may this role send this command?" (devsim_tui/access.py), and one list of
roles that every layer uses."""

from __future__ import annotations

from devsim_tui import access
from devsim_tui.sim import commands as C


def test_roles_are_declared_once():
    from devsim_tui.bridge import payloads
    from devsim_tui.cmd import attach
    from devsim_tui.serve import auth, shared

    assert payloads.SEAT_ROLES is access.ROLES
    assert auth.ROLES is access.ROLES and shared.SEAT_ROLES is access.ROLES
    assert attach.ROLES is access.ROLES


def test_refusal_by_role_and_drill():
    chaos = C.parse_line("chaos cpu-hog")
    scale = C.parse_line("scale 4")
    pause = C.parse_line("pause")
    assert access.refusal("facilitator", chaos, in_drill=True) is None
    assert "read-only" in access.refusal("observer", scale)
    assert access.refusal("operator", scale, in_drill=True) is None
    assert "only a facilitator" in access.refusal("operator", pause)
    assert access.refusal("operator", chaos) is None  # outside a drill an operator may
    assert "facilitator's" in access.refusal("operator", chaos, in_drill=True)
    assert "bad releases" in access.refusal("operator", C.parse_line("deploy bad:latency"),
                                            in_drill=True)
