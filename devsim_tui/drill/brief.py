"""The two views of a scenario: the participants' brief and the facilitator's sheet.

The brief is what a participant may read before and during the drill: the situation, what
they can see and do, and the objectives, phrased by symptom. It never names the cause
(`Scenario.cause_leaks` finds a string that would; tests/test_drill.py holds every shipped
scenario to it). The sheet adds what only the facilitator reads: the cause and the declarations
accepted for it, the injects with the signals each raises, the headline alert, what each
operator action really does, the hints and the expected remediations. `drill show` prints
them; the drill pane shows the brief. Never imports the UI.
"""

from __future__ import annotations

from typing import Any

from devsim_tui.config.durations import format_duration
from devsim_tui.drill.schema import LoadedScenario, Scenario

#: What every participant can see and do in a drill, whatever the scenario.
SEE = ("the control room: servers, metrics, alerts, events, the database and the drill pane "
       "(clock, objectives, messages from outside, hints the facilitator gives)")
DO = ("the ordinary commands (`:scale`, `:rollback`, `:abort`, `:restart-node`, `:backup`, "
      "`:ack-alert`, ... — `?` lists them)")
DECLARE = ("`:declare-root-cause TEXT` in your own words (quotes optional); it is judged at the "
           "end of the drill")


def brief(loaded: LoadedScenario) -> dict[str, Any]:
    """The participant brief as data (`drill show --json`, the drill pane)."""
    s = loaded.scenario
    return {
        "title": s.title, "profile": s.profile,
        "difficulty": s.difficulty, "duration": s.duration, "situation": s.summary.strip(),
        "roles": [{"name": r.name, "duties": r.duties} for r in s.roles],
        "you_can_see": SEE,
        "you_can_do": [DO] + ([f"the operator actions below (`:remedy NAME`)"]
                              if s.remedies else []) + [DECLARE],
        "actions": [{"name": k, "summary": r.summary} for k, r in s.remedies.items()],
        "objectives": [{"id": o.id, "title": o.title, "kind": o.kind,
                        "deadline": o.deadline} for o in s.objectives],
        "hints": len(s.hints),
    }


def brief_text(loaded: LoadedScenario) -> str:
    b = brief(loaded)
    # Not the file's name: it is the facilitator's handle and may name the cause
    # (`tls-certificate-expiry`); participants get the title.
    L = [f"{b['title']}  [{b['profile']}, {b['difficulty']}, {format_duration(b['duration'])}]", "", "SITUATION", _wrap(b["situation"]), "",
         "ROLES"]
    L += [f"  {r['name']}" + (f": {r['duties']}" if r["duties"] else "") for r in b["roles"]]
    L += ["", "YOU CAN SEE", _wrap(SEE), "", "YOU CAN DO"]
    L += [_wrap(x, "  - ") for x in b["you_can_do"]]
    if b["actions"]:
        L += ["", "OPERATOR ACTIONS (`:remedy NAME`)"]
        L += [f"  {a['name']}: {a['summary']}" for a in b["actions"]]
    L += ["", "OBJECTIVES"]
    for o in b["objectives"]:
        extra = " (to hold throughout)" if o["kind"] == "maintain" else ""
        extra += f" (by {format_duration(o['deadline'])})" if o["deadline"] is not None else ""
        L.append(f"  [ ] {o['title']}{extra}")
    L += ["", f"The facilitator holds {b['hints']} hint(s)."]
    return "\n".join(L)


def sheet_text(loaded: LoadedScenario) -> str:
    """The brief, then the facilitator's sheet."""
    s: Scenario = loaded.scenario
    L = [f"scenario {loaded.name} ({loaded.path})", "", brief_text(loaded), "", "=" * 30 + " FACILITATOR'S SHEET (do not show) " + "=" * 30,
         "", "NOTES", _wrap(s.facilitator_notes.strip()), "",
         "ROOT CAUSE", _wrap(s.root_cause.summary),
         "  accepted declarations (each: all its words; `a|b` synonyms, `x*` prefix):"]
    L += [f"    - {x}" for x in s.root_cause.accepted]
    L += ["", f"HEADLINE ALERT: {s.headline}", "", "INJECTS"]
    for i in s.injects:
        when = []
        if i.after:
            when.append(f"after {i.after}")
        if i.at is not None:
            when.append(f"+{format_duration(i.at)}" if i.after else f"at {format_duration(i.at)}")
        if i.when:
            when.append(f"when {i.when}")
        what = list(i.do)
        if i.message:
            what.append(f"message from {i.message.source}")
        if i.alert:
            what.append(f"decoy alert {i.alert.name}")
        tag = "incident" if i.is_incident else "context"
        L.append(f"  [{i.id}] ({tag}) {' '.join(when) or 'on request (inject-next)'}: "
                 f"{'; '.join(what)}" + (f"  -- {i.note}" if i.note else ""))
        if i.signals:
            L.append(f"      raises: {', '.join(i.signals)}")
    if s.remedies:
        L += ["", "OPERATOR ACTIONS, WHAT THEY REALLY DO"]
        for name, r in s.remedies.items():
            does = [f"stops {', '.join(r.stops)}"] if r.stops else []
            does += list(r.do)
            L.append(f"  {name}: {'; '.join(does) or 'nothing in this drill'}"
                     + (f"  -- {r.note}" if r.note else ""))
    L += ["", "OBJECTIVE CONDITIONS"]
    for o in s.objectives:
        cond = "a declaration the judge accepts" if o.root_cause else o.condition
        L.append(f"  [{o.id}] {o.kind}/{o.effective_stage}: {cond}")
    if s.hints:
        L += ["", "HINTS"]
        for h in s.hints:
            auto = f" (auto at {format_duration(h.at)})" if h.at is not None else ""
            auto += f" (auto when {h.when})" if h.when else ""
            L.append(f"  [{h.id}]{auto} {h.text}")
    if s.expected:
        L += ["", "EXPECTED REMEDIATIONS"]
        L += [f"  /{x.match}/: {x.why}" for x in s.expected]
    return "\n".join(L)


def _wrap(text: str, first: str = "  ") -> str:
    import textwrap

    return textwrap.fill(" ".join(text.split()), width=96, initial_indent=first,
                         subsequent_indent=" " * len(first))
