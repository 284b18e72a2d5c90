"""The drill report: Markdown and JSON with the sections of PagerDuty's postmortem template
(overview, what happened, contributing factors, resolution, impact, responders, timeline, how we
did, action items), with unicode sparklines of the key metrics over the drill and around each
inject, and optional SVG charts. Never imports the UI.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from devsim_tui.drill.controller import fmt_t
from devsim_tui.drill.score import Result

BARS = "▁▂▃▄▅▆▇█"
#: Metrics charted (recorded name, label, format), the first ones always, the others when they
#: moved during the drill.
CHARTS = (
    ("p99_ms", "p99 latency (ms)", "{:.0f}"),
    ("error_rate", "error rate", "{:.2%}"),
    ("ready", "ready servers", "{:.0f}"),
    ("db_max_lag_s", "replication lag (s)", "{:.1f}"),
    ("cache_hit_ratio", "cache hit ratio", "{:.2f}"),
    ("disk_pct", "worst server disk (%)", "{:.0f}"),
    ("consumer_lag_s", "Kafka consumer lag (s)", "{:.0f}"),
    ("bad_pods", "pods on a bad version", "{:.0f}"),
    ("memory_pct", "memory (% of request)", "{:.0f}"),
)
ALWAYS = 3
AROUND_S = 300.0  # the window charted around each inject: 5 min before to 5 min after
WIDTH = 60


def sparkline(values: np.ndarray, width: int = WIDTH, lo: float | None = None,
              hi: float | None = None) -> str:
    """Unicode bars, each the max of its bucket (a spike stays visible), NaN as a space."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return ""
    buckets = np.array_split(v, min(width, v.size))
    pts = np.array([np.nanmax(b) if np.isfinite(b).any() else np.nan for b in buckets])
    finite = pts[np.isfinite(pts)]
    if finite.size == 0:
        return " " * len(pts)
    lo = float(finite.min()) if lo is None else lo
    hi = float(finite.max()) if hi is None else hi
    span = hi - lo
    out = []
    for p in pts:
        if not math.isfinite(p):
            out.append(" ")
        elif span <= 0:
            out.append(BARS[0])
        else:
            out.append(BARS[min(len(BARS) - 1, int((p - lo) / span * (len(BARS) - 1) + 0.5))])
    return "".join(out)


def charts(result: Result) -> list[tuple[str, str, str]]:
    """(metric, label, range) of the metrics worth charting (the report, the debrief)."""
    rec = result.recording
    if not rec.ticks:
        return []
    out = []
    for k, (name, label, fmt) in enumerate(CHARTS):
        t, v = rec.series(name)
        finite = v[np.isfinite(v)]
        if finite.size == 0:
            continue
        # Past the first few, chart only what moved: 2 % of its level, not float noise.
        if k >= ALWAYS and np.ptp(finite) <= 0.02 * max(float(np.abs(finite).max()), 1e-9):
            continue
        rng = f"{fmt.format(finite.min())} .. {fmt.format(finite.max())}"
        out.append((name, label, rng))
    return out


def _fmt(v: Any, kind: str = "") -> str:
    if v is None:
        return "-"
    if kind == "t":
        return fmt_t(v)
    if kind == "pct":
        return f"{v:.2%}"
    if kind == "int":
        return f"{v:,.0f}"
    return str(v)


def markdown(result: Result) -> str:
    d = result.data
    s = result.loaded.scenario
    tm, im = d["timings"], d["impact"]
    warm = float(result.recording.header.get("warmup", 0.0))
    L: list[str] = []
    a = L.append
    a(f"# Drill report: {s.title}")
    a("")
    a(f"Scenario `{d['scenario']['name']}` on profile `{s.profile}` ({s.difficulty}), seed "
      f"{d['seed']}. Drill ended at {fmt_t(d['ended']['t'])} ({d['ended']['reason']}); "
      f"{d['objectives_met']}/{d['objectives_total']} objectives met.")
    if not d["complete"]:
        a("")
        a("> The recording ends without its closing line (the run was stopped or killed); "
          "this report covers what was recorded.")
    a("")
    a("## Overview")
    a("")
    a(s.summary.strip())
    a("")
    a(f"**Root cause:** {s.root_cause.summary}")
    a("")
    a("## What happened")
    a("")
    for i in d["injects"]:
        what = "; ".join(i["commands"]) if i["commands"] else ""
        if i["message"]:
            what = (what + "; " if what else "") + f"message: \u201c{i['message']}\u201d"
        if i["decoy"]:
            what = (what + "; " if what else "") + f"decoy alert {i['decoy']}"
        tag = "incident" if i["incident"] else "context"
        a(f"- {fmt_t(i['t'])} inject **{i['id']}** ({tag}, {i['how']}): {what}")
    for f in d["failed_injects"]:
        a(f"- {fmt_t(f['t'])} inject **{f['id']}** FAILED: {f['error']}")
    a("")
    a("## Contributing factors")
    a("")
    for c in s.contributing_factors or ["(none listed in the scenario)"]:
        a(f"- {c}")
    a("")
    a(f"Facilitator notes: {s.facilitator_notes.strip()}")
    a("")
    a("## Resolution")
    a("")
    helped = [x for x in d["actions"] if x["effect"] == "helped"]
    if helped:
        for x in helped:
            a(f"- {fmt_t(x['t'])} `{x['line']}`" + (f" ({x['by']})" if x["by"] else "")
              + f" helped: {helped_text(x)}")
    else:
        a("- No action moved a metric toward an objective.")
    for x in d["expected"]:
        mark = "x" if x["done"] else " "
        when = f" at {fmt_t(x['t'])}" if x["done"] else ""
        a(f"- [{mark}] expected: {x['why']} (`/{x['match']}/`){when}")
    a("")
    a("## Impact")
    a("")
    a("| measure | value |")
    a("|---|---|")
    a(f"| error budget burned (of the SLO window's) | {_fmt(im['error_budget_burned'], 'pct')} |")
    a(f"| requests failed / offered | {_fmt(im['requests_failed'], 'int')} / "
      f"{_fmt(im['requests_offered'], 'int')} |")
    a(f"| writes lost (RPO) | {_fmt(im['writes_lost'], 'int')} |")
    a(f"| events lost | {_fmt(im['events_lost'], 'int')} |")
    for key, label in (("stale_responses", "responses served with stale derived data"),
                       ("late_notifications", "notifications sent late")):
        if im.get(key):  # Kafka's downstream consequences (docs/streaming.md), when any
            a(f"| {label} | {_fmt(im[key], 'int')} |")
    a(f"| peak p99 | {_fmt(None if im['peak_p99_ms'] is None else round(im['peak_p99_ms']))} "
      "ms |")
    a(f"| peak error rate | {_fmt(im['peak_error_rate'], 'pct')} |")
    a(f"| fewest ready servers | {_fmt(im['min_ready'], 'int')} |")
    a("")
    rc = d.get("recovery")
    if rc:
        a("## Recovery (RPO / RTO)")
        a("")
        a(f"Measured RPO {_fmt_s(rc['rpo_s'])} ({_fmt(rc['writes_lost'], 'int')} writes lost), "
          f"RTO {_fmt_s(rc['rto_s'])} (from the incident's start to the restored database).")
        a("")
        a("| restore to | started | completed | took | RPO | writes lost | dropped table back |")
        a("|---|---|---|---|---|---|---|")
        for r in rc["restores"]:
            back = "-" if r["recovered_table"] is None else (
                "yes" if r["recovered_table"] else "no")
            a(f"| {r['target']} | {fmt_t(r['started'])} | {fmt_t(r['completed'])} | "
              f"{_fmt_s(r['duration_s'])} | {_fmt_s(r['rpo_s'])} | "
              f"{_fmt(r['writes_lost'], 'int')} | {back} |")
        a("")
    a("## Responders")
    a("")
    for r in d["responders"]:
        duties = {x.name: x.duties for x in s.roles}.get(r["role"])
        duties = f" ({duties})" if duties else ""
        if r["held"]:
            n = r["actions"]
            a(f"- {r['who']}, as {r['role']}{duties}: {n} action{'' if n == 1 else 's'}")
        else:
            a(f"- {r['role']}{duties}: nobody held this role")
    a("")
    a("## Timeline")
    a("")
    a("| drill time | what |")
    a("|---|---|")
    for t, text in timeline(d):
        a(f"| {fmt_t(t)} | {text.replace('|', '/')} |")
    a("")
    a("## How we did")
    a("")
    a("| measure | drill time | since the incident began |")
    a("|---|---|---|")
    a(f"| incident began | {fmt_t(tm['incident_start'])} | |")
    a(f"| detected | {fmt_t(tm['detected'])} | {fmt_t(tm['time_to_detect'])} |")
    a(f"| acknowledged | {fmt_t(tm['acknowledged'])} | {fmt_t(tm['time_to_acknowledge'])} |")
    a(f"| mitigated | {fmt_t(tm['mitigated'])} | {fmt_t(tm['time_to_mitigate'])} |")
    a(f"| resolved | {fmt_t(tm['resolved'])} | {fmt_t(tm['time_to_resolve'])} |")
    a("")
    if tm["detected_by"]:
        a(f"Detected by: {tm['detected_by']}")
        a("")
    a("| objective | kind | status | when |")
    a("|---|---|---|---|")
    for o in d["objectives"]:
        when = o["met_t"] if o["status"] == "met" else o["failed_t"]
        a(f"| {o['title']} | {o['kind']}/{o['stage']} | {o['status']} | {fmt_t(when)} |")
    a("")
    a(f"Hints used: {len(d['hints'])} of {len(s.hints)}. Root-cause declarations: "
      + (", ".join(f"{fmt_t(x['t'])} \u201c{x['text']}\u201d "
                   f"({'right' if x['correct'] else 'wrong'})"
                   for x in d["root_cause_declarations"]) or "none") + ".")
    a("")
    a(f"Root cause verdict: {verdict(d)}")
    a("")
    if d["actions"]:
        a("| drill time | action | by | applied | effect |")
        a("|---|---|---|---|---|")
        for x in d["actions"]:
            effect = (f"helped: {helped_text(x)}" if x["effect"] == "helped"
                      else x["effect"] + (f" ({x['metric']['objective']})"
                                          if x["effect"] == "hurt" else ""))
            a(f"| {fmt_t(x['t'])} | `{x['line']}` | {x['by'] or '-'} | "
              f"{'yes' if x['applied'] else 'no'} | {effect.replace('|', '/')} |")
        a("")
    shown = charts(result)
    if shown:
        a("### Key metrics over the drill")
        a("")
        a("```")
        rec = result.recording
        for name, label, rng in shown:
            t, v = rec.series(name)
            keep = t >= warm
            a(f"{label:<24} {sparkline(v[keep])}  {rng}")
        a("```")
        a("")
        for i in d["injects"]:
            if not i["incident"]:
                continue
            a(f"Around inject **{i['id']}** ({fmt_t(i['t'] - AROUND_S)} .. "
              f"{fmt_t(i['t'] + AROUND_S)}, the inject in the middle):")
            a("")
            a("```")
            t0 = i["t"] + warm
            for name, label, _ in shown:
                t, v = rec.series(name)
                keep = (t >= t0 - AROUND_S) & (t <= t0 + AROUND_S)
                a(f"{label:<24} {sparkline(v[keep])}")
            a("```")
            a("")
    a("## Action items")
    a("")
    items = list(s.action_items)
    for o in d["objectives"]:
        if o["status"] != "met":
            items.append(f"Drill follow-up: objective not met: {o['title']}.")
    for x in d["expected"]:
        if not x["done"]:
            items.append(f"Drill follow-up: expected remediation not done: {x['why']}.")
    for it in items or ["(none)"]:
        a(f"- [ ] {it}")
    a("")
    return "\n".join(L)


def helped_text(x: dict[str, Any]) -> str:
    """`error_rate 100.00% -> 0.40%, toward "error rate below 1%..."` for a helping action."""
    m = x.get("metric") or {}
    fmt = next((f for n, _, f in CHARTS if n == m.get("name")), "{:.3g}")
    toward = f"toward \u201c{m.get('objective')}\u201d"
    if m.get("name") is None or m.get("before") is None or m.get("after") is None:
        return toward
    return f"{m['name']} {fmt.format(m['before'])} \u2192 {fmt.format(m['after'])}, {toward}"


def verdict(d: dict[str, Any]) -> str:
    decl = d["root_cause_declarations"]
    if not decl:
        return "no root cause was declared."
    if d["root_cause"]["found"]:
        first = next(x for x in decl if x["correct"])
        return (f"named at {fmt_t(first['t'])} (\u201c{first['text']}\u201d); the cause: "
                f"{d['root_cause']['summary']}")
    return (f"not named ({len(decl)} declaration{'' if len(decl) == 1 else 's'}, none right); "
            f"the cause: {d['root_cause']['summary']}")


def timeline(d: dict[str, Any]) -> list[tuple[float | None, str]]:
    """The scored timeline, in drill time: injects, alerts, detection, acknowledgement,
    actions, hints, objectives, mitigation, resolution and the end (report and debrief)."""
    rows: list[tuple[float | None, str]] = []
    tm = d["timings"]
    for i in d["injects"]:
        rows.append((i["t"], f"INJECT {i['id']}" + ("" if i["incident"] else " (context)")))
    for al in d["alerts"]:
        rows.append((al["t"], f"alert {al['message']}" + (" (decoy)" if al["decoy"] else "")))
    if tm["detected"] is not None:
        rows.append((tm["detected"], f"DETECTED by {tm['detected_by']}"))
    if tm["acknowledged"] is not None:
        rows.append((tm["acknowledged"], "ACKNOWLEDGED"))
    for h in d["hints"]:
        rows.append((h["t"], f"hint ({h['how']}): {h['text']}"))
    for x in d["actions"]:
        who = f" by {x['by']}" if x["by"] else ""
        res = "" if x["applied"] else f" (rejected: {x['result']})"
        rows.append((x["t"], f"`{x['line']}`{who}{res}"))
    for o in d["objectives"]:
        if o["status"] == "met":
            rows.append((o["met_t"], f"objective met: {o['title']}"))
        elif o["status"] == "failed":
            rows.append((o["failed_t"], f"objective failed: {o['title']} ({o['reason']})"))
    if tm["mitigated"] is not None:
        rows.append((tm["mitigated"], "MITIGATED (the symptoms' objectives restored)"))
    if tm["resolved"] is not None:
        rows.append((tm["resolved"], "RESOLVED (every objective restored)"))
    if d["ended"]["t"] is not None:
        rows.append((d["ended"]["t"], f"drill ended ({d['ended']['reason']})"))
    return sorted(rows, key=lambda r: (r[0] if r[0] is not None else math.inf))


def svg_chart(t: np.ndarray, v: np.ndarray, label: str, marks: list[tuple[float, str]],
              width: int = 720, height: int = 180) -> str:
    """A line chart with vertical markers (injects, actions); plain SVG, no dependencies."""
    pad_l, pad_r, pad_t, pad_b = 50, 10, 24, 22
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    finite = np.isfinite(v)
    lo = float(np.min(v[finite])) if finite.any() else 0.0
    hi = float(np.max(v[finite])) if finite.any() else 1.0
    if hi <= lo:
        hi = lo + 1.0
    t_lo, t_hi = (float(t[0]), float(t[-1])) if len(t) else (0.0, 1.0)
    if t_hi <= t_lo:
        t_hi = t_lo + 1.0
    x = lambda tt: pad_l + (tt - t_lo) / (t_hi - t_lo) * w  # noqa: E731
    y = lambda vv: pad_t + h - (vv - lo) / (hi - lo) * h  # noqa: E731
    step = max(1, len(t) // (w * 2))
    pts, paths = [], []
    for k in range(0, len(t), step):
        if finite[k]:
            pts.append(f"{x(t[k]):.1f},{y(v[k]):.1f}")
        elif pts:
            paths.append(pts)
            pts = []
    if pts:
        paths.append(pts)
    esc = lambda s: (s.replace("&", "&amp;").replace("<", "&lt;")  # noqa: E731
                     .replace(">", "&gt;"))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<text x="{pad_l}" y="14">{esc(label)}</text>',
           f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="none" '
           'stroke="#ccc"/>',
           f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{hi:.3g}</text>',
           f'<text x="{pad_l - 4}" y="{pad_t + h}" text-anchor="end">{lo:.3g}</text>',
           f'<text x="{pad_l}" y="{height - 6}">{fmt_t(t_lo)}</text>',
           f'<text x="{pad_l + w}" y="{height - 6}" text-anchor="end">{fmt_t(t_hi)}</text>']
    for tt, name in marks:
        if t_lo <= tt <= t_hi:
            out.append(f'<line x1="{x(tt):.1f}" y1="{pad_t}" x2="{x(tt):.1f}" '
                       f'y2="{pad_t + h}" stroke="#d33" stroke-dasharray="3,3">'
                       f'<title>{esc(name)}</title></line>')
    for p in paths:
        out.append(f'<polyline fill="none" stroke="#36c" stroke-width="1.5" '
                   f'points="{" ".join(p)}"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_report(result: Result, prefix: str, svg: bool = False) -> list[str]:
    """Write PREFIX.md and PREFIX.json (and PREFIX-METRIC.svg); returns the paths."""
    from devsim_tui.errors import UserError

    paths = []
    base = Path(prefix)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        md = base.with_name(base.name + ".md")
        md.write_text(markdown(result), encoding="utf-8")
        paths.append(str(md))
        js = base.with_name(base.name + ".json")
        js.write_text(json.dumps(result.data, indent=2, allow_nan=False,
                                 default=_nan_safe) + "\n", encoding="utf-8")
        paths.append(str(js))
        if svg:
            warm = float(result.recording.header.get("warmup", 0.0))
            marks = [(i["t"], f"inject {i['id']}") for i in result.data["injects"]]
            marks += [(x["t"], x["line"]) for x in result.data["actions"] if x["applied"]]
            for name, label, _ in charts(result):
                t, v = result.recording.series(name)
                keep = t >= warm
                f = base.with_name(f"{base.name}-{name}.svg")
                f.write_text(svg_chart(t[keep] - warm, v[keep], label, marks),
                             encoding="utf-8")
                paths.append(str(f))
    except OSError as exc:
        raise UserError(f"cannot write the report at {prefix}: {exc.strerror}") from None
    return paths


def _nan_safe(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x).__name__)


def _fmt_s(x: float | None) -> str:
    """Seconds as the report writes durations (`7m24s`), `-` when unknown."""
    return "-" if x is None else fmt_t(x)


def summary_text(result: Result) -> str:
    d = result.data
    tm, im = d["timings"], d["impact"]
    lines = [
        f"drill {d['scenario']['name']}: ended at {fmt_t(d['ended']['t'])} "
        f"({d['ended']['reason']}), {d['objectives_met']}/{d['objectives_total']} objectives met",
        f"  detect {fmt_t(tm['time_to_detect'])}, acknowledge "
        f"{fmt_t(tm['time_to_acknowledge'])}, mitigate {fmt_t(tm['time_to_mitigate'])}, "
        f"resolve {fmt_t(tm['time_to_resolve'])} (after the incident began at "
        f"{fmt_t(tm['incident_start'])})",
        f"  error budget burned {_fmt(im['error_budget_burned'], 'pct')}, requests failed "
        f"{_fmt(im['requests_failed'], 'int')}, writes lost {_fmt(im['writes_lost'], 'int')}",
    ]
    rc = d.get("recovery")
    if rc:
        lines.append(f"  recovery: RPO {_fmt_s(rc['rpo_s'])} "
                     f"({_fmt(rc['writes_lost'], 'int')} writes lost), RTO {_fmt_s(rc['rto_s'])}")
    for o in d["objectives"]:
        lines.append(f"  [{'x' if o['status'] == 'met' else ' '}] {o['title']} ({o['status']})")
    lines.append(f"  root cause: {verdict(d)}")
    if d["failed_injects"]:
        lines.append(f"  {len(d['failed_injects'])} inject command(s) failed: "
                     + "; ".join(f["error"] for f in d["failed_injects"]))
    return "\n".join(lines)
