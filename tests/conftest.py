"""Shared fixtures for the control-room tests (UI-only or generic; the engine's tests need none).

Every UI test runs with its user configuration isolated (a temporary XDG_CONFIG_HOME), a fixed
seed, the simulated clock paused at a known tick, and animations and cursor blink off, so the
snapshots are byte-for-byte repeatable.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

SEED = 7
WARMUP_TICKS = 300  # five simulated minutes: sparklines have data, the HPA has settled


class RecordingWorld:
    """A World that forwards to a LocalWorld and records every command it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.profile = inner.profile
        self.submitted: list[Any] = []
        self.lines: list[str] = []

    def snapshot(self):
        return self.inner.snapshot()

    def submit(self, command) -> None:
        self.submitted.append(command)
        self.inner.submit(command)

    def submit_line(self, line: str) -> None:
        self.lines.append(line)
        self.inner.submit_line(line)

    def events_since(self, seq: int):
        return self.inner.events_since(seq)

    def series(self, name: str, n: int):
        return self.inner.series(name, n)

    def component_history(self, name: str):
        return self.inner.component_history(name)

    def advance(self, ticks: int):
        return self.inner.advance(ticks)

    @property
    def speed(self):
        return self.inner.speed

    @property
    def paused(self) -> bool:
        return self.inner.paused

    @property
    def tick(self) -> int:
        return self.inner.tick

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def drill_state(self):
        return self.inner.drill_state()

    def close(self, reason=None) -> None:
        self.inner.close(reason)

    def prepare(self) -> None:
        self.inner.prepare()


#: How long a toast stays in a test: toasts expire by the wall clock, so on a loaded machine one
#: could vanish before a snapshot is taken, and what a screenshot shows would depend on the
#: machine's speed. In tests they stay (the apps run on a paused simulated clock anyway).
TOAST_HOLD_S = 3600.0


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """The suite's own XDG_CACHE_HOME (the validated-profile cache, config/profile_cache.py):
    shared by the whole session and the processes it starts, never the user's ~/.cache."""
    import os

    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(autouse=True)
def _toasts_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.app import App

    notify = App.notify

    def held(self, message, *, title="", severity="information", timeout=None, markup=True):
        return notify(self, message, title=title, severity=severity, timeout=TOAST_HOLD_S,
                      markup=markup)

    monkeypatch.setattr(App, "notify", held)


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private XDG_CONFIG_HOME (themes and remembered choices never leak in)."""
    home = tmp_path / "xdg"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def make_world(profile: str = "production", ticks: int = WARMUP_TICKS, commands=(),
               after: int = 0, overrides: dict | None = None) -> RecordingWorld:
    """A deterministic world: `ticks` ticks, then `commands`, then `after` more ticks."""
    from devsim_tui.config.loader import load_profile
    from devsim_tui.sim.engine import Engine
    from devsim_tui.sim.world import LocalWorld

    prof = load_profile(profile, overrides=overrides) if overrides else load_profile(profile)
    world = LocalWorld(Engine(prof, seed=SEED))
    world.advance(ticks)
    for command in commands:
        world.submit(command)
    if after:
        world.advance(after)
    return RecordingWorld(world)


@pytest.fixture
def make_app(config_home: Path):
    """Build a paused, animation-free control room around a deterministic world."""

    def build(profile: str = "production", *, theme: str | None = "control-room",
              no_confirm: bool = False, world: Any = None, **world_kw):
        from devsim_tui.ui.app import create_app

        w = world if world is not None else make_world(profile, **world_kw)
        app = create_app(w, theme=theme, paused=True, no_confirm=no_confirm,
                         config_dir=config_home / "devsim-tui")
        app.animation_level = "none"
        return app

    return build


async def _settle(pilot) -> None:
    """Let pending messages, the first frame and any re-layout finish."""
    from textual.widgets import Input

    for widget in pilot.app.query(Input):
        widget.cursor_blink = False
    await pilot.pause()
    pilot.app.draw(force=True)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.fixture
def settle():
    """`await settle(pilot)`: let the first frame and any re-layout finish, blink off."""
    return _settle


@pytest.fixture
def world_factory():
    """`make_world(profile, ticks=..., commands=..., after=...)` for tests that drive a world."""
    return make_world


# ---------------------------------------------------------------------- brokers, SSH keys, XDG


@pytest.fixture
def broker(tmp_path: Path):
    """A real mosquitto on a free port, started here and stopped after the test (skipped where
    mosquitto is not installed: `make system-deps`)."""
    from mosquitto import Mosquitto, skip_without_mosquitto

    skip_without_mosquitto()
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Private keys: an operator, an observer (both authorized) and a stranger's."""
    out = {}
    for name in ("operator", "observer", "stranger"):
        path = tmp_path / f"id_{name}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(path)], check=True)
        out[name] = path
    (tmp_path / "authorized_keys").write_text(
        "# the presenter\n"
        f"{(tmp_path / 'id_operator.pub').read_text()}"
        f'devsim-role="observer" {(tmp_path / "id_observer.pub").read_text()}')
    return out


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private XDG dirs for the server (host key) and the seats it starts (themes)."""
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        d = tmp_path / var.lower()
        d.mkdir()
        monkeypatch.setenv(var, str(d))
    return tmp_path
