"""contrib/prometheus: what `rules export --prometheus-config` writes, checked by promtool and
amtool; the speed scaling of rule expressions."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from devsim_tui.errors import UserError
from devsim_tui.export.prometheus_config import format_duration_ms, scale_expr
from devsim_tui.sim import promql
from tests.helpers import REPO, run_cli

CONTRIB = REPO / "contrib" / "prometheus"
PROFILES = ("production", "development", "experimental")


def test_contrib_prometheus_is_what_rules_export_writes(tmp_path):
    out = run_cli("rules", "export", "--profile", "production", "--prometheus-config",
                  str(tmp_path))
    assert out.returncode == 0, out.stderr
    for name in ("prometheus.yml", "alertmanager.yml", "devsim-production.rules.yml"):
        assert (tmp_path / name).read_text() == (CONTRIB / name).read_text(), (
            f"contrib/prometheus/{name} is stale: rerun `devsim-tui rules export --profile "
            "production --prometheus-config contrib/prometheus`")
    for profile in PROFILES[1:]:
        out = run_cli("rules", "export", "--profile", profile)
        assert out.stdout == (CONTRIB / f"devsim-{profile}.rules.yml").read_text(), profile


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_contrib_config_and_every_rule_file():
    r = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=CONTRIB,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 1 rule files found" in r.stdout
    files = [f"devsim-{p}.rules.yml" for p in PROFILES]
    r = subprocess.run(["promtool", "check", "rules", *files], cwd=CONTRIB,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_a_config_scaled_for_speed_20(tmp_path):
    out = run_cli("rules", "export", "--profile", "experimental", "--speed", "20",
                  "--prometheus-config", str(tmp_path), "--target", "127.0.0.1:9999",
                  "--alertmanager", "127.0.0.1:9093")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "prometheus.yml").read_text()
    assert "scrape_interval: 750ms" in text and "127.0.0.1:9999" in text
    assert "127.0.0.1:9093" in text
    r = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("amtool") is None,
                    reason="amtool not installed (apt-get install prometheus-alertmanager)")
def test_amtool_accepts_the_alertmanager_route():
    r = subprocess.run(["amtool", "check-config", "alertmanager.yml"], cwd=CONTRIB,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout and "1 receivers" in r.stdout


def test_scale_expr_maps_simulated_durations_and_rates_onto_wall_time():
    assert scale_expr("sum(rate(x_total[5m])) > 3", 20) == "sum((rate(x_total[15s]) / 20)) > 3"
    assert scale_expr("increase(x_total[1h] offset 10m)", 4) == "increase(x_total[15m] offset 2m30s)"
    assert scale_expr("avg_over_time(y[30s])", 20) == "avg_over_time(y[1s500ms])"
    nested = scale_expr("rate(a[1m]) / clamp_min(irate(b[2m]), 1)", 2)
    assert nested == "(rate(a[30s]) / 2) / clamp_min((irate(b[1m]) / 2), 1)"
    promql.parse(nested)
    assert scale_expr("rate(a[1m])", 1) == "rate(a[1m])"
    with pytest.raises(UserError, match="time"):
        scale_expr("time() - y > 5", 20)


def test_format_duration_ms():
    assert format_duration_ms(0.75) == "750ms"
    assert format_duration_ms(90) == "1m30s"
    assert format_duration_ms(3600 / 20) == "3m"


def test_speed_max_is_refused_with_a_clear_error():
    out = run_cli("rules", "export", "--speed", "max")
    assert out.returncode == 2 and "--speed" in out.stderr and "Traceback" not in out.stderr


def test_an_unwritable_config_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run_cli("rules", "export", "--prometheus-config", str(blocker / "sub"))
    assert out.returncode == 2 and "--prometheus-config" in out.stderr
    assert "Traceback" not in out.stderr
