"""Commands from the screen: validated before any confirmation, every refusal told with a toast
(paused or not), confirmations that name their target and show usage text as typed."""

from __future__ import annotations

import pytest
from pilot import applied, open_screen, type_line

from devsim_tui.sim import commands as C
from devsim_tui.ui.confirm import ConfirmScreen


def _toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_failover_to_a_missing_node_is_refused_before_any_confirmation(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_line(pilot, "failover pg-9")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("pg-9" in m and "no database node" in m for m in _toasts(app))
        log = "".join(s.text for s in app.query_one("#events").lines)
        assert "pg-9" in log
        assert not applied(app, "failover")


@pytest.mark.parametrize("line,told", [
    ("scale 99", "maxReplicas"),  # refused at once by the screen's check
    ("scael 3", "scael"),  # a bad line: the engine's rejection, as a toast
    ("backup", "queued"),  # accepted, and said to wait for the next tick
], ids=["above-max", "bad-line", "queued"])
async def test_every_command_is_told_while_paused(make_app, settle, line, told):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.world.paused
        await type_line(pilot, line)
        await pilot.pause()
        assert any(told in m for m in _toasts(app)), _toasts(app)


async def test_engine_rejections_become_toasts(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.world.submit(C.Failover(target="pg-1"))  # the primary: the engine refuses it
        app.world.advance(1)
        app.draw(force=True)
        await pilot.pause()
        assert any("failover" in m for m in _toasts(app))


async def test_chaos_confirmation_shows_brackets_as_typed(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.push_screen(ConfirmScreen("Really chaos [SCOPE] [DURATION] [INTENSITY]?",
                                      "usage: chaos TYPE [SCOPE]"))
        await pilot.pause()
        question = str(app.screen.query_one("#confirm-question").render())
        detail = str(app.screen.query_one("#confirm-detail").render())
        assert "[SCOPE] [DURATION] [INTENSITY]" in question
        assert "[SCOPE]" in detail


async def test_rollback_names_its_target_and_skips_a_release_that_failed(make_app, settle,
                                                                          world_factory):
    # A bad release the engine rolls back by itself: its revision stays in the history.
    world = world_factory("production", ticks=20, commands=[C.build("deploy", {
        "version": "bad:error-rate"})], after=900)
    release = world.snapshot().extensions["ReleaseController"]
    failed = [r for r in release["revisions"] if r["failed"]]
    assert failed, release["revisions"]
    app = make_app(world=world)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        question = (await open_screen(pilot, ConfirmScreen, "R")).question
        assert "roll back to" in question and "revision" in question
        assert failed[-1]["version"] not in question
        await pilot.press("n")
        await pilot.pause()
        # Named explicitly, a failed revision is still allowed.
        await type_line(pilot, f"rollback {failed[-1]['revision']}")
        assert isinstance(app.screen, ConfirmScreen)
        assert failed[-1]["version"] in app.screen.question


async def test_toasts_show_brackets_as_written(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_line(pilot, "deploy [bold]x")  # not a version name: echoed back
        await pilot.pause()
        assert any("[bold]x" in m for m in _toasts(app)), _toasts(app)
        assert all(not n.markup for n in app._notifications)


async def test_palette_screenshot_goes_to_xdg_or_cwd_and_says_where(make_app, settle, tmp_path,
                                                                    monkeypatch):
    monkeypatch.delenv("XDG_PICTURES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        shot = next(c for c in app.get_system_commands(app.screen) if c.title == "Screenshot")
        shot.callback()
        await pilot.pause(0.3)
        await pilot.pause()
        saved = list(tmp_path.glob("*.svg"))
        assert len(saved) == 1
        assert any(str(saved[0]) in m for m in _toasts(app))
        pictures = tmp_path / "pictures"
        pictures.mkdir()
        monkeypatch.setenv("XDG_PICTURES_DIR", str(pictures))
        path = app.save_screenshot_here()
        assert path.startswith(str(pictures))


async def test_palette_theme_picker_offers_the_app_themes_and_remembers(make_app, settle,
                                                                        config_home):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.action_change_theme()
        await pilot.pause()
        await pilot.press(*"amber")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert app.theme == "amber"
        remembered = app._theme_api.remembered_theme(app.config_dir)
        assert remembered == "amber"


async def test_slash_filters_the_focused_table_and_esc_clears_after_enter(make_app, settle,
                                                                          world_factory):
    world = world_factory("production", ticks=100, commands=[C.parse_line("chaos cpu-hog")],
                          after=400)
    app = make_app(world=world)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        alerts = app.query_one("#alerts")
        names = {alerts.get_row(r.key)[2] for r in alerts.ordered_rows}
        assert len(names) >= 2, names
        keep = sorted(names)[0]
        await pilot.press("4", "slash", *keep, "enter")
        await pilot.pause()
        assert app.focused is alerts
        assert {alerts.get_row(r.key)[2] for r in alerts.ordered_rows} == {keep}
        await pilot.press("escape")  # after enter: esc on the table clears the filter
        await pilot.pause()
        assert alerts.filter_text == "" and alerts.row_count >= 2
        # The database and the events filter the same way.
        await pilot.press("2", "slash", *"pg-2", "enter")
        await pilot.pause()
        db = app.query_one("#db-table")
        assert [r.key.value for r in db.ordered_rows] == ["pg-2"]
        await pilot.press("escape")
        await pilot.pause()
        assert db.row_count >= 3
        await pilot.press("5", "slash", *"chaos", "enter")
        await pilot.pause()
        log = app.query_one("#events")
        lines = [s.text for s in log.lines if s.text.strip()]
        assert lines and all("chaos" in line or not line.startswith("d1") for line in lines)
        await pilot.press("escape")
        await pilot.pause()
        assert log.filter_text == ""
        # The servers' filter too: esc after enter clears it (it did not).
        await pilot.press("1", "slash", *"web-00[12]", "enter")
        await pilot.pause()
        assert app.query_one("#servers").row_count == 2
        await pilot.press("escape")
        await pilot.pause()
        assert app.query_one("#servers").row_count > 2


async def test_help_lists_the_focused_panes_keys_first(make_app, settle):
    from devsim_tui.ui.help import HelpScreen, binding_rows

    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(pilot)
        for digit, pane, key_action in (("4", "alerts", "ack"), ("2", "database", "failover"),
                                        ("6", "operations", "rollback")):
            await pilot.press(digit, "question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            where, bindings = app.screen.groups[0]
            assert where == f"{pane} pane"
            assert key_action in {b.action for b in bindings}
            rows = binding_rows(app.screen.groups)
            assert rows[0][2] == f"{pane} pane"
            # Every key is still listed, once.
            described = [desc for _k, desc, _w in rows]
            for b in type(app).BINDINGS:
                assert b.description in described
            await pilot.press("escape")
            await pilot.pause()


async def test_the_command_line_lists_its_candidates(make_app, settle):
    from devsim_tui.ui.commandline import Candidates

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"s")
        await pilot.pause()
        box = app.query_one(Candidates)
        shown = str(box.render())
        assert box.has_class("-open") and box.region.height == 1
        for name in ("scale", "set-speed", "silence", "step"):
            assert name in shown, shown
        await pilot.press(*"cale ", "backspace", " ")
        await pilot.press("escape")
        await pilot.pause()
        assert not box.has_class("-open")
        await pilot.press("colon", *"restart-node ")
        await pilot.pause()
        assert "pg-1" in str(box.render()) and "pg-3" in str(box.render())
