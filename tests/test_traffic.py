"""Traffic traces and synthetic shapes (devsim_tui.sim.traffic) and their loading in profiles."""

from __future__ import annotations

import numpy as np
import pytest

from devsim_tui.config.loader import load_profile
from devsim_tui.errors import ConfigError, UserError
from devsim_tui.sim.engine import Engine
from devsim_tui.config.traces import builtin_traces, load_trace
from devsim_tui.sim.traffic import TrafficModel

from helpers import run_cli


def write_trace(path, rows):
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def profile_with(tmp_path, traffic: str):
    path = tmp_path / "lab.yaml"
    path.write_text(f"extends: experimental\nname: lab\ntraffic:\n{traffic}")
    return path


def test_trace_is_interpolated_scaled_to_peak_and_loops(tmp_path):
    write_trace(tmp_path / "t.csv", [("2020-01-01 00:00:00", 10), ("2020-01-01 01:00:00", 30),
                                     ("2020-01-01 02:00:00", 20)])
    path = profile_with(tmp_path, "  trace: t.csv\n  peak_rps: 600\n  time_scale: 60\n")
    profile = load_profile(path.with_name("lab.yaml"), overrides={"simulation.start_hour": 0})
    model = TrafficModel(profile.traffic, seed=1, t0_abs=0.0)
    # 60 s of trace per simulated second: 1 h of trace = 60 simulated seconds.
    assert model.level(0) == pytest.approx(200)  # 10 / 30 * 600
    assert model.level(30) == pytest.approx(400)  # half way from 10 to 30
    assert model.level(60) == pytest.approx(600)  # the maximum is peak_rps
    assert model.level(120) == pytest.approx(400)
    # After the last row the trace returns to its first value over one interval, then loops.
    assert model.level(150) == pytest.approx(300)
    assert model.level(180) == pytest.approx(200)
    assert model.level(180 + 30) == pytest.approx(400)


def test_nyc_taxi_is_shipped_with_its_licence_and_drives_the_engine():
    assert "nyc_taxi.csv" in builtin_traces()
    trace = load_trace(__import__("devsim_tui.config.traces", fromlist=["x"])
                       .builtin_trace_dir() / "nyc_taxi.csv")
    assert trace.rows == 10320 and trace.period == pytest.approx(215 * 86400)
    licence = trace.path.replace("nyc_taxi.csv", "LICENSE-NAB.txt")
    assert "Numenta" in open(licence).read()
    profile = load_profile("experimental", overrides={
        "traffic.trace": "nyc_taxi.csv", "traffic.peak_rps": 2000, "traffic.time_scale": 60,
        "monitoring.detector.enabled": False})
    a = Engine(profile, seed=3)
    b = Engine(profile, seed=3)
    rates = [a.advance()[0].offered_rps for _ in range(600)]
    assert rates == [b.advance()[0].offered_rps for _ in range(600)]
    assert 0 < min(rates) and max(rates) < 2000 * 1.3


BAD_TRACES = {
    "not-a-number": ("timestamp,value\n2020-01-01 00:00:00,5\n2020-01-01 00:05:00,abc\n",
                     "{csv}:3: value 'abc' is not a number"),
    "out-of-order": ("timestamp,value\n2020-01-01 00:05:00,5\n2020-01-01 00:00:00,6\n",
                     "{csv}:3: timestamp '2020-01-01 00:00:00' is not after the previous"),
    "negative": ("timestamp,value\n2020-01-01 00:00:00,5\n2020-01-01 00:05:00,-1\n",
                 "{csv}:3: value -1 is negative"),
    "one-row": ("timestamp,value\n2020-01-01 00:00:00,5\n", "{csv}:2: a trace needs at least"),
    "no-header": ("when,rate\n1,2\n", "{csv}:1: missing column(s) timestamp, value"),
}


@pytest.mark.parametrize("case", list(BAD_TRACES))
def test_broken_trace_is_a_file_line_error_with_exit_2(tmp_path, case):
    text, expected = BAD_TRACES[case]
    csv = tmp_path / "t.csv"
    csv.write_text(text)
    path = profile_with(tmp_path, "  trace: t.csv\n  peak_rps: 100\n")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert expected.format(csv=csv) in str(info.value)
    assert f"{path}:4: traffic.trace" in str(info.value)
    result = run_cli("profiles", "validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert expected.format(csv=csv) in result.stderr


def test_missing_trace_and_missing_peak_are_named_at_their_line(tmp_path):
    path = profile_with(tmp_path, "  trace: nowhere.csv\n  peak_rps: 100\n")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert f"{path}:4: traffic.trace: trace file not found: {tmp_path / 'nowhere.csv'}" in (
        str(info.value))
    path = profile_with(tmp_path, "  trace: nyc_taxi.csv\n")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert "a trace needs peak_rps" in str(info.value)
    with pytest.raises(UserError):
        load_trace(tmp_path / "gone.csv")


@pytest.mark.parametrize("shape", ["diurnal", "morning-ramp", "weekly", "flash-crowd"])
def test_synthetic_shapes_are_deterministic_and_distinct(shape):
    profile = load_profile("experimental", overrides={
        "traffic.shape": shape, "traffic.time_scale": 24, "traffic.diurnal_amplitude": 0.5})
    a = TrafficModel(profile.traffic, seed=5, t0_abs=0.0)
    b = TrafficModel(profile.traffic, seed=5, t0_abs=0.0)
    t = np.arange(0, 7 * 3600, 30.0)  # a week of pattern at 24x
    la = np.array([a.level(x) for x in t])
    assert np.array_equal(la, [b.level(x) for x in t])
    base = profile.traffic.baseline_rps
    if shape == "morning-ramp":
        hour = (t * 24 % 86400) / 3600
        assert la[(hour > 1) & (hour < 6)].max() == pytest.approx(base * 0.5)
        assert la[(hour > 10) & (hour < 16)].min() == pytest.approx(base * 1.5)
    if shape == "weekly":
        day = (t * 24 // 86400).astype(int) % 7
        assert la[day == 6].mean() < 0.6 * la[day == 2].mean()
    if shape == "flash-crowd":
        diurnal = TrafficModel(profile.traffic.model_copy(update={"shape": "diurnal"}), 5, 0.0)
        ratio = la / np.array([diurnal.level(x) for x in t])
        assert ratio.max() >= 2.5 and np.median(ratio) == pytest.approx(1.0)
