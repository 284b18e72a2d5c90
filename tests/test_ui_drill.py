"""A drill hosted in the control room (`drill run` on a screen) and a recording replayed there.

Behaviour is asserted on the drill's own state and events (drill.* reach the engine, attributed
to the seat's role) and on what a participant's world hands the panes; the snapshots freeze the
drill panel as a participant and as the facilitator, paused at a fixed tick.
"""

from __future__ import annotations

import pytest
from pilot import type_line

from devsim_tui.drill.runner import DrillSession
from devsim_tui.drill.schema import load_scenario, resolve
from devsim_tui.sim import commands as C
from devsim_tui.ui.drill_panel import (
    DrillPanel, DrillSummary, create_drill_app, drill_lines, participant_events,
)
from devsim_tui.ui.debrief import DebriefScreen, debrief_lines
from devsim_tui.ui.format import next_speed
from devsim_tui.ui.help import HelpScreen, command_rows

SCENARIO = "tls-certificate-expiry"
SEED = 42


def session_at(ticks: int = 330, record=None) -> DrillSession:
    """The certificate drill 5.5 minutes in: the fault fired at 2m, the support call at 5m, a
    hint revealed and a wrong root cause declared at 4m."""
    session = DrillSession(load_scenario(resolve(SCENARIO)), seed=SEED, record=record)
    session.advance(240)
    session.submit(C.DrillHint(), by="facilitator")
    session.submit(C.DeclareRootCause(text="the HPA is broken"), by="participant")
    session.advance(ticks - 240)
    return session


@pytest.fixture
def drill_app(config_home):
    def build(facilitator: bool = False, session: DrillSession | None = None, **kw):
        app = create_drill_app(session or session_at(), facilitator=facilitator, paused=True,
                               theme="control-room", config_dir=config_home / "devsim-tui", **kw)
        app.animation_level = "none"
        return app

    return build


def text_of(app) -> str:
    return str(app.query_one(DrillSummary).content)


def drill_events(app) -> list[str]:
    return [ev.type for ev in app.world.session.events_since(0) if ev.type.startswith("drill.")]


async def tick(pilot, n: int = 1) -> None:
    """Apply what was submitted (commands apply at the next tick boundary) and redraw."""
    pilot.app.world.advance(n)
    pilot.app.draw(force=True)
    await pilot.pause()


# ---------------------------------------------------------------------- snapshots


def test_drill_panel_participant_view(snap_compare, drill_app, settle):
    assert snap_compare(drill_app(), terminal_size=(160, 50), run_before=settle)


def test_drill_panel_facilitator_view(snap_compare, drill_app, settle):
    assert snap_compare(drill_app(facilitator=True), terminal_size=(160, 50),
                        run_before=settle)


# ---------------------------------------------------------------------- facilitator


async def test_facilitator_keys_and_lines_reach_the_drill(drill_app):
    app = drill_app(facilitator=True, no_confirm=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("h")
        await tick(pilot)
        assert drill_events(app).count("drill.hint") == 2
        await type_line(pilot, "skip-inject")  # nothing pending after the support call
        await tick(pilot)
        assert app.world.drill_state()["injects"]["pending"] == 0
        assert [c["by"] for c in app.world.session.commands if c["name"] == "skip-inject"] == [
            "facilitator"]
        await pilot.press("space")
        assert not app.world.paused
        await pilot.press("space")
        assert app.world.paused
        await pilot.press("E")
        await tick(pilot)
        assert "drill.ended" in drill_events(app)
        assert app.world.drill_state()["end_reason"] == "facilitator"
        await pilot.pause()
        assert isinstance(app.screen, DebriefScreen)
        assert "objectives met" in app.outcome and "--record" in app.outcome


async def test_inject_next_fires_a_pending_inject(drill_app):
    app = drill_app(facilitator=True, session=session_at(130))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert app.world.drill_state()["injects"]["pending"] == 1
        await pilot.press("n")
        await tick(pilot)
        assert app.world.drill_state()["injects"]["pending"] == 0
        assert "drill.message" in drill_events(app)


async def test_end_drill_asks_first_and_writes_the_report(drill_app, tmp_path):
    rec = tmp_path / "tls.rec"
    app = drill_app(facilitator=True, session=session_at(record=rec), record=str(rec),
                    report=str(tmp_path / "tls"))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await type_line(pilot, "end-drill")
        await pilot.press("y")
        await tick(pilot)
        assert isinstance(app.screen, DebriefScreen)
        assert (tmp_path / "tls.md").exists() and rec.exists()
        assert f"devsim-tui drill report {rec}" in app.outcome


# ---------------------------------------------------------------------- participants


async def test_participant_cannot_drive_the_drill_and_sees_no_hidden_parts(drill_app):
    app = drill_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        before = list(app.world.session.commands)
        for key in ("h", "n", "k", "E", "space"):
            await pilot.press(key)
        for line in ("hint", "inject-next", "end-drill", "pause", "speed max"):
            await type_line(pilot, line)
        assert app.world.session.commands == before
        assert "only the facilitator" in [n for n in app._notifications][-1].message
        footer_keys = {key for key, b in app.active_bindings.items() if b.binding.show}
        assert not footer_keys & {"h", "n", "k", "E", "space"}
        # The panel: no notes, no true cause, no verdict before the end.
        text = text_of(app)
        assert "Facilitator" not in text and "certificate expired" not in text
        assert "judged at the end" in text and "wrong" not in text
        # The events: not the inject, not what it did, not the verdict.
        seen = app.world.events_since(0)
        hidden = app.world.session.drill.hidden_seqs
        assert hidden and not any(a <= ev.seq <= b for ev in seen for a, b in hidden)
        assert not [ev for ev in seen if ev.type.startswith(("drill.inject", "chaos.injected",
                                                             "drill.root_cause."))]
        assert "drill.message" in {ev.type for ev in seen}
        # Participant commands do reach the drill.
        await type_line(pilot, "remedy redeploy-edge-config")
        await tick(pilot)
        assert "drill.remedy" in drill_events(app)


async def test_participant_sees_the_verdict_after_the_end(drill_app):
    session = session_at()
    session.submit(C.EndDrill(), by="facilitator")
    session.advance(1)
    app = drill_app(session=session)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        app.draw(force=True)
        await pilot.pause()
        assert "wrong" in text_of(app)
        assert "certificate expired" not in text_of(app)  # the true cause stays hidden
        assert isinstance(app.screen, DebriefScreen)  # the score, for everyone, at the end


async def test_a_root_cause_is_declared_in_free_text_from_the_pane(drill_app):
    """The line the issue's participant typed, and one with an apostrophe (no shell quoting)."""
    app = drill_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await type_line(pilot, "declare-root-cause the edge's TLS cert expired")
        await type_line(pilot, ":declare-root-cause bad release v2.14.5 raised the error rate")
        await tick(pilot)
        texts = [d["text"] for d in app.world.session.drill.declarations]
        assert texts[-2:] == ["the edge's TLS cert expired",
                              "bad release v2.14.5 raised the error rate"]
        assert [d["correct"] for d in app.world.session.drill.declarations][-2:] == [True, False]
        assert "too many arguments" not in " ".join(n.message for n in app._notifications)
        assert "judged at the end" in text_of(app)


def test_the_pane_shows_the_brief_never_the_cause(drill_app):
    from devsim_tui.drill.brief import brief

    session = session_at()
    lines = drill_lines(session.drill.state(), facilitator=False)
    text = "\n".join("".join(p for p, _ in line) for line in lines)
    b = brief(session.loaded)
    assert b["situation"].split(".")[0] in text and "Brief" in text
    assert "Operator actions" in text and "flush-cdn-cache" in text
    assert not session.loaded.scenario.root_cause.judge(text.replace("the HPA is broken", ""))


def finished_session() -> DrillSession:
    """The certificate drill played to the end by its answer key (score, charts, timeline)."""
    from devsim_tui.drill.runner import Responder, load_responder, run_headless
    from helpers import REPO

    session = DrillSession(load_scenario(resolve(SCENARIO)), seed=SEED)
    run_headless(session, Responder(load_responder(
        REPO / "drills" / "responders" / f"{SCENARIO}.yaml"), session))
    return session


def test_debrief_view(snap_compare, drill_app, settle):
    assert snap_compare(drill_app(facilitator=True, session=finished_session()),
                        terminal_size=(140, 60), run_before=settle)


def test_debrief_lines_mark_the_phases_and_what_helped():
    from devsim_tui.drill.score import score_session

    result = score_session(finished_session())
    lines = debrief_lines(result, 100)
    text = "\n".join("".join(p for p, _ in line) for line in lines)
    for part in ("INJECT cert-expires", "DETECTED by CertificateExpiringSoon", "ACKNOWLEDGED",
                 "MITIGATED", "RESOLVED", "What helped", "remedy redeploy-edge-config",
                 "error_rate 99.", "root cause: named at", "error rate"):
        assert part in text, part
    marks = [line for line in lines if line and line[-1][1] == "mark"
             and set(line[-1][0]) <= set(" IDAMR*")]
    assert marks and all({"I", "D"} <= set(m[-1][0]) for m in marks)


async def test_help_palette_and_completion_list_the_drill_commands(drill_app):
    app = drill_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        names = app._command_names()
        assert {"remedy", "declare-root-cause"} <= set(names) and "hint" not in names
        assert app._arguments("remedy") == ["redeploy-edge-config", "flush-cdn-cache",
                                            "restart-load-balancer"]
        titles = [e[0] for e in app.palette_entries()]
        assert "remedy redeploy-edge-config" in titles and "hint" not in titles
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "remedy" in app.screen.extra_commands
        assert "hint" not in app.screen.extra_commands
    fac = drill_app(facilitator=True)
    async with fac.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert {"hint", "inject-next", "skip-inject", "end-drill"} <= set(fac._command_names())


def test_the_main_help_lists_no_drill_commands():
    usages = [row[0] for row in command_rows({})]
    assert not [u for u in usages if u.split()[0].lstrip(":") in C.DRILL_COMMANDS]


def test_pure_parts():
    session = session_at()
    state = session.drill.state()
    text = "".join(part for line in drill_lines(state, False) for part, _ in line)
    assert "T+05:30 of 30:00" in text and "24:30 left" in text
    assert "customer support" in text and "1 revealed · 1 left" in text
    fac = session.drill.facilitator_state()
    text = "".join(part for line in drill_lines(fac, True) for part, _ in line)
    assert "[cert-expires] fired 02:00" in text and "wrong" in text
    events = session.events_since(0)
    kept = participant_events(events, fac["hidden_seqs"], ended=False)
    assert len(kept) < len(events)
    masked = [ev for ev in kept if ev.type == "drill.root_cause"]
    assert masked and "judged at the end" in masked[0].message


async def test_drill_pane_focus_and_zoom(drill_app):
    app = drill_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("7")
        assert isinstance(app.focused, DrillPanel)
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is not None


# ---------------------------------------------------------------------- replay


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """The certificate drill run headless with its answer key, recorded."""
    from devsim_tui.drill.recording import read
    from devsim_tui.drill.runner import Responder, load_responder, run_headless

    path = tmp_path_factory.mktemp("rec") / "tls.rec"
    session = DrillSession(load_scenario(resolve(SCENARIO)), seed=SEED, record=path)
    run_headless(session, Responder(load_responder(
        f"drills/responders/{SCENARIO}.yaml"), session), "max")
    return read(path)


def headless_at(rec, tick: int):
    """The same recording re-run headless (as `replay --headless` does) up to `tick`."""
    from devsim_tui.drill.runner import session_from_recording

    session = session_from_recording(rec)
    for tk in rec.ticks[:tick]:
        for c in tk.get("c", ()):
            session.submit(C.build(c["name"], c["args"]), c.get("by"))
        session.step()
    return session


def same_world(app, session) -> None:
    a, b = app.world.snapshot(), session.snapshot()
    assert (a.tick, a.t) == (b.tick, b.t)
    assert a.agg == b.agg
    ours = [(e.seq, e.type, e.message) for e in app.world.events_since(0)]
    assert ours == [(e.seq, e.type, e.message) for e in session.events_since(0)]
    assert app.world.drill_state() == session.drill.facilitator_state()


@pytest.fixture
def replay_app(config_home, recording):
    from devsim_tui.ui.replay import create_replay_app

    app = create_replay_app(recording, paused=True, theme="control-room",
                            config_dir=config_home / "devsim-tui")
    app.animation_level = "none"
    return app


async def seek(pilot, keys_or_line) -> None:
    if isinstance(keys_or_line, str):
        await type_line(pilot, keys_or_line)
    else:
        await pilot.press(*keys_or_line)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()
    assert pilot.app.seeking is None


async def test_replay_seek_lands_on_the_recorded_tick(replay_app, recording):
    app = replay_app
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        assert app.world.tick == 0 and app.world.paused
        await seek(pilot, "seek 6m")
        assert app.world.tick == 360
        same_world(app, headless_at(recording, 360))
        await seek(pilot, "seek +1m")
        assert app.world.tick == 420
        # one key per seek: a key pressed while a seek is still running is not queued
        await seek(pilot, ["left_square_bracket"])
        await seek(pilot, ["left_square_bracket"])
        assert app.world.tick == 300
        same_world(app, headless_at(recording, 300))
        await seek(pilot, "seek end")
        assert app.world.tick == recording.ticks[-1]["n"] and app.world.finished
        same_world(app, headless_at(recording, app.world.tick))
        await seek(pilot, "seek start")
        assert app.world.tick == 0


async def test_replay_is_read_only_but_its_clock_moves(replay_app):
    app = replay_app
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await seek(pilot, "seek 5m")
        before = list(app.world.session.commands)
        for line in ("scale 3", "end-drill", "remedy redeploy-edge-config", "ack-alert all"):
            await type_line(pilot, line)
        await pilot.press("a", "b", "h", "E")
        await pilot.pause()
        assert app.world.session.commands == before
        assert "replay (read-only" in list(app._notifications)[-1].message
        await pilot.press("full_stop")
        await pilot.pause()
        assert app.world.tick == 301
        speed = app.world.speed
        await pilot.press("plus")
        assert app.world.speed == next_speed(speed, +1)
        await pilot.press("space")
        assert not app.world.paused and not app.world.session.engine.paused


def test_a_participant_world_hides_the_injected_faults():
    """The operations pane and the fault badges come from the snapshot's chaos state: a
    participant's copy leaves out what the injects started (the facilitator's keeps it)."""
    from devsim_tui.ui.drill_panel import DrillWorld

    session = session_at()
    injected = set(session.drill.injected_faults())
    assert injected
    participant, facilitator = DrillWorld(session), DrillWorld(session, facilitator=True)
    seen = {f["id"] for f in participant.snapshot().extensions["ChaosController"]["active"]}
    assert not seen & injected
    every = {f["id"] for f in facilitator.snapshot().extensions["ChaosController"]["active"]}
    assert injected <= every
    assert participant.snapshot() is participant.snapshot()  # one copy per snapshot
    assert participant.snapshot().agg == facilitator.snapshot().agg


async def test_a_participant_cannot_start_or_stop_faults_or_ship_bad_releases(drill_app):
    app = drill_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        before = list(app.world.session.commands)
        for line in ("chaos cpu-hog 2 5m", "chaos-stop all", "deploy bad:latency"):
            await type_line(pilot, line)
            assert "the facilitator's" in list(app._notifications)[-1].message
        await pilot.press("exclamation_mark")  # the emergency stop
        await pilot.pause()
        assert app.world.session.commands == before
        await type_line(pilot, "scale 5")
        assert app.world.session.commands[-1]["name"] == "scale"


async def test_the_facilitator_may_inject_more_faults(drill_app):
    app = drill_app(facilitator=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await type_line(pilot, "chaos cpu-hog 2 5m")
        await pilot.press("y")  # it hurts: asked first
        await pilot.pause()
        assert app.world.session.commands[-1]["name"] == "chaos"
