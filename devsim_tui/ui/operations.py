"""The operations pane: the release (rollout in progress, analysis, revisions) and active faults.

It reads only what the engine publishes in `snapshot.releases` and
`snapshot.chaos` (plain dicts), and the static vocabularies the commands accept (the chaos
catalogue, the release kinds) for completion. The keys that act here (deploy, rollback, promote,
abort, chaos, chaos-stop) live in the app and send engine commands like every other key; this
module never touches the engine.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from devsim_tui.sim.snapshot import Snapshot
from devsim_tui.ui.database import KeyedTable
from devsim_tui.ui.format import age

FAULT_COLUMNS = (("id", "ID", 4, "left"), ("type", "FAULT", 17, "left"),
                 ("scope", "SCOPE", 10, "left"), ("intensity", "INT", 5, "right"),
                 ("left", "LEFT", 6, "right"),
                 ("targets", "TARGETS", 20, "left", 1, True, 10))  # flex: as wide as the pane
#: Release status -> level (the ops--* component class that colours it).
STATUS_LEVEL = {"Healthy": "ok", "Progressing": "info", "Building": "info", "Paused": "warn",
                "RollingBack": "bad", "Degraded": "bad", "Aborted": "bad"}
CHAOS_DURATIONS = ("1m", "2m", "5m", "10m", "30m", "1h")
REVISIONS_SHOWN = 4


def release_of(snap: Snapshot) -> dict[str, Any] | None:
    return snap.releases


def faults_of(snap: Snapshot) -> list[dict[str, Any]]:
    chaos = snap.chaos or {}
    return list(chaos.get("active") or ())


def _analysis(a: dict[str, Any] | None) -> str:
    if not a:
        return ""
    text = f"analysis {a.get('phase', '?')}"
    n, failed = a.get("measurements", 0), a.get("failed", 0)
    text += f" · {n} measured, {failed} failed (limit {a.get('failure_limit', '?')})"
    if a.get("inconclusive"):
        text += f", {a['inconclusive']} inconclusive"
    if a.get("errors"):
        text += f", {a['errors']} errors"
    if a.get("last"):
        text += f": {a['last']}"
    return text


def release_lines(release: dict[str, Any] | None, clock: Callable[[float], str]
                  ) -> list[list[tuple[str, str]]]:
    """The release summary as lines of (text, level) parts; pure, for tests and the widget.

    Levels are "", "dim", "key", "ok", "info", "warn", "bad" (the ops--* component classes).
    """
    if not release:
        return [[("no release controller in this estate", "dim")]]
    status = str(release.get("status", "?"))
    level = STATUS_LEVEL.get(status, "warn")
    ro = release.get("rollout")
    # What runs and its status first: a narrow pane cuts the method, never the status.
    head: list[tuple[str, str]] = [(f"{release.get('service', '?')} ", "key")]
    if ro:
        head += [(f"{ro.get('from', '?')} → {ro.get('version', '?')}", "key"), ("  ", ""),
                 (status, level),
                 (f"  {ro.get('strategy', release.get('method', ''))}", "dim")]
    else:
        head += [(str(release.get("current", "?")), "key"), ("  ", ""), (status, level),
                 ("  stable" if release.get("current") == release.get("stable")
                  else f"  stable {release.get('stable')}", "dim"),
                 (f"  {release.get('method', '')} · {release.get('rollback_policy', '')} "
                  "rollback", "dim")]
    lines = [head]
    if ro:
        detail: list[tuple[str, str]] = []
        if "steps" in ro:
            detail.append((f"step {ro.get('step', '?')}/{ro.get('steps', '?')} · weight "
                           f"{ro.get('weight', 0)}%", "key"))
            if ro.get("promoting"):
                detail.append((" · promoting", "info"))
        if "phase" in ro:
            detail.append((f"phase {ro['phase']}", "key"))
            if ro.get("build_seconds") is not None:
                detail.append((f" (build {ro['build_seconds']:.1f}s)", "dim"))
        if ro.get("paused"):
            detail.append((" · paused" + (f": {ro['pause_reason']}" if ro.get("pause_reason")
                                          else ""), "warn"))
        analysis = _analysis(ro.get("step_analysis") or ro.get("analysis"))
        if analysis:
            failed = (ro.get("step_analysis") or ro.get("analysis") or {}).get("failed", 0)
            detail.append(((" · " if detail else "") + analysis, "warn" if failed else "dim"))
        if ro.get("reason"):
            detail.append(((" · " if detail else "") + str(ro["reason"]), "dim"))
        if detail:
            lines.append(detail)
    elif release.get("bake"):
        bake = release["bake"]
        a = bake.get("analysis") or {}
        lines.append([(f"bake {bake.get('version', '?')} until {clock(bake.get('until', 0))}",
                       "key"), (" · " + _analysis(a), "warn" if a.get("failed") else "dim")])
    elif release.get("last"):
        last = release["last"]
        outcome = str(last.get("outcome", "?"))
        lines.append([(f"last: {outcome} {last.get('version', '?')}",
                       "ok" if outcome == "complete" else "bad"),
                      (f" at {clock(last.get('t', 0))} · {last.get('reason', '')}", "dim")])
    # Newest first: a narrow pane cuts the oldest, never the current revision.
    revisions = list(release.get("revisions") or ())[-REVISIONS_SHOWN:][::-1]
    if revisions:
        revs: list[tuple[str, str]] = [("revisions ", "dim")]
        for i, r in enumerate(revisions):
            if i:
                revs.append((" · ", "dim"))
            revs.append((f"{r.get('revision')} {r.get('version')}",
                         "key" if r.get("current") else "dim"))
        lines.append(revs)
    return lines


def fault_row(fault: dict[str, Any]) -> list[tuple[str, str]]:
    targets = list(fault.get("targets") or ())
    shown = ", ".join(targets[:6]) + (f" (+{len(targets) - 6})" if len(targets) > 6 else "")
    intensity = fault.get("intensity")
    remaining = fault.get("remaining_s")
    return [(str(fault.get("id", "?")), "bad"), (str(fault.get("type", "?")), "warn"),
            (str(fault.get("scope", "")), ""),
            (f"{intensity:g}" if isinstance(intensity, (int, float)) else "-", ""),
            (age(remaining) if remaining is not None else "-", ""),
            (shown or "-", "muted")]


# ---------------------------------------------------------------------- completion

def chaos_types() -> list[str]:
    """Every fault type the `chaos` command accepts (the engine's published catalogue)."""
    from devsim_tui.sim.chaos import CATALOGUE

    return list(CATALOGUE)


def chaos_arguments(snap: Snapshot, before: list[str]) -> list[str]:
    """Completions for the word after `chaos` + `before`: TYPE, SCOPE, DURATION, INTENSITY."""
    from devsim_tui.sim.chaos import CATALOGUE, fault_type

    if not before:
        return list(CATALOGUE)
    try:
        ft = fault_type(before[0])
    except ValueError:
        return []
    if len(before) == 1:
        out: list[str] = []
        db = [n.name for n in snap.db]
        cache = [n.name for n in snap.cache.nodes] if snap.cache is not None else []
        forms = {"servers": ["1", "2", "3"], "percent": ["10%", "25%", "50%"],
                 "region": list(snap.regions), "fleet": ["fleet", "all"],
                 "server": list(snap.fleet.names), "db": ["db"],
                 "db-node": ["primary", "replica", *db],
                 "db-region": list(dict.fromkeys(n.region for n in snap.db)), "cache": ["cache"],
                 "cache-node": ["master", "replica", *cache], "estate": ["estate"]}
        # The default scope first, so Tab on an empty word proposes it.
        out.append(ft.default_scope)
        for kind in ft.scopes:
            out.extend(forms.get(kind, ()))
        return list(dict.fromkeys(out))
    if len(before) == 2:
        default = [] if ft.duration is None else [_duration(ft.duration)]
        return list(dict.fromkeys(default + list(CHAOS_DURATIONS)))
    if len(before) == 3 and ft.default_intensity is not None:
        return [f"{ft.default_intensity:g}"]
    return []


def _duration(seconds: float) -> str:
    from devsim_tui.config.durations import format_duration

    return format_duration(seconds)


def deploy_arguments(snap: Snapshot) -> list[str]:
    """Known versions (newest first), then `bad:KIND` for drills."""
    from devsim_tui.sim.releases import KINDS

    release = release_of(snap) or {}
    versions = sorted(release.get("versions") or (), key=lambda v: -float(v.get("created_t", 0)))
    return [v["name"] for v in versions] + [f"bad:{k}" for k in KINDS if k != "good"]


def rollback_arguments(snap: Snapshot) -> list[str]:
    """Revision numbers and their versions, most recent first (the current one excluded)."""
    release = release_of(snap) or {}
    out: list[str] = []
    for r in reversed(list(release.get("revisions") or ())):
        if not r.get("current"):
            out += [str(r.get("version")), str(r.get("revision"))]
    return out


def rollback_target(snap: Snapshot, to: str | None) -> str | None:
    """What a `rollback [to]` goes back to, as `v2.14.2 (revision 3)`: the same choice the
    engine makes (the newest revision kept that is not current and did not fail), so the
    confirmation names it. None when there is none (the engine will say why)."""
    revisions = list((release_of(snap) or {}).get("revisions") or ())
    if to is None:
        choices = [r for r in revisions if not r.get("current") and not r.get("failed")]
    else:
        choices = [r for r in revisions if to in (str(r.get("revision")), r.get("version"))]
    if not choices:
        return None
    r = choices[-1]
    return f"{r.get('version')} (revision {r.get('revision')})"


def fault_ids(snap: Snapshot) -> list[str]:
    return ["all", *[str(f.get("id")) for f in faults_of(snap)]]


# ---------------------------------------------------------------------- widgets

class ReleaseSummary(Static):
    """The release lines, coloured through ops--* component classes."""

    COMPONENT_CLASSES = {"ops--dim", "ops--key", "ops--ok", "ops--info", "ops--warn",
                         "ops--bad"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: list | None = None

    def show(self, lines: list[list[tuple[str, str]]]) -> None:
        if lines == self._shown:
            return
        relayout = self._shown is None or len(lines) != len(self._shown)
        self._shown = lines
        st = self.get_component_rich_style
        styles: dict[str, Style] = {lvl: st(f"ops--{lvl}") for lvl in
                                    ("dim", "key", "ok", "info", "warn", "bad")}
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, line in enumerate(lines):
            if i:
                text.append("\n")
            for part, level in line:
                text.append(part, styles.get(level, Style()))
        self.update(text, layout=relayout)

    def restyle(self) -> None:
        """Forget what is shown (after a theme change the styles differ)."""
        self._shown = None


class OperationsPane(Vertical):
    """The release summary above the table of active faults (hidden header when none)."""

    def __init__(self, clock: Callable[[float], str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield ReleaseSummary(id="release-summary")
        yield KeyedTable(FAULT_COLUMNS, id="faults-table")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _t: self.query_one(
            ReleaseSummary).restyle())

    def show(self, snap: Snapshot) -> str:
        """Update from a snapshot; returns the pane's subtitle."""
        release = release_of(snap)
        self.query_one(ReleaseSummary).show(release_lines(release, self.clock))
        faults = faults_of(snap)
        table = self.query_one("#faults-table", KeyedTable)
        if table.show_header != bool(faults):
            table.show_header = bool(faults)
        table.set_rows([(str(f.get("id")), fault_row(f)) for f in faults])
        status = (release or {}).get("status", "")
        n = len(faults)
        return (f"{n} fault{'s' if n != 1 else ''} active · " if n else "no faults · ") + status

    @property
    def selected_fault(self) -> str | None:
        table = self.query_one("#faults-table", KeyedTable)
        return table.selected_key
