"""Recording plain control-room sessions (`devsim-tui --record FILE`) and replaying them: the
same recorder and replay as a drill's, without a scenario. The real CLI in a pseudo-terminal is
SIGKILLed mid-run; what it wrote replays identically."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import REPO, run_cli

from devsim_tui.config.loader import load_profile
from devsim_tui.drill.recording import read
from devsim_tui.drill.runner import replay, session_from_recording
from devsim_tui.drill.session import RecordedSession
from devsim_tui.sim import commands as C

SEED = 7


def recorded_session(path: Path, ticks: int = 240) -> RecordedSession:
    """A plain session driven as an operator would: keys, a typo, a failover, a fault."""
    s = RecordedSession(load_profile("production"), SEED, path, source="control-room")
    s.advance(60)
    s.submit(C.Scale(replicas=6))
    s.submit_line("scael 3")  # refused by the parser: its rejection is an event too
    s.advance(30)
    s.submit_line("failover")
    s.submit_line("chaos latency web-01 5m 2")
    s.advance(ticks - 90)
    s.close("quit")
    return s


def test_a_plain_session_records_its_inputs_and_replays_identically(tmp_path):
    path = tmp_path / "session.rec"
    original = recorded_session(path)
    rec = read(path)
    assert rec.complete and not rec.is_drill and rec.source == "control-room"
    assert rec.header["seed"] == SEED and "scenario" not in rec.header
    assert [tk["n"] for tk in rec.ticks] == list(range(1, 241))
    commands = [c for tk in rec.ticks for c in tk.get("c", ())]
    assert [c.get("name") or c.get("line") for c in commands] == \
        ["scale", "scael 3", "failover", "chaos"]
    assert all(c["n"] == n for tk in rec.ticks for c in tk.get("c", ()) for n in [tk["n"]])
    assert rec.end == {"kind": "end", "reason": "quit", "ticks": 240}
    types = {e["type"] for e in rec.events()}
    assert {"command.rejected", "command.applied"} <= types
    result = replay(rec)
    assert result.ok, result.mismatch
    assert result.ticks == 240
    assert result.session.snapshot().agg == original.snapshot().agg


def test_replay_catches_a_recording_that_does_not_reproduce(tmp_path):
    path = tmp_path / "session.rec"
    recorded_session(path)
    lines = path.read_text().splitlines()
    # Drop the operator's scale command: the rest of the run no longer follows from the inputs.
    k = next(i for i, line in enumerate(lines) if '"name":"scale"' in line)
    tick = json.loads(lines[k])
    tick["c"] = [c for c in tick["c"] if c.get("name") != "scale"]
    lines[k] = json.dumps(tick, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    result = replay(read(path))
    assert not result.ok and f"tick {tick['n']}" in result.mismatch


def test_a_plain_recording_is_not_a_drill_to_report(tmp_path, capsys):
    from devsim_tui.cli import main

    path = tmp_path / "session.rec"
    recorded_session(path, ticks=100)
    assert main(["drill", "report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "control-room recording, not a drill's" in err and "Traceback" not in err
    assert main(["replay", "--headless", str(path)]) == 0
    assert "replay identical: 100 ticks" in capsys.readouterr().out


def test_a_session_without_keep_holds_no_ticks_in_memory(tmp_path):
    s = RecordedSession(load_profile("production"), SEED, tmp_path / "r.rec", keep=False)
    s.advance(50)
    s.close()
    assert s.recording.ticks == [] and len(read(tmp_path / "r.rec").ticks) == 50


# ---------------------------------------------------------------------- the control room


async def test_the_control_room_records_what_its_keys_send(tmp_path, config_home):
    from devsim_tui.cmd.ui import close_world
    from devsim_tui.ui.app import create_app

    path = tmp_path / "room.rec"
    app = create_app("production", seed=SEED, paused=True, record=str(path), no_confirm=True,
                     config_dir=config_home / "devsim-tui")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("full_stop", "full_stop", "right_square_bracket", "f")
        await pilot.press("colon", *"scael 4", "enter")
        await pilot.press("full_stop")
        await pilot.pause()
    close_world(app.world, "quit")
    rec = read(path)
    assert rec.complete and rec.end["reason"] == "quit" and len(rec.ticks) == 3
    sent = [(c["n"], c.get("name") or c.get("line")) for tk in rec.ticks
            for c in tk.get("c", ())]
    # the pause (--paused) applies with the first step; the keys' commands at the third
    assert sent == [(1, "pause"), (3, "scale"), (3, "failover"), (3, "scael 4")]
    assert replay(rec).ok


async def test_a_plain_recording_plays_back_in_the_control_room(tmp_path, config_home):
    from devsim_tui.ui.replay import SessionReplayRoom, create_replay_app

    path = tmp_path / "session.rec"
    recorded_session(path)
    rec = read(path)
    app = create_replay_app(rec, paused=True, theme="control-room",
                            config_dir=config_home / "devsim-tui")
    assert isinstance(app, SessionReplayRoom)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "REPLAY 00:00" in str(app.query_one("#replay-badge").render())
        assert not app.query("#drill-pane")
        await pilot.press("colon", *"seek 2m", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert app.world.tick == 120
        reference = session_from_recording(rec)
        for tk in rec.ticks[:120]:
            for c in tk.get("c", ()):
                reference.apply(c)
            reference.step()
        assert app.world.snapshot().agg == reference.snapshot().agg
        before = app.world.tick
        await pilot.press("colon", *"scale 2", "enter")
        await pilot.pause()
        assert "replay (read-only" in list(app._notifications)[-1].message
        await pilot.press("full_stop")
        await pilot.pause()
        assert app.world.tick == before + 1


# ---------------------------------------------------------------------- the real CLI, killed


ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]"
                  rb"|\x1b[=>78]")


class PtyRun:
    """The CLI in a pseudo-terminal, its output drained in a thread (a full pty would block it)."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str]):
        master, slave = pty.openpty()
        import fcntl
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen([sys.executable, "-m", "devsim_tui", *args], stdin=slave,
                                     stdout=slave, stderr=slave, cwd=cwd, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                if select.select([self.master], [], [], 0.1)[0]:
                    chunk = os.read(self.master, 65536)
                    if not chunk:
                        return
                    self.output += chunk
            except OSError:
                return

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def screen(self, since: int = 0) -> str:
        """What was printed from byte `since` on, without the escape sequences."""
        return ANSI.sub(b"", bytes(self.output[since:])).decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        os.close(self.master)


def wait_until(condition, seconds: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def text_of(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.fixture
def pty_env(tmp_path) -> dict[str, str]:
    env = dict(os.environ, TERM="xterm-256color", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    env.pop("TEXTUAL", None)
    return env


def test_a_control_room_killed_mid_run_leaves_a_replayable_recording(tmp_path, pty_env):
    path = tmp_path / "room.rec"
    run = PtyRun("--profile", "production", "--seed", str(SEED), "--speed", "max",
                 "--no-confirm", "--record", str(path), cwd=REPO, env=pty_env)
    try:
        wait_until(lambda: text_of(path).count('"kind":"tick"') > 200, what="200 ticks")
        # Scale up; a typo (refused, recorded as typed); failover. Each key waits for the one
        # before it to reach the recording: on a loaded machine a key sent a fixed time after
        # Enter could still land in the command line instead of on the screen's bindings.
        run.send(b"]")
        wait_until(lambda: '"name":"scale"' in text_of(path), what="the scale command")
        mark = len(run.output)
        run.send(b":")
        wait_until(lambda: "tab completes" in run.screen(mark), what="the command line")
        run.send(b"scael 3\r")
        wait_until(lambda: '"line":"scael 3"' in text_of(path), what="the typo")
        run.send(b"f")
        wait_until(lambda: '"name":"failover"' in text_of(path), what="the failover")
        wait_until(lambda: text_of(path).count('"kind":"tick"') > 600, what="more ticks")
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=10)
        assert run.proc.returncode == -signal.SIGKILL
    finally:
        run.close()
    rec = read(path)
    assert not rec.complete and rec.source == "control-room"
    n = len(rec.ticks)
    assert n > 200 and [tk["n"] for tk in rec.ticks] == list(range(1, n + 1))
    names = [c.get("name") or c.get("line") for tk in rec.ticks for c in tk.get("c", ())]
    assert {"scale", "failover", "scael 3"} <= set(names)
    r = run_cli("replay", "--headless", str(path))
    assert r.returncode == 0, r.stderr
    assert f"replay identical: {n} ticks" in r.stdout and "cut short" in r.stdout


def test_quitting_the_control_room_closes_its_recording(tmp_path, pty_env):
    path = tmp_path / "room.rec"
    run = PtyRun("--profile", "development", "--seed", str(SEED), "--speed", "max",
                 "--record", str(path), cwd=REPO, env=pty_env)
    try:
        wait_until(lambda: text_of(path).count('"kind":"tick"') > 50, what="50 ticks")
        run.send(b"q")
        run.proc.wait(timeout=30)
        assert run.proc.returncode == 0
        wait_until(lambda: b"play it back" in run.output, seconds=10, what="the closing words")
    finally:
        run.close()
    rec = read(path)
    assert rec.complete and rec.end["reason"] == "quit"
    assert rec.end["ticks"] == len(rec.ticks) and rec.header["profile"]["name"] == "development"
    assert replay(rec).ok


def test_a_hung_up_seat_closes_its_recording(tmp_path, pty_env):
    """`serve ssh` ends a seat with SIGHUP (so does a dropped line): the recording still gets
    its end line, "seat hung up", and the process dies of the hang-up as before."""
    path = tmp_path / "seat.rec"
    run = PtyRun("--profile", "development", "--seed", str(SEED), "--speed", "max",
                 "--record", str(path), cwd=REPO, env=pty_env)
    try:
        wait_until(lambda: text_of(path).count('"kind":"tick"') > 50, what="50 ticks")
        os.killpg(run.proc.pid, signal.SIGHUP)
        run.proc.wait(timeout=30)
        assert run.proc.returncode == -signal.SIGHUP
    finally:
        run.close()
    rec = read(path)
    assert rec.complete and rec.end["reason"] == "seat hung up"
    assert text_of(path).rstrip().splitlines()[-1].startswith('{"kind":"end"')
    assert replay(rec).ok


def test_record_into_a_missing_directory_fails_before_the_screen(tmp_path):
    r = run_cli("--record", str(tmp_path / "no" / "such" / "x.rec"))
    assert r.returncode == 2 and "--record" in r.stderr and "no such directory" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_simulate_records_a_replayable_run(tmp_path, capsys):
    from devsim_tui.cli import main

    commands = tmp_path / "c.yaml"
    commands.write_text("- {at: 30s, command: scale, args: {replicas: 5}}\n"
                        "- {at: 60s, command: crash-node, args: {node: primary}}\n")
    rec_path, out = tmp_path / "sim.rec", tmp_path / "out.jsonl"
    assert main(["simulate", "--profile", "production", "--seed", "7", "--duration", "3m",
                 "--commands", str(commands), "--out", str(out), "--record", str(rec_path)]) == 0
    rec = read(rec_path)
    assert rec.complete and rec.source == "simulate" and rec.end["reason"] == "end"
    assert len(rec.ticks) == 180
    assert [c["name"] for tk in rec.ticks for c in tk.get("c", ())] == ["scale", "crash-node"]
    # The recording's events are the run's JSON-lines events, one for one.
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(1 for e in events if e.get("kind") == "event") == len(rec.events())
    assert replay(rec).ok


def test_a_control_room_whose_terminal_vanishes_exits_and_closes_its_recording(tmp_path,
                                                                               pty_env):
    """No SIGHUP reaches it (it is not the terminal's session leader): without its own watch it
    would spin on the dead terminal at full CPU for ever."""
    path = tmp_path / "room.rec"
    run = PtyRun("--profile", "production", "--seed", str(SEED), "--record", str(path),
                 cwd=REPO, env=pty_env)
    try:
        wait_until(lambda: text_of(path).count('"kind":"tick"') >= 2, what="ticks")
        os.close(run.master)
        run.master = os.open(os.devnull, os.O_RDWR)  # for close()
        run.proc.wait(timeout=30)
        # Our watch (129), or Textual's input thread failing first on the dead terminal (1).
        assert run.proc.returncode in (1, 129)
    finally:
        run.close()
    rec = read(path)
    assert rec.complete and rec.end["reason"] in ("terminal gone", "crashed")


def test_a_broken_recording_is_named_not_a_traceback(tmp_path, capsys):
    from devsim_tui.cli import main

    path = tmp_path / "session.rec"
    recorded_session(path, ticks=20)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    cases = {
        "no-seed": {k: v for k, v in header.items() if k != "seed"},
        "bad-profile": {**header, "profile": {**header["profile"], "scaling": {"mode": "magic"}}},
    }
    for name, head in cases.items():
        bad = tmp_path / f"{name}.rec"
        bad.write_text("\n".join([json.dumps(head)] + lines[1:]) + "\n")
        assert main(["replay", "--headless", str(bad)]) == 2, name
        err = capsys.readouterr().err
        assert f"{bad}:1:" in err and "Traceback" not in err, err
    bad = tmp_path / "bad-tick.rec"
    bad.write_text("\n".join(lines[:3] + ['{"kind":"tick"}'] + lines[3:]) + "\n")
    assert main(["replay", "--headless", str(bad)]) == 2
    assert f"{bad}:4: a tick line without" in capsys.readouterr().err
