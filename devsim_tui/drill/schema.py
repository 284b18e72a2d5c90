"""Drill scenario files (`drills/*.yaml`): the schema, loading and cross-checks.

A scenario is read like a profile (config.yamlsrc): every mistake is reported as
`FILE:LINE: field.path: message`, all at once, and the CLI exits with status 2. Three passes:

1. pydantic validates each field (durations, condition syntax, engine command lines);
2. references between sections are checked (an objective's `after`, a remedy's `stops`, unique
   ids) against the locator, so the line is the line of the bad reference;
3. the commands are checked against the scenario's profile (a cache fault in a profile without a
   cache, an unknown region), which the engine would otherwise only reject mid-drill.

Never imports the UI.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devsim_tui.config.durations import parse_duration
from devsim_tui.config.numbers import Seed
from devsim_tui.config.yamlsrc import Locator, format_path, parse_yaml, read_text_file, validate
from devsim_tui.drill import conditions
from devsim_tui.errors import ConfigError, UserError
from devsim_tui.sim import commands as C

_ID = r"[a-z0-9][a-z0-9-]{0,39}"
#: What an inject declares it makes fire: an alert name, `finding`, or `event:TYPE`.
SIGNAL = r"[A-Za-z][A-Za-z0-9_]*|finding|event:[a-z][a-z0-9_.]*"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _duration(value: Any) -> float:
    return parse_duration(value)


def _condition(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a condition like 'p99_ms > 800 for 2m'")
    try:
        conditions.parse(value)
    except conditions.ConditionError as exc:
        raise ValueError(f"condition: {exc}") from None
    return value


def _command_line(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an engine command line like 'chaos cpu-hog 25% 10m 0.8'")
    try:
        C.parse_line(value)
    except C.CommandError as exc:
        raise ValueError(str(exc)) from None
    return value


class Role(Strict):
    name: str = Field(min_length=1)
    duties: str = ""


class MessageSpec(Strict):
    """A message to the participants, as it would arrive from outside the estate."""

    source: str = Field(min_length=1, description="who says it: 'customer support', 'CTO'")
    text: str = Field(min_length=1)


class DecoyAlert(Strict):
    """A fake alert with no fault behind it: noise the responders must recognise."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = ""
    duration: float = Field(600.0, description="how long it fires")

    _dur = field_validator("duration", mode="before")(classmethod(lambda cls, v: _duration(v)))


class Inject(Strict):
    """Something that happens to the estate or the team, at a time or on a condition."""

    id: str = Field(pattern=f"^{_ID}$")
    at: float | None = Field(None, description="drill time (or time after `after` fired)")
    when: str | None = Field(None, description="condition that fires it (after `at`, if set)")
    after: str | None = Field(None, description="another inject that must have fired first")
    do: list[str] = Field(default_factory=list, description="engine command lines")
    message: MessageSpec | None = None
    alert: DecoyAlert | None = None
    incident: bool | None = Field(
        None, description="part of the incident being scored (default: when it runs commands)")
    note: str = Field("", description="facilitator-only: what it is for")
    signals: list[str] = Field(
        default_factory=list, description="what it makes fire, the ground truth of detection: "
        "alert names, `finding` (an anomaly-detector finding) or `event:TYPE`")

    _at = field_validator("at", mode="before")(
        classmethod(lambda cls, v: None if v is None else _duration(v)))
    _when = field_validator("when")(classmethod(lambda cls, v: None if v is None
                                                else _condition(v)))

    @field_validator("signals")
    @classmethod
    def _signals(cls, v: list[str]) -> list[str]:
        for x in v:
            if not re.fullmatch(SIGNAL, x):
                raise ValueError(f"signal {x!r}: an alert name, `finding` or `event:TYPE`")
        return v

    @field_validator("do", mode="before")
    @classmethod
    def _do(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("do")
    @classmethod
    def _do_lines(cls, v: list[str]) -> list[str]:
        return [_command_line(x) for x in v]

    @model_validator(mode="after")
    def _something(self) -> Inject:
        if not (self.do or self.message or self.alert):
            raise ValueError("an inject needs at least one of do, message, alert")
        return self

    @property
    def is_incident(self) -> bool:
        return bool(self.do) if self.incident is None else self.incident


class Hint(Strict):
    id: str = Field(pattern=f"^{_ID}$")
    text: str = Field(min_length=1)
    at: float | None = Field(None, description="reveal by itself at this drill time")
    when: str | None = Field(None, description="reveal by itself when this holds")

    _at = field_validator("at", mode="before")(
        classmethod(lambda cls, v: None if v is None else _duration(v)))
    _when = field_validator("when")(classmethod(lambda cls, v: None if v is None
                                                else _condition(v)))


class Objective(Strict):
    """A measurable goal. `achieve`: met the first time it holds once armed (then it stays met).
    `maintain`: must hold at every tick of the drill, failed for good the first tick it does not.
    """

    id: str = Field(pattern=f"^{_ID}$")
    title: str = Field(min_length=1)
    condition: str | None = None
    root_cause: bool = Field(False, description="met by a declare-root-cause the judge accepts")
    kind: Literal["achieve", "maintain"] = "achieve"
    stage: Literal["mitigate", "resolve"] | None = Field(
        None, description="what meeting it means: mitigated (default) or resolved (the default "
        "for root_cause objectives)")
    after: str | None = Field(None, description="armed once this inject fired (default: the "
                                                "first incident inject)")
    deadline: float | None = Field(None, description="failed if not met by this drill time")

    _cond = field_validator("condition")(classmethod(lambda cls, v: None if v is None
                                                     else _condition(v)))
    _dl = field_validator("deadline", mode="before")(
        classmethod(lambda cls, v: None if v is None else _duration(v)))

    @model_validator(mode="after")
    def _shape(self) -> Objective:
        if (self.condition is None) == (not self.root_cause):
            raise ValueError("give either condition or root_cause: true")
        if self.kind == "maintain":
            if self.root_cause:
                raise ValueError("a root_cause objective is achieved, not maintained")
            if conditions.parse(self.condition).hold_s:
                raise ValueError("a maintain objective holds at every tick; 'for' makes no "
                                 "sense there")
        return self

    @property
    def effective_stage(self) -> str:
        return self.stage or ("resolve" if self.root_cause else "mitigate")


_WORD = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*%?")


def words(text: str) -> list[str]:
    """Lower-case words of a free text as the root-cause judge reads them: letters and digits,
    dots kept inside a word (`v2.14.5`), everything else a separator (`crash-loop` is two)."""
    return _WORD.findall(text.lower())


class RootCause(Strict):
    """The hidden cause (facilitator's sheet) and the free-text declarations that name it.

    Each `accepted` entry is words that must all appear in a declaration, in any order; a word
    may list synonyms with `|` (`release|deploy|version`), end in `*` to match any word that
    starts with it (`cert*`), and join words with `-` to ask for them side by side
    (`max-replicas`). A declaration naming any one entry is right; case does not matter."""

    summary: str = Field(min_length=1, description="hidden: the true cause, for the report")
    accepted: list[str] = Field(min_length=1, description="what a right declaration names")
    injects: list[str] = Field(default_factory=list, description="the injects that are it")

    @field_validator("accepted")
    @classmethod
    def _entries(cls, v: list[str]) -> list[str]:
        for entry in v:
            for group in entry.split():
                for alt in group.split("|"):
                    if not words(alt.rstrip("*")):
                        raise ValueError(f"{entry!r}: {alt!r} has no word to match")
        return v

    def judge(self, text: str) -> bool:
        """Whether a free-text declaration names the cause (one `accepted` entry in full)."""
        said = words(text)
        return any(all(_group_in(group, said) for group in entry.split())
                   for entry in self.accepted)


def _group_in(group: str, said: list[str]) -> bool:
    for alt in group.split("|"):
        prefix = alt.endswith("*")
        want = words(alt.rstrip("*"))
        n = len(want)
        for i in range(len(said) - n + 1):
            got = said[i:i + n]
            if got[:-1] == want[:-1] and (got[-1].startswith(want[-1]) if prefix
                                          else got[-1] == want[-1]):
                return True
    return False


class Remedy(Strict):
    """An operator action the participants can take by name (`remedy NAME`). Its name and
    `summary` are what participants see, so they name an ordinary action (never the cause:
    `pause-scheduled-jobs`, not `stop-batch-job`), and a scenario offers several, only some of
    which address the cause. What it does to the simulation is the facilitator's: stopping the
    named injects' faults and running engine commands (neither: it changes nothing here)."""

    summary: str = Field(min_length=1, description="what participants see it does")
    note: str = Field("", description="facilitator-only: why it helps, or why not")
    stops: list[str] = Field(default_factory=list, description="injects whose faults it stops")
    do: list[str] = Field(default_factory=list)

    @field_validator("do", mode="before")
    @classmethod
    def _do(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("do")
    @classmethod
    def _do_lines(cls, v: list[str]) -> list[str]:
        return [_command_line(x) for x in v]



class Expected(Strict):
    """An expected remediation, matched against the commands the participants applied."""

    match: str = Field(description="regex over command lines, e.g. '^(rollback|abort)'")
    why: str = Field(min_length=1)

    @field_validator("match")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return v


class Scenario(Strict):
    title: str = Field(min_length=1, description="participant-visible (drill list): no cause")
    summary: str = Field(min_length=1, description="the participants' brief: the situation, "
                                                   "never the cause")
    facilitator_notes: str = Field(min_length=1, description="hidden from participants")
    root_cause: RootCause
    headline: str = Field(pattern=f"^(?:{SIGNAL})$", description="the signal the incident "
                          "must raise whenever its inject lands (one of its `signals`)")
    profile: str = Field(min_length=1, description="built-in name or path (relative to this "
                                                   "file)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted profile "
                                                                        "overrides")
    seed: Seed | None = Field(None, ge=0)
    difficulty: Literal["easy", "medium", "hard"]
    duration: float = Field(description="expected (and maximum) drill time")
    warmup: float = Field(0.0, description="simulated time the estate runs before the drill "
                                           "clock starts")
    end_on_success: bool = Field(True, description="end once every achieve objective is met")
    roles: list[Role] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    contributing_factors: list[str] = Field(default_factory=list)
    action_items: list[str] = Field(default_factory=list)
    injects: list[Inject] = Field(min_length=1)
    hints: list[Hint] = Field(default_factory=list)
    objectives: list[Objective] = Field(min_length=1)
    remedies: dict[str, Remedy] = Field(default_factory=dict)
    expected: list[Expected] = Field(default_factory=list)

    _d = field_validator("duration", mode="before")(classmethod(lambda cls, v: _duration(v)))
    _w = field_validator("warmup", mode="before")(classmethod(lambda cls, v: _duration(v)))

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("a drill needs a positive duration")
        return v

    @field_validator("remedies")
    @classmethod
    def _remedy_names(cls, v: dict[str, Remedy]) -> dict[str, Remedy]:
        for name in v:
            if not re.fullmatch(_ID, str(name)):
                raise ValueError(f"remedy name {name!r}: use lower-case words and hyphens")
        return v

    def inject(self, ident: str) -> Inject | None:
        return next((i for i in self.injects if i.id == ident), None)

    def first_incident(self) -> Inject | None:
        return next((i for i in self.injects if i.is_incident), None)

    def incident_signals(self) -> list[str]:
        """Every signal the incident's injects declare (detection is one of these)."""
        return list(dict.fromkeys(x for i in self.injects if i.is_incident for x in i.signals))

    def participant_fields(self) -> list[tuple[tuple, str]]:
        """(field path, text) of everything a participant can read before or during the
        drill: the title, brief, roles, objectives, the operator actions, messages and decoy
        alerts (hints are the facilitator's to give, and may point at the cause)."""
        out: list[tuple[tuple, str]] = [(("title",), self.title), (("summary",), self.summary)]
        for k, r in enumerate(self.roles):
            out += [(("roles", k, "name"), r.name), (("roles", k, "duties"), r.duties)]
        out += [(("objectives", k, "title"), o.title) for k, o in enumerate(self.objectives)]
        for name, r in self.remedies.items():
            out += [(("remedies", name), name), (("remedies", name, "summary"), r.summary)]
        for k, i in enumerate(self.injects):
            if i.message is not None:
                out += [(("injects", k, "message", "source"), i.message.source),
                        (("injects", k, "message", "text"), i.message.text)]
            if i.alert is not None:
                out += [(("injects", k, "alert", "name"), i.alert.name),
                        (("injects", k, "alert", "summary"), i.alert.summary)]
        return [(path, x) for path, x in out if x]

    def participant_strings(self) -> list[str]:
        return [x for _, x in self.participant_fields()]

    def cause_leaks(self) -> list[str]:
        """Participant-visible strings that would be accepted as the root cause (each would
        give the answer away)."""
        return [x for x in self.participant_strings() if self.root_cause.judge(x)]


# --------------------------------------------------------------------------- loading


class LoadedScenario:
    """A validated scenario with where it came from (for its profile path and messages)."""

    def __init__(self, scenario: Scenario, path: str, text: str):
        self.scenario = scenario
        self.path = path
        self.text = text

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def load_profile(self):
        from devsim_tui.config.loader import load_profile

        return load_profile(self.profile_source(), overrides=self.scenario.overrides or None)

    def profile_source(self) -> str:
        ref = self.scenario.profile
        from devsim_tui.config.loader import _looks_like_path

        if _looks_like_path(ref) and not os.path.isabs(ref):
            return str(Path(self.path).resolve().parent / ref)
        return ref


def drills_dir() -> Path:
    """The shipped scenarios (`drills/` in a checkout, `_data/drills` in a wheel)."""
    from devsim_tui.config.loader import builtin_data_dir

    return builtin_data_dir("drills")


def list_shipped() -> list[Path]:
    return sorted(drills_dir().glob("*.yaml"))


def resolve(name_or_path: str) -> str:
    """A scenario file from a path, or the name of a shipped one (`tls-expiry`)."""
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path or "/" in name_or_path:
        return name_or_path
    shipped = {p.stem: p for p in list_shipped()}
    if name_or_path in shipped:
        return str(shipped[name_or_path])
    import difflib

    close = difflib.get_close_matches(name_or_path, list(shipped), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown drill '{name_or_path}'{hint} (`devsim-tui drill list` shows the "
                    "shipped ones; or give a path to a .yaml file)")


def load_scenario(path: str | os.PathLike[str], check_profile: bool = True) -> LoadedScenario:
    """Read and validate a scenario file; ConfigError lists every problem with FILE:LINE."""
    filename = os.fspath(path)
    text = read_text_file(filename, "drill scenario")
    data, locator = parse_yaml(text, filename)
    return _finish(data, locator, filename, text, check_profile)


def parse_scenario(text: str, filename: str, check_profile: bool = True) -> LoadedScenario:
    """`load_scenario` for text held in memory (a recording carries its scenario's text)."""
    data, locator = parse_yaml(text, filename)
    return _finish(data, locator, filename, text, check_profile)


def _finish(data: Any, locator: Locator, filename: str, text: str,
            check_profile: bool) -> LoadedScenario:
    scenario = validate(Scenario, data, locator, filename)
    problems = _cross_check(scenario, locator, filename)
    loaded = LoadedScenario(scenario, filename, text)
    if not problems and check_profile:
        problems = _profile_check(loaded, locator, filename)
    if problems:
        raise ConfigError(problems)
    return loaded


def _at(locator: Locator, filename: str, path: tuple) -> str:
    where = locator.locate(path)
    line = f":{where.line}" if where.line is not None else ""
    return f"{filename}{line}: {format_path(path)}"


def _cross_check(s: Scenario, locator: Locator, filename: str) -> list[str]:
    problems: list[str] = []

    def bad(path: tuple, message: str) -> None:
        problems.append(f"{_at(locator, filename, path)}: {message}")

    ids = [i.id for i in s.injects]
    for section, items in (("injects", s.injects), ("hints", s.hints),
                           ("objectives", s.objectives)):
        seen: dict[str, int] = {}
        for k, item in enumerate(items):
            if item.id in seen:
                bad((section, k, "id"), f"duplicate id '{item.id}' (first used by "
                    f"{section}.{seen[item.id]})")
            seen.setdefault(item.id, k)

    def known(path: tuple, ref: str | None) -> None:
        if ref is not None and ref not in ids:
            import difflib

            close = difflib.get_close_matches(ref, ids, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            bad(path, f"no inject '{ref}'{hint}")

    for k, inj in enumerate(s.injects):
        known(("injects", k, "after"), inj.after)
        if inj.after == inj.id:
            bad(("injects", k, "after"), "an inject cannot wait for itself")
    for k, obj in enumerate(s.objectives):
        known(("objectives", k, "after"), obj.after)
        if obj.deadline is not None and obj.deadline > s.duration:
            bad(("objectives", k, "deadline"), "deadline is after the end of the drill "
                f"({obj.deadline:g}s > duration {s.duration:g}s)")
    for k, ref in enumerate(s.root_cause.injects):
        known(("root_cause", "injects", k), ref)
    for name, remedy in s.remedies.items():
        for k, ref in enumerate(remedy.stops):
            known(("remedies", name, "stops", k), ref)
    for path, text in s.participant_fields():
        if s.root_cause.judge(text):
            bad(path, "participants read this, and it names the hidden cause (it would be "
                "accepted by root_cause.accepted): phrase it by symptom")
    if s.headline not in s.incident_signals():
        bad(("headline",), f"'{s.headline}' is not among the signals the incident's injects "
            "declare (" + (", ".join(s.incident_signals()) or "none") + ")")
    if s.first_incident() is None:
        bad(("injects",), "no inject changes the estate (an incident needs `do` commands or "
            "incident: true)")
    order = {i: k for k, i in enumerate(ids)}
    for k, inj in enumerate(s.injects):  # `after` must point backwards: no cycles, one pass
        if inj.after in order and order[inj.after] > k:
            bad(("injects", k, "after"), f"'{inj.after}' comes later in the list; list "
                "injects in the order they can fire")
    return problems


def _overrides_problem(problem: str, locator: Locator, filename: str) -> str | None:
    """A profile problem caused by the scenario's `overrides`, told at the override's line:
    `<overrides>: simulation.seed: ...` -> `FILE:LINE: overrides.simulation.seed: ...`."""
    from devsim_tui.config.loader import OVERRIDES_SOURCE

    head = f"{OVERRIDES_SOURCE}: "
    if not problem.startswith(head):
        return None
    dotted, _, message = problem[len(head):].partition(": ")
    parts = dotted.split(".")
    where = None
    # Written dotted (`simulation.seed: 7`), nested, or partly each: the longest written prefix.
    for cut in range(len(parts), 0, -1):
        for key in ((".".join(parts[:cut]),), tuple(parts[:cut])):
            where = where or locator.find(("overrides", *key))
        if where is not None:
            break
    where = where or locator.locate(("overrides",))
    line = f":{where.line}" if where.line is not None else ""
    return f"{filename}{line}: overrides.{dotted}: {message}"


def _profile_check(loaded: LoadedScenario, locator: Locator, filename: str) -> list[str]:
    """Commands that parse but cannot work in this profile, caught before the drill starts."""
    from devsim_tui.sim.chaos import CATALOGUE, Chaos

    s = loaded.scenario
    try:
        profile = loaded.load_profile()
    except ConfigError as exc:
        return [_overrides_problem(p, locator, filename) or
                f"{_at(locator, filename, ('profile',))}: {p}" for p in exc.problems]
    except UserError as exc:
        return [f"{_at(locator, filename, ('profile',))}: {exc}"]
    has_kafka = profile.streaming.enabled
    problems: list[str] = []

    def check(path: tuple, line: str) -> None:
        cmd = C.parse_line(line)
        if not isinstance(cmd, Chaos):
            return
        ft = CATALOGUE[cmd.type]
        if ft.needs == "cache" and not profile.cache.enabled:
            problems.append(f"{_at(locator, filename, path)}: {ft.name} needs a cache; profile "
                            f"'{profile.name}' has none")
        if ft.needs == "kafka" and not has_kafka:
            problems.append(f"{_at(locator, filename, path)}: {ft.name} needs Kafka; profile "
                            f"'{profile.name}' has none")
        if ft.name == "mesh-partition":
            db = profile.database
            regions = list(dict.fromkeys(db.regions))
            if db.topology != "multi-master":
                problems.append(f"{_at(locator, filename, path)}: mesh-partition needs a "
                                f"multi-master database; '{profile.name}' is {db.topology}")
            elif cmd.scope is not None and cmd.scope not in regions:
                problems.append(f"{_at(locator, filename, path)}: no database region "
                                f"{cmd.scope!r} in '{profile.name}' (regions: "
                                f"{', '.join(regions)})")
        if ft.name == "region-outage" and cmd.scope not in profile.app.regions:
            problems.append(f"{_at(locator, filename, path)}: no region {cmd.scope!r} in "
                            f"'{profile.name}' (regions: {', '.join(profile.app.regions)})")

    for k, inj in enumerate(s.injects):
        for j, line in enumerate(inj.do):
            check(("injects", k, "do", j), line)
    for name, remedy in s.remedies.items():
        for j, line in enumerate(remedy.do):
            check(("remedies", name, "do", j), line)
    return problems
