"""The Security pane among the others, findings in the alerts pane, a finding's detail screen and
security events in their own colour (issue 16's control-room part)."""

from __future__ import annotations

import pytest

from devsim_tui.sim import commands as C
from devsim_tui.sim.events import Event

LEAK = ["chaos credential-leak", "chaos data-exfiltration db", "audit"]


def _dev_world(world_factory, extra=()):
    return world_factory("development", commands=[C.parse_line(x) for x in (*LEAK, *extra)],
                         after=30)


def _screen_text(app) -> str:
    return "\n".join("".join(seg.text for seg in strip)
                     for strip in app.screen._compositor.render_strips())


async def test_the_security_pane_sits_with_the_others_at_120x40(make_app, settle, world_factory):
    from devsim_tui.ui.security import SecurityView

    app = make_app(world=_dev_world(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen.region
        for pane in ("servers", "database", "metrics", "alerts", "security", "events",
                     "operations"):
            region = app.query_one(f"#{pane}-pane").region
            assert screen.contains_region(region) and region.height >= 3, (pane, region)
        pane = app.query_one("#security-pane")
        assert pane.border_title == "8 Security"
        assert pane.border_subtitle.startswith("0/100 · 9 findings")
        summary = app.query_one("#security-summary", SecurityView).render_line(0).text
        assert "posture 0/100" in summary
        text = _screen_text(app)
        # The seed's warning is shown whole (wrapped in the narrow column, never cut).
        assert "never expose this" in text and "setup" in text
        await pilot.press("8")
        await pilot.pause()
        assert app.focused is app.query_one("#security-findings")
        # The worst finding first, on the first row under the header.
        assert app.focused.selected_key == "SEC-5"
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is not None and app.screen.maximized.id == "security-pane"
        more = app.query_one("#security-more", SecurityView)
        assert more.display and any("CONTROLS" in line for line in _screen_text(app).split("\n"))


async def test_findings_are_rows_of_the_alerts_pane_with_their_severity(make_app, settle,
                                                                        world_factory):
    app = make_app(world=_dev_world(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one("#alerts")
        snap = app.world.snapshot()
        findings = app.world.snapshot().extensions["SecurityController"]["findings"]
        assert len(findings) == 9
        keys = [row.key.value for row in table.ordered_rows]
        assert {f["id"] for f in findings} <= set(keys)
        # After the open alerts, before the resolved ones; worst first.
        open_alerts = [a.id for a in snap.alerts if a.state != "resolved"]
        assert keys[:len(open_alerts)] == sorted(open_alerts, key=keys.index)
        row = table.get_row("SEC-5")
        assert row[:3] == ["finding", "crit", "debug-endpoints-closed"]
        assert "close-debug-endpoint" in row[-1]
        assert table.get_row("SEC-1")[1] == "warn"
        assert app.query_one("#alerts-pane").border_subtitle.endswith("9 findings")
        # Fixed and audited again: the finding leaves the alerts pane.
        app.world.submit(C.parse_line("close-debug-endpoint"))
        app.world.advance(1)
        app.world.submit(C.parse_line("audit"))
        app.world.advance(1)
        app.draw(force=True)
        await pilot.pause()
        controls = {table.get_row(r.key.value)[2] for r in table.ordered_rows
                    if table.get_row(r.key.value)[0] == "finding"}
        assert "debug-endpoints-closed" not in controls and "tls-in-transit" in controls


@pytest.mark.parametrize("where", ["security", "alerts"])
async def test_a_finding_opens_its_detail_and_escape_closes_it(make_app, settle, world_factory,
                                                               where):
    from devsim_tui.ui.security import FindingDetailScreen

    app = make_app(world=_dev_world(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        if where == "security":
            await pilot.press("8", "enter")
        else:
            table = app.query_one("#alerts")
            await pilot.press("4")
            while table.selected_key != "SEC-5":
                await pilot.press("down")
            await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FindingDetailScreen)
        text = app.screen.text
        assert "SEC-5  debug-endpoints-closed  critical" in text
        for section in ("WHAT HAPPENED", "EVIDENCE", "AFFECTED", "MITIGATION"):
            assert section in text
        assert "port 9229 reachable (Node inspector)" in text
        assert "port 9229 on app-001" in text  # the affected server, by name
        assert ":close-debug-endpoint" in text and "still failing" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FindingDetailScreen)


def test_finding_detail_names_commands_and_profile_changes_apart(world_factory):
    from devsim_tui.ui.security import finding_detail

    snap = _dev_world(world_factory, extra=["rotate-credentials", "audit"]).snapshot()
    sec = snap.extensions["SecurityController"]
    by_control = {f["control"]: f["id"] for f in sec["findings"]}

    def text(control: str) -> str:
        lines = finding_detail(snap, by_control[control], str)
        return "\n".join("".join(p for p, _l in line) for line in lines)

    exfil = text("no-active-attack")
    assert "data-exfiltration (F2) on db: under way" in exfil
    assert ":block-egress" in exfil and "records " in exfil and "exposed of" in exfil
    tls = text("tls-in-transit")
    assert "profile: enable security.tls" in tls and "not a command" in tls
    assert "profile: security.zero_trust" in text("zero-trust")
    assert "move credentials to a vault" in text("secrets-managed")
    assert finding_detail(snap, "SEC-99", str) is None


async def test_certificate_finding_suggests_renewing_the_failing_endpoint(make_app, settle,
                                                                          world_factory):
    from devsim_tui.ui.security import finding_detail

    world = world_factory("production", commands=[
        C.parse_line("chaos cert-renewal-failure edge 2h 0.25"), C.parse_line("audit")],
        after=30)
    snap = world.snapshot()
    fid = next(f["id"] for f in snap.extensions["SecurityController"]["findings"]
               if f["control"] == "certificates-valid")
    lines = finding_detail(snap, fid, str)
    text = "\n".join("".join(p for p, _l in line) for line in lines)
    assert ":renew-certificate edge" in text
    assert "edge certificate (ACME (Let's Encrypt))" in text and "RENEWAL FAILING" in text


def test_security_events_take_the_security_style_and_keep_the_severity_mark():
    from rich.style import Style

    from devsim_tui.ui.events import event_line

    styles = {k: Style(color=c) for k, c in (
        ("time", "grey50"), ("type", "blue"), ("msg", "white"), ("debug", "grey30"),
        ("info", "cyan"), ("warning", "yellow"), ("error", "red"), ("critical", "red"),
        ("security", "magenta"), ("security-alarm", "bright_magenta"))}

    def spans(ev: Event) -> dict[str, Style]:
        line = event_line(ev, 9.0, styles)
        return {line.plain[s.start:s.end]: s.style for s in line.spans}

    audit = spans(Event(1, 10.0, "security.audit", "security audit: 2 finding(s)", "warning",
                        None, {}))
    assert audit["security audit: 2 finding(s)"] == styles["security"]
    assert audit[" ▲ "] == styles["warning"]
    expired = spans(Event(2, 10.0, "security.cert_expired", "certificate expired", "critical",
                          None, {}))
    assert expired["certificate expired"] == styles["security-alarm"]
    assert expired[" ✖ "] == styles["critical"]
    plain = spans(Event(3, 10.0, "scale.manual", "scaled to 6", "warning", None, {}))
    assert plain["scaled to 6"] == styles["warning"]


@pytest.mark.parametrize("theme", ["control-room", "daylight", "high-contrast", "amber",
                                   "green-phosphor"])
async def test_every_theme_colours_security_events_from_its_file(make_app, settle, theme):
    from textual.color import Color

    from devsim_tui.ui.themes import load_themes

    app = make_app(theme=theme)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        log = app.query_one("#events")
        want = Color.parse(load_themes()[theme].variables["security-event"])
        got = log.get_component_rich_style("events--security").color
        assert got is not None and Color.from_rich_color(got) == want
        alarm = log.get_component_rich_style("events--security-alarm")
        assert alarm.bold and Color.from_rich_color(alarm.color) == want
        # Apart from every severity colour of the same theme.
        for sev in ("info", "warning", "error", "critical", "debug"):
            assert log.get_component_rich_style(f"events--{sev}").color != got, sev


async def test_silencing_a_finding_row_says_how_it_closes(make_app, settle, world_factory):
    app = make_app(world=_dev_world(world_factory))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one("#alerts")
        await pilot.press("4")
        while table.selected_key != "SEC-5":
            await pilot.press("down")
        await pilot.press("s")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("SEC-5 is a security finding" in m for m in messages), messages
