"""Issue 11.13: a control room ends on SIGTERM in every mode, cleanly when it can and within a
bounded time when it cannot (a watchdog). Browser mode's seats: tests/test_web.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

from devsim_tui.serve.pty_session import PtyChild
from tests.helpers import REPO

DRAWN = "1 Servers"  # the control room is on screen


async def test_sigterm_ends_a_control_room_in_a_terminal_cleanly(tmp_path):
    out = bytearray()
    done = asyncio.Event()
    status: list[int] = []
    env = dict(os.environ, TERM="xterm-256color")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp_path / var.lower())
    record = tmp_path / "session.rec"
    child = PtyChild([sys.executable, "-m", "devsim_tui", "--profile", "development",
                      "--record", str(record)], env, 120, 40, out.extend,
                     lambda s: (status.append(s), done.set()))
    await child.start()
    try:
        deadline = time.monotonic() + 60
        while DRAWN.encode() not in bytes(out):
            assert time.monotonic() < deadline and not done.is_set(), bytes(out)[-2000:]
            await asyncio.sleep(0.1)
        mark = len(out)
        started = time.monotonic()
        os.kill(child.pid, signal.SIGTERM)
        await asyncio.wait_for(done.wait(), 30)
        took = time.monotonic() - started
    finally:
        await child.terminate(grace=1.0)
    assert status == [143]  # exited by itself with 128 + SIGTERM, not killed by the signal
    assert took < 10, took
    assert b"\x1b[?1049l" in bytes(out[mark:])  # the terminal was given back
    from devsim_tui.drill.recording import read

    assert read(record).end["reason"] == "terminated"


@contextlib.contextmanager
def spinning_child(on_exit: str, grace: float):
    """A Python child whose main thread spins after `install_sigterm(on_exit, grace)`; yielded
    once it said it is ready, killed if a test leaves it running."""
    code = ("from devsim_tui.ui.lifeline import install_sigterm\n"
            f"install_sigterm({on_exit}, grace={grace})\n"
            "print('ready', flush=True)\n"
            "while True:\n    pass\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()


def test_the_watchdog_ends_a_process_whose_loop_is_stuck():
    """If the clean exit cannot run (here: nothing ever asks, the main thread spins), the
    watchdog ends the process after the grace period with 143."""
    with spinning_child("lambda code: None", grace=1.0) as proc:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 143
        assert 0.9 <= time.monotonic() - started < 10


def test_a_second_sigterm_ends_at_once():
    with spinning_child("lambda code: print('asked', code, flush=True)", grace=600) as proc:
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline().strip() == "asked 143"  # the first was handled
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 143


def test_leaving_ends_a_process_whose_shutdown_is_stuck():
    """The terminal (or the browser server) is gone and the app is asked to exit, but its
    shutdown never finishes (Textual's writer thread waiting on the dead terminal: here an app
    whose exit does nothing and a main thread that spins): after the grace period the process
    ends anyway with the status asked for, the recording's closing line first."""
    code = ("from devsim_tui.ui.lifeline import leave\n"
            "class World:\n"
            "    def close(self, reason):\n"
            "        print('closed', reason, flush=True)\n"
            "class App:\n"
            "    world = World()\n"
            "    def exit(self, code, return_code):\n"
            "        print('asked', code, flush=True)\n"
            "app = App()\n"
            "leave(app, 129, grace=1.0)\n"
            "leave(app, 129, grace=0.0)  # once per app: not a second watchdog\n"
            "while True:\n    pass\n")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.wait(20) == 129
        assert proc.stdout.read().split("\n")[:2] == ["asked 129", "closed terminal gone"]
        assert 0.9 <= time.monotonic() - started < 15
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
