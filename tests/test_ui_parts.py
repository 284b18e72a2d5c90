"""Pure parts of the control room: formatting, downsampling, sparklines, fitting, filters."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from devsim_tui.ui.format import age, downsample, next_speed, si, sim_clock, speed_label
from devsim_tui.ui.renderables import FitLine, spark_rows
from devsim_tui.ui.servers import (
    compile_filter, faulted_mask, filter_mask, fit_widths, rollout_version, sort_order,
)


def test_speed_ladder():
    assert [next_speed(s, 1) for s in (1.0, 10.0, 60.0, "max")] == [10.0, 60.0, "max", "max"]
    assert [next_speed(s, -1) for s in (1.0, 10.0, 60.0, "max")] == [1.0, 1.0, 10.0, 60.0]
    assert next_speed(30.0, 1) == 60.0 and next_speed(30.0, -1) == 10.0
    assert speed_label("max", False) == "max" and speed_label(10.0, True) == "paused"


def test_formats():
    assert si(912) == "912" and si(1250) == "1.25k" and si(40_100_000, "B") == "40.1MB"
    assert age(None) == "never" and age(75) == "1m15s" and age(25500) == "7h05m"
    assert sim_clock(9.0, 300) == "d1 09:05:00"
    assert sim_clock(23.0, 7200) == "d2 01:00:00"


def test_downsample_keeps_spikes_with_max_and_averages_with_mean():
    data = np.zeros(1000)
    data[500] = 9.0
    assert downsample(data, 10).max() == 9.0
    assert np.isclose(downsample(data, 10, "mean").max(), 9.0 / 100)
    assert len(downsample(data, 10)) == 10
    gaps = downsample(np.array([np.nan, np.nan, 1.0, 2.0]), 2)
    assert np.isnan(gaps[0]) and gaps[1] == 2.0


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=400), st.integers(1, 120))
def test_downsample_width_and_bounds(values, width):
    arr = np.array(values)
    out = downsample(arr, width)
    assert len(out) == min(width, len(arr))
    assert out.max() <= arr.max() and out.min() >= arr.min()


@given(st.lists(st.floats(0, 1e3), min_size=0, max_size=300), st.integers(1, 80),
       st.integers(1, 3))
def test_spark_rows_shape(values, width, height):
    rows = spark_rows(np.array(values, dtype=float), width, height)
    assert len(rows) == height and all(len(r) == width for r in rows)


def test_spark_rows_rise_left_to_right():
    (row,) = spark_rows(np.arange(8.0), 8)
    assert row == "▁▂▃▄▅▆▇█"


def test_fitline_shortens_then_drops_lowest_priority():
    parts = [(9, Text("CLOCK-LONG"), Text("CLK")), (5, Text("middle"), None),
             (1, Text("least"), None)]
    line = FitLine(parts, Text(" | "))
    assert line.fit(80).plain == "CLOCK-LONG | middle | least"
    assert line.fit(20).plain == "CLK | middle | least"
    assert line.fit(12).plain == "CLK | middle"
    assert line.fit(3).plain == "CLK"


def test_filter_and_sort(world_factory):
    snap = world_factory("production", ticks=5).snapshot()
    assert filter_mask(snap, "").all()
    assert filter_mask(snap, "web-00[1-3]").sum() == 3
    assert filter_mask(snap, "!web-00[1-3]").sum() == len(snap.fleet) - 3
    assert filter_mask(snap, "eu-west-1a").sum() == 6
    assert compile_filter("[")[0].search("a[b")  # invalid regex: matched literally
    order = sort_order(snap, "name", True)
    assert snap.fleet.names[order[0]] == "web-016"
    order = sort_order(snap, "region", False)
    regions = [snap.regions[snap.fleet.region[i]] for i in order]
    assert regions == sorted(regions)


async def test_servers_table_with_1000_servers_updates_what_is_visible(make_app, settle):
    overrides = {"scaling.minReplicas": 1000, "scaling.maxReplicas": 1000,
                 "scaling.initialReplicas": 1000, "traffic.baseline_rps": 60000}
    app = make_app(ticks=30, overrides=overrides)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        from devsim_tui.ui.servers import ServersTable

        table = app.query_one(ServersTable)
        assert table.row_count == 1000
        table.action_reverse_sort()
        await pilot.pause()
        assert table.ordered_rows[0].key.value == "web-1000"
        table.scroll_end(animate=False)
        await pilot.pause()
        await settle(pilot)
        last = table.ordered_rows[-1].key.value
        assert last == "web-0001"
        snap = app.world.snapshot()
        i = snap.fleet.index_of(last)
        assert str(table.get_row(last)[4]) == f"{round(float(snap.fleet.cpu[i]) * 100)}%"


def test_fault_badges_rollout_and_fitted_widths(world_factory):
    snap = world_factory("production", ticks=5).snapshot()
    assert not faulted_mask(snap).any() and rollout_version(snap) is None
    snap.extensions["ChaosController"] = {"faulted_servers": ["web-003", "web-010"]}
    snap.extensions["ReleaseController"] = {"rollout": {"version": "v9.9.9"}}
    assert [snap.fleet.names[i] for i in np.flatnonzero(faulted_mask(snap))] == [
        "web-003", "web-010"]
    assert rollout_version(snap) == "v9.9.9"
    first = [snap.fleet.names[i] for i in sort_order(snap, "fault", True)[:2]]
    assert first == ["web-003", "web-010"]
    wide, gap = fit_widths(snap, 200)
    narrow, narrow_gap = fit_widths(snap, 60)
    assert gap == 2 and narrow_gap == 1 and sum(narrow) < sum(wide)
    assert narrow[4:] == wide[4:]  # numbers never shrink


async def test_cursor_follows_its_server_when_rows_reorder(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        from devsim_tui.ui.servers import ServersTable

        table = app.query_one(ServersTable)
        await pilot.press("down", "down")
        assert table.selected_name == "web-003"
        await pilot.press("O")  # reverse: web-003 moves from row 2 to row 13
        await pilot.pause()
        assert table.selected_name == "web-003" and table.cursor_row == 13
        await pilot.press("slash", *"00[2-4]$", "enter")
        await pilot.pause()
        assert table.selected_name == "web-003" and table.row_count == 3


def test_spark_rows_are_honest_about_scale():
    # Noise around 12% is not blown up to the full height: the scale starts at zero.
    (row,) = spark_rows(np.array([0.120, 0.121, 0.119, 0.121]), 4)
    assert set(row) <= set("▆▇█") and "▁" not in row
    # A constant 0.05% error rate under the errors' 5% ceiling is the lowest bar, not a wall.
    (row,) = spark_rows(np.full(10, 0.0005), 10, floor=0.0, ceiling=0.05)
    assert row == "▁" * 10


def test_detail_charts_share_one_time_axis_and_name_their_series():
    from rich.console import Console

    from devsim_tui.ui.detail import HistoryCharts
    from devsim_tui.ui.renderables import MetricLine

    charts = HistoryCharts()
    charts._history = {"cpu": np.linspace(0.1, 0.5, 120),
                       "memory_mb": np.linspace(100.0, 300.0, 60)}
    # render() needs component styles only; give it plain ones.
    charts.get_component_rich_style = lambda *_a, **_k: __import__("rich.style").style.Style()
    group = charts.render()
    lines = [r for r in group.renderables if isinstance(r, MetricLine)]
    assert [line.label for line in lines] == ["CPU", "Memory"]  # not the raw `memory_mb`
    assert len(lines[0].values) == len(lines[1].values) == 120  # the shorter one padded
    assert lines[0].minmax_width == lines[1].minmax_width
    console = Console(width=80, record=True)
    console.print(group)
    rows = [r for r in console.export_text().splitlines() if r.strip()]
    cpu_row = next(r for r in rows if r.startswith("CPU"))
    mem_row = next(r for r in rows if r.startswith("Memory"))
    # Memory's history began half-way: its left half is blank, both end in the same column.
    blocks = set("▁▂▃▄▅▆▇█")

    def spark_span(row: str) -> tuple[int, int]:
        cols = [i for i, ch in enumerate(row) if ch in blocks]
        return cols[0], cols[-1]

    (cpu_first, cpu_last), (mem_first, mem_last) = spark_span(cpu_row), spark_span(mem_row)
    assert cpu_last == mem_last
    assert mem_first - cpu_first >= (cpu_last - cpu_first) // 2 - 1


async def test_restore_row_shows_only_while_a_restore_runs(make_app, settle):
    from textual.widgets import Static

    from devsim_tui.sim.commands import Restore
    from devsim_tui.ui.database import restore_summary

    app = make_app(commands=[Restore(to="latest")], after=30)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        r = app.world.snapshot().extensions["BackupController"]["restore"]
        # production archives no WAL: latest is its newest base backup, hours ago
        assert r is not None and 0 < r["progress"] < 1 and r["rpo_s"] > 3600
        row = app.query_one("#restore-summary", Static)
        assert row.display and str(row.render()) == restore_summary(r)
        assert str(row.render()).startswith("Restoring to latest ")
        assert all(n.state == "restoring" for n in app.world.snapshot().db)
    app = make_app(ticks=30)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        assert not app.query_one("#restore-summary", Static).display
