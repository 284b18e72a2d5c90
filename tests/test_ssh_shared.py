"""`serve ssh --shared`: SSH seats on ONE world the server hosts, end to end.

The server is the real command line (`python -m devsim_tui serve ssh --shared --mqtt URL`),
the broker a real mosquitto (tests/mosquitto.py), the clients the real OpenSSH `ssh -tt` in
pseudo-terminals (tests/test_ssh.py's SshClient): what each person sees on their screen.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devsim_tui.bridge.options import build_options
from devsim_tui.bridge.remote import RemoteWorld
from devsim_tui.sim import commands as C
from test_ssh import SshClient

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
                                reason="needs the OpenSSH client (make system-deps)")

SIM = "ssh-shared-test"


@pytest.fixture
def shared_server(broker, keys, xdg, tmp_path):
    """The CLI server; yields (port, log file)."""
    log_file = tmp_path / "ssh.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "serve", "ssh", "--shared", "--mqtt", broker.url,
         "--sim-id", SIM, "--port", "0", "--host", "127.0.0.1", "--authorized-keys",
         str(tmp_path / "authorized_keys"), "--seed", "7", "--speed", "5", "--log-file",
         str(log_file), "--record", str(tmp_path / "rec")], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"the server ended: {proc.wait()}"
            m = re.search(r"listening on 127\.0\.0\.1 port (\d+)", line)
            port = int(m.group(1)) if m else None
        assert port is not None
        yield port, log_file, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def ssh_argv(port: int, key: Path, user: str) -> list[str]:
    return ["ssh", "-tt", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-i", str(key), "-p", str(port), f"{user}@127.0.0.1"]


async def test_two_ssh_seats_share_one_world_and_the_observer_cannot_act(shared_server, keys,
                                                                         broker):
    port, log_file, server = shared_server
    olga = await SshClient(ssh_argv(port, keys["operator"], "olga")).start()
    otto = await SshClient(ssh_argv(port, keys["observer"], "otto")).start()
    try:
        # Each seat is an attached control room, with the role its key gives.
        await olga.expect("operator olga")
        await otto.expect("observer otto")
        await otto.expect("OBSERVER · read-only")
        await olga.expect("1 Servers")
        await otto.expect("1 Servers")
        # The seat's own link to the broker (a seat typing before it is up is told "not sent").
        await olga.expect("HOST online")
        await otto.expect("HOST online")

        # The operator acts; the observer's screen shows it: the same world.
        mark_olga, mark_otto = len(olga.out), len(otto.out)
        await olga.command(b"scale 5\r")
        await olga.expect("scale replicas=5", since=mark_olga, timeout=45)
        await otto.expect("scale replicas=5", since=mark_otto, timeout=45)
        assert "refused" not in olga.text(mark_olga)

        # The observer's attempt is refused and changes nothing anyone sees.
        mark_olga, mark_otto = len(olga.out), len(otto.out)
        await otto.command(b"scale 1\r")
        await otto.expect("refused", since=mark_otto, timeout=30)
        await asyncio.sleep(2)
        assert "replicas=1" not in olga.text(mark_olga)
        assert "replicas=1" not in otto.text(mark_otto).replace("scale 1", "")
    finally:
        await olga.close()
        await otto.close()

    # Someone on the broker without a token may claim observer at most: the host refuses.
    options = build_options(broker.url, sim_id=SIM)
    intruder = RemoteWorld(options, seat="mallory", role="operator")
    await intruder.connect(10)
    try:
        intruder.submit(C.Scale(replicas=2))
        deadline = time.monotonic() + 10
        while not intruder.results:
            assert time.monotonic() < deadline, "the host never answered"
            await asyncio.sleep(0.05)
        result = intruder.results[-1]
        assert result["status"] == "rejected" and "needs a seat token" in result["reason"]
        await asyncio.sleep(1)
        assert not [e for e in intruder.events_since(0) if "replicas=2" in e.message]
    finally:
        await intruder.stop()

    log = log_file.read_text()
    assert re.search(r"hosting profile \S+ under devsim/ssh-shared-test/", log)
    assert re.search(r"seat start user=olga .* role=operator", log)
    assert re.search(r"seat start user=otto .* role=observer", log)


async def test_the_shared_world_is_recorded_with_who_acted(shared_server, keys, tmp_path):
    from devsim_tui.drill.recording import read
    from devsim_tui.drill.runner import replay

    port, _log_file, proc = shared_server
    olga = await SshClient(ssh_argv(port, keys["operator"], "olga")).start()
    try:
        await olga.expect("1 Servers")
        await olga.expect("HOST online")
        mark = len(olga.out)
        await olga.command(b"scale 5\r")
        await olga.expect("scale replicas=5", since=mark, timeout=45)
        await olga.type(b"q")
        await olga.wait()
    finally:
        await olga.close()
    proc.terminate()
    proc.wait(timeout=30)
    (path,) = (tmp_path / "rec").glob("shared-*.rec")
    rec = read(path)
    assert rec.complete and rec.source == "serve-ssh-shared"
    scale = [c for tk in rec.ticks for c in tk.get("c", ()) if c.get("name") == "scale"]
    assert scale and "olga" in scale[0]["by"] and "operator" in scale[0]["by"]
    assert replay(rec).ok


async def test_seats_get_their_role_token_as_a_private_file(shared_server, keys):
    port, _log, server = shared_server
    client = await SshClient(ssh_argv(port, keys["operator"], "olga")).start()
    try:
        await client.expect("operator olga")
        pids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(server.pid)],
                              capture_output=True, text=True).stdout.split()
        children = "\n".join(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                              .decode() for pid in pids)
        m = re.search(r"-m devsim_tui attach --mqtt \S+ --sim-id ssh-shared-test --seat operator "
                      r"--token @(\S+) --name olga", children)
        assert m, children
        token_file = Path(m.group(1))
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        assert len(token_file.read_text().strip()) >= 32
    finally:
        await client.close()
    server.terminate()
    server.wait(timeout=20)
    assert not token_file.exists()  # removed when the server stops


def test_shared_flags_are_checked(xdg, tmp_path, keys):
    base = [sys.executable, "-m", "devsim_tui", "serve", "ssh", "--port", "0",
            "--authorized-keys", str(tmp_path / "authorized_keys")]
    done = subprocess.run(base + ["--shared"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--mqtt URL" in done.stderr
    done = subprocess.run(base + ["--drill", "x"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--drill needs --shared" in done.stderr
    from mosquitto import free_port

    done = subprocess.run(base + ["--shared", "--mqtt", f"mqtt://127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot reach the broker" in done.stderr


def test_facilitator_role_and_attach_argv(tmp_path):
    from devsim_tui.serve.auth import AuthorizedKeys
    from devsim_tui.serve.shared import AttachCommand, seat_name, write_tokens
    from devsim_tui.serve.ssh import SeatCommand

    AuthorizedKeys('devsim-role="facilitator" ssh-ed25519 '
                   'AAAAC3NzaC1lZDI1NTE5AAAAIGq1X1hQ0fA3lq0YpN6l5Zt9t2f0f6v6v1m9q3n8n3nW x\n')
    assert "--observer" not in SeatCommand().argv("facilitator")
    assert "--observer" in SeatCommand().argv("somebody")
    d = tmp_path / "tokens"
    d.mkdir()
    tokens = write_tokens(d)
    cmd = AttachCommand("mqtt://b:1883", "s", tokens)
    argv = cmd.argv("facilitator", "fay smith!")
    assert argv[argv.index("--seat") + 1] == "facilitator"
    assert argv[argv.index("--token") + 1] == f"@{tokens['facilitator']}"
    assert argv[argv.index("--name") + 1] == "fay-smith"
    assert cmd.argv("??")[cmd.argv("??").index("--seat") + 1] == "observer"
    assert seat_name("") == "seat"
    assert len({p.read_text() for p in tokens.values()}) == 3
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in tokens.values())
