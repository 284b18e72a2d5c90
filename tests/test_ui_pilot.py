"""Behaviour of the control room, asserted on what reaches the engine (commands and events).

Keys, the command palette and the `:` line must all end up as the same engine commands; the
checks read the recorded commands and the engine's own `command.applied` events.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from pilot import applied, open_screen, run_palette, type_line
import yaml

from devsim_tui.sim import commands as C
from devsim_tui.ui.confirm import ConfirmScreen
from devsim_tui.ui.detail import DetailScreen
from devsim_tui.ui.help import HelpScreen, binding_rows, command_rows, key_label
from devsim_tui.ui.servers import ServersTable


async def test_space_pauses_and_resumes_through_the_engine(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.world.paused
        await pilot.press("space")
        await pilot.pause()
        assert not app.world.paused
        await pilot.press("space")
        await pilot.pause()
        assert app.world.paused
        assert [a.get("paused") for a in applied(app, "pause")][-2:] == [None, None]


async def test_plus_and_minus_walk_the_speed_ladder(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        seen = []
        for key in ["plus", "plus", "plus", "plus", "minus", "minus"]:
            await pilot.press(key)
            await pilot.pause()
            seen.append(app.world.speed)
        assert seen == [10.0, 60.0, "max", "max", 60.0, 10.0]
        assert [a["speed"] for a in applied(app, "set-speed")] == seen


async def test_full_stop_steps_one_tick_only_when_paused(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tick = app.world.snapshot().tick
        await pilot.press("full_stop")
        await pilot.pause()
        assert app.world.snapshot().tick == tick + 1
        header = app.query_one("#status").visual
        assert header is not None


async def test_command_line_reaches_the_engine(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_line(pilot, "scale 20")
        await type_line(pilot, "speed 60")
        app.world.advance(1)
        assert applied(app, "scale") == [{"replicas": 20}]
        assert applied(app, "set-speed")[-1] == {"speed": 60.0}
        assert isinstance(app.world.submitted[-2], C.Scale)


async def test_bad_command_line_is_rejected_by_the_engine(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_line(pilot, "sacle 3")
        rejected = [ev for ev in app.world.events_since(0) if ev.type == "command.rejected"]
        assert rejected and "did you mean 'scale'" in rejected[-1].message
        assert app.world.lines == ["sacle 3"]


@pytest.mark.parametrize("answer,sent", [("y", True), ("n", False), ("escape", False)])
async def test_failover_asks_first(make_app, settle, answer, sent):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_line(pilot, "failover")
        assert isinstance(app.screen, ConfirmScreen)
        assert not any(isinstance(c, C.Failover) for c in app.world.submitted)
        await pilot.press(answer)
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any(isinstance(c, C.Failover) for c in app.world.submitted) == sent


async def test_crash_key_and_scale_to_zero_ask_first(make_app, settle):
    app = make_app("development")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        await type_line(pilot, "scale 0")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        app.world.advance(1)
        assert applied(app, "crash-node") == [{"node": "primary"}]
        assert applied(app, "scale") == [{"replicas": 0}]


async def test_no_confirm_sends_at_once(make_app, settle):
    app = make_app(no_confirm=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        app.world.advance(1)
        assert applied(app, "failover") == [{}]


async def test_keys_for_backup_ack_and_scale(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        desired = app.world.snapshot().agg.desired
        await pilot.press("b", "a", "right_square_bracket")
        await pilot.pause()
        kinds = [type(c) for c in app.world.submitted if not isinstance(c, C.Pause)]
        assert kinds == [C.Backup, C.AckAlert, C.Scale]
        assert app.world.submitted[-1].replicas == desired + 1


async def test_restart_targets_the_selected_database_node(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2", "down", "r")
        await pilot.pause()
        assert app.world.submitted[-1] == C.RestartNode(node="pg-2")


async def test_palette_entries_reach_the_engine(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await run_palette(pilot, "backup (primary)")
        assert isinstance(app.world.submitted[-1], C.Backup)
        assert app.world.submitted[-1].node is None


async def test_palette_lists_commands_and_ui_actions(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = [t for t, _, _ in app.palette_entries()]
        for expected in ["speed max", "failover (best replica)", "crash-node primary",
                         "restart-node pg-2", "ack-alert all", "theme amber",
                         "metrics window 24h", "focus events pane", "zoom pane", "quit"]:
            assert expected in titles
        # Every palette callback runs the same path: running "speed 10" sets the speed.
        dict((t, cb) for t, _, cb in app.palette_entries())["speed 10"]()
        await pilot.pause()
        assert app.world.speed == 10.0


async def test_theme_command_switches_and_remembers(make_app, settle, config_home):
    app = make_app(theme=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.theme == "control-room"
        await type_line(pilot, "theme amber")
        assert app.theme == "amber"
        saved = yaml.safe_load((config_home / "devsim-tui" / "config.yaml").read_text())
        assert saved["theme"] == "amber"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme != "amber"
    again = make_app(theme=None)
    async with again.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert again.theme == app.theme  # remembered across runs


async def test_filter_regex_and_inverse(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one(ServersTable)
        assert table.row_count == 16
        await pilot.press("slash", *"00[2-4]$")
        await pilot.pause()
        assert [r.key.value for r in table.ordered_rows] == ["web-002", "web-003", "web-004"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 16
        await type_line(pilot, "filter !1$")
        assert table.row_count == 14  # web-001 and web-011 hidden
        assert "web-001" not in [r.key.value for r in table.ordered_rows]


async def test_sort_keys_and_header_click(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one(ServersTable)
        await pilot.press("O")
        await pilot.pause()
        assert table.ordered_rows[0].key.value == "web-016"
        await pilot.click("ServersTable", offset=(35, 0))  # the REGION header
        await pilot.pause()
        assert table.sort_key == "region"
        regions = [str(table.get_row(r.key)[3]) for r in table.ordered_rows]
        assert regions == sorted(regions)


async def test_digits_focus_and_z_maximises(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for key, wid in [("2", "db-table"), ("3", "metrics"), ("4", "alerts"), ("5", "events"),
                         ("1", "servers")]:
            await pilot.press(key)
            await pilot.pause()
            assert app.focused.id == wid
        await pilot.press("3", "z")
        await pilot.pause()
        assert app.screen.maximized.id == "metrics-pane"
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is None


async def test_enter_opens_detail_and_escape_returns(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.component == "web-002"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DetailScreen)


async def test_help_lists_every_binding_and_command(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(pilot)
        groups = (await open_screen(pilot, HelpScreen, "question_mark")).groups
    rows = binding_rows(groups)
    described = {desc for _, desc, _ in rows}
    for b in type(app).BINDINGS:
        assert b.description in described
    usages = " ".join(u for u, _, _ in command_rows({}))
    for name in C.COMMANDS:
        assert f":{name}" in usages
    hurting = {u.split()[0] for u, _, flag in command_rows({}) if flag == "confirm"}
    assert {":failover", ":crash-node", ":scale"} <= hurting
    assert key_label("question_mark") == "?"


async def test_completion_suggests_commands_and_arguments(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        suggester = app.query_one("#command-line").suggester
        assert await suggester.get_suggestion("fai") == "failover"
        assert await suggester.get_suggestion("theme am") == "theme amber"
        assert await suggester.get_suggestion("restart-node pg-") == "restart-node pg-1"
        assert await suggester.get_suggestion("crash p") == "crash primary"
        assert await suggester.get_suggestion("window 2") == "window 24h"


async def test_driver_runs_at_speed_and_keys_stay_responsive_at_max(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        start = app.world.snapshot().tick
        frames = app.frames
        await type_line(pilot, "speed 60")
        t0 = time.perf_counter()
        await pilot.press("space")
        await asyncio.sleep(1.0)
        moved = app.world.snapshot().tick - start
        wall = time.perf_counter() - t0
        assert 0.6 * 60 * wall <= moved <= 60 * wall + 2  # paced to the speed, not faster
        # The refresh rate is capped at 5 Hz (plus the frames forced by the two commands).
        assert app.frames - frames <= 5 * wall + 4
        await type_line(pilot, "speed max")
        await asyncio.sleep(0.5)
        await pilot.press("space")
        await pilot.pause()
        assert app.world.paused
        tick = app.world.snapshot().tick
        await asyncio.sleep(0.2)
        assert app.world.snapshot().tick == tick
        assert tick - start > 500


async def test_q_quits(make_app, settle):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_a_long_step_runs_in_slices_and_keys_stay_live(make_app, settle):
    """`:step 4000` must not freeze the screen: it runs in slices of the loop, a key pressed
    meanwhile is handled at once, and every tick is run in the end. The driver's clock is
    injected: every reading moves it a whole second, so each slice runs exactly one chunk
    whatever the machine's load (the slicing itself is tested in test_clock.py)."""
    from devsim_tui.ui.clock import ClockDriver

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        readings = iter(range(10**9))
        app.clock = ClockDriver(now=lambda: float(next(readings)))
        app.clock.chunk = 100
        start = app.world.snapshot().tick
        app.step(4000)  # the first slice runs here, synchronously: one chunk
        assert app.world.snapshot().tick == start + 100
        assert app.clock.step_left == 3900
        window = app.window
        await pilot.press("w")  # handled between slices
        assert app.window != window
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while app.clock.step_left or app._step_timer is not None:
            assert loop.time() < deadline
            await pilot.pause(0.05)
        assert app.world.snapshot().tick == start + 4000 and app.world.paused
