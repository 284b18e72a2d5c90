"""Security posture (sim/security.py): each control's behaviour in simulated time, the security
faults and their mitigations, audits, AI auditing, exports. docs/security.md describes the model."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO, engine, events_of

from devsim_tui.sim.chaos import CATALOGUE
from devsim_tui.sim.metrics import SnapshotView, collect
from devsim_tui.sim.security import DAY, RENEW_AT, ROTATE_COST_S, security_of


def quiet(profile="production", **kw):
    kw.setdefault("traffic__bursts__per_hour", 0)
    kw.setdefault("traffic__noise", 0)
    kw.setdefault("traffic__diurnal_amplitude", 0)
    return engine(profile, **kw)


def sec(e):
    return security_of(e).state()


def firing(e, name):
    return [a for a in e.snapshot.alerts if a.name == name and a.state == "firing"]


def test_security_faults_are_in_the_chaos_catalogue_with_a_mitigation():
    for name in ("credential-leak", "debug-port-scan", "cert-renewal-failure",
                 "policy-misconfig", "data-exfiltration", "brute-force-login"):
        ft = CATALOGUE[name]
        assert ft.duration and ft.intensity and ft.scopes
        assert "`" in ft.effect  # names its mitigation command


def test_certificate_expires_at_the_right_simulated_time_with_manual_renewal():
    # 0.01 days = 864 s; issued halfway through its life at the start: expires at t = 432 s.
    e = quiet(security__certificate_days_valid=0.01, security__certificate_renewal="manual")
    cert = security_of(e).cert("edge")
    assert cert.not_after == pytest.approx(432.0)
    while e.t < 431:
        e.step()
    assert not cert.expired and e.agg.error_rate < 0.05
    samples = collect(SnapshotView(e.snapshot, "web"), {"devsim_certificate_expiry_seconds"})
    labels, values = samples["devsim_certificate_expiry_seconds"]
    assert dict(labels[0])["endpoint"] == "edge" and values[0] == pytest.approx(432 - e.t)
    e.step(3)
    assert cert.expired and e.agg.error_rate > 0.99
    assert [ev.t for ev in events_of(e, "security.cert_expired")][0] == pytest.approx(432, abs=1)
    assert "certificates-valid" in sec(e)["failing"]
    e.submit_line("renew-certificate edge")
    e.step(5)
    assert not cert.expired  # the database's in-transit certificate expired at the same time
    assert security_of(e).cert("database").expired and e.agg.error_rate > 0.99
    e.submit_line("renew-certificate all")
    e.step(5)
    assert e.agg.error_rate < 0.05 and "certificates-valid" in sec(e)["failing"]  # 864 s < 7 d


def test_automated_renewal_at_two_thirds_of_the_lifetime():
    e = quiet(security__certificate_days_valid=0.01)
    cert = security_of(e).cert("edge")
    life = 0.01 * DAY
    renew_t = -0.5 * life + RENEW_AT * life  # 144 s
    while e.t < renew_t - 1:
        e.step()
    assert cert.renewals == 0
    e.step(2)
    assert cert.renewals == 1 and cert.issued_t == pytest.approx(renew_t, abs=1)
    assert cert.not_after == pytest.approx(cert.issued_t + life)
    e.step(600)  # past the old expiry (432 s): never expired
    assert not cert.expired and not events_of(e, "security.cert_expired")


def test_cert_renewal_failure_counts_down_alerts_then_breaks_tls_until_renewed():
    e = quiet()
    e.step(10)
    e.submit_line("chaos cert-renewal-failure edge 2h 0.05")  # 3 minutes of validity left
    e.step(100)
    assert firing(e, "CertificateExpiringSoon")
    assert e.agg.error_rate < 0.05
    e.step(90)
    assert e.agg.error_rate > 0.99
    e.submit_line("renew-certificate")
    e.step(5)
    assert e.agg.error_rate < 0.05
    assert not security_of(e).cert("edge").renew_failing
    assert not any(f["type"] == "cert-renewal-failure"
                   for f in e.snapshot.extensions["ChaosController"]["active"])


@pytest.mark.parametrize("profile,scope,exposed", [
    ("production", "db", False), ("production", "wire", False),
    ("development", "db", True), ("development", "wire", True),
    ("experimental", "db", False)])
def test_exfiltration_exposes_records_only_without_encryption(profile, scope, exposed):
    e = quiet(profile)
    e.step(5)
    e.submit_line(f"chaos data-exfiltration {scope} 30m 100")
    e.step(60)
    totals = sec(e)["totals"]
    assert totals["records_exfiltrated"] == pytest.approx(6000, rel=0.05)
    assert totals["records_exposed"] == (totals["records_exfiltrated"] if exposed else 0)
    assert firing(e, "DataExfiltration") or e.t < 75
    e.submit_line("block-egress")
    e.step(5)
    before = sec(e)["totals"]["records_exfiltrated"]
    e.step(30)
    assert sec(e)["totals"]["records_exfiltrated"] == before
    assert sec(e)["rates"]["egress_bytes_per_s"] == 0


def test_credential_leak_in_development_is_an_intrusion_that_rotation_ends_at_a_cost():
    e = quiet("development")
    e.step(5)
    e.submit_line("chaos credential-leak")
    e.step(30)
    s = sec(e)
    assert s["intrusions"] == 1 and s["rates"]["anomalous_queries_per_s"] == 40
    assert s["totals"]["unknown_source_logins"] == 1
    assert firing(e, "SecurityIntrusion")
    base = e.agg.error_rate
    e.submit_line("rotate-credentials")
    e.step(10)
    s = sec(e)
    assert s["intrusions"] == 0 and s["rates"]["anomalous_queries_per_s"] == 0
    assert s["totals"]["credential_rotations"] == 1
    assert e.agg.error_rate > base + 0.01  # the rolling restart's cost
    e.step(int(ROTATE_COST_S))
    assert e.agg.error_rate < 0.01


def test_leaked_vault_lease_ends_by_itself():
    e = quiet()
    e.step(5)
    e.submit_line("chaos credential-leak estate 3h")
    e.step(10)
    assert sec(e)["intrusions"] == 1
    e.step(3600)
    assert sec(e)["intrusions"] == 0
    assert events_of(e, "security.lease_expired")


def test_zero_trust_denies_a_compromised_pod_and_logs_it():
    e = quiet("experimental")
    e.step(5)
    e.submit_line("chaos credential-leak estate 30m 40")
    e.step(20)
    s = sec(e)
    assert s["intrusions"] == 0 and s["rates"]["anomalous_queries_per_s"] == 0
    assert s["rates"]["denials_per_s"] == pytest.approx(40)
    assert "denies and logs" in events_of(e, "security.credential-leak")[0].message


def test_policy_misconfig_denies_legitimate_traffic_until_rolled_back():
    e = quiet("experimental")
    e.step(30)
    e.submit_line("chaos policy-misconfig estate 30m 0.4")
    e.step(30)
    assert e.agg.error_rate == pytest.approx(0.4, abs=0.05)
    s = sec(e)
    assert s["rates"]["denials_per_s"] == pytest.approx(0.4 * e.agg.offered_rps, rel=0.1)
    e.step(60)
    assert firing(e, "PolicyDenialsHigh")
    e.submit_line("rollback-policy")
    e.step(10)
    assert e.agg.error_rate < 0.05 and sec(e)["rates"]["denials_per_s"] == 0


def test_policy_misconfig_is_rejected_without_zero_trust():
    e = quiet("production")
    e.submit_line("chaos policy-misconfig")
    e.step()
    rej = events_of(e, "command.rejected")
    assert rej and "no zero-trust" in rej[0].message


def test_debug_port_scan_attaches_only_where_9229_is_open():
    e = quiet("development")
    e.step(5)
    e.submit_line("chaos debug-port-scan")
    e.step(10)
    assert sec(e)["intrusions"] == 1
    e.submit_line("close-debug-endpoint")
    e.step(5)
    s = sec(e)
    assert s["intrusions"] == 0 and not s["debug_endpoint_open"]
    assert "debug-endpoints-closed" not in s["failing"]
    p = quiet("production")
    p.submit_line("chaos debug-port-scan")
    p.step(10)
    assert sec(p)["intrusions"] == 0
    assert "no effect" in events_of(p, "security.debug-port-scan")[0].message


def test_brute_force_falls_on_plaintext_only():
    d = quiet("development")
    d.submit_line("chaos brute-force-login estate 30m 20")
    d.step(200)  # 3000 guesses at 20/s take 150 s
    assert sec(d)["intrusions"] == 1 and events_of(d, "security.brute_force_success")
    d.submit_line("block-source")
    d.step(2)
    assert sec(d)["intrusions"] == 0
    p = quiet("production")
    p.submit_line("chaos brute-force-login estate 30m 20")
    p.step(200)
    s = sec(p)
    assert s["intrusions"] == 0 and s["totals"]["login_failures"] >= 3000
    assert firing(p, "LoginFailuresHigh")


@pytest.mark.parametrize("profile", ["production", "development", "experimental"])
def test_audit_findings_match_the_posture(profile):
    e = quiet(profile)
    e.step(2)
    e.submit_line("chaos credential-leak")
    e.submit_line("audit")
    e.step(2)
    s = sec(e)
    assert {f["control"] for f in s["findings"]} == set(s["failing"])
    assert all(f["mitigation"] for f in s["findings"] if f["control"] in
               ("debug-endpoints-closed", "credentials-rotated", "certificates-valid"))
    expected = {"production": {"zero-trust", "anomaly-detection", "credentials-rotated",
                               "no-active-attack"},
                "development": {"tls-in-transit", "encryption-at-rest", "secrets-managed",
                                "credentials-rotated", "debug-endpoints-closed", "zero-trust",
                                "audits-scheduled", "anomaly-detection", "no-active-attack"},
                "experimental": set()}[profile]
    assert set(s["failing"]) == expected
    assert 0 <= s["score"] <= 100
    assert s["score"] == (100.0 if profile == "experimental" else pytest.approx(
        100 * (1 - len(expected) / sum(c["status"] != "n/a" for c in s["controls"])), abs=0.1))


def test_production_audits_on_schedule():
    e = quiet()
    e.step(310)
    audits = events_of(e, "security.audit")
    assert len(audits) == 1 and "scheduled" in audits[0].message


def test_ai_auditing_flags_an_attack_before_a_rule():
    e = quiet("experimental")
    e.step(120)
    e.submit_line("chaos policy-misconfig estate 30m 0.05")
    e.step(120)
    s = sec(e)
    assert s["ai_detected_at"] is not None
    fired = [a for a in e.snapshot.alerts if a.name == "PolicyDenialsHigh"]
    assert fired and s["ai_detected_at"] < min(a.active_at for a in fired) + 30


def test_metrics_and_headless_carry_the_posture():
    e = quiet("development")
    e.step(3)
    samples = collect(SnapshotView(e.snapshot, "app"))
    assert samples["devsim_security_posture_score_ratio"][1][0] == pytest.approx(
        sec(e)["score"] / 100)
    assert samples["devsim_security_debug_endpoint_open"][1] == [1.0]
    passing = dict(zip([dict(lb)["control"] for lb in
                        samples["devsim_security_control_passing"][0]],
                       samples["devsim_security_control_passing"][1]))
    assert passing["secrets-managed"] == 0.0 and "certificates-valid" not in passing


def test_same_seed_same_security_trajectory():
    runs = []
    for _ in range(2):
        e = quiet("development")
        e.submit_line("chaos brute-force-login")
        e.submit_line("chaos data-exfiltration")
        e.step(200)
        runs.append(sec(e))
    assert runs[0] == runs[1]


def test_every_security_field_is_read():
    out = subprocess.run([sys.executable, "/work/shared/tools/unread_fields.py"], cwd=REPO,
                         capture_output=True, text=True).stdout \
        if __import__("pathlib").Path("/work/shared/tools/unread_fields.py").exists() else ""
    assert "SecuritySpec." not in out
    import devsim_tui.sim.security as S
    from devsim_tui.config.schema import SecuritySpec

    text = __import__("pathlib").Path(S.__file__).read_text()
    for name in SecuritySpec.model_fields:
        assert f".{name}" in text, name


def test_headless_jsonl_and_mqtt_tick_carry_the_security_summary():
    import json

    from helpers import headless_bytes

    from devsim_tui.bridge import payloads as P
    from devsim_tui.sim.command_file import TimedCommand
    from devsim_tui.sim import commands as C

    text = headless_bytes("development", 3, 30,
                          [TimedCommand(at=5.0, command="chaos", args={"type": "credential-leak"})])
    lines = [json.loads(x) for x in text.splitlines()]
    ticks = [x for x in lines if x["kind"] == "tick"]
    assert ticks[-1]["security"]["intrusions"] == 1
    assert "secrets-managed" in ticks[-1]["security"]["failing"]
    assert any(x["kind"] == "event" and x["type"] == "security.credential-leak" for x in lines)
    assert P.streams_for("security.audit") == [P.EVENTS, P.SECURITY]
    e = quiet("experimental")
    e.step(2)
    body = P.tick_body(e.snapshot)
    assert body["security"]["score"] == sec(e)["score"]
    assert body["security"]["cert_expiry_s"] > 0
