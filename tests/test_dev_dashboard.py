"""The development web dashboard: the engine's development-workflow record (DevLoop) and
`devsim-tui serve dashboard` in a real headless Chromium (DOM dump and screenshot pixels)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

import numpy as np
import pytest

from devsim_tui.sim.devloop import SUITE_BASE, DevLoop
from tests.helpers import REPO, engine, run_cli
from tests.mosquitto import free_port

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,1000")


def _changes(e, n: int, every: int = 90) -> None:
    for _ in range(n):
        e.submit_line("code-change")
        e.step(every)


def test_devloop_records_builds_tests_and_reloads_from_the_engine_events():
    e = engine("development", seed=42)
    loop = DevLoop(e)
    e.attach(loop)
    _changes(e, 6)
    s = loop.state()
    types = [ev.type for ev in e.events.since(0)]
    ok = types.count("build.succeeded")
    assert s["counts"]["builds"] == types.count("build.started") == 6
    assert s["counts"]["builds_failed"] == types.count("build.failed")
    assert s["counts"]["test_runs"] == types.count("tests.passed") == ok
    assert s["counts"]["reloads"] == types.count("release.reloaded") == ok
    assert s["suite_size"] == SUITE_BASE + ok
    hr = e.profile.deployment.hot_reload
    for b in s["builds"]:
        assert hr.build_seconds * 0.7 - 0.1 <= b["seconds"] <= hr.build_seconds * 1.4 + 0.1
    for r in s["reloads"]:  # back after the restart gap plus the start-up
        assert r["seconds"] == pytest.approx(
            hr.restart_gap_seconds + e.profile.app.server.startup_seconds, abs=1.0)
    assert all(t["passed"] == t["total"] and t["seconds"] == hr.test_seconds for t in s["tests"])
    levels = {c["level"] for c in s["console"]}
    assert levels <= {"warning", "error"}
    banner = [c for c in s["console"] if c["source"] == "app.start"]
    assert len(banner) == ok * len(e.profile.warnings) and e.profile.warnings


def test_devloop_leaves_the_trajectory_unchanged():
    a, b = engine("development", seed=3), engine("development", seed=3)
    b.attach(DevLoop(b))
    _changes(a, 4, 60)
    _changes(b, 4, 60)
    assert a.agg == b.agg
    assert [ev.message for ev in a.events.since(0)] == [ev.message for ev in b.events.since(0)]


def test_serve_dashboard_rejects_bad_flags_clearly():
    out = run_cli("serve", "dashboard", "--speed", "max")
    assert out.returncode == 2 and "--speed" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("serve", "dashboard", "--profile", "production")
    assert out.returncode == 2 and "hot reload" in out.stderr


# --------------------------------------------------------------------------- real browser


def _png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) to an array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
            ch = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        cur = np.zeros(w * ch, np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # Sub, Average, Paeth depend on the left pixel: walk the row
            for x in range(w * ch):
                left = cur[x - ch] if x >= ch else 0
                up, ul = prev[x], (prev[x - ch] if x >= ch else 0)
                if f == 1:
                    pred = left
                elif f == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - ul
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                cur[x] = (line[x] + pred) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, ch)[:, :, :3]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "serve", "dashboard", "--port", str(port),
         "--speed", "60", "--duration", "8m", "--code-change-every", "1m"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        state = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "api/dev.json", timeout=5) as r:
                    state = json.loads(r.read())
                if state["finished"]:
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"serve dashboard exited: {proc.stderr.read()}")
            time.sleep(0.3)
        assert state is not None and state["finished"], state
        yield url, state, tmp_path_factory.mktemp("chromium")
    finally:
        proc.terminate()
        proc.wait(10)


def _chromium(tmp, profile: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp / profile}",
                           *args], capture_output=True, text=True, timeout=120, cwd=tmp)


def test_the_page_in_chromium_shows_the_engines_build_test_reload_and_console_values(dashboard):
    url, state, tmp = dashboard
    dev = state["dev"]
    c = dev["counts"]
    assert c["builds"] >= 5 and c["reloads"] >= 3, c  # 8 changes in 8 simulated minutes
    assert c["warnings"] >= c["reloads"], c  # the app's start-up banner at each reload
    r = _chromium(tmp, "dom", "--dump-dom", url)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    import re

    def text_of(el_id: str) -> str:
        m = re.search(rf'id="{el_id}"[^>]*>([^<]*)<', dom)
        assert m, f"#{el_id} missing from the DOM"
        return m.group(1)

    assert text_of("last-build") == f"{dev['last_build_seconds']:.1f} s"
    assert text_of("mean-build") == f"{dev['mean_build_seconds']:.1f} s"
    assert text_of("builds") == str(c["builds"])
    assert text_of("builds-failed") == str(c["builds_failed"])
    last = dev["tests"][-1]
    assert text_of("tests") == f"{last['passed']}/{last['total']} passed"
    assert text_of("tests-passed") == str(c["tests_passed"])
    assert text_of("reloads") == str(c["reloads"])
    assert text_of("warnings") == str(c["warnings"])
    assert text_of("errors") == str(c["errors"])
    assert text_of("clock") == state["clock"] and text_of("status") == "finished"
    for b in dev["builds"]:
        assert b["version"] in dom
    for line in dev["console"][-5:]:
        text = line["message"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert text in dom, text


def test_the_screenshot_is_the_rendered_page_not_a_blank(dashboard):
    url, state, tmp = dashboard
    shot = tmp / "shot.png"
    r = _chromium(tmp, "shot", f"--screenshot={shot}", url)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    px = _png_pixels(shot.read_bytes())
    assert px.shape[:2] == (1000, 1280)
    colours = {tuple(p) for p in px[::4, ::4].reshape(-1, 3).tolist()}
    assert len(colours) > 50, "a blank or unstyled page"
    # The stylesheet was applied: the page background is the dashboard's, not white.
    assert tuple(px[500, 8]) == (0x10, 0x16, 0x1F)  # the left margin
    assert tuple(px[10, 640]) == (0x18, 0x21, 0x2D)  # the header
    # The build-time chart drew bars: a block of the succeeded-build green.
    green = np.all(np.abs(px - np.array([0x3F, 0xB9, 0x6F])) <= 8, axis=2)
    ok_builds = sum(1 for b in state["dev"]["builds"] if b["outcome"] == "succeeded")
    assert ok_builds and green.sum() > 500 * ok_builds, green.sum()
