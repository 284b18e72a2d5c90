"""Scoring a drill from its recording: the ground truth the engine wrote down.

Definitions (all in drill time; the incident starts when the first incident inject fires):

* detect: the first signal the fired incident injects declare (`signals`: alerts, detector
  findings, event types) at or after the incident start, or an alert the responders acknowledged
  by name (they called it related); an unrelated alert or a decoy never counts;
* acknowledge: the first applied `ack-alert` at or after detection;
* mitigate: when every mitigate-stage achieve objective was restored, i.e. the latest start of
  the condition streak that met each (a `for 5m` objective is restored when the 5 minutes began);
* resolve: the same over every achieve objective (root-cause declaration and fault stopped
  included);
* impact: error budget burned, requests failed and offered, writes lost (RPO) and events lost,
  as differences between the drill's start and its end;
* recovery (when a restore ran): each restore's duration, RPO (target to the restore's start)
  and writes lost, and the measured RTO: incident start to the last completed restore's end;
* each participant action: its time, who sent it, whether the engine applied it, and its
  effect. Only actions on the estate are judged (not acknowledgements, declarations, hints or the
  clock): "helped" if the metric of an objective that was not holding when it applied moved
  toward that objective within HELP_WINDOW_S (the condition became true and held HOLD_S, before
  the next action), naming the metric and its values; "hurt" if one that held broke within
  HURT_WINDOW_S; else "no visible effect";
* objectives still pending when the drill ended are "not met".

Everything is computed from a `Recording`, so a live run and `drill report FILE` agree.
Never imports the UI.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devsim_tui.drill import conditions
from devsim_tui.drill.controller import DECOY_SOURCE, acked_alert, is_detection
from devsim_tui.drill.recording import Recording
from devsim_tui.drill.schema import LoadedScenario, parse_scenario

HELP_WINDOW_S = 900.0  # a base backup takes 10 minutes
HOLD_S = 60.0
HURT_WINDOW_S = 120.0


@dataclass
class Result:
    loaded: LoadedScenario
    recording: Recording
    data: dict[str, Any] = field(default_factory=dict)


def score_session(session) -> Result:
    return score_recording(session.recording, session.loaded)


def score_recording(rec: Recording, loaded: LoadedScenario | None = None) -> Result:
    head = rec.header
    if loaded is None:
        sc = head["scenario"]
        loaded = parse_scenario(sc["text"], sc["path"], check_profile=False)
    s = loaded.scenario
    warm = float(head.get("warmup", 0.0))
    events = rec.events()
    dt = lambda t: None if t is None else round(float(t) - warm, 6)  # noqa: E731

    def first(pred, after: float = -math.inf) -> dict | None:
        return next((ev for ev in events if ev["t"] >= after - 1e-9 and pred(ev)), None)

    started = first(lambda ev: ev["type"] == "drill.started")
    ended = first(lambda ev: ev["type"] == "drill.ended")
    injects = []
    for ev in events:
        if ev["type"] == "drill.inject":
            d = ev["data"]
            injects.append({"id": d["id"], "t": dt(ev["t"]), "how": d["how"],
                            "incident": d["incident"], "commands": d["commands"],
                            "message": d.get("says"), "decoy": d.get("decoy")})
    failed_injects = [{"id": ev["data"]["id"], "t": dt(ev["t"]), "error": ev["message"]}
                      for ev in events if ev["type"] == "drill.inject.failed"]
    incident = next((i for i in injects if i["incident"]), None)
    t0_abs = incident["t"] + warm if incident is not None else None

    fired = {i["id"] for i in injects}
    signals = {x for i in s.injects if i.is_incident and i.id in fired for x in i.signals}
    detection = _detection(events, signals, t0_abs) if t0_abs is not None else None
    ack = None
    if detection is not None:
        ack = first(lambda ev: ev["type"] == "command.applied"
                    and ev.get("data", {}).get("command") == "ack-alert", detection["t"])

    objectives = {o.id: {"id": o.id, "title": o.title, "kind": o.kind,
                         "stage": o.effective_stage,
                         "status": "not met" if rec.complete or ended else "pending",
                         "met_t": None,
                         "restored_t": None, "failed_t": None, "reason": None}
                  for o in s.objectives}
    for ev in events:
        d = ev.get("data", {})
        if ev["type"] == "drill.objective.met" and d.get("id") in objectives:
            o = objectives[d["id"]]
            o.update(status="met", met_t=d["met"], restored_t=d["since"])
        elif ev["type"] == "drill.objective.failed" and d.get("id") in objectives:
            o = objectives[d["id"]]
            o.update(status="failed", failed_t=dt(ev["t"]), reason=d.get("reason"))

    def phase(stages: tuple[str, ...]) -> float | None:
        group = [o for o in objectives.values() if o["kind"] == "achieve"
                 and o["stage"] in stages]
        if not group or any(o["status"] != "met" for o in group):
            return None
        return max(o["restored_t"] for o in group)

    t_inc = incident["t"] if incident is not None else None

    def rel(t: float | None) -> float | None:
        return None if t is None or t_inc is None else round(t - t_inc, 6)

    mitigated, resolved = phase(("mitigate",)), phase(("mitigate", "resolve"))
    timings = {
        "incident_start": t_inc,
        "detected": dt(detection["t"]) if detection else None,
        "detected_by": (detection["message"] if detection else None),
        "acknowledged": dt(ack["t"]) if ack else None,
        "mitigated": mitigated, "resolved": resolved,
    }
    timings.update({
        "time_to_detect": rel(timings["detected"]),
        "time_to_acknowledge": rel(timings["acknowledged"]),
        "ack_after_detect": (round(timings["acknowledged"] - timings["detected"], 6)
                             if ack and detection else None),
        "time_to_mitigate": rel(mitigated), "time_to_resolve": rel(resolved),
    })

    # Impact: metric differences between the drill's start and its end.
    start_idx = 0
    if started is not None:
        start_idx = next((k for k, tk in enumerate(rec.ticks) if tk["t"] >= started["t"]), 0)

    def delta(name: str) -> float | None:
        if not rec.ticks:
            return None
        _, v = rec.series(name)
        a, b = v[start_idx], v[-1]
        if np.isnan(a) or np.isnan(b):
            return None
        return float(b - a)

    def peak(name: str, fn=np.nanmax) -> float | None:
        if not rec.ticks:
            return None
        _, v = rec.series(name)
        v = v[start_idx:]
        return float(fn(v)) if np.isfinite(v).any() else None

    impact = {
        "error_budget_burned": delta("error_budget_burned"),
        "requests_failed": delta("failed_total"),
        "requests_offered": delta("offered_total"),
        "writes_lost": delta("lost_writes"),
        "events_lost": delta("lost_events"),
        "peak_p99_ms": peak("p99_ms"), "peak_error_rate": peak("error_rate"),
        "min_ready": peak("ready", np.nanmin),
        "max_replication_lag_s": peak("db_max_lag_s"),
        "max_consumer_lag_s": peak("consumer_lag_s"),
        "stale_responses": delta("stale_responses"),
        "late_notifications": delta("late_notifications"),
    }

    recovery = _recovery(events, dt, t_inc)

    actions = _actions(rec, s, warm)
    hints = [{"id": ev["data"]["id"], "t": dt(ev["t"]), "how": ev["data"]["how"],
              "text": ev["data"]["text"]} for ev in events if ev["type"] == "drill.hint"]
    declarations = [{"t": dt(ev["t"]), "text": ev["data"]["text"],
                     "correct": ev["data"]["correct"]}
                    for ev in events if ev["type"].startswith("drill.root_cause.")]
    responders = _responders(actions, s)
    expected = []
    for x in s.expected:
        pat = re.compile(x.match, re.IGNORECASE)
        hit = next((a for a in actions if a["applied"] and pat.search(a["line"])), None)
        expected.append({"match": x.match, "why": x.why, "done": hit is not None,
                         "t": hit["t"] if hit else None})
    alerts = [{"t": dt(ev["t"]), "alert": ev["data"].get("alert"),
               "severity": ev["severity"], "decoy": ev["data"].get("source") == DECOY_SOURCE,
               "message": ev["message"]}
              for ev in events if ev["type"] == "alert.firing" and ev["t"] >= warm - 1e-9]
    met = sum(1 for o in objectives.values() if o["status"] == "met")
    data = {
        "scenario": {"name": loaded.name, "title": s.title, "profile": s.profile,
                     "difficulty": s.difficulty, "duration": s.duration},
        "seed": head.get("seed"),
        "complete": rec.complete,
        "ended": {"t": dt(ended["t"]) if ended else (dt(rec.ticks[-1]["t"]) if rec.ticks
                                                      else None),
                  "reason": ended["data"]["reason"] if ended else
                  (rec.end or {}).get("reason", "recording cut short")},
        "injects": injects, "failed_injects": failed_injects,
        "timings": timings, "impact": impact, "recovery": recovery,
        "objectives": list(objectives.values()),
        "objectives_met": met, "objectives_total": len(objectives),
        "actions": actions, "expected": expected, "hints": hints,
        "root_cause_declarations": declarations, "alerts": alerts,
        "responders": responders, "signals": sorted(signals), "headline": s.headline,
        "root_cause": {"found": any(x["correct"] for x in declarations),
                       "summary": s.root_cause.summary},
    }
    return Result(loaded, rec, data)


def _recovery(events: list[dict], dt, t_inc: float | None) -> dict | None:
    """Measured RPO and RTO of the restores the drill ran (db.restore.* events, sim/backup.py):
    per restore its target, start, end, duration, RPO (the data it gave up: from the target
    to the restore's start) and writes lost; and the drill's RTO, from the incident's start to
    the end of the last restore that completed (the service was impaired all that time).
    None when no restore started."""
    started = [ev for ev in events if ev["type"] == "db.restore.started"]
    if not started:
        return None
    done = [ev for ev in events if ev["type"] == "db.restore.completed"]
    restores = []
    for i, ev in enumerate(started):
        end = next((x for x in done if x["t"] >= ev["t"]
                    and (i + 1 == len(started) or x["t"] <= started[i + 1]["t"])), None)
        d = (end or ev)["data"]
        restores.append({
            "target": ev["data"]["target"], "started": dt(ev["t"]),
            "completed": dt(end["t"]) if end else None,
            "duration_s": d.get("rto_seconds") if end else None,
            "rpo_s": d.get("rpo_seconds") if end else None,
            "writes_lost": d.get("writes_lost"),
            "recovered_table": d.get("recovered_table") if end else None})
    last = next((r for r in reversed(restores) if r["completed"] is not None), None)
    return {"restores": restores,
            "rpo_s": last["rpo_s"] if last else None,
            "writes_lost": last["writes_lost"] if last else None,
            "rto_s": (round(last["completed"] - t_inc, 6)
                      if last is not None and t_inc is not None else None)}


def _detection(events: list[dict], signals: set[str], t0: float) -> dict | None:
    """The first declared signal after t0, or an alert the responders acked by name (then its
    firing time: they saw it and called it related), whichever came first."""
    firing: dict[str, dict] = {}
    best = None
    for ev in events:
        if ev["t"] < t0 - 1e-9:
            continue
        data = ev.get("data") or {}
        if ev["type"] == "alert.firing" and data.get("source") != DECOY_SOURCE:
            for key in (data.get("alert"), data.get("id")):
                firing.setdefault(str(key), ev)
        hit = ev if is_detection(ev, signals) else None
        if hit is None:
            related = acked_alert(ev)
            if related is not None and related in firing:
                hit = {**firing[related], "message": firing[related]["message"]
                       + " (acknowledged as related)"}
        if hit is not None and (best is None or hit["t"] < best["t"]):
            best = hit  # an ack after the signal may still name an earlier alert as related
    return best


#: Commands that act on the drill or the people, not on the estate: never "helped".
NOT_ON_THE_ESTATE = frozenset({"ack-alert", "silence", "unsilence", "declare-root-cause", "hint",
                               "inject-next", "skip-inject", "end-drill", "pause", "set-speed",
                               "step"})


def _actions(rec: Recording, s, warm: float) -> list[dict[str, Any]]:
    """Participant and facilitator commands with their outcome and effect."""
    bits_t = np.array([tk["t"] for tk in rec.ticks], dtype=float)
    bits = [tk["o"] for tk in rec.ticks]
    tick_s = float(rec.header.get("tick_seconds", 1.0))
    out = []
    for k, tk in enumerate(rec.ticks):
        cmds = tk.get("c", ())
        if not cmds:
            continue
        used: set[int] = set()
        evs = tk.get("e", [])
        for c in cmds:
            # The engine emits one command.applied/rejected per command, in the order applied.
            outcome = None
            for j, ev in enumerate(evs):
                if j in used or ev["type"] not in ("command.applied", "command.rejected"):
                    continue
                if ev.get("data", {}).get("command") in (c.get("name"), None):
                    used.add(j)
                    outcome = ev
                    break
            applied = outcome is not None and outcome["type"] == "command.applied"
            t = tk["t"] - tick_s  # applied at the tick's start boundary, stamped with that time
            line = c["line"] if "line" in c else " ".join(  # a refused line is kept as typed
                [c["name"]] + [_arg(v) for v in c["args"].values()])
            name = c.get("name") or line.split()[0]
            out.append({"t": round(t - warm, 6), "line": line, "by": c.get("by"),
                        "applied": applied,
                        "result": outcome["message"] if outcome is not None else None,
                        "effect": "rejected", "metric": None, "_k": k,
                        "_estate": name not in NOT_ON_THE_ESTATE})
    # Credit goes to the latest action before a recovery: an earlier one helped only if the
    # recovery came before the next action on the estate.
    ks = [a["_k"] for a in out if a["applied"] and a["_estate"]]
    targets = _targets(s, rec.header.get("metrics", ()))
    for a in out:
        k, on_estate = a.pop("_k"), a.pop("_estate")
        if not a["applied"]:
            continue
        if not on_estate:
            a["effect"] = "not an action on the estate"
            continue
        later = [x for x in ks if x > k]
        a["effect"], a["metric"] = _effect(rec, bits_t, bits, k, targets,
                                           later[0] if later else len(bits))
    return out


def _targets(s, recorded) -> list[tuple[str, str | None, str]]:
    """Per objective (in the recorded bit order): its kind, the recorded metric its condition
    reads first (None for a root cause or a signal not recorded per tick), and its title."""
    out = []
    for o in s.objectives:
        metric = None
        if o.condition is not None:
            metric = next((n for n, arg in conditions.parse(o.condition).signals()
                           if arg is None and n in recorded), None)
        kind = "root_cause" if o.root_cause else o.kind
        out.append((kind, metric, o.title))
    return out


def _arg(v: Any) -> str:
    text = str(v)
    return f'"{text}"' if " " in text else text


def _effect(rec: Recording, ts: np.ndarray, bits: list[str], k: int,
            targets: list[tuple[str, str | None, str]],
            next_k: int) -> tuple[str, dict[str, Any] | None]:
    before = bits[k - 1] if k > 0 else bits[k]
    t0 = ts[k]
    window = [j for j in range(k, min(next_k, len(bits))) if ts[j] - t0 <= HELP_WINDOW_S]
    for i, b in enumerate(before):
        kind, metric, title = targets[i]
        if b == "1" or kind != "achieve":
            continue
        j = next((j for j in window if bits[j][i] == "1"), None)
        if j is None:
            continue
        held = [bits[m][i] for m in range(j, len(bits)) if ts[m] - ts[j] <= HOLD_S]
        if not all(x == "1" for x in held):
            continue
        moved = None
        if metric is not None:
            _, v = rec.series(metric)
            a, b2 = v[max(k - 1, 0)], v[j]
            moved = {"name": metric, "before": None if np.isnan(a) else float(a),
                     "after": None if np.isnan(b2) else float(b2), "objective": title}
        else:
            moved = {"name": None, "before": None, "after": None, "objective": title}
        return "helped", moved
    for i, b in enumerate(before):
        kind, metric, title = targets[i]
        if kind == "root_cause":
            continue
        if b == "1" and any(bits[j][i] == "0" for j in range(k, len(bits))
                            if ts[j] - t0 <= HURT_WINDOW_S):
            return "hurt", {"name": metric, "before": None, "after": None, "objective": title}
    return "no visible effect", None


def _responders(actions: list[dict], s) -> list[dict[str, Any]]:
    """Who acted (each `by`: a seat and its role, a scripted role, the local seat), with how
    many actions, then the scenario's roles nobody held."""
    roles = {r.name: r.duties for r in s.roles}
    seen: dict[str, dict[str, Any]] = {}
    for a in actions:
        who = a["by"] or "(unattributed)"
        r = seen.setdefault(who, {"who": who, "role": _role_of(who, roles), "actions": 0,
                                  "held": True})
        r["actions"] += 1
    held = {r["role"] for r in seen.values()}
    out = list(seen.values())
    out += [{"who": None, "role": name, "actions": 0, "held": False}
            for name in roles if name not in held]
    return out


def _role_of(who: str, roles: dict[str, str]) -> str:
    """`alice (operator)` -> operator; a scripted responder's `by` is a scenario role."""
    if who in roles:
        return who
    if who.endswith(")") and " (" in who:
        return who[who.rindex(" (") + 2:-1]
    return {"participant": "participant (local seat)",
            "facilitator": "facilitator"}.get(who, who)
