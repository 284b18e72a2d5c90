"""The read-only observer seat (what SSH observers get): it shows a badge and refuses to act.

Asserted on what reaches the world: an observer's keys, `:` lines and steps never submit anything,
while view-only controls (themes, windows, filters) still work.
"""

from __future__ import annotations

from devsim_tui.ui.app import ObserverBadge, create_app


def record_messages(app) -> list[str]:
    """Every toast's text as it is raised: on a loaded machine the first one can have timed
    out (5 s) before the last key of a test is handled."""
    seen: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs) -> None:
        seen.append(message)
        original(message, **kwargs)

    app.notify = notify
    return seen


async def test_observer_sees_the_badge_and_every_action_is_refused(world_factory, settle,
                                                                   config_home):
    world = world_factory()
    app = create_app(world, paused=True, config_dir=config_home / "devsim-tui", observer=True)
    app.animation_level = "none"
    raised = record_messages(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        badge = app.query_one("#observer-badge", ObserverBadge)
        assert "read-only" in str(badge.render())
        tick, before = world.snapshot().tick, list(world.submitted)  # create_app's own pause
        await pilot.press("colon", *"scale 5", "enter")
        await pilot.press("colon", *"sacle 5", "enter")
        await pilot.press("space", "full_stop", "x", "right_square_bracket", "a")
        await pilot.pause()
        assert world.submitted == before and world.lines == []
        assert world.snapshot().tick == tick
        refused = [m for m in raised if "read-only observer session" in m]
        assert len(refused) == 7
        assert refused[0].startswith("scale")
        # Looking around is not acting.
        await pilot.press("w")
        await pilot.pause()
        assert app.window == "1h"


async def test_operator_has_no_badge_and_acts(make_app, settle):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.query(ObserverBadge)
        await pilot.press("colon", *"scale 5", "enter")
        await pilot.pause()
        assert app.world.submitted and not app.observer
