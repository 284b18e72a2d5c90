"""The control room wired to the engine's newer features: releases, chaos, alerting, detector.

Behaviour is asserted on what reaches the engine (`command.applied` events, recorded commands);
the snapshots freeze what the eye checks: the operations pane with a scripted fault and a bad
deploy, and the detector's marks on the metrics, each paused at a fixed tick.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from pilot import applied, run_palette, type_line

from devsim_tui.sim import commands as C
from devsim_tui.ui.alerts import AlertsTable, alert_row, silenced_for, where
from devsim_tui.ui.confirm import ConfirmScreen
from devsim_tui.ui.help import HelpScreen, binding_rows, command_rows
from devsim_tui.ui.metrics import ANOMALY_MARK, MetricsPane, anomalous_series
from devsim_tui.ui.operations import OperationsPane, fault_row, release_lines

FAULT = "chaos cpu-hog 2 5m 0.7"
BAD_DEPLOY = "deploy bad:error-rate"


def scripted(world_factory, profile: str = "production", after: int = 20, ticks: int = 300):
    """A world with one chaos fault and a bad release in progress, stopped `after` ticks later."""
    world = world_factory(profile, ticks=ticks,
                          commands=[C.parse_line(FAULT), C.parse_line(BAD_DEPLOY)], after=after)
    return world


async def answer(pilot, key: str) -> None:
    assert isinstance(pilot.app.screen, ConfirmScreen)
    await pilot.press(key)
    await pilot.pause()


# ---------------------------------------------------------------------- snapshots


def test_operations_pane_with_fault_and_bad_deploy(snap_compare, make_app, settle,
                                                   world_factory):
    app = make_app(world=scripted(world_factory))
    assert snap_compare(app, terminal_size=(160, 50), run_before=settle)


def test_operations_pane_80x24_canary(snap_compare, make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory, "experimental"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_operations_pane_maximised(snap_compare, make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory, "experimental"))
    assert snap_compare(app, terminal_size=(100, 30), press=["6", "z"], run_before=settle)


def test_detector_marks_metrics_and_alert(snap_compare, make_app, settle, world_factory):
    # Past the detector's warm-up (2250 s), 45 ticks (three detector updates) into a latency
    # fault: p99 is flagged (a fleet whose servers differ is noisier: the first update, 15 ticks
    # in, does not yet flag it; the episode is confirmed on the update after the first flag).
    world = world_factory("experimental", ticks=2700,
                          commands=[C.parse_line("chaos network-latency fleet 10m 400")],
                          after=45)
    assert snap_compare(make_app(world=world), terminal_size=(160, 50), run_before=settle)


# ---------------------------------------------------------------------- pure parts


def test_release_lines_and_fault_rows(world_factory):
    snap = scripted(world_factory, "experimental").snapshot()
    release = snap.extensions["ReleaseController"]
    text = ["".join(part for part, _ in line) for line in release_lines(release, str)]
    # The status comes right after what runs, so a narrow pane cuts the method, not it.
    assert text[0].startswith(f"ml-api v3.0.0-rc.2 → v3.0.0-rc.3  {release['status']}  canary")
    assert "step " in text[1] and "weight" in text[1] and "analysis" in text[1]
    # Newest revision first, so a narrow pane cuts the oldest.
    newest = release["revisions"][-1]
    assert text[-1].startswith(f"revisions {newest['revision']} {newest['version']} · ")
    fault = snap.extensions["ChaosController"]["active"][0]
    cells = [c for c, _ in fault_row(fault)]
    assert cells[:4] == ["F1", "cpu-hog", "2", "0.7"] and cells[4] == "4m40s"
    assert release_lines(None, str) == [[("no release controller in this estate", "dim")]]


def test_alert_rows_show_instance_silence_and_detector(world_factory):
    snap = scripted(world_factory).snapshot()
    alert = snap.alerts[0]
    muted = dataclasses.replace(alert, silenced_until=snap.t + 600,
                                labels=alert.labels + (("instance", "web-003"),))
    cells = [c for c, _ in alert_row(muted, snap.t)]
    assert cells[3] == "web-003" and cells[6] == "10m"
    assert where(muted) == "web-003" and silenced_for(muted, snap.t + 700) is None
    found = dataclasses.replace(alert, source="detector", summary="p99 unusual")
    assert alert_row(found, snap.t)[-1][0] == "◆ detector: p99 unusual"


def test_anomalous_series_maps_signals_to_estate_series(world_factory):
    snap = world_factory("experimental", ticks=10).snapshot()
    det = dict(snap.extensions["AnomalyController"])
    det["anomalous"] = {"ml-api.p99": 0.8, "ml-api.max_server_p99": 0.9, "pg-1.cpu": 0.7,
                        "cache.hit_ratio": 0.6}
    flagged = anomalous_series(dataclasses.replace(
        snap, extensions={**snap.extensions, "AnomalyController": det}))
    assert flagged == {"p99_ms": 0.9, "cache_hit_ratio": 0.6}  # the node's CPU is not the fleet's


# ---------------------------------------------------------------------- keys and commands


async def test_operations_pane_shows_rollout_and_faults(make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        pane = app.query_one(OperationsPane)
        table = pane.query_one("#faults-table")
        assert [r.key.value for r in table.ordered_rows] == ["F1"]
        assert app.query_one("#operations-pane").border_subtitle == \
            "1 fault active · Progressing"
        await pilot.press("6")
        await pilot.pause()
        assert app.focused is table and pane.selected_fault == "F1"


async def test_chaos_key_prefills_and_completes_then_asks(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause()
        line = app.query_one("#command-line")
        assert line.value == "chaos "
        await pilot.press(*"cpu", "tab")
        await pilot.pause()
        assert line.value == "chaos cpu-hog"
        await pilot.press("space", "tab")  # the default scope
        await pilot.pause()
        assert line.value == "chaos cpu-hog 1"
        await pilot.press("space", "tab", "space", "tab", "enter")  # default duration, intensity
        await pilot.pause()
        await answer(pilot, "y")
        app.world.advance(1)
        assert applied(app, "chaos") == [{"type": "cpu-hog", "scope": "1", "duration": "5m",
                                          "intensity": 0.6}]


async def test_completion_for_chaos_deploy_and_faults(make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        s = app.query_one("#command-line").suggester
        assert await s.get_suggestion("chaos db-p") == "chaos db-partition"
        assert await s.get_suggestion("chaos db-partition ") == "chaos db-partition db"
        assert await s.get_suggestion("chaos region-outage eu") == \
            "chaos region-outage eu-west-1a"
        assert await s.get_suggestion("chaos cpu-hog 25% 3") == "chaos cpu-hog 25% 30m"
        assert await s.get_suggestion("deploy bad:l") == "deploy bad:latency"
        assert await s.get_suggestion("deploy v2.14.4") is None  # already complete
        assert await s.get_suggestion("chaos-stop F") == "chaos-stop F1"
        assert await s.get_suggestion("rollback v2.14.") == "rollback v2.14.3"
        assert await s.get_suggestion("silence Lat") == "silence LatencyP99AboveSLO"
        assert await s.get_suggestion("silence A1 3") == "silence A1 30m"


@pytest.mark.parametrize("line,asks", [("deploy bad:latency", True), ("deploy v9.0.0", False)])
async def test_deploy_key_asks_only_for_a_bad_release(make_app, settle, line, asks):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await pilot.pause()
        assert app.query_one("#command-line").value == "deploy "
        await pilot.press(*line.removeprefix("deploy "), "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) == asks
        if asks:
            await answer(pilot, "y")
        app.world.advance(1)
        assert applied(app, "deploy") == [{"version": line.split()[1]}]


async def test_rollback_abort_and_emergency_stop_ask_first(make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory, "experimental"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("P")  # promote does not hurt: sent at once
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("A")
        await pilot.pause()
        await answer(pilot, "n")
        await pilot.press("exclamation_mark")
        await pilot.pause()
        await answer(pilot, "y")
        app.world.advance(1)
        assert applied(app, "promote") == [{"full": False}]
        assert applied(app, "abort") == []
        assert applied(app, "chaos-stop") == [{"id": "all"}]
        assert app.world.snapshot().extensions["ChaosController"]["active"] == []
        await pilot.press("R")
        await pilot.pause()
        await answer(pilot, "y")
        app.world.advance(1)
        assert applied(app, "rollback") == [{}]


async def test_no_confirm_sends_chaos_and_bad_deploys_at_once(make_app, settle):
    app = make_app(no_confirm=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_line(pilot, FAULT)
        await type_line(pilot, BAD_DEPLOY)
        await pilot.press("exclamation_mark")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        app.world.advance(1)
        assert [c.name for c in app.world.submitted if c.name != "pause"] == \
            ["chaos", "deploy", "chaos-stop"]
        assert applied(app, "chaos-stop") == [{"id": "all"}]


async def test_s_silences_the_selected_alert_then_unsilences(make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory, after=60))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("s")  # nothing selected: a hint, no command
        await pilot.pause()
        assert not any(isinstance(c, C.Silence) for c in app.world.submitted)
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one(AlertsTable)
        key = table.selected_key
        await pilot.press("s")
        await pilot.pause()
        app.world.advance(1)
        assert applied(app, "silence") == [{"alert": key, "duration": "1h"}]
        app.draw(force=True)
        alert = next(a for a in app.world.snapshot().alerts if a.id == key)
        assert alert.silenced_until is not None
        await pilot.press("s")
        await pilot.pause()
        app.world.advance(1)
        assert applied(app, "unsilence") == [{"alert": key}]


async def test_palette_has_release_chaos_and_silence_entries(make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory, "experimental"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        entries = {t: cb for t, _, cb in app.palette_entries()}
        for title in ["deploy a version…", "deploy bad:memory-leak",
                      "rollback (previous revision)", "promote full", "chaos: inject a fault…", "chaos cache-flush",
                      "chaos-stop all (emergency stop)", "chaos-stop F1 (cpu-hog)",
                      "unsilence all", "abort", "silence…"]:
            assert title in entries
        assert not any(t.startswith(("deploy pg-", "silence pg-", "remedy pg-"))
                       for t in entries)
        entries["chaos-stop F1 (cpu-hog)"]()
        await pilot.pause()
        entries["promote full"]()
        await pilot.pause()
        app.world.advance(1)
        assert applied(app, "chaos-stop") == [{"id": "F1"}]
        assert applied(app, "promote") == [{"full": True}]


async def test_palette_search_runs_an_operations_entry(make_app, settle, world_factory):
    app = make_app(world=scripted(world_factory), no_confirm=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await run_palette(pilot, "chaos-stop all")
        app.world.advance(1)
        assert applied(app, "chaos-stop") == [{"id": "all"}]


async def test_help_lists_the_new_keys_and_confirmations(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = {k for k, _, _ in binding_rows(app.screen.groups)}
    assert {"d", "R", "P", "A", "c", "!", "s", "6"} <= keys
    flags = {u.split()[0]: flag for u, _, flag in command_rows({})}
    assert flags[":chaos"] == flags[":deploy"] == flags[":chaos-stop"] == "confirm"


async def test_notifications_become_toasts(make_app, settle, world_factory):
    # Experimental routes alerts to the AI-analysis channel; the bad release makes them fire.
    app = make_app(world=scripted(world_factory, "experimental", after=0))
    shown: list[tuple[str, str, str]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        original = app.notify

        def record(message, *, title="", severity="information", **kw):
            shown.append((title, severity, message))
            return original(message, title=title, severity=severity, **kw)

        app.notify = record
        for _ in range(30):
            app.world.advance(20)
            app.draw(force=True)
            if shown:
                break
        await pilot.pause()
    assert shown and shown[0][0] == "AI analysis"
    sent = [ev for ev in app.world.events_since(0) if ev.type == "notify.ai-analysis"]
    # Several notifications can land in one frame; what is toasted is what was sent.
    assert sent and shown[0][2] in {ev.message for ev in sent}


async def test_detector_marks_the_flagged_metric(make_app, settle, world_factory):
    # Armed from the first tick (warm start): a fleet-wide latency fault at minute 1, looked
    # at three detector updates later (flagged on the second, confirmed on the third: the
    # one-sided p99 is scored against its two-sided usual surprise, docs/detector.md).
    world = world_factory("experimental", ticks=60,
                          commands=[C.parse_line("chaos network-latency fleet 10m 400")],
                          after=45)
    app = make_app(world=world)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        lines = {line.label: line.value for line in app.query_one(MetricsPane)._lines}
    assert lines["p99"].startswith(ANOMALY_MARK)
    assert not lines["CPU"].startswith(ANOMALY_MARK)


# ---------------------------------------------------------------------- external links


def io_app(world, config_home, io):
    from devsim_tui.ui.app import create_app

    app = create_app(world, theme="control-room", paused=True, io=io,
                     config_dir=config_home / "devsim-tui")
    app.animation_level = "none"
    return app


def event_log_text(app) -> str:
    from devsim_tui.ui.events import EventLog

    return "\n".join(strip.text for strip in app.query_one(EventLog).lines)


async def test_metrics_port_serves_each_frame_and_closes_on_exit(config_home, settle,
                                                                  world_factory):
    import urllib.request

    from devsim_tui.ui.external import IOOptions, MetricsBadge

    app = io_app(world_factory("production", ticks=30), config_home, IOOptions(metrics_port=0))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        url = app._external.metrics_url
        assert url and app.query_one(MetricsBadge).tooltip == url
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        assert b"devsim_up" in body or b"devsim_" in body
        app.world.advance(5)
        app.draw(force=True)  # a frame publishes the new snapshot
        await pilot.press("q")
        await pilot.pause()
    with pytest.raises(OSError):
        await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read())


async def test_dead_mqtt_broker_never_blocks_the_screen(config_home, settle, world_factory):
    import socket
    import time

    from devsim_tui.bridge import build_options
    from devsim_tui.ui.external import IOOptions, LinkBadge

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = build_options(f"mqtt://127.0.0.1:{port}", sim_id="ui-test")
    app = io_app(world_factory("production", ticks=30), config_home, IOOptions(mqtt=opts))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        for _ in range(50):
            await asyncio.sleep(0.1)
            if app._external.bridge.link_state.state == "retrying":
                break
        app.draw(force=True)
        await pilot.pause()
        badge = app.query_one(LinkBadge)
        assert "MQTT retry" in str(badge.render()) and badge.has_class("-error")
        assert "mqtt retrying" in event_log_text(app)
        await type_line(pilot, "scale 5")  # keys and commands still work
        app.world.advance(1)
        assert applied(app, "scale") == [{"replicas": 5}]
        t0 = time.perf_counter()
        await pilot.press("q")
        await pilot.pause()
    assert time.perf_counter() - t0 < 5


async def test_mqtt_flag_connects_to_a_real_broker(config_home, settle, world_factory, tmp_path):
    from tests.mosquitto import Mosquitto, skip_without_mosquitto

    from devsim_tui.bridge import build_options
    from devsim_tui.ui.external import IOOptions, LinkBadge

    skip_without_mosquitto()
    broker = Mosquitto(tmp_path).start()
    try:
        opts = build_options(broker.url, sim_id="ui-test")
        app = io_app(world_factory("production", ticks=30), config_home, IOOptions(mqtt=opts))
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            for _ in range(50):
                await asyncio.sleep(0.1)
                if app._external.bridge.connected:
                    break
            app.draw(force=True)
            await pilot.pause()
            badge = app.query_one(LinkBadge)
            assert "MQTT connected" in str(badge.render()) and badge.has_class("-ok")
            assert "mqtt connected" in event_log_text(app)
            await pilot.press("q")
            await pilot.pause()
        assert app._external.bridge is None  # stopped on unmount
    finally:
        broker.stop()


def test_control_room_flags_build_io_options():
    from devsim_tui.cli import build_parser
    from devsim_tui.errors import UserError
    from devsim_tui.cmd.ui import io_from_args

    parser = build_parser()
    args = parser.parse_args(["--profile", "development", "--metrics-port", "0",
                              "--mqtt", "mqtt://broker.example:1884", "--smtp-host", "mx.local"])
    profile, io = io_from_args(args)
    assert io.metrics_port == 0 and io.mqtt.url == "mqtt://broker.example:1884"
    assert io.mqtt.prefix == f"devsim/development-{profile.simulation.seed}"
    assert profile.monitoring.notifications.email.smtp.host == "mx.local"
    _, quiet = io_from_args(parser.parse_args([]))
    assert quiet.metrics_port is None and quiet.mqtt is None  # nothing touches the network
    with pytest.raises(UserError):
        io_from_args(parser.parse_args(["--mqtt-ca", "ca.pem"]))


async def test_observer_refuses_commands_arriving_over_mqtt(config_home, settle, world_factory):
    """A read-only control room must not be steerable through its MQTT bridge either."""
    from devsim_tui.bridge import build_options
    from devsim_tui.ui.app import create_app
    from devsim_tui.ui.external import IOOptions

    world = world_factory("production", ticks=30)
    opts = build_options("mqtt://127.0.0.1:9", sim_id="observer-test")  # nothing listens there
    app = create_app(world, theme="control-room", paused=True, io=IOOptions(mqtt=opts),
                     config_dir=config_home / "devsim-tui", observer=True)
    app.animation_level = "none"
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        before = world.snapshot().last_event_seq
        result = app._external.bridge.handle_command(
            b'{"command": "scale", "args": {"replicas": 5}, "id": "x1"}')
        assert result["status"] == "rejected" and "read-only" in result["reason"]
        world.advance(2)
        assert not [e for e in world.events_since(before)
                    if e.type == "command.applied" and e.data["command"] == "scale"]
        await pilot.press("q")
        await pilot.pause()


# ---------------------------------------------------------------------- start-up (the CLI's path)


async def wait_for(pilot, condition, seconds: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_cli_start_shows_the_header_first_then_the_estate(config_home):
    """`devsim-tui --profile production`: the first frame has the header and footer only; the
    profile is loaded, the engine built and every theme validated behind it."""
    from devsim_tui.ui.app import ControlRoomApp, PendingWorld, create_app
    from devsim_tui.ui.header import HeaderBar

    app = create_app("production", seed=7, paused=True, background=True,
                     config_dir=config_home / "devsim-tui")
    assert isinstance(app._pending, PendingWorld) and app.world is None
    assert app._theme_names == ["control-room"]  # only the one on screen, so far
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app, ControlRoomApp)
        header = app.query_one(HeaderBar)
        assert (header.profile_name, header.environment) == ("production", "production")
        await pilot.press("colon", *"window 1h", "enter")  # typed before the world exists
        await wait_for(pilot, lambda: app.world is not None)
        await pilot.pause()
        assert app.profile.name == "production" and app.world.paused
        assert app.query("#servers-pane") and app.query_one("#servers").row_count > 0
        assert app.window == "1h"  # the early line ran once the world was there
        assert set(app._theme_names) >= {"control-room", "daylight", "high-contrast", "amber"}
        assert app.theme == "control-room" and app.startup_error is None


async def test_cli_start_reports_a_profile_that_fails_behind_the_first_frame(config_home):
    """A failure while building ends the app with `startup_error` (exit status 2 for a
    UserError), which the CLI prints once the terminal is restored."""
    from devsim_tui.errors import ConfigError
    from devsim_tui.ui.app import ControlRoomApp, PendingWorld

    def broken():
        raise ConfigError(["profiles/x.yaml:3: scaling.maxReplicas: must be >= 1"])

    app = ControlRoomApp(PendingWorld("x", "production", broken),
                         config_dir=config_home / "devsim-tui")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app._exit)
    assert isinstance(app.startup_error, ConfigError)
    assert app.return_value == 2


async def test_keys_typed_right_after_colon_or_slash_land_in_the_line(make_app, settle):
    """A pasted line, or keys arriving in one SSH packet, reach the `:` line (or the filter)
    instead of firing the pane's keys behind it; `:` and `/` inside them are text."""
    from textual import events

    from devsim_tui.ui.commandline import CommandLine

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)

        def burst(text: str) -> None:  # all queued before any is handled
            names = {":": "colon", "/": "slash", " ": "space", "\r": "enter", ".": "full_stop"}
            for ch in text:
                app.post_message(events.Key(names.get(ch, ch), ch))

        before = len(app.world.submitted)  # the pause from `paused=True`
        burst(":scale 7\r")
        await pilot.pause(0.3)
        assert [c.name for c in app.world.submitted[before:]] == ["scale"]
        assert app.world.submitted[-1].args() == {"replicas": 7}
        burst(":a:b/c")
        await pilot.pause(0.3)
        assert app.query_one(CommandLine).value == "a:b/c"
        await pilot.press("escape")
        burst("/web-0[12]/x")
        await pilot.pause(0.3)
        assert app.query_one("#filter").value == "web-0[12]/x"
        assert app.world.paused  # no stray space or dot reached the clock
