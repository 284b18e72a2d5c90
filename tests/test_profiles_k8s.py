"""`devsim-tui profiles show --k8s`: the resources a user would apply for a profile's app tier
(devsim_tui/export/k8s.py, docs/cloud.md)."""

from __future__ import annotations

import yaml
from helpers import run_cli

from devsim_tui.export.k8s import manifests
from devsim_tui.config.loader import load_profile
from devsim_tui.sim import promql
from devsim_tui.sim.metrics import METRICS


def docs(profile: str) -> list[dict]:
    out = run_cli("profiles", "show", "--k8s", profile)
    assert out.returncode == 0, out.stderr
    return list(yaml.safe_load_all(out.stdout))


def test_experimental_canary_and_predictive_scaler_are_custom_resources():
    d = docs("experimental")
    assert [x["kind"] for x in d] == ["CustomResourceDefinition", "Rollout", "AnalysisTemplate",
                                      "HorizontalPodAutoscaler", "PredictiveScaler"]
    crd, rollout, analysis, hpa, scaler = d
    p = load_profile("experimental")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert steps[0] == {"setWeight": 10} and {"pause": {"duration": "2m"}} in steps
    assert rollout["spec"]["replicas"] == p.scaling.initialReplicas == 20
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert scaler["apiVersion"] == crd["spec"]["group"] + "/v1alpha1"
    assert scaler["spec"]["hpaRef"] == hpa["metadata"]["name"]
    conds = {m["name"]: m["successCondition"] for m in analysis["spec"]["metrics"]}
    assert conds == {"error-rate": "result[0] < 0.02", "p99-latency": "result[0] < 0.5"}


def test_the_analysis_queries_read_metrics_devsim_exports():
    exported = {m.name for m in METRICS}
    d = docs("experimental")
    queries = [m["provider"]["prometheus"]["query"] for x in d if x["kind"] == "AnalysisTemplate"
               for m in x["spec"]["metrics"]]
    assert queries
    for q in queries:
        names = {s.name for s in promql.selectors(promql.parse(q))}
        assert names and names <= exported, q


def test_without_custom_crds_or_a_canary_it_is_a_deployment():
    d = docs("production")
    assert [x["kind"] for x in d] == ["Deployment", "HorizontalPodAutoscaler"]
    assert d[0]["spec"]["strategy"]["type"] == "RollingUpdate"
    assert [x["kind"] for x in docs("development")] == ["Deployment"]  # manual scaling
    p = load_profile("experimental", overrides={"deployment.custom_crds": False})
    assert [x["kind"] for x in manifests(p)] == ["Deployment", "HorizontalPodAutoscaler"]
