"""Helpers for the control room's pilot tests: what the engine applied, typing `:` lines,
running a command-palette entry."""

from __future__ import annotations

import asyncio


def applied(app, name: str) -> list[dict]:
    """The arguments of every `name` command the engine applied, in order."""
    return [ev.data.get("args", {}) for ev in app.world.events_since(0)
            if ev.type == "command.applied" and ev.data.get("command") == name]


async def type_line(pilot, line: str) -> None:
    """`:line` then Enter, as typed."""
    await pilot.press("colon", *line, "enter")
    await pilot.pause()


async def run_palette(pilot, search: str) -> None:
    """Open the palette (ctrl+p), search for `search` and run the first match."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*search)
    await asyncio.sleep(0.5)  # the palette searches in a worker
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    await pilot.pause()


async def open_screen(pilot, screen_type, *keys: str):
    """Press `keys`; the screen they open, checked to be a `screen_type`."""
    await pilot.press(*keys)
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, screen_type), screen
    return screen
