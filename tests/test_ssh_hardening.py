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
