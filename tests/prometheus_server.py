"""A real Prometheus server for tests: free loopback port, temp data dir, started and stopped here.

`PrometheusServer(config, workdir)` runs Debian's `prometheus` binary (CI installs the package,
.ci/system-deps.sh) on a free port with its TSDB in `workdir`; `start()` waits until `/-/ready`
answers; `query()`, `alerts()` and `query_range()` speak the HTTP API (api/v1); `stop()`
terminates it. `skip_without_prometheus()` skips with a clear reason when it is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.mosquitto import free_port


def skip_without_prometheus() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install -y prometheus)")
    return binary


class PrometheusServer:
    def __init__(self, config: Path, workdir: Path, extra_args: tuple[str, ...] = ()):
        self.binary = skip_without_prometheus()
        self.config = Path(config)
        self.workdir = Path(workdir)
        self.port = free_port()
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
             *self.extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.config.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.proc.returncode}):\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus not ready:\n" + self.log.read_text(errors="replace"))

    def get(self, path: str, **params: Any) -> Any:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read().decode())
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.get("/api/v1/query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.get("/api/v1/query_range", query=expr, start=f"{start:.3f}",
                        end=f"{end:.3f}", step=f"{step:g}")["result"]

    def alerts(self) -> list[dict]:
        return self.get("/api/v1/alerts")["alerts"]

    def targets_up(self) -> int:
        return sum(1 for t in self.get("/api/v1/targets")["activeTargets"]
                   if t.get("health") == "up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None) is not None:
            self._log.close()
