"""Snapshot tests of the control room: what the eye checks, frozen per feature.

Deterministic: fixed seed, the clock paused after a fixed number of ticks, a private config
directory, cursor blink and animations off, and nothing on screen that reads the wall clock.
Regenerate with `pytest --snapshot-update` after a deliberate change (and check them by eye).
"""

from __future__ import annotations

import importlib.util

import pytest

from devsim_tui.sim.commands import CrashNode

HAVE_THEMES = importlib.util.find_spec("devsim_tui.ui.themes") is not None
THEMES = ["control-room", "daylight", "high-contrast", "amber", "green-phosphor"]


@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
def test_main_screen_per_profile(snap_compare, make_app, settle, profile):
    assert snap_compare(make_app(profile), terminal_size=(160, 50), run_before=settle)


@pytest.mark.parametrize("profile", ["production", "experimental"])
def test_main_screen_80x24(snap_compare, make_app, settle, profile):
    assert snap_compare(make_app(profile), terminal_size=(80, 24), run_before=settle)


@pytest.mark.skipif(not HAVE_THEMES, reason="devsim_tui.ui.themes not available")
@pytest.mark.parametrize("theme", THEMES)
def test_themes(snap_compare, make_app, settle, theme):
    assert snap_compare(make_app("production", theme=theme), terminal_size=(120, 36),
                        run_before=settle)


def test_help_screen(snap_compare, make_app, settle):
    assert snap_compare(make_app(), terminal_size=(120, 50), press=["question_mark"],
                        run_before=settle)


def test_detail_screen_server(snap_compare, make_app, settle):
    assert snap_compare(make_app(), terminal_size=(120, 40), press=["down", "down", "enter"],
                        run_before=settle)


def test_detail_screen_db_node_after_failover(snap_compare, make_app, settle):
    app = make_app(commands=[CrashNode(node="primary")], after=60)
    assert snap_compare(app, terminal_size=(120, 40), press=["2", "down", "enter"],
                        run_before=settle)


def test_scaler_detail_predictive_120x40(snap_compare, make_app, settle):
    # Enter on the metrics pane: the predictive scaler's forecast against the requests, its
    # replicas against the HPA's own recommendation (the counterfactual), ScaleAhead events.
    app = make_app("experimental", ticks=1200)
    assert snap_compare(app, terminal_size=(120, 40), press=["3", "enter"], run_before=settle)


def test_filter_in_use(snap_compare, make_app, settle):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("slash", *"00[2-4]$")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 36), run_before=run_before)


def test_filter_inverted(snap_compare, make_app, settle):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("slash", *"!1$", "enter")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 36), run_before=run_before)


def test_alerts_and_events_after_primary_crash(snap_compare, make_app, settle):
    # 30 ticks after the crash: the database is not writable, the alert fires, Patroni's
    # leader key has just expired and pg-2 is promoted.
    app = make_app(commands=[CrashNode(node="primary")], after=30)
    assert snap_compare(app, terminal_size=(160, 50), run_before=settle)


def test_alerts_pane_maximised_after_failover(snap_compare, make_app, settle):
    app = make_app(commands=[CrashNode(node="primary")], after=90)
    assert snap_compare(app, terminal_size=(100, 30), press=["4", "z"], run_before=settle)


def test_confirm_modal(snap_compare, make_app, settle):
    assert snap_compare(make_app(), terminal_size=(100, 30), press=["f"], run_before=settle)


def test_command_line_with_completion(snap_compare, make_app, settle):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("colon", *"fai")
        await pilot.pause()
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=run_before)


@pytest.mark.parametrize("digit", ["0", "1", "2", "3", "4", "5", "6"],
                         ids=["all", "servers", "database", "metrics", "alerts", "events",
                              "operations"])
def test_projector_120x40_with_long_texts(snap_compare, make_app, settle, digit):
    """120x40 (a projector) after a primary crash and a long rejected line: every pane, then
    each zoomed; long summaries end in … in the table, events wrap, nothing scrolls sideways."""
    from devsim_tui.sim.commands import parse_line

    app = make_app(commands=[CrashNode(node="primary"), parse_line("chaos cpu-hog")],
                   after=120)
    app_world = app.world
    app_world.submit_line("deploy " + "release-candidate-with-a-very-long-name-" * 3 + "!")
    app_world.advance(1)
    press = [] if digit == "0" else [digit, "z"]
    assert snap_compare(app, terminal_size=(120, 40), press=press, run_before=settle)


SECURITY_COMMANDS = {"production": ["chaos cert-renewal-failure edge 2h 0.25", "audit"],
                     "development": ["chaos credential-leak", "chaos data-exfiltration db",
                                     "audit"],
                     "experimental": ["chaos policy-misconfig estate 30m 0.4", "audit"]}


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
def test_security_pane_zoomed(snap_compare, make_app, settle, profile, size):
    """8 then z: posture, warnings, findings, every control, certificate countdowns, activity."""
    from devsim_tui.sim.commands import parse_line

    app = make_app(profile, commands=[parse_line(x) for x in SECURITY_COMMANDS[profile]],
                   after=30)
    assert snap_compare(app, terminal_size=size, press=["8", "z"], run_before=settle)


@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
def test_security_pane_beside_the_others_120x40(snap_compare, make_app, settle, profile):
    """The projector: the Security pane between the alerts (which list the findings too) and
    the events (security events in their own colour), every other pane still there."""
    from devsim_tui.sim.commands import parse_line

    app = make_app(profile, commands=[parse_line(x) for x in SECURITY_COMMANDS[profile]],
                   after=30)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settle)


@pytest.mark.parametrize("where", ["security", "alerts"])
def test_finding_detail_120x40(snap_compare, make_app, settle, where):
    """Enter on a finding (in the Security pane, or its row in the alerts pane): what happened,
    evidence, affected targets, the mitigating commands."""
    from devsim_tui.sim.commands import parse_line

    app = make_app("development", commands=[parse_line(x) for x in
                                            SECURITY_COMMANDS["development"]], after=30)
    # Development: one firing alert, then the findings worst first (the debug endpoint's).
    press = ["8", "enter"] if where == "security" else ["4", "down", "enter"]
    assert snap_compare(app, terminal_size=(120, 40), press=press, run_before=settle)


def test_database_pane_during_a_restore(snap_compare, make_app, settle):
    """A point-in-time recovery under way: every node `restoring`, and the pane's restore row
    (progress, time left, RPO, writes lost) above the nodes."""
    from devsim_tui.sim.commands import Restore

    app = make_app(commands=[Restore(to="latest")], after=60)
    assert snap_compare(app, terminal_size=(120, 40), press=["2"], run_before=settle)


def test_database_pane_multi_master_after_a_split_brain(snap_compare, make_app, settle):
    """Experimental's multi-master mesh just after a 2-minute partition of aws healed: the
    mesh row (location, regions, conflicts resolved by last-update-wins, most of them found
    by the merge) above the nodes, and nodes still replaying the other side's writes."""
    from devsim_tui.sim.chaos import Chaos

    app = make_app("experimental", commands=[Chaos(type="mesh-partition", scope="aws",
                                                   duration="2m")], after=122)
    assert snap_compare(app, terminal_size=(120, 40), press=["2"], run_before=settle)


def test_region_outage_120x40(snap_compare, make_app, settle, world_factory):
    """Experimental with two clouds down (docs/cloud.md): AWS went down 400 s ago, its pods
    were evicted after the toleration (evicted, Terminating on the unreachable nodes) and
    replaced in the other clouds (rescheduled, starting); GCP went down 80 s ago, its nodes are
    NotReady (pods notready, out of the endpoints) and evictions are due. The region line under
    the servers says so; the pods sort by state, worst first."""
    from devsim_tui.sim.commands import parse_line

    world = world_factory("experimental", commands=[parse_line("chaos region-outage aws 20m")],
                          after=320)
    world.submit(parse_line("chaos region-outage gcp 20m"))
    world.inner.advance(80)
    assert snap_compare(make_app(world=world), terminal_size=(120, 40),
                        press=["o", "O"], run_before=settle)
