"""A real mosquitto broker for tests: free loopback port, temp config, started and stopped here.

`Mosquitto(tmp_path)` picks a free port; `start()` launches the broker and waits until the port
accepts connections; `stop()` terminates it (the port stays reserved for a `start()` again, which
is how the tests kill and restart a broker mid-run). `skip_without_mosquitto()` skips a test with
a clear reason when the binary is absent (CI installs it: apt-get install mosquitto).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)


def client_binary(name: str) -> str | None:
    """mosquitto_pub / mosquitto_sub, if installed."""
    return shutil.which(name)


def skip_without_mosquitto() -> str:
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients)")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """One broker process on 127.0.0.1:<port>, anonymous, without persistence."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.binary = skip_without_mosquitto()
        self.port = port or free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # Default limits would let a slow subscriber lose QoS 1 messages under load.
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}{log}")
            if port_open(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on {self.port} in {timeout}s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()
        # A restart on the same port must not race the old listener's socket going away.
        deadline = time.monotonic() + 5
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        """Die abruptly (SIGKILL): no clean disconnects, as when a broker host fails."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.stop()

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


PROBE = "__devsim_test_probe__"


class Subscriber:
    """A mosquitto_sub that is known to be subscribed before the test publishes.

    A sleep after starting mosquitto_sub races a loaded machine (the command's result goes out
    before the subscription exists and is lost). Here the subscriber also listens on a probe
    topic, and `start()` publishes a probe until the subscriber prints it: once one probe came
    back, the subscription to the real topics (made in the same SUBSCRIBE) is live too.
    `-C N` in argv is honoured by `lines()` (probes are not counted), not by mosquitto_sub.
    """

    def __init__(self, argv: list[str], port: int) -> None:
        argv = list(argv)
        self.count = None
        if "-C" in argv:
            i = argv.index("-C")
            self.count = int(argv[i + 1])
            del argv[i:i + 2]
        self.port = port
        self.probe_topic = f"devsim-test-probe/{os.getpid()}/{id(self)}"
        self.argv = [*argv, "-t", self.probe_topic]
        self.proc: subprocess.Popen | None = None
        self._buffer = b""
        self._pending: list[str] = []  # messages seen while waiting for a probe: kept

    def start(self, timeout: float = 30.0) -> "Subscriber":
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            subprocess.run([client_binary("mosquitto_pub") or "mosquitto_pub", "-h", "127.0.0.1",
                            "-p", str(self.port), "-t", self.probe_topic, "-m", PROBE],
                           check=True, timeout=10, capture_output=True)
            if self._next_line(0.5, probes=True) is not None:
                return self
            assert self.proc.poll() is None, f"mosquitto_sub ended: {self.proc.returncode}"
        raise AssertionError(f"mosquitto_sub did not subscribe within {timeout}s")

    def _next_line(self, timeout: float, probes: bool = False) -> str | None:
        """The next line (a probe when `probes`, else the next non-probe line), or None."""
        import select

        if not probes and self._pending:
            return self._pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode()
                if (line == PROBE) == probes:
                    return line
                if probes:
                    self._pending.append(line)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None
                self._buffer += chunk

    def lines(self, n: int | None = None, timeout: float = 30.0) -> list[str]:
        """The next `n` (default: argv's -C) messages, probes left out; then the subscriber ends."""
        n = n if n is not None else self.count
        assert n is not None, "how many lines? (no -C in argv)"
        deadline = time.monotonic() + timeout
        got: list[str] = []
        try:
            while len(got) < n:
                line = self._next_line(max(0.0, deadline - time.monotonic()))
                if line is None:
                    break
                got.append(line)
        finally:
            self.stop()
        return got

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
