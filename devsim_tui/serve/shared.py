"""`serve ssh --shared`: every SSH seat attaches to ONE world the server hosts.

The server hosts the world (a LocalWorld of the profile, or a DrillSession with `--drill`) on an
event loop of its own, in a thread, so advancing the engine never stalls the SSH relays. It is
published through an `MqttBridge(snapshots=True)` with a seat policy, exactly like `drill host`
(bridge/seats.py); the broker is external. Each seat's child process is
`python -m devsim_tui attach --mqtt URL --sim-id ID --seat ROLE --token @FILE --name USER`.

Tokens: one per role, made at start with `secrets.token_urlsafe`, written to 0600 files in a
private (0700) temporary directory and handed to the children as `--token @FILE`, so they never
appear in a process list. The host's policy knows those tokens and allows only `observer`
without one, so anyone else who can reach the broker can watch at most.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devsim_tui.access import ROLES as SEAT_ROLES
from devsim_tui.errors import UserError

_NAME = re.compile(r"[^\w.@-]+")


def seat_name(user: str) -> str:
    """The SSH user name as `attach --name` accepts it (letters, digits, . _ @ -; <= 64)."""
    return _NAME.sub("-", user or "").strip("-")[:64] or "seat"


def write_tokens(directory: Path) -> dict[str, Path]:
    """A fresh token per role, each in its own 0600 file under `directory` (0700)."""
    os.chmod(directory, 0o700)
    files = {}
    for role in SEAT_ROLES:
        path = directory / f"{role}.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
        files[role] = path
    return files


@dataclass(frozen=True)
class AttachCommand:
    """How a shared seat starts: `devsim-tui attach` with the role's token file."""

    mqtt_url: str
    sim_id: str
    tokens: dict[str, Path]
    mqtt_ca: str | None = None
    mqtt_cert: str | None = None
    mqtt_key: str | None = None

    def argv(self, role: str, user: str | None = None) -> list[str]:
        if role not in self.tokens:
            role = "observer"  # fail closed: an unknown role watches
        argv = [sys.executable, "-m", "devsim_tui", "attach", "--mqtt", self.mqtt_url,
                "--sim-id", self.sim_id, "--seat", role, "--token", f"@{self.tokens[role]}",
                "--name", seat_name(user or "")]
        for flag, value in (("--mqtt-ca", self.mqtt_ca), ("--mqtt-cert", self.mqtt_cert),
                            ("--mqtt-key", self.mqtt_key)):
            if value:
                argv += [flag, value]
        return argv


class SharedHost:
    """One world, hosted and published in a thread with its own event loop.

    `make_world()` is called in that thread and returns `(world, bridge_kwargs, finished)`;
    `start()` waits until the bridge is connected and the first state is out, so the first seat
    finds something to attach to.
    """

    def __init__(self, make_world: Callable[[], tuple[Any, dict, Callable[[], bool]]],
                 options: Any, tokens: dict[str, Path], *, speed: float | str | None = None,
                 on_end: Callable[[Any, str], None] | None = None) -> None:
        self.make_world = make_world
        self.options = options
        self.tokens = tokens
        self.speed = speed
        self.on_end = on_end
        self.world: Any = None
        self.bridge: Any = None
        self.reason: str | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def policy(self):
        from devsim_tui.bridge.seats import SeatPolicy

        return SeatPolicy.from_flags([f"{role}=@{path}" for role, path in self.tokens.items()],
                                     "observer")

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="devsim-shared-world",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self.error is not None:
            self.stop()
            if self.error is not None:
                raise UserError(f"serve ssh --shared: the shared world failed: "
                                f"{self.error}") from self.error
            raise UserError(f"serve ssh --shared: cannot reach the broker {self.options.url} "
                            f"in {timeout:.0f}s (is it running?)")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        from devsim_tui.bridge.mqtt import MqttBridge
        from devsim_tui.bridge.seats import host

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        world, bridge_kwargs, finished = self.make_world()
        self.world = world
        self.bridge = MqttBridge(world, self.options, snapshots=True, policy=self.policy(),
                                 **bridge_kwargs)
        watcher = asyncio.get_running_loop().create_task(self._wait_connected())
        try:
            self.reason = await host(world, self.bridge, speed=self.speed, finished=finished,
                                     stop=self._stop)
        finally:
            watcher.cancel()
        if self.on_end is not None:
            self.on_end(world, self.reason)

    async def _wait_connected(self) -> None:
        while not self.bridge.connected:
            await asyncio.sleep(0.02)
        # The first publication (retained state) goes out right after connecting.
        await self.bridge.flush(5.0)
        self._ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # the loop already ended
        if self._thread is not None:
            self._thread.join(timeout)


class TokenDir:
    """A private temporary directory holding the role tokens; removed on close."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="devsim-ssh-shared-"))
        self.tokens = write_tokens(self.path)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
