"""Anomaly detector: scorer behaviour, the online CSV tool and the multi-signal Detector."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from devsim_tui.detect import Detector, Finding, ScorerConfig, SeriesScorer
from devsim_tui.detect.series import score_csv

WARMUP = ScorerConfig().warmup


def noisy(n: int, seed: int = 1, level: float = 50.0, sd: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0.0, sd) for _ in range(n)]


def scores(values: list[float], **config) -> list[float]:
    scorer = SeriesScorer(ScorerConfig(**config))
    return [scorer.score_one(v) for v in values]


def write_csv(path: Path, values: list[float]) -> Path:
    rows = [f"{1_700_000_000 + 300 * i},{v!r}" for i, v in enumerate(values)]  # 5-minute samples
    path.write_text("\n".join(["timestamp,value", *rows]) + "\n")
    return path


def read_scores(path: Path) -> list[float]:
    rows = path.read_text().splitlines()
    assert rows[0] == "timestamp,value,anomaly_score"
    return [float(r.split(",")[2]) for r in rows[1:]]


def test_constant_series_scores_zero() -> None:
    out = scores([42.0] * 2000)
    assert max(out) < 0.01
    detector = Detector(["rps"], warmup=50)
    assert all(detector.update(t, {"rps": 7.0}) is None for t in range(2000))


def test_flat_then_change_is_flagged() -> None:
    out = scores([10.0] * 1000 + [10.5] * 50)
    assert max(out[1000:1005]) >= 0.5
    assert max(out[:1000]) < 0.01


@pytest.mark.parametrize("kind", ["step", "spike"])
def test_change_after_warmup_is_flagged_quickly(kind: str) -> None:
    values = noisy(1500)
    if kind == "step":
        values[1200:] = [v + 15.0 for v in values[1200:]]
    else:
        values[1200] += 25.0
    out = scores(values)
    assert max(out[600:1200]) < 0.5, "no false alarm on plain noise"
    assert max(out[1200:1205]) >= 0.5


def test_no_scores_or_findings_during_warmup() -> None:
    values = noisy(WARMUP, seed=3)
    values[WARMUP // 2] += 1000.0
    assert scores(values) == [0.0] * WARMUP
    detector = Detector(["p99"], warmup=100)
    assert detector.warming_up and detector.warmup_ticks == 100
    findings = [detector.update(t, {"p99": 0.0 if t != 50 else 1e6}) for t in range(100)]
    assert findings == [None] * 100
    assert not detector.warming_up


def test_scores_are_online(tmp_path: Path) -> None:
    values = noisy(1200, seed=5)
    values[900:] = [v * 3 for v in values[900:]]
    score_csv(write_csv(tmp_path / "full.csv", values), tmp_path / "full.out")
    score_csv(write_csv(tmp_path / "part.csv", values[:950]), tmp_path / "part.out")
    assert read_scores(tmp_path / "part.out") == read_scores(tmp_path / "full.out")[:950]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devsim_tui", "detect", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_round_trip(tmp_path: Path) -> None:
    values = noisy(600, seed=7)
    values[500] += 40.0
    src, dst = write_csv(tmp_path / "in.csv", values), tmp_path / "out.csv"
    proc = run_cli("--csv", str(src), "--out", str(dst))
    assert proc.returncode == 0, proc.stderr
    out = read_scores(dst)
    assert len(out) == 600 and all(0.0 <= s <= 1.0 for s in out)
    assert max(out[500:503]) >= 0.5


@pytest.mark.parametrize("content, needle", [
    (None, "cannot read"),
    ("time,value\n1,2\n", "missing column(s) timestamp"),
    ("timestamp,value\n1,2\n2,abc\n", ":3: value 'abc' is not a number"),
    ("timestamp,value\n1,2\nnoon,3\n", ":3: timestamp 'noon'"),
])
def test_cli_bad_input_is_a_user_error(tmp_path: Path, content: str | None, needle: str) -> None:
    src = tmp_path / "in.csv"
    if content is not None:
        src.write_text(content)
    proc = run_cli("--csv", str(src), "--out", str(tmp_path / "out.csv"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(src) in proc.stderr and needle in proc.stderr
    assert not (tmp_path / "out.csv").exists()


def estate(t: int, period: int, rng: random.Random) -> dict[str, float]:
    """Three signals with a daily shape (a short 'day' keeps the test fast)."""
    day = math.sin(2 * math.pi * t / period)
    return {
        "rps": 1000 + 400 * day + rng.gauss(0, 20),
        "p99": 0.2 + 0.05 * day + rng.gauss(0, 0.005),
        "cpu": 0.5 + 0.2 * day + rng.gauss(0, 0.01),
    }


def run_estate(incident: range, period: int = 60, ticks: int = 1600) -> list[Finding | None]:
    rng = random.Random(11)
    detector = Detector(["rps", "p99", "cpu"], warmup=300, seasonal_period=period)
    findings = []
    for t in range(ticks):
        values = estate(t, period, rng)
        if t in incident:
            values["p99"] += 0.3  # latency triples while traffic looks normal
        findings.append(detector.update(float(t), values))
    return findings


def test_detector_flags_incident_and_names_signal() -> None:
    findings = run_estate(incident=range(1200, 1260))
    assert not any(findings[300:1200]), "daily shape must not be an incident"
    hit = next(f for f in findings[1200:1210] if f is not None)
    assert hit.signals[0] == "p99" and hit.kind == "anomaly"
    assert hit.began_at >= 1200 and 0.5 <= hit.score <= 1.0
    later = findings[1230]
    assert later is not None and later.began_at == hit.began_at


def test_long_incident_is_not_learned_as_normal() -> None:
    findings = run_estate(incident=range(1000, 1600))
    # Flagged throughout its first four "days" (period 60; reported from the confirming
    # second tick)...
    assert findings[1000] is None
    assert all(f is not None and f.began_at == 1000 for f in findings[1001:1240])
    # ...but a change that persists long enough is eventually accepted as the new normal.
    assert not any(findings[1500:1600])


def test_lone_flagged_tick_is_not_reported() -> None:
    """An episode is reported from its second consecutive flagged tick, dated from the first;
    a single flagged tick (one wobbly sample) is not a finding."""
    det = Detector(["p99"], warmup=0)
    # Drive the episode logic with given per-tick scores (the scorer itself is tested above).
    det._scorers["p99"].update = lambda x: x  # type: ignore[method-assign]
    scores = [0.1, 0.6, 0.1, 0.1, 0.7, 0.8, 0.2, 0.9, 0.1]
    out = [det.update(float(t), {"p99": s}) for t, s in enumerate(scores)]
    assert [t for t, f in enumerate(out) if f is not None] == [5, 7]
    # The confirmed episode began at its first flagged tick (4), not at the lone blip (1), and
    # a flagged tick after a short dip belongs to the same, already reported episode.
    assert out[5].began_at == 4.0 and out[7].began_at == 4.0
    once = Detector(["p99"], warmup=0, confirm=1)
    once._scorers["p99"].update = lambda x: x  # type: ignore[method-assign]
    assert once.update(0.0, {"p99": 0.6}) is not None
    with pytest.raises(ValueError):
        Detector(["p99"], confirm=0)


def test_finding_is_frozen() -> None:
    finding = Finding(t=1.0, score=0.9, began_at=0.0, signals=("cpu",),
                      signal_scores=(("cpu", 0.9),))
    with pytest.raises(AttributeError):
        finding.score = 0.1  # type: ignore[misc]


def _step_series(delta: float, n: int = 400, at: int = 300) -> list[float]:
    rng = random.Random(5)
    return [100.0 + rng.gauss(0, 1) + (delta if t >= at else 0.0) for t in range(n)]


@pytest.mark.parametrize("direction, delta, flagged", [
    (0, +20.0, True), (0, -20.0, True),    # both ways count (NAB, the default)
    (+1, +20.0, True), (+1, -20.0, False),  # a latency or memory that falls is no failure
    (-1, -20.0, True), (-1, +20.0, False),  # a hit ratio that rises is none either
])
def test_one_sided_signal_flags_only_its_harmful_direction(direction, delta, flagged):
    det = Detector(["x"], warmup=100, directions={"x": direction})
    found = [det.update(float(t), {"x": v}) for t, v in enumerate(_step_series(delta))]
    assert any(f is not None for f in found[300:]) is flagged
    assert not any(found[:300])


def test_directions_are_checked():
    with pytest.raises(KeyError):
        Detector(["x"], directions={"y": 1})
    with pytest.raises(ValueError):
        Detector(["x"], directions={"x": 2})


def test_default_scorer_is_unchanged_by_direction():
    """direction 0 scores exactly as before one-sided signals existed (the NAB figures)."""
    values = _step_series(+20.0) + _step_series(-20.0)
    a = SeriesScorer(ScorerConfig(warmup=50))
    b = SeriesScorer(ScorerConfig(warmup=50, direction=0))
    assert [a.update(v) for v in values] == [b.update(v) for v in values]


def test_estate_detector_signals_are_one_sided_where_a_fall_is_harmless():
    from devsim_tui.config.loader import load_profile
    from devsim_tui.sim.anomaly import AnomalyController
    from devsim_tui.sim.engine import Engine

    e = Engine(load_profile("experimental"), seed=1)
    e.step(1)
    ctl = next(c for c in e.controllers if isinstance(c, AnomalyController))
    d = ctl.detector.directions
    assert d["ml-api.memory"] == d["ml-api.max_server_p99"] == d["pg-1.lag"] == 1
    assert d["cache.hit_ratio"] == -1
    assert d["ml-api.rps"] == d["pg-1.qps"] == d["events.consume_rate"] == 0
