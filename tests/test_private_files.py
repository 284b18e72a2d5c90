"""Issue 11.5: logs and recordings hold commands and user names, so they are 0600 files (and
a `--record` directory 0700) whatever the umask; under umask 022 they were world-readable."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from devsim_tui.private_files import make_private_dir, open_private
from tests.helpers import REPO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_and_rewritten_files_are_0600_and_devices_untouched(tmp_path, loose_umask):
    with open_private(tmp_path / "new.log", "a") as f:
        f.write("x\n")
    assert mode(tmp_path / "new.log") == 0o600
    old = tmp_path / "old.rec"
    old.write_text("before\n")
    old.chmod(0o644)
    with open_private(old, "w") as f:
        f.write("after\n")
    assert mode(old) == 0o600 and old.read_text() == "after\n"
    before = mode(Path("/dev/null"))
    with open_private("/dev/null", "w") as f:
        f.write("nothing\n")
    assert mode(Path("/dev/null")) == before
    d = make_private_dir(tmp_path / "a" / "recordings")
    assert mode(d) == 0o700
    assert make_private_dir(d) == d


def test_a_recording_is_0600(tmp_path, loose_umask):
    done = subprocess.run([sys.executable, "-m", "devsim_tui", "simulate", "--profile",
                           "development", "--duration", "1m", "--out", os.devnull, "--record",
                           str(tmp_path / "run.rec")], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "run.rec") == 0o600


def test_serve_ssh_log_file_and_record_dir_are_private(tmp_path, xdg, keys, loose_umask):
    log_file, rec_dir = tmp_path / "ssh.log", tmp_path / "rec" / "seats"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "serve", "ssh", "--port", "0", "--host",
         "127.0.0.1", "--authorized-keys", str(tmp_path / "authorized_keys"), "--log-file",
         str(log_file), "--record", str(rec_dir)], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert re.search(r"listening on 127\.0\.0\.1 port \d+", line), line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert mode(log_file) == 0o600 and "listening on" in log_file.read_text()
    assert mode(rec_dir) == 0o700


def test_an_unwritable_log_file_is_a_clear_error(tmp_path, keys):
    done = subprocess.run([sys.executable, "-m", "devsim_tui", "serve", "ssh", "--port", "0",
                           "--authorized-keys", str(tmp_path / "authorized_keys"), "--log-file",
                           str(tmp_path / "missing" / "ssh.log")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "--log-file" in done.stderr
    assert "Traceback" not in done.stderr
