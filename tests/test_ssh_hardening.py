"""Hostile SSH peers (issue 11): password guessing is throttled, a bad pty request never holds a
seat. Driven with the real OpenSSH client on loopback, as an attacker would."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import asyncssh
import pytest

from devsim_tui.serve.auth import PasswordFile, hash_password
from test_ssh import SshClient, ssh_argv, start_server  # noqa: F401 - start_server: fixture

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
                                reason="needs the OpenSSH client (make system-deps)")


def askpass(tmp_path: Path, password: str) -> tuple[Path, Path]:
    """An SSH_ASKPASS program that answers `password` and counts how often it was asked."""
    counter = tmp_path / f"asked-{password}"
    script = tmp_path / f"askpass-{password}.sh"
    script.write_text(f"#!/bin/sh\necho asked >> '{counter}'\necho '{password}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, counter


def asked(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


async def ssh_password(server, script: Path, prompts: int = 20) -> tuple[int, str]:
    """OpenSSH logging in as alice by password only, the password coming from `script`."""
    argv = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
            "-o", f"NumberOfPasswordPrompts={prompts}", "-o", "LogLevel=ERROR",
            "-p", str(server.port), "alice@127.0.0.1", "true"]
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env.update(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force")
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, start_new_session=True)  # no controlling terminal: askpass, not /dev/tty
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, (out + err).decode()


@pytest.fixture
def passwords() -> PasswordFile:
    return PasswordFile(f"alice:observer:{hash_password('s3cret')}\n")


async def test_a_connection_is_cut_after_six_failed_passwords(start_server, keys, passwords,
                                                              tmp_path):
    """Issue 11.2: one connection tried 300 passwords; OpenSSH's MaxAuthTries is 6."""
    server = await start_server(passwords=passwords, auth_delay=0.05, auth_delay_max=0.4)
    wrong, counter = askpass(tmp_path, "guess")
    status, out = await ssh_password(server, wrong)
    assert status == 255 and "Too many authentication failures" in out, out
    assert asked(counter) == 6
    log = server.log_path.read_text()
    tries = re.findall(r"refused password user=alice peer=127\.0\.0\.1:\d+ "
                       r"attempt=(\d)/6 delay=([\d.]+)s", log)
    assert [int(n) for n, _ in tries] == [1, 2, 3, 4, 5, 6]
    # The per-source delay doubles up to its cap.
    assert [float(d) for _, d in tries] == [0.1, 0.1, 0.2, 0.4, 0.4, 0.4]
    assert "disconnected after 6 failed attempts user=alice peer=127.0.0.1" in log

    # The address is remembered across connections: the next failure starts at the cap ...
    status, out = await ssh_password(server, wrong, prompts=1)
    assert status == 255
    assert re.findall(r"attempt=1/6 delay=([\d.]+)s", server.log_path.read_text())[-1] == "0.4"
    # ... and the right password still gets in.
    right, counter = askpass(tmp_path, "s3cret")
    status, out = await ssh_password(server, right)
    assert asked(counter) == 1
    assert "login user=alice key=password role=observer" in server.log_path.read_text()


async def test_parallel_connections_from_one_address_guess_one_at_a_time(start_server, keys,
                                                                         passwords, tmp_path):
    """Six connections made 44 guesses/s: attempts from one address are now serialised, each
    failure answered only after the address's delay."""
    delay = 0.25
    server = await start_server(passwords=passwords, auth_delay=delay, auth_delay_max=delay)
    wrong, counter = askpass(tmp_path, "guess")
    start = time.monotonic()
    results = await asyncio.gather(*(ssh_password(server, wrong, prompts=3) for _ in range(6)))
    elapsed = time.monotonic() - start
    assert all(status == 255 for status, _ in results)
    guesses = asked(counter)
    assert guesses == 18
    # Serialised: at least one delay per guess (in parallel it would be ~3 delays in all).
    assert elapsed >= guesses * delay, elapsed
    assert guesses / elapsed <= 1 / delay


async def test_refused_keys_count_toward_the_limit(start_server, keys, tmp_path):
    """Offering keys one after another (an agent full of them) is capped the same way."""
    server = await start_server()
    extra = []
    for i in range(7):
        path = tmp_path / f"id_other{i}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                       check=True)
        extra += ["-i", str(path)]
    argv = [a for a in ssh_argv(server, keys["stranger"], *extra) if a != "-tt"]
    proc = await asyncio.create_subprocess_exec(*argv, "true", stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 255
    assert "Too many authentication failures" in err.decode()
    log = server.log_path.read_text()
    assert log.count("refused key user=demo") == 6
    assert "disconnected after 6 failed attempts user=demo" in log


# ---------------------------------------------------------------------- pty requests and slots


async def wait_until(cond, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.05)


async def asyncssh_session(server, key: Path, **session_kw):
    """An asyncssh client session (it can send what OpenSSH never would): (conn, chan, out)."""
    conn = await asyncssh.connect("127.0.0.1", server.port, username="demo",
                                  client_keys=[asyncssh.read_private_key(str(key))],
                                  known_hosts=None, agent_path=None)
    seen = bytearray()
    chan, session = await conn.create_session(asyncssh.SSHClientSession, encoding=None,
                                              **session_kw)
    session.data_received = lambda data, _t: seen.extend(data)
    return conn, chan, seen


async def a_seat_is_free(server, keys) -> None:
    """The real OpenSSH client gets the only seat and sees the control room."""
    client = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        await client.expect("1 Servers")
    finally:
        await client.close()
    await wait_until(lambda: not server.seats, what="the seat to be freed")


async def test_a_huge_pty_is_clamped_and_never_holds_the_only_seat(start_server, keys):
    """Issue 11.4: a pty request of 70000x70000 raised struct.error in the seat start and the
    slot stayed counted with no child; with --max-sessions 1 nobody else could get in."""
    server = await start_server(max_sessions=1)
    conn, chan, seen = await asyncssh_session(server, keys["observer"],
                                              term_type="xterm-256color",
                                              term_size=(70000, 70000, 2**32 - 1, 2**32 - 1))
    try:
        await wait_until(lambda: "seat start user=demo" in server.log_path.read_text(),
                         what="the seat start")
        log = server.log_path.read_text()
        assert "clamped pty size 70000x70000 to 1000x400 user=demo" in log
        assert re.search(r"seat start user=demo .* size=1000x400 seats=1", log)
        assert len(server.seats) == 1 and all(s.child.pid for s in server.seats)
    finally:
        chan.close()
        conn.close()
    await wait_until(lambda: not server.seats, what="the clamped seat to be freed")
    assert not server.children
    await a_seat_is_free(server, keys)


async def test_the_biggest_window_openssh_can_have_is_clamped(start_server, keys):
    server = await start_server(max_sessions=1)
    client = await SshClient(ssh_argv(server, keys["operator"]), cols=65535, rows=65535).start()
    try:
        await wait_until(lambda: "seat start user=demo" in server.log_path.read_text(),
                         what="the seat start")
        assert re.search(r"seat start user=demo .* size=1000x400 seats=1",
                         server.log_path.read_text())
        # A resize to something absurd is clamped too (and does not end the seat).
        client.child.resize(65535, 65535, 65535, 65535)
        client.child.resize(200, 50)
        await client.expect("1 Servers", timeout=60)
    finally:
        await client.close()
    await wait_until(lambda: not server.seats, what="the seat to be freed")
    await a_seat_is_free(server, keys)


@pytest.mark.parametrize("term", ["xterm\x00-256color", "xterm\x1b[31m", "../../bin/sh", "x" * 65])
async def test_a_bad_term_is_refused_and_never_holds_the_only_seat(start_server, keys, term):
    server = await start_server(max_sessions=1)
    conn = await asyncssh.connect("127.0.0.1", server.port, username="demo",
                                  client_keys=[asyncssh.read_private_key(str(keys["observer"]))],
                                  known_hosts=None, agent_path=None)
    try:
        with pytest.raises(asyncssh.ChannelOpenError, match="PTY request failed"):
            await conn.create_session(asyncssh.SSHClientSession, term_type=term,
                                      term_size=(80, 24), encoding=None)
    finally:
        conn.close()
    assert "refused pty TERM=" in server.log_path.read_text()
    assert not server.seats and not server.children
    await a_seat_is_free(server, keys)


async def test_a_nul_in_a_client_variable_is_dropped_not_fatal(start_server, keys):
    """LANG/LC_ALL/COLORTERM from the client reach the seat's environment: a NUL there made
    the child's exec fail."""
    server = await start_server(max_sessions=1)
    conn, chan, seen = await asyncssh_session(server, keys["observer"],
                                              term_type="xterm-256color", term_size=(120, 40),
                                              env={"LANG": "C.UTF-8\x00evil",
                                                   "COLORTERM": "truecolor"})
    try:
        await wait_until(lambda: "seat start user=demo" in server.log_path.read_text(),
                         what="the seat start")
        (seat,) = server.seats
        environ = Path(f"/proc/{seat.child.pid}/environ").read_bytes().split(b"\0")
        assert b"COLORTERM=truecolor" in environ
        assert not any(v.startswith(b"LANG=C.UTF-8") and b"evil" in v for v in environ)
    finally:
        chan.close()
        conn.close()
    await wait_until(lambda: not server.seats, what="the seat to be freed")


async def test_any_failure_starting_a_seat_frees_the_slot(start_server, keys, tmp_path):
    """Whatever makes the seat's start fail (here: the control room cannot be executed), the
    client is told, the log says why, and the only slot is free again."""
    from devsim_tui.serve.ssh import SeatCommand

    class Broken(SeatCommand):
        def argv(self, role, user=None):
            return [str(tmp_path / "no-such-program")]

    server = await start_server(max_sessions=1, seat=Broken())
    client = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        assert await client.wait() == 1
        assert "could not start" in client.text()
    finally:
        await client.close()
    assert "seat failed to start user=demo" in server.log_path.read_text()
    assert not server.seats and not server.children


async def test_sigterm_ends_an_ssh_seat_and_frees_it(start_server, keys):
    """Issue 11.13, SSH mode: a seat's control room ends on SIGTERM; the client gets its
    terminal back and the status, the slot is free."""
    import signal

    server = await start_server(max_sessions=1)
    client = await SshClient(ssh_argv(server, keys["operator"])).start()
    try:
        await client.expect("1 Servers")
        (seat,) = server.seats
        mark = len(client.out)
        os.kill(seat.child.pid, signal.SIGTERM)
        assert await client.wait(timeout=30) == 143
        assert b"\x1b[?1049l" in bytes(client.out[mark:])
    finally:
        await client.close()
    await wait_until(lambda: not server.seats, what="the seat to be freed")
    await a_seat_is_free(server, keys)
