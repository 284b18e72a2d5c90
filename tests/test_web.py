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
    assert argv[0] == sys.executable and argv[1:3] == ["-m", "devsim_tui"]
    assert argv[3:] == ["--profile", "development", "--seed", "3", "--speed", "10", "--observer"]


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
