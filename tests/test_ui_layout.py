"""The screen holds at every size: panes present after resizes, key columns visible, zoom fills
the screen, long texts shown whole where there is room (a projector is 120x40)."""

from __future__ import annotations

import pytest

from devsim_tui.sim import commands as C
from devsim_tui.ui.linetable import TableColumn, fit_columns, fit_table
from devsim_tui.ui.servers import cut_text, err_cell, p99_cell

SIZES = [(80, 24), (120, 40), (200, 60), (80, 24)]
PANES = ("servers", "database", "metrics", "alerts", "events", "operations", "security")
DIGITS = {"servers": 1, "database": 2, "metrics": 3, "alerts": 4, "events": 5, "operations": 6,
          "security": 8}
#: The columns each table must show at every size (the rest may give way).
KEY_COLUMNS = {
    "#alerts": ["STATE", "SEV", "ALERT", "AGE"],
    "#db-table": ["NODE", "ROLE", "STATE", "LAG", "DISK", "BACKUP"],
}
SERVER_KEY_COLUMNS = ["NAME", "STATE", "VERSION", "REGION", "CPU", "MEM", "P99", "ERR"]


def _busy_world(world_factory):
    """Alerts firing and a fault running, so every table has rows."""
    return world_factory("production", ticks=100,
                         commands=[C.parse_line("chaos cpu-hog")], after=400)


def _header_text(widget) -> str:
    return widget.render_line(0).text


async def _resize(pilot, size) -> None:
    await pilot.resize_terminal(*size)
    await pilot.pause()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("profile", ["production", "experimental"])
async def test_resizes_keep_every_pane_and_the_key_columns(make_app, settle, world_factory,
                                                           profile):
    app = make_app(world=world_factory(profile, ticks=100, commands=[
        C.parse_line("chaos cpu-hog")], after=400))
    async with app.run_test(size=SIZES[0]) as pilot:
        await settle(pilot)
        for size in SIZES:
            await _resize(pilot, size)
            screen = app.screen.region
            for pane in PANES:
                widget = app.query_one(f"#{pane}-pane")
                region = widget.region
                assert region.height >= 2 and region.width >= 20, (size, pane, region)
                assert screen.contains_region(region), (size, pane, region)
                # Inside its column: a pane pushed past it is painted over by the next one.
                assert widget.parent.region.contains_region(region), (size, pane, region)
            # Alerts and events share the side column: neither is squeezed out of it.
            assert app.query_one("#alerts").region.height >= 2, size
            assert app.query_one("#events").region.height >= 2, size
            for table, labels in KEY_COLUMNS.items():
                shown = app.query_one(table).shown_labels
                if profile == "experimental" and table == "#db-table":  # multi-master
                    labels = ["REGION" if label == "ROLE" else label for label in labels]
                assert all(label in shown for label in labels), (size, table, shown)
            header = _header_text(app.query_one("#servers"))
            for label in SERVER_KEY_COLUMNS:
                assert label in header, (size, header)


@pytest.mark.parametrize("size", SIZES[:3], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_zoom_fills_the_screen_under_the_header_for_every_pane(make_app, settle,
                                                                     world_factory, size):
    app = make_app(world=_busy_world(world_factory))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for pane in PANES:
            await pilot.press(str(DIGITS[pane]), "z")
            await pilot.pause()
            assert app.screen.maximized is not None and app.screen.maximized.id == \
                f"{pane}-pane"
            region = app.query_one(f"#{pane}-pane").region
            header = app.query_one("#header").region
            assert header.y == 0, (pane, header)
            assert region.y == 1 and region.width == size[0], (pane, region)
            # All the height but the header and the footer.
            assert region.height == size[1] - 2, (pane, region)
            await pilot.press("z")
            await pilot.pause()
            assert app.screen.maximized is None


async def test_zoomed_metrics_grow_into_charts_and_shrink_back(make_app, settle, world_factory):
    """A zoomed metrics pane was seven one-line sparklines over thirty blank lines: zoomed, the
    charts share the height (with a line between two); restored, one line each again."""
    from devsim_tui.ui.renderables import MetricLine

    app = make_app(world=_busy_world(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        pane = app.query_one("#metrics")

        def charts() -> list[MetricLine]:
            return [line for line in pane._lines if isinstance(line, MetricLine)]

        async def until(done) -> None:
            # The app's own redraw, no settle's forced one: the pane draws after its layout.
            for _ in range(100):
                if done():
                    return
                await pilot.pause()

        assert {(c.height, c.gap) for c in charts()} == {(1, False)}
        await pilot.press("3", "z")
        await until(lambda: charts()[0].height > 1)
        (tall,) = {c.height for c in charts()}
        assert tall >= 3 and all(c.gap for c in charts()), tall
        # Every chart, its gap and the detector's line fit in the zoomed pane.
        assert pane.region.height <= app.query_one("#metrics-pane").region.height - 2
        assert pane.region.height >= len(charts()) * (tall + 1)
        await pilot.resize_terminal(120, 30)  # zoomed, the charts follow the height
        await until(lambda: charts()[0].height < tall)
        (shorter,) = {c.height for c in charts()}
        assert shorter < tall
        await settle(pilot)
        assert pane.region.height <= app.query_one("#metrics-pane").region.height - 2
        await pilot.press("z")
        await until(lambda: charts()[0].height == 1)
        assert {(c.height, c.gap) for c in charts()} == {(1, False)}


async def test_zoomed_alerts_show_every_column_and_the_whole_summary(make_app, settle,
                                                                     world_factory):
    app = make_app(world=_busy_world(world_factory))
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(pilot)
        table = app.query_one("#alerts")
        assert table.row_count > 0
        summary = table.get_row(table.ordered_rows[0].key)[-1]
        await pilot.press("4", "z")
        await pilot.pause()
        assert table.shown_labels == ["STATE", "SEV", "ALERT", "ON", "AGE", "ACK", "MUTED",
                                      "SUMMARY"]
        assert summary in table.render_line(1).text


async def test_zoomed_alerts_at_120x40_show_the_selected_summary_whole(make_app, settle,
                                                                        world_factory):
    """At 120x40 even the zoomed table cuts long summaries: the line under it shows the
    selected alert whole and follows the cursor; unzoomed it is gone."""
    app = make_app(world=_busy_world(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one("#alerts")
        preview = app.query_one("#alerts-preview")
        assert table.row_count >= 2 and not preview.display
        first, second = (table.get_row(r.key)[-1] for r in table.ordered_rows[:2])
        await pilot.press("4", "z")
        await settle(pilot)
        assert first not in table.render_line(1).text  # cut in the table
        assert preview.display and preview.region.height >= 2
        lines = [preview.render_line(y).text.strip() for y in range(preview.region.height)]
        assert " ".join(first.split()) in " ".join(" ".join(lines).split()), lines
        await pilot.press("down")
        await pilot.pause()
        lines = [preview.render_line(y).text.strip() for y in range(preview.region.height)]
        assert " ".join(second.split()) in " ".join(" ".join(lines).split()), lines
        await pilot.press("z")
        await settle(pilot)
        assert not preview.display


async def test_enter_on_an_alert_shows_it_whole(make_app, settle, world_factory):
    from devsim_tui.ui.alerts import AlertDetailScreen

    app = make_app(world=_busy_world(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one("#alerts")
        summary = table.get_row(table.ordered_rows[0].key)[-1]
        assert summary not in table.render_line(1).text  # too long for the pane at 120x40
        await pilot.press("4", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AlertDetailScreen)
        assert summary in app.screen.detail.plain
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AlertDetailScreen)


async def test_events_are_never_cut_and_rewrap_on_resize(make_app, settle, world_factory):
    world = world_factory("production", ticks=10)
    long = "a very long message " * 8 + "END"
    world.submit_line("deploy " + long.replace(" ", "-") + "!")  # rejected, echoes the name
    app = make_app(world=world)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        log = app.query_one("#events")

        def text() -> str:
            return "".join(strip.text.rstrip() + " " for strip in log.lines)

        assert "END" in text()
        assert max(strip.cell_length for strip in log.lines) <= log.scrollable_content_region.width
        await pilot.press("5", "z")
        await pilot.pause()
        await pilot.pause()
        assert "END" in text()
        assert max(strip.cell_length for strip in log.lines) <= 120


def test_columns_give_way_by_priority_and_the_flex_column_takes_the_room():
    cols = (TableColumn("a", "A", 6), TableColumn("b", "B", 10, priority=2),
            TableColumn("c", "C", 8, priority=1, flex=True, min_width=4),
            TableColumn("d", "D", 5, min_width=3))
    assert fit_columns(cols, 100, 1) == [(0, 6), (1, 10), (2, 100 - 6 - 10 - 5 - 8), (3, 5)]
    assert [i for i, _w in fit_columns(cols, 30, 1)] == [0, 2, 3]  # b goes first
    assert [i for i, _w in fit_columns(cols, 12, 1)] == [0, 3]  # then c; d shrinks to 3
    assert fit_columns(cols, 13, 1) == [(0, 6), (3, 3)]  # d shrinks to its minimum
    assert fit_columns(cols, 5, 1) == [(0, 6), (3, 3)]  # key columns stay, table scrolls


def test_gaps_close_before_a_column_is_cut_but_never_to_cut_another():
    cols = (TableColumn("a", "A", 6), TableColumn("b", "B", 10, min_width=4),
            TableColumn("c", "C", 8, priority=1, min_width=4))
    assert fit_table(cols, 30) == ([(0, 6), (1, 10), (2, 8)], False)  # 24 + 6: roomy fits
    assert fit_table(cols, 27) == ([(0, 6), (1, 10), (2, 8)], True)  # 24 + 3: tight fits
    # Roomy drops c; tight keeps it (cut) and b whole: tight shows more.
    firm_b = (cols[0], TableColumn("b", "B", 16), cols[2])
    assert fit_table(firm_b, 30) == ([(0, 6), (1, 16), (2, 5)], True)
    # Tight could keep the flexible c only by cutting b below what roomy shows: roomy it is
    # (the security findings' CONTROL stays whole in a 46-cell side pane).
    flex_c = (cols[0], TableColumn("b", "B", 20, min_width=10),
              TableColumn("c", "C", 30, priority=1, flex=True, min_width=16))
    assert fit_table(flex_c, 36) == ([(0, 6), (1, 20)], False)


def test_server_numbers_keep_to_their_columns():
    assert [p99_cell(v) for v in (-1, 158, 9999, 10_234, 99_949, 123_456)] == \
        ["-", "158ms", "9999ms", "10.2s", "99.9s", "123s"]
    assert [err_cell(e) for e in (0, 4, 99, 100, 123, 1000)] == \
        ["0.0%", "0.4%", "9.9%", "10%", "12%", "100%"]


def test_cut_versions_keep_the_tail_that_tells_them_apart():
    assert cut_text("v3.0.0-rc.2", 9, keep_tail=True) == "v3.0…rc.2"
    assert cut_text("v3.0.0-rc.2", 9, keep_tail=True) != cut_text("v3.0.0-rc.3", 9, True)
    assert cut_text("localhost", 6) == "local…"
    assert cut_text("eu-west", 9) == "eu-west  "


@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
async def test_header_slo_reads_achieved_over_target_and_window(make_app, settle, profile):
    app = make_app(profile)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        status = app.query_one("#status")
        text = status.render_line(0).text
        target = f"{app.profile.slo.availability * 100:.2f}%"
        assert f"/ {target} target over 5m" in text, text
        # On a projector the short form keeps the window, and the fleet stays.
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        text = status.render_line(0).text
        assert f"/{target} over 5m" in text and "fleet " in text, text


async def test_before_the_first_tick_the_header_waits_instead_of_inventing(make_app, settle):
    app = make_app(ticks=0)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        text = app.query_one("#status").render_line(0).text
        assert "waiting for the estate" in text and "SLO" not in text, text
        await pilot.press("full_stop")  # one tick
        await pilot.pause()
        app.draw(force=True)
        await pilot.pause()
        text = app.query_one("#status").render_line(0).text
        assert "SLO" in text and "waiting" not in text, text


async def test_a_pane_is_one_pane_spec_entry(config_home, settle, world_factory):
    """A new pane: one PaneSpec, and it is composed, titled, focused by its digit, drawn every
    frame with its subtitle, zoomable, and offered in the palette."""
    from textual.widgets import Static

    from devsim_tui.ui.app import ControlRoomApp, create_app
    from devsim_tui.ui.panes import PaneSpec

    drawn: list[int] = []

    def draw(app, snap) -> str:
        drawn.append(snap.tick)
        app.query_one("#probe", Static).update(f"probe at tick {snap.tick}")
        return f"tick {snap.tick}"

    class WithProbe(ControlRoomApp):
        PANE_SPECS = ControlRoomApp.PANE_SPECS + (
            PaneSpec("probe", "Probe", 9, "side", lambda app: Static(id="probe"), "#probe",
                     draw),)

    app = create_app(world_factory("production"), app_class=WithProbe, paused=True,
                     theme="control-room", config_dir=config_home / "devsim-tui")
    app.animation_level = "none"
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        pane = app.query_one("#probe-pane")
        assert pane.border_title == "9 Probe" and pane.region.height >= 2
        tick = app.world.snapshot().tick
        assert drawn and drawn[-1] == tick and pane.border_subtitle == f"tick {tick}"
        app.query_one("#probe").can_focus = True
        await pilot.press("9", "z")
        await pilot.pause()
        assert app.screen.maximized is pane
        assert ("focus probe pane", "key 9") in [(t, h) for t, h, _ in app.palette_entries()]


@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
async def test_at_120x40_the_fleet_and_database_show_their_values_whole(make_app, settle,
                                                                       world_factory, profile):
    """Round 1 showed REGION as `localhos` and the replicas' lag as `0.6ms 77…` on a projector.
    Every version is whole in every shipped profile, every region name in production and
    development (experimental's `digitalocean` may end in `…`: its region line says it whole),
    and the database table shows every column at its full width."""
    from devsim_tui.ui.servers import region_labels

    app = make_app(world=_busy_world(world_factory) if profile == "production"
                   else world_factory(profile, ticks=100))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        snap = app.world.snapshot()
        servers = app.query_one("#servers")
        rows = [servers.render_line(y).text
                for y in range(1, min(servers.size.height, len(snap.fleet.names) + 1))]
        assert rows
        for row in rows:
            assert any(f" {v} " in row for v in snap.versions), row
            if profile != "experimental":
                assert any(f" {r} " in row for r in region_labels(snap)), row
        db = app.query_one("#db-table")
        room = db.scrollable_content_region.width
        columns = db._columns
        assert db.layout_for(room) == [(i, c.width) for i, c in enumerate(columns)], room
        for y in range(db.size.height):
            assert "…" not in db.render_line(y).text, db.render_line(y).text
        release = app.query_one("#release-summary").render_line(0).text
        status = snap.extensions["ReleaseController"]["status"]
        assert status in release and "…" not in release.split(status)[0], release
