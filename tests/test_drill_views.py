"""What a drill participant's snapshot keeps back: the injected attack's name and id, and its
security events, while its symptoms stay (seeing them is the drill)."""

from __future__ import annotations

from devsim_tui.drill.runner import DrillSession
from devsim_tui.drill.schema import load_scenario, resolve
from devsim_tui.drill.views import participant_snapshot
from devsim_tui.ui.drill_panel import DrillWorld


def test_an_injected_attack_is_a_symptom_not_a_name_for_participants():
    session = DrillSession(load_scenario(resolve("dev-exposed-debugger")), seed=42)
    session.advance(5 * 60)  # the port scan (2m) and the exfiltration (3m) are under way
    full = session.snapshot().extensions["SecurityController"]
    assert {a["kind"] for a in full["attacks"]} >= {"debug-port-scan", "data-exfiltration"}
    seen = DrillWorld(session).snapshot().extensions["SecurityController"]
    text = repr(seen)
    for secret in ("debug-port-scan", "data-exfiltration",
                   *session.drill.injected_faults()):
        assert secret not in text, secret
    assert len(seen["attacks"]) == len(full["attacks"])  # how many, and what they do, stay
    assert seen["intrusions"] == full["intrusions"] and seen["rates"] == full["rates"]
    # The facilitator sees everything.
    assert DrillWorld(session, facilitator=True).snapshot() is session.snapshot()


def test_a_snapshot_without_injects_is_returned_as_is():
    session = DrillSession(load_scenario(resolve("dev-exposed-debugger")), seed=42)
    session.advance(30)
    snap = session.snapshot()
    assert participant_snapshot(snap, []) is snap
