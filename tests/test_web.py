"""Browser mode: `devsim-tui serve web` answers with textual-serve's page for the control room."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from devsim_tui.serve.ssh import SeatCommand
from devsim_tui.serve.web import web_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_web_command_runs_the_control_room_with_the_seat_flags():
    argv = shlex.split(web_command(SeatCommand("development", seed=3, speed="10"),
                                   observer=True))
    # `exec`: the shell textual-serve starts is replaced, the seat is the server's own child.
    assert argv[0] == "exec"
    assert argv[1] == sys.executable and argv[2:4] == ["-m", "devsim_tui"]
    assert argv[4:] == ["--profile", "development", "--seed", "3", "--speed", "10", "--observer"]


def test_serve_web_answers_the_root_page(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "devsim_tui", "serve", "web", "--port",
                             str(port), "--host", "127.0.0.1", "--profile", "development"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    status, body = resp.status, resp.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "serve web never answered"
                time.sleep(0.2)
        assert status == 200
        assert "textual" in body.lower() and "devsim-tui" in body
        # The page points its terminal at this server's WebSocket endpoint.
        assert f"ws://127.0.0.1:{port}/ws" in body
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode is not None


def test_serve_web_reports_a_bad_profile_before_listening():
    done = subprocess.run([sys.executable, "-m", "devsim_tui", "serve", "web", "--port", "0",
                           "--profile", "no-such-profile"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "no-such-profile" in done.stderr


# ---------------------------------------------------------------------- seats end (issue 11.13)


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    import os

    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def wait_until(cond, timeout: float, what: str) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f}s"
        await asyncio.sleep(0.2)


async def open_seat(tmp_path):
    """`serve web` and one browser tab's WebSocket: (server process, session, ws, seat pid)."""
    import aiohttp

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "devsim_tui", "serve", "web", "--port",
                             str(port), "--host", "127.0.0.1", "--profile", "development"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    session = aiohttp.ClientSession()
    deadline = time.monotonic() + 60
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/") as resp:
                assert resp.status == 200
            break
        except aiohttp.ClientError:
            assert proc.poll() is None and time.monotonic() < deadline, "serve web never answered"
            await __import__("asyncio").sleep(0.2)
    # As a browser does: the page's own origin.
    ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=100&height=30",
                                  origin=f"http://localhost:{port}")
    received = 0
    while received < 5000:  # the control room is drawing in the tab
        msg = await ws.receive(timeout=60)
        assert msg.type.name in ("BINARY", "TEXT"), msg
        received += len(msg.data)
    (seat,) = children(proc.pid)
    assert b"devsim_tui" in open(f"/proc/{seat}/cmdline", "rb").read()
    proc.port = port
    return proc, session, ws, seat


async def drain(ws) -> None:
    """Keep reading the tab's socket (a browser would), so closing handshakes complete."""
    try:
        while not ws.closed:
            await ws.receive(timeout=120)
    except Exception:  # noqa: BLE001 - the server went away: that is the point
        pass


async def test_stopping_serve_web_ends_its_seats(tmp_path):
    import asyncio

    proc, session, ws, seat = await open_seat(tmp_path)
    reader = asyncio.ensure_future(drain(ws))
    try:
        proc.terminate()
        await wait_until(lambda: proc.poll() is not None, 40, "serve web stopped")
        await wait_until(lambda: not alive(seat), 5, "the seat ended with the server")
    finally:
        reader.cancel()
        await session.close()
        if proc.poll() is None:
            proc.kill()
        if alive(seat):
            __import__("os").kill(seat, 9)


async def test_a_seat_ends_when_serve_web_dies_without_stopping(tmp_path):
    """SIGKILL leaves no chance to stop the seats: each notices its server is gone."""
    import asyncio
    import os

    proc, session, ws, seat = await open_seat(tmp_path)
    reader = asyncio.ensure_future(drain(ws))
    try:
        proc.kill()
        proc.wait(10)
        await wait_until(lambda: not alive(seat), 30, "the orphaned seat ended")
    finally:
        reader.cancel()
        await session.close()
        if alive(seat):
            os.kill(seat, 9)


async def test_closing_the_tab_ends_its_seat(tmp_path):
    import os

    proc, session, ws, seat = await open_seat(tmp_path)
    try:
        await ws.close()
        await wait_until(lambda: not alive(seat), 30, "the tab's seat ended")
        assert proc.poll() is None  # the server goes on
    finally:
        await session.close()
        proc.terminate()
        proc.wait(30)
        if alive(seat):
            os.kill(seat, 9)


async def test_another_site_cannot_open_a_seat(tmp_path):
    """A web page elsewhere (cross-site WebSocket hijacking), or one posing as this server
    through DNS rebinding, is refused before any control room starts."""
    import os

    import aiohttp

    proc, session, ws, seat = await open_seat(tmp_path)
    port = proc.port
    try:
        for headers in ({"Origin": "https://evil.example"},
                        {"Origin": f"http://127.0.0.1:{port + 1}"},
                        {"Origin": f"http://rebind.example:{port}",
                         "Host": f"rebind.example:{port}"}):
            try:
                await session.ws_connect(f"ws://127.0.0.1:{port}/ws", headers=headers)
                raise AssertionError(f"a seat was opened for {headers}")
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 403, exc
        assert children(proc.pid) == [seat]  # no other control room was started
    finally:
        await session.close()
        proc.terminate()
        proc.wait(30)
        if alive(seat):
            os.kill(seat, 9)
