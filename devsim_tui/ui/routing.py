"""One home per command in the control room: `ROUTES` says, for every command a person can
type, pick in the palette or reach by a key, how Tab completes its arguments, what the palette
offers, what the screen checks before sending it, whether it hurts (asks first) and, for the
UI's own commands (`:theme`, `:window`...), how it runs. The `:` line, completion, the palette,
the help screen and the confirmation all go through `Router`, so a command appears everywhere
by being declared once: an engine command with no entry here gets the defaults (its schema's
summary and arguments, a palette entry, `hurts` as its class declares).

The engine's schema stays the judge of a command's arguments (`sim.commands.parse_line`); a
route adds only what a screen needs. Routes are keyed by name here and by command class in the
router (`Router.route_of`). Pure functions of a `Context` (the latest snapshot, the theme names,
a hosted drill's state) and of the profile; never changes the world, never imports Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from devsim_tui.sim import commands as C
from devsim_tui.sim.snapshot import Snapshot
from devsim_tui.ui import operations as ops
from devsim_tui.ui.format import SPEEDS, WINDOWS

#: Where a command is offered: the engine's everywhere, the UI's own everywhere, a drill's only
#: where a drill is hosted, a replay's only in a replay.
ENGINE, UI, DRILL, REPLAY = "engine", "ui", "drill", "replay"


@dataclass(frozen=True)
class Context:
    """What completion and the palette read."""

    snap: Snapshot
    themes: Sequence[str] = ()
    drill: dict[str, Any] | None = None  # a hosted drill's state (`world.drill_state()`)


@dataclass(frozen=True)
class Entry:
    """A palette entry: pick it to run `line`, or (`prefill`) to open the `:` line with it."""

    title: str
    line: str
    prefill: bool = False
    help: str | None = None  # None: the command's summary


Check = Callable[[Any, Snapshot, Any], "str | None"]


@dataclass(frozen=True)
class Route:
    """One command as the control room handles it (see the module docstring)."""

    name: str
    scope: str = ENGINE
    complete: Callable[[Context, list[str]], list[str]] | None = None  # (ctx, words before)
    palette: Callable[[Context, str], list[Entry]] | None = None  # (ctx, name) -> entries
    check: Check | None = None  # (command, snapshot, profile) -> why it cannot apply
    hurts_if: Callable[[Any], bool] | None = None  # asks first (beyond the class's `hurts`)
    asks_when: str = ""  # what `hurts_if` asks about, for the help
    usage: str = ""  # a UI or replay command's arguments (an engine one's: its schema)
    summary: str = ""  # a UI or replay command's summary (an engine one's: its schema)
    run: Callable[[Any, list[str]], None] | None = None  # a UI command: (app, args)

    @property
    def command(self) -> type[C.Command] | None:
        """The engine's command class (None for the UI's own commands)."""
        return C.lookup(self.name) if self.scope in (ENGINE, DRILL) else None

    def help_summary(self) -> str:
        cls = self.command
        return cls.summary if cls is not None else self.summary

    def help_usage(self) -> str:
        cls = self.command
        if cls is not None:
            return " ".join([f":{self.name}"] + [f"[{p}]" for p in cls.positional])
        return f":{self.name}" + (f" {self.usage}" if self.usage else "")

    def hurts(self, cmd: C.Command) -> bool:
        return bool(type(cmd).hurts or (self.hurts_if is not None and self.hurts_if(cmd)))

    def entries(self, ctx: Context) -> list[Entry]:
        if self.palette is not None:
            return self.palette(ctx, self.name)
        cls = self.command
        if cls is not None and cls.positional and self.scope == ENGINE:
            return [Entry(f"{self.name} …", f"{self.name} ", prefill=True)]
        return [Entry(self.name, self.name)] if cls is not None else []

    def arguments(self, ctx: Context, before: list[str]) -> list[str]:
        return self.complete(ctx, before) if self.complete is not None else []


# ---------------------------------------------------------------------- checks


def _node(name: str | None, snap: Snapshot) -> str | None:
    names = [n.name for n in snap.db]
    if name is None or name == "primary" or name in names:
        return None
    return f"no database node '{name}' (have: {', '.join(names)})"


def _check_node(cmd: Any, snap: Snapshot, _profile: Any) -> str | None:
    return _node(cmd.node, snap)


def _check_scale(cmd: Any, _snap: Snapshot, profile: Any) -> str | None:
    spec = profile.scaling
    if cmd.replicas > spec.maxReplicas:
        return f"above maxReplicas ({spec.maxReplicas})"
    if spec.scaler == "hpa" and cmd.replicas < spec.minReplicas:
        return f"below minReplicas ({spec.minReplicas}) of the HPA"
    return None


def _check_failover(cmd: Any, snap: Snapshot, _profile: Any) -> str | None:
    if cmd.target is None:
        return None
    node = next((n for n in snap.db if n.name == cmd.target), None)
    if node is None:
        return _node(cmd.target, snap)
    if node.role == "primary":
        return f"'{cmd.target}' is the primary already"
    return None


def _check_rollback(cmd: Any, snap: Snapshot, _profile: Any) -> str | None:
    if ops.rollback_target(snap, cmd.to) is not None:
        return None
    if cmd.to is None:
        return "no earlier revision that passed its checks (name one: rollback N)"
    return f"no revision or version '{cmd.to}' kept"


def _check_chaos_stop(cmd: Any, snap: Snapshot, _profile: Any) -> str | None:
    ids = [str(f.get("id")) for f in ops.faults_of(snap)]
    if cmd.id == "all" or cmd.id in ids:  # `all` is the emergency stop: always let it through
        return None
    return f"no active fault '{cmd.id}' (have: {', '.join(ids) or 'none'})"


# ---------------------------------------------------------------------- completion, palette


def _nodes(ctx: Context) -> list[str]:
    return [n.name for n in ctx.snap.db]


def _active(ctx: Context) -> list[Any]:
    return [a for a in ctx.snap.alerts if a.state != "resolved"]


def _first(values: Callable[[Context], list[str]]) -> Callable[[Context, list[str]], list[str]]:
    """Completion of the first argument only (what a one-argument command takes)."""
    return lambda ctx, before: [] if before else values(ctx)


def _speed_entries(_ctx: Context, name: str) -> list[Entry]:
    labels = ["max" if s == "max" else f"{s:g}" for s in SPEEDS]
    return [Entry(f"speed {label}", f"{name} {label}") for label in labels]


def _scale_entries(ctx: Context, name: str) -> list[Entry]:
    d = ctx.snap.agg.desired
    out = [Entry(f"scale up to {d + 1}", f"scale {d + 1}")]
    if d > 0:
        out.append(Entry(f"scale down to {d - 1}", f"scale {d - 1}"))
    return out + [Entry("scale to N…", "scale ", prefill=True)]


def _per_node(default: str | None = None, extra: Iterable[str] = ()) -> Callable:
    """`default` (run as the bare command), then one entry per database node (and `extra`)."""
    def entries(ctx: Context, name: str) -> list[Entry]:
        out = [Entry(default, name)] if default else []
        out += [Entry(f"{name} {n}", f"{name} {n}") for n in [*_nodes(ctx), *extra]]
        return out
    return entries


def _silence_arguments(ctx: Context, before: list[str]) -> list[str]:
    if before:
        return ["1h", "30m", "2h", "4h", "15m"] if len(before) == 1 else []
    active = _active(ctx)
    return ["all", *dict.fromkeys([a.name for a in active] + [a.id for a in active])]


def _silenced(ctx: Context) -> list[str]:
    snap = ctx.snap
    return [a.name for a in snap.alerts if a.silenced_until is not None
            and a.silenced_until > snap.t]


def _deploy_entries(ctx: Context, _name: str) -> list[Entry]:
    return [Entry("deploy a version…", "deploy ", prefill=True),
            *[Entry(f"deploy {v}", f"deploy {v}") for v in ops.deploy_arguments(ctx.snap)
              if v.startswith("bad:")]]


def _chaos_stop_entries(ctx: Context, _name: str) -> list[Entry]:
    return [Entry("chaos-stop all (emergency stop)", "chaos-stop all"),
            *[Entry(f"chaos-stop {f.get('id')} ({f.get('type')})", f"chaos-stop {f.get('id')}")
              for f in ops.faults_of(ctx.snap)]]


def _silence_entries(ctx: Context, _name: str) -> list[Entry]:
    names = dict.fromkeys(a.name for a in _active(ctx))
    return [Entry("silence…", "silence ", prefill=True),
            *[Entry(f"silence {n} 1h", f"silence {n} 1h") for n in names]]


def _fixed(*entries: Entry) -> Callable[[Context, str], list[Entry]]:
    return lambda _ctx, _name: list(entries)


def _plain(_ctx: Context, name: str) -> list[Entry]:
    """Run the bare command (a drill's: the next hint, the next inject...)."""
    return [Entry(name, name)]


def _remedy_entries(ctx: Context, _name: str) -> list[Entry]:
    remedies = (ctx.drill or {}).get("remedies") or ()
    return [Entry(f"remedy {r['name']}", f"remedy {r['name']}", help=r["summary"])
            for r in remedies]


def _pending_injects(ctx: Context) -> list[str]:
    injects = ((ctx.drill or {}).get("injects") or {}).get("list", ())
    return [i["id"] for i in injects if i["status"] == "pending"]


# ---------------------------------------------------------------------- the UI's own commands


def _run_theme(app: Any, args: list[str]) -> None:
    if args:
        app.set_theme(args[0])
    else:
        app.notify("themes: " + ", ".join(app.theme_names))


def _run_window(app: Any, args: list[str]) -> None:
    if args and args[0] in WINDOWS:
        app.window = args[0]
        app.draw(force=True)
    else:
        app.notify(f"window: one of {', '.join(WINDOWS)}", severity="error")


def _run_step(app: Any, args: list[str]) -> None:
    try:
        n = int(args[0]) if args else 1
    except ValueError:
        app.notify("step: expected a number of ticks", severity="error")
        return
    app.step(n)


# ---------------------------------------------------------------------- the table

ROUTES: tuple[Route, ...] = (
    # The engine's commands (sim/commands.py and the features' modules).
    Route("scale", complete=_first(lambda ctx: [str(ctx.snap.agg.desired)]),
          palette=_scale_entries, check=_check_scale,
          hurts_if=lambda cmd: cmd.replicas == 0, asks_when="scaling to 0"),
    Route("set-speed", complete=_first(lambda _ctx: ["1", "10", "60", "max"]),
          palette=_speed_entries),
    Route("pause", complete=_first(lambda _ctx: ["true", "false"]),
          palette=_fixed(Entry("pause / resume", "pause"))),
    Route("backup", complete=_first(_nodes), palette=_per_node("backup (primary)"),
          check=_check_node),
    Route("restore", complete=_first(lambda _ctx: ["latest", "--to"])),
    Route("restart-node", complete=_first(_nodes), palette=_per_node(), check=_check_node),
    Route("crash-node", complete=_first(lambda ctx: ["primary", *_nodes(ctx)]),
          palette=_per_node(extra=("primary",)), check=_check_node),
    Route("failover", complete=_first(_nodes), palette=_per_node("failover (best replica)"),
          check=_check_failover),
    Route("ack-alert", complete=_first(lambda ctx: ["all", *[
              a.name for a in ctx.snap.alerts if a.state == "firing"]]),
          palette=_fixed(Entry("ack-alert all", "ack-alert all"))),
    Route("silence", complete=_silence_arguments, palette=_silence_entries),
    Route("unsilence", complete=_first(lambda ctx: ["all", *_silenced(ctx)]),
          palette=_fixed(Entry("unsilence all", "unsilence all"))),
    Route("deploy", complete=_first(lambda ctx: ops.deploy_arguments(ctx.snap)),
          palette=_deploy_entries, asks_when="a bad:KIND release",
          hurts_if=lambda cmd: cmd.version.startswith("bad:")
          or (cmd.kind or "good") != "good"),
    Route("rollback", complete=_first(lambda ctx: ops.rollback_arguments(ctx.snap)),
          palette=_fixed(Entry("rollback (previous revision)", "rollback"),
                         Entry("rollback to…", "rollback ", prefill=True)),
          check=_check_rollback),
    Route("promote", complete=_first(lambda _ctx: ["full"]),
          palette=_fixed(Entry("promote (next canary step)", "promote"),
                         Entry("promote full", "promote full"))),
    Route("code-change", hurts_if=lambda cmd: cmd.kind != "good",
          asks_when="a kind other than good"),
    Route("chaos", complete=lambda ctx, before: ops.chaos_arguments(ctx.snap, list(before)),
          palette=lambda _ctx, _name: [Entry("chaos: inject a fault…", "chaos ", prefill=True),
                                       *[Entry(f"chaos {t}", f"chaos {t}")
                                         for t in ops.chaos_types()]]),
    # `chaos-stop all` is harmless to the engine, but as the emergency stop it ends every
    # fault at once (a drill's too), so the control room asks first.
    Route("chaos-stop", complete=_first(lambda ctx: ops.fault_ids(ctx.snap)),
          palette=_chaos_stop_entries, check=_check_chaos_stop,
          hurts_if=lambda cmd: cmd.id == "all", asks_when="'all'"),
    # A drill's commands (sim/commands.py's DRILL_COMMANDS), where a drill is hosted.
    Route("declare-root-cause", scope=DRILL,
          palette=_fixed(Entry("declare-root-cause…", "declare-root-cause ", prefill=True))),
    Route("remedy", scope=DRILL, palette=_remedy_entries,
          complete=_first(lambda ctx: [r["name"] for r in (ctx.drill or {}).get("remedies")
                                       or ()])),
    Route("hint", scope=DRILL, palette=_plain),
    Route("inject-next", scope=DRILL, palette=_plain, complete=_first(_pending_injects)),
    Route("skip-inject", scope=DRILL, palette=_plain, complete=_first(_pending_injects)),
    Route("end-drill", scope=DRILL, palette=_plain, hurts_if=lambda _cmd: True,
          asks_when="always"),
    # The control room's own.
    Route("theme", scope=UI, usage="NAME", summary="Switch the colour theme (and remember it)",
          complete=_first(lambda ctx: list(ctx.themes)), run=_run_theme,
          palette=lambda ctx, _n: [Entry(f"theme {t}", f"theme {t}") for t in ctx.themes]),
    Route("window", scope=UI, usage="5m|1h|24h", summary="Metrics window of simulated time",
          complete=_first(lambda _ctx: list(WINDOWS)), run=_run_window,
          palette=lambda _ctx, _n: [Entry(f"metrics window {w}", f"window {w}")
                                    for w in WINDOWS]),
    Route("filter", scope=UI, usage="[REGEX]",
          summary="Filter the servers (a leading ! inverts; empty clears); `/` filters the "
                  "focused table", run=lambda app, args: app.apply_filter(" ".join(args))),
    Route("step", scope=UI, usage="[N]", summary="Advance N ticks while paused (default 1)",
          run=_run_step),
    Route("help", scope=UI, summary="Show keys and commands",
          run=lambda app, _args: app.action_help()),
    Route("quit", scope=UI, summary="Leave the control room", run=lambda app, _a: app.exit(0)),
    # A replay's own (ui/replay.py).
    Route("seek", scope=REPLAY, usage="[+|-]DURATION|start|end",
          summary="Replay: go to a time since the start (12m), or move by +1m / -30s",
          run=lambda app, args: app.action_seek(" ".join(args)),
          palette=lambda _ctx, _n: [
              *[Entry(f"seek {w}", f"seek {w}") for w in
                ("start", "end", "-5m", "-1m", "+1m", "+5m")],
              Entry("seek to…", "seek ", prefill=True)]),
)
BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}


def route(name: str) -> Route | None:
    """The route of a command name or alias: a declared one, else an engine command's
    defaults (a command registered by a feature with nothing more to say)."""
    name = C.ALIASES.get(name, name)
    found = BY_NAME.get(name)
    if found is not None:
        return found
    C.load_feature_commands()
    if name in C.COMMANDS:
        return Route(name)
    if name in C.DRILL_COMMANDS:
        return Route(name, scope=DRILL, palette=_plain)
    return None


def engine_routes(scopes: Iterable[str]) -> list[Route]:
    """Every engine (and drill) command's route, in the registry's order, within `scopes`."""
    C.load_feature_commands()
    names = [*(C.COMMANDS if ENGINE in scopes else ()),
             *(C.DRILL_COMMANDS if DRILL in scopes else ())]
    return [r for r in (route(n) for n in names) if r is not None and r.scope in scopes]


def ui_routes(scopes: Iterable[str]) -> list[Route]:
    return [r for r in ROUTES if r.scope in (UI, REPLAY) and r.scope in scopes]


class Router:
    """A control room's commands: those in `scopes` that `allowed(name)` lets this seat send.
    Everything the `:` line, Tab, the palette, `?` and the confirmation need comes from here."""

    def __init__(self, scopes: Iterable[str] = (ENGINE, UI),
                 allowed: Callable[[str], bool] = lambda _name: True) -> None:
        self.scopes = frozenset(scopes)
        self.allowed = allowed

    def offered(self) -> list[Route]:
        """Engine and drill commands first (registry order), then the UI's and the replay's."""
        return [r for r in engine_routes(self.scopes) + ui_routes(self.scopes)
                if self.allowed(r.name)]

    def route_of(self, cmd: C.Command) -> Route:
        """The route of a built command (by its class)."""
        return route(type(cmd).name) or Route(type(cmd).name)

    def ui_route(self, name: str) -> Route | None:
        """The UI (or replay) command a `:` line's first word names, if it is one here."""
        found = BY_NAME.get(name)
        return found if found is not None and found.run is not None \
            and found.scope in self.scopes else None

    # ---------------------------------------------------------------- the `:` line

    def names(self) -> list[str]:
        names = {r.name for r in self.offered()}
        names |= {alias for r in self.offered() if r.scope == ENGINE
                  for alias, target in C.ALIASES.items() if target == r.name}
        return sorted(names)

    def arguments(self, name: str, ctx: Context | None, before: Sequence[str] = ()) -> list[str]:
        found = route(name)
        if ctx is None or found is None or found.scope not in self.scopes:
            return []
        return found.arguments(ctx, list(before))

    # ---------------------------------------------------------------- before sending

    def precheck(self, cmd: C.Command, snap: Snapshot, profile: Any) -> str | None:
        """Why `cmd` cannot apply now, or None when the engine may take it."""
        check = self.route_of(cmd).check
        return check(cmd, snap, profile) if check is not None else None

    def hurts(self, cmd: C.Command) -> bool:
        return self.route_of(cmd).hurts(cmd)

    @staticmethod
    def question(cmd: C.Command, snap: Snapshot) -> str:
        """The confirmation's question: it names what the command acts on."""
        if cmd.name == "rollback":
            target = ops.rollback_target(snap, cmd.to)
            return f"Really roll back to {target}?" if target else f"Really {cmd.describe()}?"
        return f"Really {cmd.describe()}?"

    # ---------------------------------------------------------------- palette and help

    def palette(self, ctx: Context) -> list[tuple[Entry, str]]:
        """(entry, help) of every command offered, in `offered` order."""
        return [(e, e.help if e.help is not None else r.help_summary())
                for r in self.offered() for e in r.entries(ctx)]

    def help_rows(self) -> list[tuple[str, str, str]]:
        """(usage, what it does, flag) per command: `confirm` if it may ask, `ui` for the
        control room's own."""
        aliases: dict[str, list[str]] = {}
        for alias, target in C.ALIASES.items():
            aliases.setdefault(target, []).append(alias)
        rows = []
        for r in self.offered():
            note = r.help_summary()
            if r.scope in (UI, REPLAY):
                rows.append((r.help_usage(), note, "ui"))
                continue
            if aliases.get(r.name):
                note += f" (alias: {', '.join(sorted(aliases[r.name]))})"
            cls = r.command
            asks = r.asks_when and r.asks_when != "always"
            if asks:
                note += f"; {r.asks_when} asks for confirmation"
            rows.append((r.help_usage(), note,
                         "confirm" if cls.hurts or r.hurts_if is not None else ""))
        return rows
