"""Multi-cloud placement (sim/cloud.py, config/clouds.py, docs/cloud.md): regions mapped to
clouds, node capacity, per-region latency, a region outage's node lifecycle (grace period,
NotReady, taint-based eviction after tolerationSeconds, rescheduling or Pending), the HPA's
view of it, cross-cloud egress, and the mapping's FILE:LINE errors."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import events_named, quiet, run_cli

from devsim_tui.config.loader import load_profile
from devsim_tui.errors import ConfigError
from devsim_tui.sim.cloud import cloud_of
from devsim_tui.sim.snapshot import EVICTED, NOTREADY, PENDING, READY

GRACE, TOLERATION = 40.0, 300.0  # Kubernetes' defaults, experimental's settings


def in_region(e, name):
    f = e.fleet
    return f.region == e.profile.app.regions.index(name)


def outage(e, region="aws", duration="30m"):
    e.submit_line(f"chaos region-outage {region} {duration}")
    e.step(1)
    assert events_named(e, "chaos.injected"), [ev.message for ev in events_named(e, "command.rejected")]
    return e.t - e.dt  # commands apply at the boundary, stamped with the tick's start


def test_regions_map_to_the_declared_clouds():
    e = quiet("experimental")
    p = cloud_of(e).placement
    assert p.clouds == ("AWS", "Azure", "GCP", "DigitalOcean")
    assert p.ingress == "AWS" and p.grace_s == GRACE and p.toleration_s == TOLERATION
    # N+1: the other three regions still hold maxReplicas
    assert sum(p.capacity) - p.capacity[0] >= e.profile.scaling.maxReplicas
    assert cloud_of(quiet("production")).placement.clouds == ("", "", "")  # one cloud


def test_pods_are_not_rescheduled_before_the_toleration_and_are_after_it():
    e = quiet("experimental")
    e.step(60)
    desired = e.desired
    aws = in_region(e, "aws")
    victims = set(e.fleet.ids[aws].tolist())
    last_id = int(e.fleet.ids.max())
    t0 = outage(e)
    # Within the grace period the API still says Ready: requests routed there time out.
    e.step(int(GRACE) - 5)
    assert (e.fleet.state[in_region(e, "aws")] == READY).all()
    assert e.agg.timed_out_rps > 0.15 * e.agg.offered_rps
    e.run_until(t0 + GRACE + 1)
    assert events_named(e, "node.not_ready")
    f = e.fleet
    assert (f.state[in_region(e, "aws")] == NOTREADY).all()
    assert e.agg.ready == desired - len(victims)
    assert e.agg.timed_out_rps < 0.01 * e.agg.offered_rps  # out of the endpoints
    # Not rescheduled before the toleration: still replicas, no replacement created.
    e.run_until(t0 + GRACE + TOLERATION - 2)
    f = e.fleet
    assert not events_named(e, "pod.evicted")
    assert int(f.ids.max()) == last_id and f.active_count() == desired
    # After it: evicted, and replaced in the other regions.
    e.run_until(t0 + GRACE + TOLERATION + 2)
    f = e.fleet
    ev = events_named(e, "pod.evicted")
    assert ev and ev[0].t == pytest.approx(t0 + GRACE + TOLERATION, abs=1.0)
    assert set(f.ids[f.state == EVICTED].tolist()) == victims
    new = f.ids > last_id
    assert int(new.sum()) == len(victims)
    assert not (new & in_region(e, "aws")).any()
    assert events_named(e, "pod.rescheduled") and cloud_of(e).rescheduled == len(victims)
    e.step(60)
    assert e.agg.ready == desired


def test_the_toleration_is_configurable():
    e = quiet("experimental", app__placement__toleration_seconds=60,
              app__placement__node_monitor_grace_period_seconds=20)
    e.step(30)
    t0 = outage(e)
    e.run_until(t0 + 79)
    assert not events_named(e, "pod.evicted")
    e.run_until(t0 + 81)
    assert events_named(e, "pod.evicted")[0].t == pytest.approx(t0 + 80, abs=1.0)


def test_capacity_exhaustion_leaves_pods_pending_until_room_returns():
    # 20 pods, 5 per region, 6 fit in each: after losing AWS only 3 replacements fit.
    e = quiet("experimental", app__placement__node_capacity_pods=6)
    e.step(30)
    t0 = outage(e, duration="8m")
    e.run_until(t0 + GRACE + TOLERATION + 2)
    f = e.fleet
    assert f.pending == 2 and int(np.count_nonzero(f.state == PENDING)) == 2
    assert (f.region[f.state == PENDING] == len(e.profile.app.regions)).all()  # no region
    pending = events_named(e, "pod.pending")
    assert pending and "aws unreachable" in pending[0].message and "full (6/6" in \
        pending[0].message
    assert cloud_of(e).rescheduled == 3
    assert e.snapshot.cloud["pending"] == 2
    # The region comes back: the Pending pods (replacements too) are bound there and start.
    e.run_until(t0 + 8 * 60 + 2)
    assert events_named(e, "node.ready")
    assert e.fleet.pending == 0 and events_named(e, "pod.pending.cleared")
    assert cloud_of(e).rescheduled == 5
    assert events_named(e, "pod.rescheduled")[-1].data["regions"] == {"aws": 2}
    e.step(60)
    assert e.agg.ready == e.desired


def test_the_hpa_sees_the_real_ready_count():
    e = quiet("experimental", scaling__scaler="hpa")
    e.step(120)
    before = e.desired
    util = e.hpa_info["utilization"]
    t0 = outage(e)
    e.run_until(t0 + GRACE + 60)
    f = e.fleet
    ready = f.state == READY
    assert e.agg.ready == before - 5 == int(ready.sum())
    # The HPA's utilization is that of the 15 Ready pods, which carry the traffic of 20 ...
    assert e.hpa_info["utilization"] == pytest.approx(100 * float(f.cpu[ready].mean()), abs=2)
    assert e.hpa_info["utilization"] > util + 10
    # ... and the 5 on NotReady nodes have no metric: on a scale-up Kubernetes assumes 0% for
    # them, which damps this one (79% x 15/20 is within tolerance of the 65% target).
    assert e.desired == before
    # More load: the 15 alone call for more replicas, and the HPA adds them before the
    # evictions would bring the count back.
    e.submit_line("chaos traffic-spike estate 10m 1.5")
    e.run_until(t0 + GRACE + 120)
    assert e.desired > before
    scaled = events_named(e, "scale.hpa")
    assert scaled and scaled[0].t < t0 + GRACE + TOLERATION


def test_region_latency_moves_the_p99_of_servers_there():
    base = quiet("experimental", app__variation__capacity_spread=0,
                 app__variation__capacity_wander=0, app__variation__balance_noise=0,
                 app__variation__hot_per_hour=0)
    slow = quiet("experimental", app__variation__capacity_spread=0,
                 app__variation__capacity_wander=0, app__variation__balance_noise=0,
                 app__variation__hot_per_hour=0,
                 app__placement__regions={"gcp": {"latency_ms": 300}})
    base.step(60)
    slow.step(60)
    gcp_b = float(np.nanmean(base.fleet.p99_ms[in_region(base, "gcp")]))
    gcp_s = float(np.nanmean(slow.fleet.p99_ms[in_region(slow, "gcp")]))
    aws_s = float(np.nanmean(slow.fleet.p99_ms[in_region(slow, "aws")]))
    azure_s = float(np.nanmean(slow.fleet.p99_ms[in_region(slow, "azure")]))
    assert gcp_s - gcp_b == pytest.approx(300 - 12, abs=5)  # experimental's gcp: 12 ms
    assert azure_s - aws_s == pytest.approx(18, abs=5)  # AWS is the ingress: 0 ms there
    # A quarter of the requests 300 ms slower: above the fleet's 99th percentile.
    assert slow.agg.p99_ms > base.agg.p99_ms + 200


def test_egress_counter_grows_with_cross_cloud_traffic():
    e = quiet("experimental")
    e.step(60)
    c = cloud_of(e)
    spec = e.profile.app.server
    f = e.fleet
    cross = ~in_region(e, "aws")
    want = (float(f.rps[cross].sum()) * spec.request_kb_in
            + float(f.served_rps[cross].sum()) * spec.response_kb_out) * 1000.0
    assert c.egress_rate_bps == pytest.approx(want, rel=1e-6)
    bill = dict(zip(c.cloud_names, c.egress_usd))
    assert all(v > 0 for v in bill.values())
    before = float(c.egress_bytes.sum())
    e.step(60)
    grown = float(c.egress_bytes.sum()) - before
    assert grown == pytest.approx(60 * want, rel=0.05)
    # Half as much traffic again (still within the fleet's capacity), half as much egress again.
    e.submit_line("chaos traffic-spike estate 5m 1.5")
    e.step(30)
    assert c.egress_rate_bps == pytest.approx(1.5 * want, rel=0.02)
    # A single-cloud estate has none.
    p = quiet("production")
    p.step(30)
    assert cloud_of(p).cross is None and cloud_of(p).state()["egress"] == {}


def test_evicted_pods_do_not_come_back_when_the_region_returns():
    e = quiet("experimental")
    e.step(30)
    t0 = outage(e, duration="7m")
    e.run_until(t0 + 7 * 60 + 5)
    f = e.fleet
    ready = events_named(e, "node.ready")
    assert ready and "5 evicted pods deleted" in ready[0].message
    assert not (f.state == EVICTED).any()
    assert not in_region(e, "aws").any()  # nothing moves back by itself
    assert cloud_of(e).status(0) == "Ready"


def test_a_short_outage_restarts_the_pods_without_evicting():
    e = quiet("experimental")
    e.step(30)
    aws = set(e.fleet.ids[in_region(e, "aws")].tolist())
    t0 = outage(e, duration="30s")
    e.run_until(t0 + 120)
    assert not events_named(e, "node.not_ready") and not events_named(e, "pod.evicted")
    f = e.fleet
    back = np.isin(f.ids, list(aws))
    assert (f.state[back] == READY).all() and (f.restarts[back] == 1).all()


def test_headless_tick_and_metrics_show_the_regions():
    from devsim_tui.headless import tick_record
    from devsim_tui.sim.metrics import SnapshotView, collect

    e = quiet("experimental")
    e.step(30)
    t0 = outage(e)
    e.run_until(t0 + GRACE + 2)
    rec = tick_record(e)["cloud"]
    assert rec["regions"]["aws"] == {"cloud": "AWS", "status": "NotReady", "ready": 0,
                                     "pods": 5, "capacity": 22}
    assert rec["regions"]["gcp"]["status"] == "Ready" and rec["egress_usd_total"] > 0
    out = collect(SnapshotView(e.snapshot, "ml-api"))
    labels, values = out["devsim_region_nodes_ready"]
    assert dict(zip([dict(l)["region"] for l in labels], values))["aws"] == 0.0
    labels, values = out["devsim_servers"]
    assert dict(zip([dict(l)["state"] for l in labels], values))["notready"] == 5.0
    assert out["devsim_cloud_egress_cost_dollars_total"][1][0] > 0


@pytest.mark.parametrize("yaml_text,line,field,words", [
    ("app:\n  regions: [aws, azure, gcp, ibm]\n", 2, "app.regions.3", "maps to no cloud"),
    ("app:\n  placement:\n    regions:\n      gcp: {cloud: Oracle}\n", 4,
     "app.placement.regions.gcp.cloud", "not in deployment.clouds"),
    ("deployment:\n  clouds: [AWS, Azure, GCP, DigitalOcean, Oracle]\n", 2,
     "deployment.clouds.4", "has no region"),
    ("app:\n  regions: [aws, azure, gcp, digitalocean]\n  placement:\n    regions:\n"
     "      gpc: {latency_ms: 9}\n", 5, "app.placement.regions.gpc", "no region 'gpc'"),
])
def test_an_inconsistent_mapping_names_file_and_line(tmp_path, yaml_text, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: experimental\nname: bad\n" + yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    text = str(exc.value)
    assert f"{path}:{line + 2}: {field}: " in text and words in text, text


def test_a_base_profiles_settings_for_regions_replaced_are_not_an_error(tmp_path):
    """A file that replaces the regions cannot drop the base's per-region keys (mappings
    merge): those are ignored, not blamed on the base file."""
    path = tmp_path / "mine.yaml"
    path.write_text("extends: experimental\nname: mine\napp:\n  regions: [aws-east, azure-west]\n"
                    "deployment:\n  clouds: [AWS, Azure]\n")
    p = cloud_of(quiet(str(path))).placement
    assert p.clouds == ("AWS", "Azure") and p.latency_ms == (0.0, 20.0)


def test_the_cli_rejects_a_bad_mapping_with_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: experimental\nname: bad\napp:\n  regions: [aws, azure, gcp, ibm]\n")
    r = run_cli("simulate", "--profile", str(path), "--duration", "1s")
    assert r.returncode == 2
    assert f"{path}:4: app.regions.3: region 'ibm' maps to no cloud" in r.stderr
    assert "Traceback" not in r.stderr
