"""Drills: scenario validation, every shipped scenario won headless, scoring against hand-computed
times, facilitator commands, recordings (SIGKILL-safe) and replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import REPO, run_cli

from devsim_tui.drill import conditions
from devsim_tui.drill.recording import read
from devsim_tui.drill.runner import (
    DrillSession, Responder, load_responder, replay, run_headless,
)
from devsim_tui.drill.schema import list_shipped, load_scenario
from devsim_tui.drill.score import score_recording, score_session

SHIPPED = list_shipped()
RESPONDERS = REPO / "drills" / "responders"


class _Done:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def cli(capsys, *args: str) -> _Done:
    """The CLI in-process (a subprocess costs ~2 s of imports per call)."""
    from devsim_tui.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return _Done(code, out.out, out.err)


def _run(name: str, record: Path | None = None, steps=None, seed=None):
    loaded = load_scenario(REPO / "drills" / f"{name}.yaml")
    session = DrillSession(loaded, seed=seed, record=record)
    steps = load_responder(RESPONDERS / f"{name}.yaml") if steps is None else steps
    reason = run_headless(session, Responder(steps, session) if steps else None)
    return session, reason


# --------------------------------------------------------------------------- shipped scenarios


def test_at_least_ten_scenarios_over_all_three_environments():
    profiles = {load_scenario(p, check_profile=False).scenario.profile for p in SHIPPED}
    assert len(SHIPPED) >= 10
    assert {"production", "development", "experimental"} <= profiles
    assert sorted(p.stem for p in SHIPPED) == sorted(p.stem for p in RESPONDERS.glob("*.yaml"))


def test_cli_validates_every_shipped_scenario(capsys):
    r = cli(capsys, "drill", "validate")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok") == len(SHIPPED)


PROOF_SEEDS = (1, 2, 3, 4, 5)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_is_won_by_its_answer_key_at_five_seeds(path):
    for seed in PROOF_SEEDS:
        session, reason = _run(path.stem, seed=seed)
        d = session.drill
        assert reason == "objectives met", (seed, d.state())
        assert all(o.status == "met" for o in d.objectives), (seed, d.state()["objectives"])
        # every inject fired, no command of an inject was rejected
        assert [i.status for i in d.injects] == ["fired"] * len(d.injects), seed
        assert not any(i.errors for i in d.injects), (seed, [i.errors for i in d.injects])
        result = score_session(session).data
        assert result["timings"]["time_to_detect"] is not None, (seed, "never detected")
        assert result["root_cause"]["found"], seed


def _headline_delay(loaded, seed: int, how: str) -> tuple[float, float | None]:
    """Fire the incident inject early (the facilitator's `inject-next` at 00:11), on schedule,
    or 97 s late; returns (when it landed, how long until the headline signal), no one acting."""
    from devsim_tui.drill.controller import event_dict_of, is_detection
    from devsim_tui.drill.schema import LoadedScenario
    from devsim_tui.sim import commands as C

    s = loaded.scenario
    inc = s.first_incident()
    if how == "late":
        injects = [i.model_copy(update={"at": i.at + 97}) if i.id == inc.id else i
                   for i in s.injects]
        loaded = LoadedScenario(s.model_copy(update={"injects": injects}), loaded.path,
                                loaded.text)
    session = DrillSession(loaded, seed=seed)
    d = session.drill
    if how == "early":
        session.advance(int(d.start_t) + 11)
        session.submit(C.InjectNext(id=inc.id), by="facilitator")
    st, seq = d._inject(inc.id), 0
    while not session.finished:
        session.advance(20)
        for ev in session.events_since(seq):
            seq = ev.seq
            if (st.fired_t is not None and ev.t >= st.fired_t + d.start_t - 1e-9
                    and is_detection(event_dict_of(ev), {s.headline})):
                return st.fired_t, ev.t - d.start_t - st.fired_t
    return st.fired_t, None


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_headline_alert_fires_whenever_the_incident_lands(path):
    """Early (facilitator at 00:11), on schedule and late, at five seeds: the scenario's headline
    signal fires after its incident inject. (PrimaryDown once fired only when a rule evaluation
    fell inside Patroni's 30 s failover, CacheHitRatioCollapse only when the 1-minute dip met
    its `for: 1m`; the scenarios now give both room, see their overrides. HighErrorRate in
    bad-rolling-release never fired when the facilitator sent release two early: the warm-up
    release landed on its unfinished rollout and rolled everything back; see the next test.)"""
    loaded = load_scenario(path)
    assert loaded.scenario.headline in loaded.scenario.incident_signals()
    sched = loaded.scenario.first_incident().at
    for how in ("early", "scheduled", "late"):
        for seed in PROOF_SEEDS:
            landed, delay = _headline_delay(loaded, seed, how)
            expect = {"early": 11.0, "scheduled": sched, "late": sched + 97}[how]
            assert landed == pytest.approx(expect), (how, seed, landed)
            assert delay is not None, f"{loaded.scenario.headline} never fired ({how}, seed {seed})"


def test_release_morning_with_the_incident_first_keeps_its_lesson():
    """bad-rolling-release with release two fired by the facilitator at 00:11, before the
    warm-up. The pipeline deploys one release at a time: release one (v2.14.4, +800 ms) waits
    for release two's rollout to complete, fails its analysis and is rolled back to the last
    completed revision - the bad v2.14.5 (Argo's stable ReplicaSet; `kubectl rollout undo` would
    pick it too). The error rate stays, HighErrorRate pages, and the answer key wins. (Before,
    release one landed on the unfinished rollout at 02:00 and its rollback went to v2.14.3,
    removing the incident before the alert's `for: 2m`.)"""
    from devsim_tui.sim import commands as C

    loaded = load_scenario(REPO / "drills" / "bad-rolling-release.yaml")
    for seed in (1, 2, 3):
        session = DrillSession(loaded, seed=seed)
        d = session.drill
        session.advance(int(d.start_t) + 11)
        session.submit(C.InjectNext(id="release-two"), by="facilitator")
        reason = run_headless(session, Responder(
            load_responder(RESPONDERS / "bad-rolling-release.yaml"), session))
        assert reason == "objectives met", (seed, d.state()["objectives"])
        evs = [ev for ev in session.events_since(0) if ev.type.startswith("release.")]
        starts = [ev for ev in evs if ev.type == "release.rollout.started"]
        assert "v2.14.3 -> v2.14.5" in starts[0].message, starts[0].message
        complete = next(ev for ev in evs if ev.type == "release.rollout.complete")
        assert "v2.14.5 complete" in complete.message
        # release one waits for that rollout to complete, then is rolled back onto v2.14.5
        assert "v2.14.5 -> v2.14.4" in starts[1].message and starts[1].t >= complete.t
        assert d._inject("release-one").fired_t == pytest.approx(complete.t - d.start_t)
        rb = next(ev for ev in evs if ev.type == "release.rollback")
        assert "auto-rollback of v2.14.4 -> v2.14.5" in rb.message
        result = score_session(session).data
        assert result["timings"]["detected_by"].split(":")[0] in (
            "HighErrorRate", "ErrorBudgetFastBurn"), result["timings"]
        assert result["root_cause"]["found"]
        # the manual rollback of the answer key goes back past v2.14.5 to v2.14.3
        assert "-> v2.14.3" in starts[-1].message, starts[-1].message


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_no_participant_visible_string_names_the_hidden_cause(path):
    """Every string a participant reads (title, brief, roles, objectives, operator actions,
    messages, decoys) is judged as if declared as the root cause: none may be accepted, nor any
    single word of the printed brief; the true cause itself is."""
    from devsim_tui.drill.brief import brief_text
    from devsim_tui.drill.schema import words

    loaded = load_scenario(path, check_profile=False)
    s = loaded.scenario
    assert s.cause_leaks() == []
    text = brief_text(loaded)
    assert [w for w in words(text) if s.root_cause.judge(w)] == []
    assert not s.root_cause.judge(s.summary)
    assert s.root_cause.judge(s.root_cause.summary)
    for step in load_responder(RESPONDERS / f"{path.stem}.yaml"):  # the answer key's words
        if step.line and step.line.startswith("declare-root-cause"):
            assert s.root_cause.judge(step.build().text), step.line


def test_shipped_scenario_without_responder_is_not_won():
    session, reason = _run("tls-certificate-expiry", steps=[])
    assert reason == "time"
    status = {o.spec.id: o.status for o in session.drill.objectives}
    assert status["cause-removed"] == "pending" and status["root-cause"] == "pending"


# --------------------------------------------------------------------------- hand-computed


def test_tls_drill_scores_match_hand_computed_times(tmp_path):
    """production, seed 42, warm-up 0 (drill time = engine time). The first tick ends at t = 1,
    so the alert engine's phase is 1: scrapes every 15 s at 1, 16, ..., 121, 136, ...; the
    production-security group (interval 15 s) evaluates at the same times, the 1-minute groups
    at 1, 61, 121, 181, 241, 301...

    The inject fires at 120 (after the tick ending at 120) and sets the edge certificate's
    not_after to 120: from the tick ending at 121 on, every request fails.

    CertificateExpiringSoon (`devsim_certificate_expiry_seconds < 7 * 86400`, `for: 1m`): the
    scrape at 121 reads 120 - 121 = -1 s: pending at 121, firing at the first evaluation with
    t - 121 >= 60, i.e. 181 (value 120 - 181 = -61 s, "expires in -1m 1s"). It is one of the
    inject's declared signals, so it is the detection: detected 181, MTTD = 181 - 120 = 61 s.

    HighErrorRate (failed/total over 5m > 5%, `for: 2m`, the 1-minute group): at 121 the window
    holds one failing second out of 120 (about 0.8 % < 5 %); at 181 it holds 60 failing seconds
    out of 180 (the series start at t = 1), about 33 % > 5 %: pending at 181, firing two
    evaluations later at 301 (181 + 120). It is in the timeline (05:01) but detects nothing.

    The answer key reacts to `alerts_firing > 0`, first true at 181: `ack-alert all` 1m later
    at 241 (MTTA = 241 - 120 = 121 s, 60 s after detection), `declare-root-cause` 4m later at
    421 (root-cause objective met at 421), `remedy redeploy-edge-config` 5m later at 481. The
    remedy stops the fault and renews the certificate at 481; the tick ending at 482 is the
    first clean one, so `error_rate < 1%` is first true at 482 (mitigated 482, 482 - 120 = 362
    s) and met 180 s later, at 662 (`for 3m`); `inject:cert-expires == 0` holds at 482 (the
    certificate objective, stage resolve: resolved 482, 362 s). Every achieve objective is met
    at 662, where the drill ends. The report's "How we did" table (drill time | since the
    incident began, mm:ss): detected 181 = 03:01 | 61 = 01:01; acknowledged 241 = 04:01 |
    121 = 02:01; mitigated and resolved 482 = 08:02 | 362 = 06:02.
    """
    rec = tmp_path / "tls.rec"
    session, reason = _run("tls-certificate-expiry", record=rec)
    data = score_recording(read(rec)).data
    tm = data["timings"]
    assert tm["incident_start"] == 120
    assert tm["detected"] == 181 and tm["time_to_detect"] == 61
    assert tm["detected_by"].startswith("CertificateExpiringSoon")
    assert tm["acknowledged"] == 241 and tm["time_to_acknowledge"] == 121
    assert tm["ack_after_detect"] == 60
    assert tm["mitigated"] == 482 and tm["time_to_mitigate"] == 362
    assert tm["resolved"] == 482 and tm["time_to_resolve"] == 362
    met = {o["id"]: o["met_t"] for o in data["objectives"]}
    assert met == {"errors-restored": 662, "cause-removed": 482, "root-cause": 421,
                   "budget": 662}
    assert data["ended"] == {"t": 662, "reason": "objectives met"}
    # 100% of requests failed from 121 to 481: 361 ticks of the whole offered load
    assert data["impact"]["writes_lost"] == 0
    assert 0.9 * 361 * 900 < data["impact"]["requests_failed"] < 1.4 * 361 * 900
    actions = {a["line"]: a for a in data["actions"]}
    fix = actions["remedy redeploy-edge-config"]
    assert fix["effect"] == "helped" and fix["metric"]["name"] == "error_rate"
    assert fix["metric"]["before"] == pytest.approx(1.0, abs=0.01) and fix["metric"]["after"] < 0.01
    assert actions["ack-alert all"]["effect"] == "not an action on the estate"
    declared = next(a for a in data["actions"] if a["line"].startswith("declare-root-cause"))
    assert declared["effect"] == "not an action on the estate"
    assert all(x["done"] for x in data["expected"])
    # the same numbers through the CLI's report
    r = run_cli("drill", "report", str(rec), "--out", str(tmp_path / "rep"), "--svg")  # real CLI
    assert r.returncode == 0, r.stderr
    js = json.loads((tmp_path / "rep.json").read_text())
    assert js["timings"] == tm
    md = (tmp_path / "rep.md").read_text()
    for section in ("## Overview", "## What happened", "## Contributing factors",
                    "## Resolution", "## Impact", "## Responders", "## Timeline",
                    "## How we did", "## Action items"):
        assert section in md
    assert "| incident began | 02:00 | |" in md
    assert "| detected | 03:01 | 01:01 |" in md
    assert "| acknowledged | 04:01 | 02:01 |" in md
    assert "| mitigated | 08:02 | 06:02 |" in md
    assert "| resolved | 08:02 | 06:02 |" in md
    assert "Detected by: CertificateExpiringSoon: edge certificate" in md
    assert "expires in -1m 1s" in md
    # the timeline: detection at 03:01, the error-rate pages at 05:01, the end at 11:02
    assert "| 03:01 | DETECTED by CertificateExpiringSoon" in md
    assert "| 05:01 | alert HighErrorRate:" in md and "| 05:01 | alert ErrorBudgetFastBurn:" in md
    assert "| 11:02 | drill ended (objectives met) |" in md
    assert any(ch in md for ch in "▁▂▃▄▅▆▇█")
    svg = (tmp_path / "rep-error_rate.svg").read_text()
    assert svg.startswith("<svg") and "polyline" in svg


# --------------------------------------------------------------------------- validation


def _scenario(body: str, tmp_path: Path) -> Path:
    base = textwrap.dedent("""\
        title: t
        summary: s
        facilitator_notes: n
        root_cause: {summary: c, accepted: ["cpu hog*|burn*"]}
        headline: HighCPU
        profile: production
        difficulty: easy
        duration: 10m
        roles: [{name: ops}]
        injects:
          - id: hog
            at: 1m
            do: chaos cpu-hog 50% 5m 0.9
            signals: [HighCPU]
        objectives:
          - id: fast
            title: fast
            condition: p99_ms < 300 for 1m
        """)
    path = tmp_path / "d.yaml"
    path.write_text(base + textwrap.dedent(body))
    return path


BAD = [
    ("hints:\n  - {id: a, text: x, when: 'p99 > 3'}\n", ":20: hints.0.when:",
     "unknown signal 'p99' (did you mean 'p99_ms'?)"),
    ("hints:\n  - {id: a, text: x, when: 'p99_ms >'}\n", ":20: hints.0.when:",
     "expected a number"),
    ("remedies:\n  fix: {summary: x, stops: [hgo]}\n", ":20: remedies.fix.stops.0:",
     "no inject 'hgo' (did you mean 'hog'?)"),
    ("remedies:\n  fix: {summary: x, do: 'chaos cpu-hgo'}\n", ":20: remedies.fix.do",
     "unknown fault type 'cpu-hgo'"),
    ("remedies:\n  fix: {summary: x, do: 'scael 3'}\n", ":20: remedies.fix.do",
     "unknown command 'scael' (did you mean 'scale'?)"),
    ("expected:\n  - {match: '(', why: x}\n", ":20: expected.0.match:",
     "not a regular expression"),
    ("tags: [a]\nextra: 1\n", ":20: extra:", "unknown field"),
    ("hints:\n  - {id: a, text: x}\n  - {id: a, text: y}\n", ":21: hints.1.id:",
     "duplicate id 'a'"),
    ("hints:\n  - {id: a, text: x, at: 5 minutes}\n", ":20: hints.0.at:",
     "expected a duration"),
]


@pytest.mark.parametrize("body,where,message", BAD, ids=[b[2][:30] for b in BAD])
def test_scenario_errors_name_file_and_line_and_exit_2(tmp_path, capsys, body, where, message):
    path = _scenario(body, tmp_path)
    r = cli(capsys, "drill", "validate", str(path))
    assert r.returncode == 2, r.stdout
    assert f"{path}{where}" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


def test_scenario_errors_in_existing_fields(tmp_path, capsys):
    path = _scenario("", tmp_path)
    text = path.read_text()
    cases = [
        (text.replace("condition: p99_ms < 300 for 1m", "condition: p99_ms < 300 for 1m\n"
                      "    kind: maintain"), ":16: objectives.0",
         "'for' makes no sense"),
        (text.replace("duration: 10m", "duration: 10m\nwarmup: -1"), ":9: warmup:",
         "negative"),
        (text.replace("do: chaos cpu-hog 50% 5m 0.9", "do: chaos cache-flush"),
         ":13: injects.0.do", "cache-flush needs a cache; profile 'production' has none"),
        (text.replace("do: chaos cpu-hog 50% 5m 0.9", "do: chaos region-outage mars"),
         ":13: injects.0.do", "no region 'mars'"),
        (text.replace("do: chaos cpu-hog 50% 5m 0.9", "do: chaos mesh-partition eu-west-1a"),
         ":13: injects.0.do", "mesh-partition needs a multi-master database; 'production' is "
         "primary-replica"),
        (text.replace("do: chaos cpu-hog 50% 5m 0.9", "do: chaos mesh-partition mars")
         .replace("profile: production", "profile: experimental"),
         ":13: injects.0.do", "no database region 'mars' in 'experimental' (regions: aws, "
         "azure, gcp, digitalocean)"),
        (text.replace("difficulty: easy", "difficulty: exteme"), ":7: difficulty:",
         "must be one of 'easy', 'medium', 'hard'"),
        (text.replace("    condition: p99_ms < 300 for 1m\n", ""),
         ":16: objectives.0", "give either condition or root_cause"),
        (text.replace("  - id: hog\n    at: 1m", "  - id: hog\n    after: nope\n    at: 1m"),
         ":12: injects.0.after:", "no inject 'nope'"),
        (text + "  - {id: late, title: x, condition: ready > 1, deadline: 1h}\n",
         ":19: objectives.1.deadline:", "after the end of the drill"),
        ("title: [unclosed\n", ":2: yaml:", ""),
        (text.replace("profile: production", "profile: prodution"), ":6: profile:",
         "did you mean 'production'"),
    ]
    for body, where, message in cases:
        path.write_text(body)
        r = cli(capsys, "drill", "validate", str(path))
        assert r.returncode == 2, (body, r.stdout)
        assert f"{path}{where}" in r.stderr and message in r.stderr, (where, r.stderr)


def test_responder_script_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("- {at: 1m, line: ack-alert all}\n- {when: 'p99_ms >> 3', line: hint}\n"
                   "- {at: 2m, line: scael 3}\n")
    r = cli(capsys, "drill", "run", "tls-certificate-expiry", "--headless", "--commands",
            str(bad))
    assert r.returncode == 2
    assert f"{bad}:2: steps.1.when:" in r.stderr
    assert f"{bad}:3: steps.2:" in r.stderr and "did you mean 'scale'" in r.stderr


def test_a_responder_script_needs_headless(capsys):
    # Without --headless the drill opens in the control room (tests/test_ui_drill.py), where
    # the people at the keyboard respond: a script there is a clean error.
    r = cli(capsys, "drill", "run", "tls-certificate-expiry", "--commands",
            "drills/responders/tls-certificate-expiry.yaml")
    assert r.returncode == 2 and "--headless" in r.stderr


# --------------------------------------------------------------------------- conditions


def test_condition_language():
    c = conditions.parse("error_rate < 1% and (ready >= 10 or not db_writable) for 5m")
    assert c.hold_s == 300
    vals = {"error_rate": 0.005, "ready": 3.0, "db_writable": 0.0}
    assert c.expr.eval(lambda n, a: vals[n])
    vals["db_writable"] = 1.0
    assert not c.expr.eval(lambda n, a: vals[n])
    assert conditions.parse("alert:HighErrorRate").signals() == [("alert", "HighErrorRate")]
    for bad, msg in [("p99_ms >", "number"), ("foo:bar", "unknown signal"),
                     ("(ready > 1", "missing"), ("ready > 1 for soon", "after 'for'"), ("", "empty")]:
        with pytest.raises(conditions.ConditionError, match=msg):
            conditions.parse(bad)
    tr = conditions.Tracker(conditions.parse("ready > 1 for 2s"))
    seq = [(0, 2), (1, 2), (2, 2), (3, 0), (4, 2)]
    assert [tr.update(t, lambda n, a, v=v: v) for t, v in seq] == [False, False, True, False,
                                                                   False]


# --------------------------------------------------------------------------- facilitator


def test_facilitator_commands(tmp_path):
    steps_file = tmp_path / "f.yaml"
    steps_file.write_text(textwrap.dedent("""\
        - {at: 30s, line: hint, by: facilitator}
        - {at: 40s, line: skip-inject support-call, by: facilitator}
        - {at: 50s, line: inject-next, by: facilitator}
        - {at: 1m, line: pause, by: facilitator}
        - {at: 1m, line: pause false, by: facilitator}
        - {at: 70s, line: hint no-such-hint}
        - {at: 80s, line: remedy nope}
        - {at: 90s, line: "declare-root-cause 'the database'", by: ops}
        - {at: 3m, line: remedy redeploy-edge-config, by: ops}
        - {at: 4m, line: end-drill, by: facilitator}
        """))
    rec = tmp_path / "f.rec"
    session, reason = _run("tls-certificate-expiry", record=rec,
                           steps=load_responder(steps_file))
    d = session.drill
    assert reason == "facilitator" and d.end_t == 240  # applied at the boundary stamped 240
    assert [h["id"] for h in d.revealed] == ["look-at-the-edge"]
    status = {i.spec.id: (i.status, i.fired_t) for i in d.injects}
    # skip-inject named the second inject; inject-next then fired the first one early: applied
    # at the boundary stamped 50 s
    assert status == {"cert-expires": ("fired", 50), "support-call": ("skipped", None)}
    assert d.declarations == [{"t": 90, "text": "the database", "correct": False}]
    assert d.root_cause_found_at is None
    data = score_recording(read(rec)).data
    assert data["timings"]["incident_start"] == 50
    rejected = [a["line"] for a in data["actions"] if not a["applied"]]
    assert rejected == ["hint no-such-hint", "remedy nope"]
    assert replay(read(rec)).ok


def test_drill_commands_are_rejected_outside_a_drill():
    from helpers import engine

    e = engine("production")
    e.submit_line("declare-root-cause 'x'")
    e.step()
    assert any(ev.type == "command.rejected" for ev in e.last_events)


# --------------------------------------------------------------------------- recording, replay


def test_replay_equals_the_original_and_catches_a_tampered_recording(tmp_path):
    rec = tmp_path / "b.rec"
    _run("bad-rolling-release", record=rec)
    r = run_cli("replay", str(rec), "--headless")
    assert r.returncode == 0, r.stderr
    assert "replay identical" in r.stdout
    lines = rec.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if '"release.rollback"' in line)
    lines[k] = lines[k].replace("auto-rollback", "auto-rollbakc")
    bad = tmp_path / "bad.rec"
    bad.write_text("\n".join(lines) + "\n")
    r = run_cli("replay", str(bad), "--headless")
    assert r.returncode == 1 and "DIFFERS" in r.stderr and "rollbakc" in r.stderr


def test_recording_survives_sigkill_and_replays(tmp_path):
    rec = tmp_path / "k.rec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devsim_tui", "drill", "run", "tls-certificate-expiry",
         "--headless", "--speed", "150", "--record", str(rec), "--commands",
         str(RESPONDERS / "tls-certificate-expiry.yaml")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # kill once the incident is under way (the inject at 120 s is in the file)
    while time.monotonic() < deadline:
        if rec.exists() and '"drill.inject"' in rec.read_text():
            break
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    recording = read(rec)
    assert not recording.complete
    n = len(recording.ticks)
    assert n >= 120 and [tk["n"] for tk in recording.ticks] == list(range(1, n + 1))
    result = replay(recording)
    assert result.ok, result.mismatch
    assert result.ticks == n
    r = run_cli("drill", "report", str(rec), "--out", str(tmp_path / "k"))
    assert r.returncode == 0 and "killed" in r.stderr
    assert "recording ends without its closing line" in (tmp_path / "k.md").read_text()


# --------------------------------------------------------------------------- fairness, truth


def test_a_root_cause_in_free_text_is_accepted_and_judged():
    from devsim_tui.sim import commands as C

    for line in (":declare-root-cause bad release v2.14.5 raised the error rate to 15%",
                 "declare-root-cause 'bad release v2.14.5 raised the error rate to 15%'",
                 'declare-root-cause "bad release v2.14.5 raised the error rate to 15%"'):
        assert C.parse_line(line).text == "bad release v2.14.5 raised the error rate to 15%"
    assert C.parse_line("declare-root-cause it's the database").text == "it's the database"
    rc = load_scenario(REPO / "drills" / "bad-rolling-release.yaml").scenario.root_cause
    assert rc.judge("bad release v2.14.5 raised the error rate to 15%")
    assert rc.judge("The DEPLOY broke it") and rc.judge("the rollback threshold is too high")
    assert not rc.judge("the database is slow") and not rc.judge("a release went out")
    # in a drill: the line as typed reaches the judge, and the verdict is in the score
    steps = load_responder_text("- {at: 1m, line: 'declare-root-cause the HPA is broken', by: ops}\n"
                                "- {at: 16m, line: 'declare-root-cause bad release v2.14.5 raised "
                                "the error rate to 15%', by: ops}\n- {at: 17m, line: end-drill}\n")
    session, _ = _run("bad-rolling-release", steps=steps)
    assert [(d["text"], d["correct"]) for d in session.drill.declarations] == [
        ("the HPA is broken", False), ("bad release v2.14.5 raised the error rate to 15%", True)]
    from devsim_tui.drill.report import summary_text

    result = score_session(session)
    assert "root cause: named at 16:00" in summary_text(result)


def load_responder_text(text: str):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        return load_responder(f.name)
    finally:
        os.unlink(f.name)


def test_detection_counts_only_the_injects_signals_or_what_the_responder_called_related():
    from devsim_tui.drill.score import _detection

    def alert(t, name, source="rules"):
        return {"t": t, "type": "alert.firing", "message": f"{name}: x",
                "data": {"alert": name, "id": f"id-{name}", "source": source}}

    def ack(t, what):
        return {"t": t, "type": "command.applied", "message": "ack",
                "data": {"command": "ack-alert", "args": {"alert": what}}}

    events = [alert(100, "HighCPU"), alert(110, "ModelDriftHigh", "drill"),
              alert(300, "HighErrorRate")]
    # the unrelated HighCPU and the decoy are not detection; the declared signal is
    assert _detection(events, {"HighErrorRate"}, 90)["t"] == 300
    # acknowledging HighCPU by name calls it related: detected when it fired
    assert _detection(events + [ack(400, "HighCPU")], {"HighErrorRate"}, 90)["t"] == 100
    # `ack-alert all` (decoys included) says nothing about what is related
    assert _detection(events + [ack(200, "all")], {"HighErrorRate"}, 90)["t"] == 300
    # a decoy acknowledged by name is still no detection
    assert _detection([alert(110, "ModelDriftHigh", "drill"), ack(200, "ModelDriftHigh")],
                      {"HighErrorRate"}, 90) is None
    # a finding and an event type count when the inject declares them
    finding = {"t": 150, "type": "detector.finding", "message": "f", "data": {}}
    lag = {"t": 160, "type": "kafka.consumer_lag", "message": "l", "data": {}}
    assert _detection([finding, lag], {"finding"}, 90)["t"] == 150
    assert _detection([finding, lag], {"event:kafka.consumer_lag"}, 90)["t"] == 160


def test_the_report_tells_the_truth(tmp_path):
    """Unmet objectives are "not met", declarations and acks never "helped", responders are who
    acted (roles nobody held said so), and the timeline marks the incident's phases."""
    from devsim_tui.drill.report import markdown

    session, reason = _run("tls-certificate-expiry", steps=[])
    data = score_session(session).data
    assert reason == "time"
    assert {o["id"]: o["status"] for o in data["objectives"]} == {
        "errors-restored": "not met", "cause-removed": "not met", "root-cause": "not met",
        "budget": "failed"}
    session, _ = _run("tls-certificate-expiry")
    result = score_session(session)
    data = result.data
    by = {r["role"]: r for r in data["responders"]}
    assert by["operations"]["held"] and by["operations"]["actions"] == 2
    assert by["incident commander"]["actions"] == 1
    assert by["communications"] == {"who": None, "role": "communications", "actions": 0,
                                    "held": False}
    md = markdown(result)
    assert "- communications (updates support and status page): nobody held this role" in md
    for mark in ("INJECT cert-expires", "DETECTED by CertificateExpiringSoon", "ACKNOWLEDGED",
                 "MITIGATED", "RESOLVED"):
        assert mark in md, mark
    assert "helped: error_rate 99." in md
    assert "was followed by recovery" not in md and "(pending)" not in md
    # a local control-room seat is one responder, its role the seat's
    from devsim_tui.drill.score import _responders

    s = load_scenario(REPO / "drills" / "tls-certificate-expiry.yaml").scenario
    rows = _responders([{"by": "participant"}] * 3 + [{"by": "alice (operator)"}], s)
    assert rows[0] == {"who": "participant", "role": "participant (local seat)", "actions": 3,
                       "held": True}
    assert rows[1]["role"] == "operator"
    assert [r["role"] for r in rows if not r["held"]] == [r.name for r in s.roles]


def test_drill_show_prints_the_brief_and_the_sheet_on_request(capsys):
    brief = cli(capsys, "drill", "show", "replication-lag-stale-reads").stdout
    for part in ("SITUATION", "YOU CAN SEE", "YOU CAN DO", "OPERATOR ACTIONS", "OBJECTIVES",
                 "pause-scheduled-jobs", "declare-root-cause TEXT"):
        assert part in brief, part
    for secret in ("batch", "FACILITATOR", "stops", "ReplicationLagHigh", "replication-lag",
                   "note"):
        assert secret not in brief, secret
    sheet = cli(capsys, "drill", "show", "replication-lag-stale-reads", "--facilitator").stdout
    assert sheet.startswith("scenario replication-lag-stale-reads")
    for part in ("FACILITATOR'S SHEET", "reporting batch", "HEADLINE ALERT: ReplicationLagHigh",
                 "raises: ReplicationLagHigh", "pause-scheduled-jobs: stops batch-job",
                 "kill-long-queries: nothing in this drill", "batch*|report*"):
        assert part in sheet, part
    js = json.loads(cli(capsys, "drill", "show", "replication-lag-stale-reads", "--json").stdout)
    assert "root_cause" not in js and "batch" not in json.dumps(js)


def test_validate_names_the_field_that_gives_the_cause_away(tmp_path, capsys):
    path = _scenario("remedies:\n  throttle-cpu-hog: {summary: x, stops: [hog]}\n", tmp_path)
    path.write_text(path.read_text().replace("title: t\n", "title: the CPU hog\n"))
    r = cli(capsys, "drill", "validate", str(path))
    assert r.returncode == 2
    assert f"{path}:1: title: participants read this, and it names the hidden cause" in r.stderr
    assert f"{path}:20: remedies.throttle-cpu-hog:" in r.stderr
