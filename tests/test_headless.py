"""`devsim-tui simulate` end to end, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO, run_cli


def lines_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_simulate_writes_ticks_events_and_summary(tmp_path):
    cmds = tmp_path / "cmds.yaml"
    cmds.write_text(
        "- at: 2m\n  command: crash-node\n  args: {node: primary}\n"
        "- at: 3m\n  command: scale\n  args: {replicas: 1000}\n"
        "- at: 4m\n  command: restart-node\n  args: {node: pg-1}\n"
    )
    out = tmp_path / "run.jsonl"
    r = run_cli("simulate", "--profile", "production", "--seed", "7", "--duration", "10m",
                "--out", str(out), "--commands", str(cmds))
    assert r.returncode == 0, r.stderr
    assert "error budget burned" in r.stdout and "availability" in r.stdout
    recs = lines_of(out)
    assert recs[0]["kind"] == "run.start" and recs[0]["seed"] == 7
    ticks = [x for x in recs if x["kind"] == "tick"]
    assert len(ticks) == 600
    t = ticks[-1]
    assert set(t["fleet"]) >= {"ready", "total", "desired", "offered_rps", "served_rps",
                               "errored_rps", "timed_out_rps", "rejected_rps", "reset_rps",
                               "queued", "p50_ms", "p99_ms", "error_rate", "cpu"}
    # every request is accounted for, tick by tick: outcomes plus what the queues gained
    prev = ticks[0]["fleet"]["queued"]
    for rec in ticks[1:]:
        fl = rec["fleet"]
        out = sum(fl[k] for k in ("served_rps", "errored_rps", "timed_out_rps", "rejected_rps",
                                  "reset_rps")) + fl["queued"] - prev
        assert out == pytest.approx(fl["offered_rps"], abs=0.01)
        prev = fl["queued"]
    assert set(t["db"]) >= {"primary", "max_lag_bytes", "max_lag_s", "connections"}
    types = [x["type"] for x in recs if x["kind"] == "event"]
    assert "db.node.crashed" in types and "db.failover.promoted" in types
    assert "command.rejected" in types  # scale 1000 is above maxReplicas
    assert all("." in ty for ty in types)
    summary = recs[-1]
    assert summary["kind"] == "summary"
    assert summary["commands_applied"] == 2 and summary["commands_rejected"] == 1
    assert 0 < summary["availability"] < 1 and summary["error_budget_burned"] > 0
    assert summary["lost_writes"] > 0


def test_simulate_is_byte_for_byte_deterministic(tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    for path, seed in ((a, "5"), (b, "5"), (c, "6")):
        r = run_cli("simulate", "--profile", "experimental", "--seed", seed, "--duration", "5m",
                    "--out", str(path))
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_simulate_to_stdout():
    r = run_cli("simulate", "--profile", "development", "--duration", "30s")
    assert r.returncode == 0
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert recs[-1]["kind"] == "summary" and len(recs) >= 32


def test_bad_commands_file_reports_file_line_field(tmp_path):
    cmds = tmp_path / "bad.yaml"
    cmds.write_text("- at: 1m\n  command: scale\n  args: {replicas: 2}\n"
                    "- at: soon\n  command: scale\n  args: {replicas: 2}\n"
                    "- at: 2m\n  command: scal\n")
    r = run_cli("simulate", "--duration", "5m", "--commands", str(cmds))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{cmds}:4: commands.1.at:" in r.stderr
    assert f"{cmds}:7: commands.2:" in r.stderr and "did you mean 'scale'" in r.stderr


def test_bad_flags_exit_2_without_traceback(tmp_path):
    for args in (["--duration", "ten minutes"], ["--speed", "fast"],
                 ["--profile", "nope"], ["--profile", str(tmp_path / "missing.yaml")]):
        r = run_cli("simulate", *args)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr and "error" in r.stderr


def test_engine_detector_and_config_never_import_textual():
    code = ("import sys; import devsim_tui.sim.engine, devsim_tui.sim.world, devsim_tui.headless, "
            "devsim_tui.detect, devsim_tui.config.loader, devsim_tui.sim.command_file; "
            "bad = [m for m in sys.modules if m.startswith(('textual', 'devsim_tui.ui'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
