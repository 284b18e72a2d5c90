"""The Kubernetes resources a user would apply for a profile's app tier
(`devsim-tui profiles show --k8s NAME`, docs/cloud.md).

- The workload: an Argo Rollout (`argoproj.io/v1alpha1`,
  https://argo-rollouts.readthedocs.io/en/stable/features/specification/) with the profile's
  `canary_steps` when `deployment.method` is canary and `custom_crds` is on, else an
  `apps/v1` Deployment with its rollingUpdate settings
  (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/).
- The canary's analysis: an AnalysisTemplate whose Prometheus queries read the metrics
  devsim-tui exports, with the profile's thresholds and Argo's limits
  (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/).
- Scaling: an `autoscaling/v2` HorizontalPodAutoscaler with the profile's behavior
  (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/); for the
  predictive scaler with `custom_crds`, its CustomResourceDefinition
  (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/)
  and a `PredictiveScaler` resource that names the HPA it raises.

Pure: a profile in, a list of manifests (plain dicts) out.
"""

from __future__ import annotations

from typing import Any

import yaml

from devsim_tui.config.schema import Profile

GROUP = "scaling.devsim.dev"


def _labels(p: Profile) -> dict[str, str]:
    return {"app": p.app.service}


def _container(p: Profile) -> dict[str, Any]:
    s = p.app.server
    limit = s.memory_limit_mb or s.memory_request_mb
    return {
        "name": p.app.service,
        "image": f"registry.example.com/{p.app.service}:{p.app.version}",
        "ports": [{"name": x.name[:15], "containerPort": x.port} for x in p.app.ports],
        "resources": {
            "requests": {"cpu": f"{s.cpu_request_millicores}m",
                         "memory": f"{s.memory_request_mb}Mi"},
            "limits": {"memory": f"{limit}Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": p.app.ports[0].port},
                           "initialDelaySeconds": int(s.startup_seconds)},
    }


def _template(p: Profile) -> dict[str, Any]:
    return {"metadata": {"labels": _labels(p)}, "spec": {"containers": [_container(p)]}}


def _steps(p: Profile) -> list[dict[str, Any]]:
    out = []
    for step in p.deployment.canary_steps:
        if step.setWeight is not None:
            out.append({"setWeight": step.setWeight})
        if step.pause is not None:
            out.append({"pause": dict(step.pause)})
        if step.analysis is not None:
            name = step.analysis.get("templateName", f"{p.app.service}-analysis")
            out.append({"analysis": {"templates": [{"templateName": str(name)}]}})
    return out


def _analysis_templates(p: Profile) -> list[str]:
    names = {str(s.analysis.get("templateName", f"{p.app.service}-analysis"))
             for s in p.deployment.canary_steps if s.analysis is not None}
    return sorted(names) or [f"{p.app.service}-analysis"]


def _analysis(p: Profile, name: str) -> dict[str, Any]:
    a, d = p.deployment.analysis, p.deployment
    svc = p.app.service
    prom = "http://prometheus.monitoring:9090"
    limits = {"interval": f"{a.interval_seconds:g}s", "count": a.count,
              "failureLimit": a.failureLimit, "inconclusiveLimit": a.inconclusiveLimit,
              "consecutiveErrorLimit": a.consecutiveErrorLimit}
    metrics = [{
        "name": "error-rate", **limits,
        "successCondition": f"result[0] < {d.rollback_error_rate:g}",
        "provider": {"prometheus": {"address": prom, "query": (
            f'sum(rate(devsim_requests_failed_total{{service="{svc}"}}[1m])) / '
            f'sum(rate(devsim_requests_total{{service="{svc}"}}[1m]))')}},
    }]
    if d.rollback_p99_ms is not None:
        metrics.append({
            "name": "p99-latency", **limits,
            "successCondition": f"result[0] < {d.rollback_p99_ms / 1000.0:g}",
            "provider": {"prometheus": {"address": prom, "query": (
                f'max(devsim_request_duration_p99_seconds{{service="{svc}"}})')}},
        })
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": name}, "spec": {"metrics": metrics}}


def _workload(p: Profile) -> list[dict[str, Any]]:
    d = p.deployment
    replicas = p.scaling.initialReplicas if p.scaling.initialReplicas is not None \
        else p.scaling.minReplicas
    common = {"replicas": replicas, "revisionHistoryLimit": d.revisionHistoryLimit,
              "minReadySeconds": d.minReadySeconds,
              "selector": {"matchLabels": _labels(p)}, "template": _template(p)}
    if d.method == "canary" and d.custom_crds:
        canary: dict[str, Any] = {"steps": _steps(p),
                                  "abortScaleDownDelaySeconds":
                                      int(d.analysis.abortScaleDownDelaySeconds)}
        if d.analysis.background:
            canary["analysis"] = {"templates": [{"templateName": n}
                                                for n in _analysis_templates(p)]}
        rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                   "metadata": {"name": p.app.service},
                   "spec": {**common, "progressDeadlineSeconds": d.progressDeadlineSeconds,
                            "progressDeadlineAbort": d.rollback == "auto",
                            "strategy": {"canary": canary}}}
        return [rollout] + [_analysis(p, n) for n in _analysis_templates(p)]
    ru = d.rollingUpdate
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": p.app.service},
                  "spec": {**common, "progressDeadlineSeconds": d.progressDeadlineSeconds,
                           "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                               "maxSurge": ru.maxSurge, "maxUnavailable": ru.maxUnavailable}}}}
    return [deployment]


def _hpa(p: Profile, target: dict[str, str]) -> dict[str, Any]:
    s = p.scaling
    spec: dict[str, Any] = {
        "scaleTargetRef": target, "minReplicas": s.minReplicas, "maxReplicas": s.maxReplicas,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": s.targetCPUUtilizationPercentage}}}],
    }
    if s.behavior is not None:
        spec["behavior"] = s.behavior.model_dump(mode="json", exclude_none=True)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": p.app.service}, "spec": spec}


def _scaler_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"predictivescalers.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": "predictivescalers", "singular": "predictivescaler",
                           "kind": "PredictiveScaler", "shortNames": ["psc"]},
                 "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "required": ["hpaRef"],
                                            "properties": {
                                                "hpaRef": {"type": "string"},
                                                "metric": {"type": "string"},
                                                "models": {"type": "array",
                                                           "items": {"type": "string"}},
                                                "minConfidence": {"type": "number"},
                                                "seasonSeconds": {"type": "integer"}}}}}}}]},
    }


def _scaler(p: Profile) -> dict[str, Any]:
    from devsim_tui.sim.predictive import DAY, DEFAULT_MIN_CONFIDENCE

    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "PredictiveScaler",
            "metadata": {"name": p.app.service},
            "spec": {"hpaRef": p.app.service,
                     "metric": f'sum(rate(devsim_requests_total{{service="{p.app.service}"}}[1m]))',
                     "models": ["holt-winters-daily", "holt-linear", "persistence"],
                     "minConfidence": DEFAULT_MIN_CONFIDENCE, "seasonSeconds": int(DAY)}}


def manifests(p: Profile) -> list[dict[str, Any]]:
    """The app tier's resources, in the order to apply them."""
    out = []
    predictive = p.scaling.scaler == "predictive"
    if predictive and p.deployment.custom_crds:
        out.append(_scaler_crd())
    work = _workload(p)
    out += work
    kind = work[0]["kind"]
    target = {"apiVersion": work[0]["apiVersion"], "kind": kind, "name": p.app.service}
    if p.scaling.scaler in ("hpa", "predictive"):
        out.append(_hpa(p, target))
    if predictive and p.deployment.custom_crds:
        out.append(_scaler(p))
    return out


def dump(p: Profile) -> str:
    head = (f"# Kubernetes resources for profile '{p.name}' ({p.environment}): "
            f"kubectl apply -f -\n")
    if p.deployment.method == "canary" and not p.deployment.custom_crds:
        head += ("# deployment.method is canary but custom_crds is false: without Argo Rollouts "
                 "the canary steps are not expressible; a plain Deployment follows\n")
    return head + yaml.safe_dump_all(manifests(p), sort_keys=False, width=100)
