"""The SSH demo server, end to end with the real OpenSSH client on loopback.

Each test starts a server in-process on a free port (host key, config and data in temp XDG
directories), runs `ssh -tt` in a pseudo-terminal of a known size and reads what the client
shows: the control room's own screen, as a person would see it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from devsim_tui.serve.auth import AuthorizedKeys, PasswordFile, hash_password
from devsim_tui.serve.pty_session import PtyChild
from devsim_tui.serve.ssh import SeatCommand, SeatServer, SSHServeConfig, configure_logging

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
                                reason="needs the OpenSSH client (make system-deps)")

ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]"
                  rb"|\x1b[=>78]")
CURSOR_TO = re.compile(rb"\x1b\[(\d+);(\d+)H")
SEAT_START_S = 30.0  # a seat is a fresh Python + Textual process; slow CI machines need slack


def screen_text(raw: bytes) -> str:
    return ANSI.sub(b"", raw).decode("utf-8", "replace")


class SshClient:
    """`ssh -tt` in a pty we hold the master of: what it prints, what we type, its window."""

    def __init__(self, argv: list[str], cols: int = 160, rows: int = 45) -> None:
        self.out = bytearray()
        self.status: int | None = None
        self._exited = asyncio.Event()
        env = dict(os.environ, TERM="xterm-256color")
        self.child = PtyChild(argv, env, cols, rows, self.out.extend, self._exit)

    def _exit(self, status: int) -> None:
        self.status = status
        self._exited.set()

    async def start(self) -> "SshClient":
        await self.child.start()
        return self

    def text(self, since: int = 0) -> str:
        return screen_text(bytes(self.out[since:]))

    async def expect(self, needle: str, since: int = 0, timeout: float = SEAT_START_S) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while needle not in self.text(since):
            if self._exited.is_set() or asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{needle!r} never showed; screen:\n{self.text(since)[-3000:]}")
            await asyncio.sleep(0.1)

    async def type(self, *chunks: bytes) -> None:
        # Key by key, like a person: the app moves focus between keys (":" opens the line).
        for chunk in chunks:
            self.child.write(chunk)
            await asyncio.sleep(0.4)

    async def command(self, line: bytes) -> None:
        """Open the `:` line (again if the app was still starting and missed the key) and run
        `line` in it."""
        for _ in range(10):
            mark = len(self.out)
            self.child.write(b":")
            try:
                await self.expect("tab completes", since=mark, timeout=3)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"the command line never opened:\n{self.text()[-3000:]}")
        await self.type(line)

    async def wait(self, timeout: float = 20.0) -> int:
        await asyncio.wait_for(self._exited.wait(), timeout)
        assert self.status is not None
        return self.status

    async def close(self) -> None:
        await self.child.terminate(grace=1.0)


@pytest.fixture
async def start_server(xdg: Path, tmp_path: Path):
    """`await start_server(**config)` -> a running SeatServer on 127.0.0.1 and a free port."""
    servers: list[SeatServer] = []
    log_path = tmp_path / "ssh.log"
    undo = configure_logging(log_path, stream=open(os.devnull, "w"))

    async def start(**overrides) -> SeatServer:
        config = SSHServeConfig(
            port=0, host="127.0.0.1", seat=SeatCommand("production", seed=7),
            authorized_keys=AuthorizedKeys.read(tmp_path / "authorized_keys"))
        for key, value in overrides.items():
            setattr(config, key, value)
        server = SeatServer(config)
        await server.start()
        server.log_path = log_path
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()
    undo()


def ssh_argv(server: SeatServer, key: Path, *extra: str) -> list[str]:
    return ["ssh", "-tt", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-i", str(key), "-p", str(server.port), *extra, "demo@127.0.0.1"]


def run_ssh(server: SeatServer, key: Path, *args: str) -> subprocess.CompletedProcess:
    argv = ssh_argv(server, key)
    argv.remove("-tt")
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


async def run_ssh_async(server: SeatServer, key: Path, *args: str) -> tuple[int, str]:
    # The server runs on this event loop, so the client must not block it.
    argv = ssh_argv(server, key)
    argv.remove("-tt")
    proc = await asyncio.create_subprocess_exec(*argv, *args, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, (out + err).decode()


async def test_operator_gets_a_control_room_that_acts_and_follows_resizes(start_server, keys):
    server = await start_server()
    client = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        await client.expect("PRODUCTION")
        await client.expect("1 Servers")
        assert "read-only" not in client.text()
        mark = len(client.out)
        await client.command(b"scale 5\r")
        await client.expect("scale replicas=5", since=mark, timeout=30)
        assert "refused" not in client.text(mark)

        # A bigger window: the app redraws to the new size (cursor addressing past the old).
        mark = len(client.out)
        client.child.resize(200, 60)
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            spots = [(int(r), int(c)) for r, c in CURSOR_TO.findall(bytes(client.out[mark:]))]
            if spots and max(r for r, _ in spots) == 60 and max(c for _, c in spots) > 160:
                break
            assert asyncio.get_running_loop().time() < deadline, "the seat did not resize"
            await asyncio.sleep(0.1)
        assert max(r for r, _ in spots) <= 60 and max(c for _, c in spots) <= 200

        await client.type(b"q")
        assert await client.wait() == 0
    finally:
        await client.close()
    await asyncio.sleep(0.2)
    log = server.log_path.read_text()
    assert re.search(r"login user=demo key=SHA256:\S+ role=operator peer=127\.0\.0\.1:\d+", log)
    assert re.search(r"seat start user=demo .* size=160x45", log)
    assert re.search(r"logout user=demo key=SHA256:\S+ role=operator peer=127\.0\.0\.1:\d+", log)
    assert not server.seats


async def test_each_seat_can_record_its_session(start_server, keys, tmp_path):
    """`serve ssh --record DIR`: every seat writes its own replayable recording."""
    from devsim_tui.drill.recording import read
    from devsim_tui.drill.runner import replay

    rec_dir = tmp_path / "recordings"
    rec_dir.mkdir()
    server = await start_server(seat=SeatCommand("production", seed=7,
                                                 record_dir=str(rec_dir)))
    client = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        await client.expect("1 Servers")
        mark = len(client.out)
        await client.command(b"scale 5\r")
        await client.expect("scale replicas=5", since=mark, timeout=30)
        await client.type(b"q")
        assert await client.wait() == 0
    finally:
        await client.close()
    (path,) = rec_dir.glob("demo-*.rec")
    assert (path.stat().st_mode & 0o777) == 0o600  # it names who did what: private
    rec = read(path)
    assert rec.complete and rec.source == "control-room" and rec.end["reason"] == "quit"
    assert "scale" in [c.get("name") for tk in rec.ticks for c in tk.get("c", ())]
    assert replay(rec).ok


async def test_a_dropped_seat_closes_its_recording(start_server, keys, tmp_path):
    """The SSH line drops (the client is gone): the server hangs the seat up (SIGHUP) and its
    recording still ends with a closing line, "seat hung up", and replays."""
    from devsim_tui.drill.recording import read
    from devsim_tui.drill.runner import replay

    rec_dir = tmp_path / "recordings"
    rec_dir.mkdir()
    server = await start_server(seat=SeatCommand("production", seed=7,
                                                 record_dir=str(rec_dir)))
    client = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        await client.expect("1 Servers")
        mark = len(client.out)
        await client.command(b"scale 5\r")
        await client.expect("scale replicas=5", since=mark, timeout=30)
    finally:
        await client.close()  # no `q`: the line just drops
    (path,) = rec_dir.glob("demo-*.rec")
    deadline = asyncio.get_running_loop().time() + 60
    while '"kind":"end"' not in path.read_text():
        assert asyncio.get_running_loop().time() < deadline, "no end line"
        await asyncio.sleep(0.1)
    rec = read(path)
    assert rec.complete and rec.end["reason"] == "seat hung up"
    assert replay(rec).ok


async def test_observer_sees_the_badge_and_cannot_act(start_server, keys):
    server = await start_server()
    client = await SshClient(ssh_argv(server, keys["observer"])).start()
    try:
        await client.expect("OBSERVER · read-only")
        await client.expect("1 Servers")
        mark = len(client.out)
        await client.command(b"scale 5\r")
        await client.expect("refused", since=mark, timeout=30)
        await client.expect("read-only observer", since=mark, timeout=20)
        assert "command.applied" not in client.text(mark)
    finally:
        await client.close()
    assert "role=observer" in server.log_path.read_text()


async def test_a_stranger_key_is_refused(start_server, keys):
    server = await start_server()
    status, out = await run_ssh_async(server, keys["stranger"])
    assert status == 255 and "Permission denied" in out
    assert "refused key user=demo" in server.log_path.read_text()


async def test_exec_and_sessions_without_a_pty_are_refused(start_server, keys):
    server = await start_server()
    status, out = await run_ssh_async(server, keys["operator"], "id")
    assert status == 255 and "exec request failed" in out
    status, out = await run_ssh_async(server, keys["operator"], "-T")
    assert status == 255 and "shell request failed" in out
    log = server.log_path.read_text()
    assert "refused exec 'id'" in log and "refused shell without a pty" in log
    assert not server.seats


async def test_forwarding_and_sftp_are_refused(start_server, keys):
    server = await start_server()
    # OpenSSH: a remote forward the server will not open ends the client.
    status, out = await run_ssh_async(server, keys["operator"], "-N", "-o",
                                      "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9")
    assert status == 255 and "forwarding failed" in out
    # asyncssh client: direct-tcpip (what `ssh -L` does per connection), remote listen, SFTP.
    key = asyncssh.read_private_key(str(keys["operator"]))
    async with asyncssh.connect("127.0.0.1", server.port, username="demo", client_keys=[key],
                                known_hosts=None, agent_path=None) as conn:
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", server.port)
        with pytest.raises(asyncssh.ChannelListenError):
            await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 9)
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.create_unix_connection(asyncssh.SSHUNIXSession, "/tmp/x.sock")
        with pytest.raises((asyncssh.SFTPError, asyncssh.ChannelOpenError)):
            await conn.start_sftp_client()
    log = server.log_path.read_text()
    assert "refused port forward" in log and "refused remote forward" in log
    assert "refused subsystem 'sftp'" in log


async def test_local_forward_with_openssh_cannot_connect_through(start_server, keys):
    server = await start_server()
    # The listener is local to the client; each connection through it asks the server for a
    # channel, which is refused, so the connection closes without a byte.
    from socket import socket

    with socket() as s:
        s.bind(("127.0.0.1", 0))
        local_port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        *[a for a in ssh_argv(server, keys["operator"]) if a != "-tt"], "-N", "-L",
        f"127.0.0.1:{local_port}:127.0.0.1:{server.port}", stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", local_port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("ssh -L never listened")
        data = await asyncio.wait_for(reader.read(100), 10)
        writer.close()
        assert data == b""  # not the server's "SSH-2.0-..." banner: nothing got through
    finally:
        proc.terminate()
        await proc.wait()
    assert "refused port forward" in server.log_path.read_text()


async def test_sessions_over_the_limit_are_turned_away(start_server, keys):
    server = await start_server(max_sessions=1)
    first = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        await first.expect("1 Servers")
        second = await SshClient(ssh_argv(server, keys["observer"])).start()
        try:
            assert await second.wait() == 1
            assert "all 1 seats are taken" in second.text()
        finally:
            await second.close()
        assert len(server.seats) == 1
    finally:
        await first.close()


async def test_an_idle_seat_is_ended_and_the_terminal_restored(start_server, keys):
    server = await start_server(idle_timeout=3.0)
    client = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        # The idle clock runs from the seat's start: on a loaded machine the panes can take
        # longer than the timeout to show, so the client stays active (focus-in reports, which
        # change nothing on screen) until they are up, and only then goes quiet.
        loop = asyncio.get_running_loop()
        deadline = last_input = loop.time()
        deadline += SEAT_START_S
        while "1 Servers" not in client.text():
            assert not client._exited.is_set(), f"ended before the panes:\n{client.text()[-3000:]}"
            assert loop.time() < deadline, f"the panes never showed:\n{client.text()[-3000:]}"
            client.child.write(b"\x1b[I")
            last_input = loop.time()
            await asyncio.sleep(0.5)
        assert await client.wait(timeout=60) == 0
        # The server saw that input no earlier than it was written: not ended before 3 s quiet.
        assert loop.time() - last_input >= 2.9
        assert "session ended (idle for 3s)" in client.text()
        assert b"\x1b[?1049l" in bytes(client.out)  # out of the alternate screen
    finally:
        await client.close()
    assert "reason=idle for 3s" in server.log_path.read_text()
    assert not server.seats


async def test_password_login_only_when_configured(start_server, keys, tmp_path):
    server = await start_server()
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect("127.0.0.1", server.port, username="alice", password="s3cret",
                               client_keys=None, known_hosts=None, agent_path=None)
    passwords = PasswordFile(f"alice:observer:{hash_password('s3cret')}\n")
    server = await start_server(passwords=passwords)
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect("127.0.0.1", server.port, username="alice", password="wrong",
                               client_keys=None, known_hosts=None, agent_path=None)
    async with asyncssh.connect("127.0.0.1", server.port, username="alice", password="s3cret",
                                client_keys=None, known_hosts=None, agent_path=None) as conn:
        chan, session = await conn.create_session(asyncssh.SSHClientSession,
                                                  term_type="xterm-256color",
                                                  term_size=(120, 40), encoding=None)
        seen = bytearray()
        session.data_received = lambda data, _t: seen.extend(data)
        for _ in range(int(SEAT_START_S * 10)):
            if "OBSERVER · read-only" in screen_text(bytes(seen)):
                break
            await asyncio.sleep(0.1)
        assert "OBSERVER · read-only" in screen_text(bytes(seen))
        chan.close()
    log = server.log_path.read_text()
    assert "refused password user=alice" in log
    assert "login user=alice key=password role=observer" in log


def test_cli_serves_with_a_generated_host_key_and_logs_to_a_file(xdg, keys, tmp_path):
    log_file = tmp_path / "cli.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "serve", "ssh", "--port", "0", "--host",
         "127.0.0.1", "--authorized-keys", str(tmp_path / "authorized_keys"), "--log-file",
         str(log_file), "--max-sessions", "2", "--idle-timeout", "5m"],
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1 port (\d+)", line)
        assert m, line
        host_key = xdg / "xdg_data_home" / "devsim-tui" / "ssh_host_ed25519_key"
        assert host_key.exists() and (host_key.stat().st_mode & 0o777) == 0o600
        port = int(m.group(1))
        done = subprocess.run(
            ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-i", str(keys["stranger"]),
             "-p", str(port), "demo@127.0.0.1"], capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL)
        assert done.returncode == 255 and "Permission denied" in done.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "refused key user=demo" in log_file.read_text()
    # Restarting keeps the same host key, so returning clients are not warned.
    from devsim_tui.serve.auth import load_host_key

    key, path = load_host_key()
    assert path == host_key


def test_cli_refuses_to_serve_with_no_way_to_log_in(xdg):
    done = subprocess.run([sys.executable, "-m", "devsim_tui", "serve", "ssh", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--authorized-keys" in done.stderr
