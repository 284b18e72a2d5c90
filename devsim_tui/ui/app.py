"""The control room app: one factory (`create_app`) for the CLI and the tests.

The app holds a `World` and talks to it only through that interface. Two independent loops:

* the driver advances the world at the chosen speed, in time-budgeted chunks on the event loop
  (at `max` as many ticks as fit in ~50 ms, then it yields so keys stay responsive);
* the frame loop redraws from the LATEST snapshot at a capped rate; the next frame is scheduled
  only once the previous one has finished, so frames never queue. Hidden panes are not drawn.
"""

from __future__ import annotations

import gc
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual import work
from textual.worker import get_current_worker
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static

from devsim_tui import access
from devsim_tui.lazy import lazy_module
from devsim_tui.ui.clock import ClockDriver
from devsim_tui.ui.commandline import Candidates, CommandLine, CommandSuggester
from devsim_tui.ui.external import ExternalIO, IOOptions, LinkBadge, MetricsBadge, link_event
from devsim_tui.ui.footer import QuietFooter
from devsim_tui.ui.format import WINDOWS, next_speed, sim_clock
from devsim_tui.ui.header import HeaderBar
from devsim_tui.ui.panes import PANE_SPECS, PaneSpec, W

if TYPE_CHECKING:
    from devsim_tui.sim.snapshot import Snapshot
    from devsim_tui.ui.routing import Context, Router

#: The engine's commands (pydantic models), imported on first use: the first frame of a CLI
#: start needs neither them nor numpy (see `ui.panes.Widgets`).
C = lazy_module("devsim_tui.sim.commands")



#: Engine events shown as toasts: type -> (title, toast severity).
TOASTS = {"notify.console": ("notification", "information"),
          "notify.ai-analysis": ("AI analysis", "information"),
          "notify.failed": ("notification failed", "error"),
          "notify.dropped": ("notification dropped", "error"),
          "command.rejected": ("command rejected", "error")}
MAX_TOASTS = 3  # per frame
REFRESH_HZ = 5.0  # frames per second at most (STYLE: 4-10 Hz)
WIDE_COLUMNS = 120  # from this width the panes sit in two columns (the `-wide` layout)
TALL_LINES = 36  # from this height panes have whole boxes (the `-tall` layout)
FALLBACK_THEMES = ("textual-dark", "textual-light", "nord", "gruvbox")


#: The keys that act on one pane (by action): `?` lists the focused pane's first.
PANE_ACTIONS = {
    "servers": ("scale", "details"),
    "database": ("backup", "failover", "crash", "restart", "details"),
    "metrics": ("cycle_window", "details"),
    "alerts": ("ack", "silence", "details"),
    "security": ("details",),
    "events": (),
    "operations": ("deploy", "rollback", "promote", "abort_rollout", "chaos", "chaos_stop_all"),
}


def _palette_provider():
    """The palette's provider, imported when the palette first opens (textual.command is not
    needed for the first frame)."""
    from devsim_tui.ui.palette import ControlRoomCommands

    return ControlRoomCommands


@dataclass(frozen=True)
class PendingWorld:
    """A world still to be built: the app shows its header and footer at once and calls `build`
    in a thread worker (which may also load and validate the profile), so the first frame waits
    for neither the engine nor its imports. `name` and `environment` label the header until the
    world is there. A `UserError` from `build` (a broken profile) ends the app with it as
    `startup_error`, which the CLI reports like any other (exit status 2)."""

    name: str
    environment: str
    build: Callable[[], Any]


def pane_binding(spec: PaneSpec) -> Binding:
    """The digit key that focuses a pane."""
    return Binding(str(spec.digit), f"focus_pane({spec.digit})", f"Focus {spec.key} pane",
                   show=False)


class Pane(Vertical):
    """A titled, focusable-from-a-digit, maximisable section of the main screen."""

    ALLOW_MAXIMIZE = True


class ObserverBadge(Static):
    """Shown in the header of a read-only session, so a watcher knows why keys do nothing."""

    DEFAULT_CSS = """
    ObserverBadge {
        width: auto;
        background: $error;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(self) -> None:
        super().__init__(" OBSERVER · read-only ", id="observer-badge")


class ControlRoomApp(App[int]):
    """The control room."""

    TITLE = "devsim-tui"
    # Absolute: a subclass defined anywhere (a seat, a drill, a test) finds the same styles.
    CSS_PATH = [str(Path(__file__).with_name("app.tcss"))]
    COMMANDS = App.COMMANDS | {_palette_provider}
    ALLOW_IN_MAXIMIZED_VIEW = "HeaderBar, Footer, CommandLine, Candidates"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL_LINES, "-tall")]

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", key_display="?"),
        # Priority: taken as the key arrives, so what is typed or pasted right after it (one
        # packet over SSH) lands in the line, not in the pane behind it. Not while typing in a
        # line or the filter, where `:` and `/` are text (see check_action).
        Binding("colon", "command_line", "Command", key_display=":", priority=True),
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
        Binding("space", "toggle_pause", "Pause"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("full_stop", "step", "Step", key_display="."),
        Binding("z", "toggle_maximize", "Zoom pane"),
        Binding("t", "cycle_theme", "Theme"),
        Binding("w", "cycle_window", "Window"),
        *[pane_binding(p) for p in PANE_SPECS],
        Binding("right_square_bracket", "scale(1)", "Scale up", key_display="]", show=False),
        Binding("left_square_bracket", "scale(-1)", "Scale down", key_display="[", show=False),
        Binding("b", "backup", "Backup", show=False),
        Binding("f", "failover", "Failover", show=False),
        Binding("x", "crash", "Crash selected DB node", show=False),
        Binding("r", "restart", "Restart selected DB node", show=False),
        Binding("a", "ack", "Ack alerts", show=False),
        Binding("s", "silence", "Silence the selected alert for 1h (again: unsilence)",
                show=False),
        Binding("d", "deploy", "Deploy a version (or bad:KIND)", show=False),
        Binding("R", "rollback", "Roll back the release (asks first)", show=False),
        Binding("P", "promote", "Promote the canary past its pause or step", show=False),
        Binding("A", "abort_rollout", "Abort the rollout (asks first)", show=False),
        Binding("c", "chaos", "Inject a chaos fault", show=False),
        Binding("exclamation_mark", "chaos_stop_all", "Emergency stop: revert every fault",
                key_display="!", show=False),
        Binding("enter", "details", "Details of the selected server, node or alert (on the "
                "metrics pane: the scaler's)", show=False),
    ]

    #: The panes (ui/panes.py); a subclass may add entries. PANES: their keys.
    PANE_SPECS: tuple[PaneSpec, ...] = PANE_SPECS
    PANES = tuple(p.key for p in PANE_SPECS)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass's extra panes get their digit key, in BINDINGS like the others (the help
        # and the palette list them); Textual merges the bindings in its own hook, after this.
        bound = {b.key for b in cls.BINDINGS}
        extra = [pane_binding(p) for p in cls.PANE_SPECS if str(p.digit) not in bound]
        if extra:
            cls.BINDINGS = [*cls.BINDINGS, *extra]
        cls.PANES = tuple(p.key for p in cls.PANE_SPECS)
        super().__init_subclass__(**kwargs)

    def __init__(self, world, *, theme: str | None = None, no_confirm: bool = False,
                 config_dir: Path | None = None, refresh_hz: float = REFRESH_HZ,
                 observer: bool = False, io: IOOptions | None = None,
                 early_build: bool = True, role: str | None = None) -> None:
        self._theme_api = _theme_api()
        super().__init__()
        # A PendingWorld is built after the first frame (see _build_world); until then None.
        self._pending = world if isinstance(world, PendingWorld) else None
        self.world = None if self._pending is not None else world
        self.startup_error: Exception | None = None  # the pending world could not be built
        # A pending world starts building now, in a thread, while Textual starts its driver
        # and draws the first frame: the panes wait for the slower of the two, not their sum.
        self._early = None
        if self._pending is not None and early_build:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devsim-build")
            self._early = pool.submit(self._prepare_world)
            pool.shutdown(wait=False)
        self._early_lines: list[str] = []  # `:` lines typed while the world was starting
        # Set once a pending world's panes are on screen: the worker's pre-roll waits for it.
        self._panes_shown = threading.Event()
        # False from a PendingWorld's panes until its start-up work is done (`WorldPrepared`):
        # the panes show tick 0 and take keys; the clock starts once it is done.
        self._prepared = self._pending is None
        # Who sits here (devsim_tui/access.py): an observer (e.g. an SSH seat with that role)
        # views freely and never changes the world; a drill's participant is an operator; the
        # one person at a local control room is its facilitator. Enforced where commands leave
        # the UI: submit, run_line and step (`may`).
        self.role = role or ("observer" if observer else "facilitator")
        self._router: Router | None = None
        self.profile = self.world.profile if self.world is not None else None
        self.no_confirm = no_confirm
        self.config_dir = config_dir
        self.refresh_hz = refresh_hz
        self.window = "5m"
        self.frames = 0
        self._theme_names: list[str] = []
        self._wanted_theme = theme
        self._theme_warning: str | None = None
        self.clock = ClockDriver()  # how many ticks to run when (ui/clock.py)
        self._drive_timer: Timer | None = None
        self._step_timer: Timer | None = None
        self._frame_timer: Timer | None = None
        self._drawn: tuple | None = None
        self._start_hour = self.profile.simulation.start_hour if self.profile else 0.0
        # Exporter, e-mail and MQTT: only when the command line asked (never in tests or seats).
        self._external = ExternalIO(io, self._link_changed) if io is not None else None
        # No toasts for what came before the control room opened.
        self._toast_after = self.world.snapshot().last_event_seq if self.world else 0
        self._setup_themes()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        pending = self._pending
        if pending is not None:
            yield HeaderBar(pending.name, pending.environment, id="header")
            yield Vertical(id="panes")  # filled once the world is built
        else:
            yield HeaderBar(self.profile.name, self.profile.environment, id="header")
            yield Vertical(*self._panes(), id="panes")
        yield Candidates(id="command-candidates", markup=False)
        yield CommandLine(placeholder=":command  (tab completes, esc closes)", id="command-line",
                          suggester=CommandSuggester(self._command_names, self._arguments))
        yield QuietFooter()

    def _panes(self) -> list[Vertical]:
        """The two columns of panes, from PANE_SPECS (they need the profile, so they come
        with the world)."""
        def pane(spec: PaneSpec) -> Pane:
            children: list[Any] = [spec.build(self)]
            if spec.footer is not None:
                children.append(spec.footer(self))
            if spec.filter:  # a `/` filter line on top of the pane's table
                children.insert(0, Input(placeholder="filter: regex, ! inverts; enter keeps, "
                                         "esc clears", id=spec.filter_box, classes="filter"))
            return Pane(*children, id=f"{spec.key}-pane", classes="pane")

        def column(name: str) -> list[Pane]:
            return [pane(spec) for spec in self.PANE_SPECS if spec.column == name]

        left = Vertical(*column("left"), id="left")
        right = Vertical(*column("right"), Vertical(*column("side"), id="side"), id="right")
        return [left, right]

    def get_theme_variable_defaults(self) -> dict[str, str]:
        api = self._theme_api
        return dict(api.VARIABLE_DEFAULTS) if api is not None else {}

    def on_mount(self) -> None:
        if self._theme_warning:
            self.notify(self._theme_warning, severity="warning")
        self._watch_terminal()
        if self.observer:
            header = self.query_one(HeaderBar)
            header.mount(ObserverBadge(), after=header.query_one("#env-badge"))
        if self.world is None:
            self.query_one("#status").update("starting the estate…")
            self.call_after_refresh(self._build_world)
            return
        self._label_panes()
        self._start()

    def _label_panes(self) -> None:
        for spec in self.PANE_SPECS:
            self.query_one(f"#{spec.key}-pane").border_title = f"{spec.digit} {spec.title}"
        self._set_servers_subtitle()
        self.query_one("#servers", W.ServersTable).focus()

    #: Exit status when the terminal went away under the app (as a shell's 128 + SIGHUP).
    TERMINAL_GONE = 129

    def _watch_terminal(self) -> None:
        """Leave when the terminal goes away (a dropped SSH link, a closed window) without a
        SIGHUP reaching us: Textual's input thread would otherwise spin on the dead terminal
        at full CPU, forever. Checked once a second, only when started on a real terminal."""
        import os
        import sys

        from devsim_tui.ui.lifeline import keep

        keep(self)  # SIGTERM in every mode; in a browser, the server's pipe (ui/lifeline.py)
        if self.is_headless:
            return
        try:
            fd = sys.__stdin__.fileno()
        except (AttributeError, ValueError, OSError):
            return
        if not os.isatty(fd):
            return  # a browser session (textual-serve) or a pipe: nothing to watch

        def check() -> None:
            import termios

            from devsim_tui.ui.lifeline import leave

            try:
                termios.tcgetattr(fd)
            except (termios.error, OSError):  # (a watchdog ends a shutdown stuck on it)
                leave(self, self.TERMINAL_GONE)

        self.set_interval(1.0, check, name="terminal-watch")

    def _start(self) -> None:
        """The world is there: fill the panes and start the frame loop, the links and (once
        the world is prepared) the driver."""
        self._fit_metrics()
        self.draw(force=True)
        if self._prepared:  # a world built before the screen opened: start-up is over
            self._resume_gc()
        self._schedule_frame()
        self._resume_driver()
        self._start_external()

    @staticmethod
    def _resume_gc() -> None:
        """End the CLI's start-up pause of the garbage collector (cmd/ui.py), if it made one:
        what start-up made is frozen (later collections skip it) and collection resumes."""
        if not gc.isenabled():
            gc.freeze()
            gc.enable()

    class WorldPrepared(Message):
        """The built world did its start-up work (`World.prepare`): the clock may run."""

    class WorldBuilt(Message):
        """The pending world is ready (or failed to build: `error`), or (`world` None) every
        theme is validated."""

        def __init__(self, world: Any, error: Exception | None = None,
                     themes: dict[str, Any] | None = None) -> None:
            super().__init__()
            self.world = world
            self.error = error
            self.themes = themes  # every theme, validated (None: already registered)

    def _prepare_world(self) -> Any:
        """The panes' imports (numpy, the tables) and the world: off the loop."""
        W.load_panes()
        return self._pending.build()

    #: How long the start-up worker waits for the panes' first paint before the pre-roll runs
    #: anyway (a screen that never paints, e.g. one pushed over the main screen at once).
    PANES_SHOWN_TIMEOUT_S = 10.0

    @work(thread=True, exclusive=True, group="world", exit_on_error=False)
    def _build_world(self) -> None:
        try:
            # Started with the app (see __init__): by the first frame it is well under way.
            world = self._early.result() if self._early is not None else self._prepare_world()
            self.post_message(self.WorldBuilt(world))
        except Exception as exc:  # reported by the handler, which quits cleanly
            self.post_message(self.WorldBuilt(None, exc))
            return
        try:
            # The rest waits until the panes are painted: run now, it would share the
            # interpreter with mounting and drawing them and hold them back. The detector's
            # warm start is a pure function of profile and seed, so the run is the same
            # whenever it happens; the clock starts when it is done (WorldPrepared).
            worker = get_current_worker()
            waited = 0.0
            while not self._panes_shown.wait(0.05) and waited < self.PANES_SHOWN_TIMEOUT_S:
                if worker.is_cancelled or self._exit:  # quitting: the pool is joined on exit
                    return
                waited += 0.05
            if not self._exit:
                if self._theme_api is not None:  # every theme validated (the one on screen
                    try:                         # is there already)
                        themes = self._theme_api.load_themes()
                    except Exception as exc:  # reported by the handler, which quits cleanly
                        self.post_message(self.WorldBuilt(None, exc))
                        return
                    self.post_message(self.WorldBuilt(None, themes=themes))
                W.load_all()  # the dialogs, help and router: ready before the first key
                world.prepare()
        finally:
            self.post_message(self.WorldPrepared())

    def on_control_room_app_world_prepared(self, _event: WorldPrepared) -> None:
        if self._prepared:
            return
        self._prepared = True
        self._resume_gc()
        if self.world is not None and not self._exit:
            self._resume_driver()

    async def on_control_room_app_world_built(self, event: WorldBuilt) -> None:
        if event.error is not None:
            from devsim_tui.errors import UserError

            error = event.error
            if not isinstance(error, UserError):
                error = UserError(f"could not start the estate: {error}")
                error.exit_code = 1
            self.startup_error = error
            self.exit(error.exit_code)
            return
        if event.themes is not None:
            self._register_themes(event.themes)
            if self._theme_warning:
                self.notify(self._theme_warning, severity="warning")
        if event.world is None:
            return  # only the themes
        self.world, self._pending = event.world, None
        self.profile = self.world.profile
        self._start_hour = self.profile.simulation.start_hour
        # One batch: the screen is painted once, with the panes filled, instead of also while
        # they mount empty (each paint of the full screen costs as much as the first frame).
        with self.batch_update():
            header = self.query_one(HeaderBar)
            header.relabel(self.profile.name, self.profile.environment)
            await self.query_one("#panes").mount_all(self._panes())
            self._label_panes()
            self._toast_after = self.world.snapshot().last_event_seq
            self.refresh_bindings()
            self._start()
        self.call_after_refresh(self._panes_shown.set)
        for line in self._early_lines:
            self.run_line(line)
        self._early_lines.clear()

    #: What keys may do while the world is still being built (the rest waits for it).
    STARTUP_ACTIONS = frozenset({"quit", "help", "cycle_theme", "command_line"})

    #: Priority bindings that are text while an input has the focus.
    TYPED_ACTIONS = frozenset({"command_line", "filter"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.TYPED_ACTIONS and isinstance(self.focused, Input):
            return False  # `:` and `/` typed into the line, the filter or a dialog's field
        if self.world is None and action not in self.STARTUP_ACTIONS:
            return None  # shown, greyed out, until the world arrives
        return True

    # ------------------------------------------------------------------ external links

    def _start_external(self) -> None:
        external = self._external
        if external is None:
            return
        error = external.start(self.world, read_only=self.observer)
        if error is not None:
            self.exit(2, message=f"devsim-tui: error: {error}")
            return
        header = self.query_one(HeaderBar)
        if external.metrics_url:
            header.mount(MetricsBadge(external.metrics_url))
            self.notify(f"Prometheus metrics on {external.metrics_url}", timeout=6)
        if external.bridge is not None:
            badge = LinkBadge()
            header.mount(badge)
            badge.show(external.bridge.link_state)

    def _link_changed(self, state) -> None:
        """The MQTT link changed state: header badge and a line in the event log."""
        if not self.screen_stack or self.world is None:
            return
        for badge in self.query(LinkBadge):
            badge.show(state)
        self.query_one(W.EventLog).note(link_event(state, self.world.snapshot().t),
                                      self._visible("events"))

    async def on_unmount(self) -> None:
        self._panes_shown.set()  # a start-up worker still waiting for the panes: stop it
        if self._external is not None:
            await self._external.stop()

    # ------------------------------------------------------------------ themes

    def _setup_themes(self) -> None:
        api = self._theme_api
        if api is not None and self._pending is not None:
            # A CLI start: only the theme on screen is read now (a shipped one, without the
            # schema); the worker validates them all and `_register_themes` adds them.
            wanted = self._wanted_theme or api.remembered_theme(self.config_dir) \
                or api.DEFAULT_THEME
            theme = api.first_frame_theme(wanted)
            if theme is not None:
                self.register_theme(theme)
                self._theme_names = [wanted]
                self._set_theme(wanted)
                return
        if api is not None:
            self._register_themes(api.load_themes())
        else:
            self._theme_names = [n for n in FALLBACK_THEMES if n in self.available_themes]
            self._choose_theme(self._theme_names[0], None)

    def _register_themes(self, themes: dict[str, Any]) -> None:
        """Register the validated themes and choose the one to show."""
        api = self._theme_api
        self._theme_names = list(api.register_themes(self, themes))
        self._choose_theme(api.DEFAULT_THEME, api.remembered_theme(self.config_dir))

    def _choose_theme(self, default: str, remembered: str | None) -> None:
        wanted = self._wanted_theme or remembered or default
        if wanted not in self.available_themes:
            if self._wanted_theme:
                self._theme_warning = f"unknown theme '{wanted}'; using {default}"
            wanted = default
        if self.theme != wanted:
            self._set_theme(wanted)

    def _set_theme(self, name: str) -> None:
        """Switch to theme `name` (registered). Before the app has read its stylesheet (a
        theme chosen in `__init__`), without Textual's theme watcher: what the watcher does
        besides is to queue a re-parse of every CSS source, as long as the first parse itself
        (app.tcss and every widget's CSS, before the first frame); giving the stylesheet the
        theme's variables now makes the first parse the right one."""
        if self.stylesheet.source:  # read already (running): Textual's watcher does it all
            self.theme = name
            return
        self.set_reactive(App.theme, name)
        theme = self.current_theme
        # As App._watch_theme does (the classes that select on the theme, the ANSI filter).
        classes = {c: False for c in self.classes if c.startswith("-theme-")}
        classes.update({f"-theme-{theme.name}": True, "-dark-mode": theme.dark,
                        "-light-mode": not theme.dark})
        self.update_classes(classes, update=False)
        self._refresh_truecolor_filter(self.ansi_theme)
        self.stylesheet.set_variables(self.get_css_variables())

    def set_theme(self, name: str, remember: bool = True) -> bool:
        if name not in self.available_themes:
            self.notify(f"unknown theme '{name}' (have: {', '.join(self._theme_names)})",
                        severity="error")
            return False
        self.theme = name
        if remember and self._theme_api is not None:
            self._theme_api.remember_theme(self.config_dir, name)
        self.draw(force=True)
        return True

    # ------------------------------------------------------------------ driver

    #: Whether this control room runs its world's clock. False for a world hosted elsewhere
    #: (a seat: the host advances it, and step/speed keys go to the host as commands).
    RUNS_CLOCK = True

    def _resume_driver(self) -> None:
        if self._drive_timer is not None:
            self._drive_timer.stop()
            self._drive_timer = None
        if self.RUNS_CLOCK and not self.world.paused and self._prepared:
            self.clock.reset()
            self._drive_timer = self.set_timer(0.001, self._drive)

    def _drive(self) -> None:
        """One slice of the clock (see ui/clock.py), then come back when it says."""
        self._drive_timer = None
        world = self.world
        if world.paused or self._exit:
            return
        delay = self.clock.drive_slice(world, self.profile.simulation.tick_seconds)
        self._drive_timer = self.set_timer(delay, self._drive)

    # ------------------------------------------------------------------ frames

    def _schedule_frame(self) -> None:
        self._frame_timer = self.set_timer(1.0 / self.refresh_hz, self._frame)

    def _frame(self) -> None:
        if not self.screen_stack or self._exit:
            return  # shutting down: no more frames
        try:
            self.draw()
        finally:
            self._schedule_frame()

    def draw(self, force: bool = False) -> None:
        """Draw the latest snapshot on whatever is visible (skipped when nothing changed)."""
        if not self.screen_stack or self.world is None:
            return
        world = self.world
        snap = world.snapshot()
        key = (snap.tick, world.speed, world.paused, self.window, self.theme, id(self.screen))
        if not force and key == self._drawn:
            return
        self._drawn = key
        self.frames += 1
        external = self._external
        if external is not None:
            external.publish(snap)
            if external.bridge is not None:  # the retry countdown moves between changes
                for badge in self.query(LinkBadge):
                    badge.show(external.bridge.link_state)
        screen = self.screen
        if isinstance(screen, W.DetailScreen):
            screen.show(world, snap)
        with self.batch_update():
            self.query_one(HeaderBar).show(snap, world.speed, world.paused,
                                           self.profile.slo.availability, self.window)
            if screen is not self.screen_stack[0]:
                return
            self._draw_panes(snap)

    def _subtitle(self, pane: str, text: str) -> None:
        widget = self.query_one(f"#{pane}-pane")
        if widget.border_subtitle != text:  # setting it always repaints the border
            widget.border_subtitle = text

    def _visible(self, pane: str) -> bool:
        maximized = self.screen.maximized
        if maximized is None:
            return True
        return maximized.id == f"{pane}-pane"

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_metrics)

    def _fit_metrics(self) -> None:
        """Narrow layouts give the metrics row exactly the lines its sparklines need."""
        if self.world is None:
            return  # fitted once the world is built
        right = self.query_one("#right")
        # From the size, not the screen's classes: on a resize this can run before the
        # breakpoints moved the classes, and a narrow height kept in a wide layout squeezed the
        # alerts and events out of sight.
        width, height = self.screen.size
        if width < WIDE_COLUMNS:
            chrome = 1 if height < TALL_LINES else 2
            lines = len(W.metrics_for(self.world.snapshot(), self.profile.slo.p99_latency_ms))
            right.styles.height = lines + chrome
        else:
            right.styles.height = None

    def _draw_panes(self, snap: Snapshot) -> None:
        for spec in self.PANE_SPECS:
            if spec.draw is not None and self._visible(spec.key):
                subtitle = spec.draw(self, snap)
                if subtitle is not None:
                    self._subtitle(spec.key, subtitle)
        new = self.query_one("#events", W.EventLog).pull(self.world, self._visible("events"))
        if new:
            self._toast(new)

    def _toast(self, events: list) -> None:
        """Notifications the engine routed to the console / AI analysis, and failed deliveries."""
        fresh = [ev for ev in events if ev.seq > self._toast_after and ev.type in TOASTS]
        if not fresh:
            return
        self._toast_after = events[-1].seq
        for ev in fresh[-MAX_TOASTS:]:  # at max speed a burst must not bury the screen
            title, severity = TOASTS[ev.type]
            if severity == "information" and ev.severity in ("critical", "error"):
                severity = "warning"
            self.notify(ev.message, title=title, severity=severity, timeout=8)

    def _set_servers_subtitle(self, total: int | None = None) -> None:
        table = self.query_one(W.ServersTable)
        arrow = "▼" if table.sort_reverse else "▲"
        parts = [f"sort {table.sort_key}{arrow} (o)"]
        if table.filter_text:
            parts.insert(0, f"filter /{table.filter_text}")
        if total is not None:
            parts.append(f"{table.row_count}/{total}")
        self._subtitle("servers", " · ".join(parts))

    def on_servers_table_sort_changed(self, _event) -> None:
        self._set_servers_subtitle(len(self.world.snapshot().fleet))

    # ------------------------------------------------------------------ commands

    #: The kinds of command this room offers (ui/routing.py: engine, ui, drill, replay).
    ROUTE_SCOPES: tuple[str, ...] = ("engine", "ui")
    #: Whether the world is a hosted drill (its participants' hands are tied further).
    HOSTS_DRILL = False

    @property
    def observer(self) -> bool:
        """A read-only seat: it views freely and sends nothing."""
        return self.role == "observer"

    @property
    def router(self) -> Router:
        """This room's commands (ui/routing.py), built on first use (the first frame of a CLI
        start needs neither it nor the engine's commands)."""
        if self._router is None:
            self._router = W.Router(self.ROUTE_SCOPES, self.offers)
        return self._router

    def offers(self, name: str) -> bool:
        """Whether completion, the palette and the help offer the command `name` here."""
        return True

    def command_context(self) -> Context:
        """What completion and the palette read: the latest snapshot, themes, drill state."""
        return W.Context(self.world.snapshot(), tuple(self.theme_names),
                         self.world.drill_state())

    @property
    def theme_names(self) -> list[str]:
        return list(self._theme_names)

    def may(self, what: str, cmd: C.Command | None = None) -> bool:
        """Whether this seat's role may send `what` (a command's name, or `cmd` itself):
        devsim_tui/access.py decides; when not, a toast says why and nothing is sent."""
        if self.observer:
            self.refuse(cmd.describe() if cmd is not None else what)
            return False
        name = cmd.name if cmd is not None else C.ALIASES.get(what, what)
        why = access.role_refusal(self.role, name)
        if why is not None:
            self.refused_by_role(name, why)
            return False
        why = access.refusal(self.role, cmd, self.HOSTS_DRILL) if cmd is not None else None
        if why is not None:
            self.notify(why, severity="error", title="the facilitator's")
            return False
        return True

    def refused_by_role(self, name: str, why: str) -> None:
        self.notify(why, severity="error", title="not allowed")

    def needs_confirm(self, cmd: C.Command) -> bool:
        return not self.no_confirm and self.router.hurts(cmd)

    def refuse(self, what: str) -> None:
        """Tell an observer that `what` was not done (and nothing reached the world)."""
        self.notify(f"{what}: refused, this is a read-only observer session",
                    severity="error", title="read-only")

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Toasts show their text as written: commands, usages (`[SCOPE]`) and engine
        messages carry brackets that are not markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout,
                       markup=markup)

    def reject(self, what: str, why: str) -> None:
        """A command the screen refused before sending it: a toast (paused or not) and a line
        in the event log, like the engine's own rejections."""
        from devsim_tui.sim.events import Event

        self.notify(f"{what}: {why}", severity="error", title="command rejected")
        if self.world is not None:
            self.query_one(W.EventLog).note(
                Event(0, self.world.snapshot().t, "command.rejected", f"{what}: {why}",
                      "error", None, {}), self._visible("events"))

    def submit(self, cmd: C.Command) -> None:
        """Send a command to the world, asking first if it hurts (and checking first what
        the screen can check, so a confirmation never asks about a command that cannot
        apply)."""
        if not self.may(cmd.name, cmd):
            return
        snap = self.world.snapshot()
        why = self.router.precheck(cmd, snap, self.profile)
        if why is not None:
            self.reject(cmd.describe(), why)
            return
        if self.needs_confirm(cmd):
            def answered(yes: bool | None) -> None:
                if yes:
                    self._send(cmd)
                else:
                    self.notify(f"cancelled: {cmd.describe()}")

            self.push_screen(W.ConfirmScreen(self.router.question(cmd, snap),
                                           cmd.summary or ""), answered)
            return
        self._send(cmd)

    def _send(self, cmd: C.Command) -> None:
        self.world.submit(cmd)
        if isinstance(cmd, (C.Pause, C.SetSpeed)):
            self._resume_driver()
        elif self.world.paused and self.RUNS_CLOCK:
            # A paused engine applies it at its next tick: say so, or nothing would show.
            self.notify(f"{cmd.describe()}: queued, applies at the next tick (. steps, "
                        "space resumes)", title="paused", timeout=4)
        self.draw(force=True)

    def run_line(self, line: str) -> None:
        """Run a `:` line: a UI command, or an engine command (validated, confirmed if it hurts)."""
        text = line.strip().lstrip(":").strip()
        if not text:
            return
        if self.world is None:  # typed during start-up: run it once the world is built
            self._early_lines.append(text)
            return
        head = text.split(None, 1)[0]
        free = C.lookup(C.ALIASES.get(head, head))
        try:  # free text (a root cause in words) is not split like a shell line
            words = [head] if free is not None and free.free_text else shlex.split(text)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        name, args = words[0], words[1:]
        route = self.router.ui_route(name)
        if route is not None:
            if name != "step" or self.may(name):  # the clock's: a drill's facilitator's
                route.run(self, args)
            return
        # Even a bad line would reach the world (as a rejection event), so check the role here.
        if not self.may(name):
            return
        try:
            cmd = C.parse_line(text)
        except C.CommandError:
            # The engine records the rejection in the event log, like any other source's,
            # and the event's toast tells (see TOASTS).
            self.world.submit_line(text)
            self.draw(force=True)
            return
        self.submit(cmd)

    def _command_names(self) -> list[str]:
        return self.router.names()

    def _arguments(self, command: str, before: list[str] | tuple[str, ...] = ()) -> list[str]:
        if self.world is None:
            return []  # still starting: nothing to complete from yet
        return self.router.arguments(command, self.command_context(), before)

    def palette_entries(self) -> list[tuple[str, str, Any]]:
        """(title, help, callback) for the command palette: the router's commands, then the
        keys' actions and the panes."""
        out: list[tuple[str, str, Any]] = []

        def line(text: str):
            return lambda: self.run_line(text)

        def action(name: str):
            return lambda: self.run_action(name)

        def prefill(text: str):
            return lambda: self.open_command_line(text)

        for entry, help_text in self.router.palette(self.command_context()):
            out.append((entry.title, help_text,
                        prefill(entry.line) if entry.prefill else line(entry.line)))
        for b in self.BINDINGS:
            if b.description and b.action not in ("quit", "command_palette"):
                if b.action.startswith(("focus_pane", "scale", "backup", "failover", "ack")):
                    continue
                if not self.offers_action(b.action.split("(")[0]):
                    continue
                out.append((b.description.lower(), f"key {b.key_display or b.key}",
                            action(b.action)))
        for spec in self.PANE_SPECS:
            out.append((f"focus {spec.key} pane", f"key {spec.digit}",
                        action(f"focus_pane({spec.digit})")))
        out.append(("quit", "leave the control room", action("quit")))
        return out

    def offers_action(self, action: str) -> bool:
        """Whether the palette and the help offer the key action `action` here."""
        return True

    # ------------------------------------------------------------------ actions

    def open_command_line(self, text: str = "") -> None:
        cl = self.query_one(CommandLine)
        cl.add_class("-open")
        cl.value = text
        cl.cursor_position = len(text)
        self._show_candidates(text)
        # At once, not after the queued events (`focus()` defers): the keys typed or pasted
        # right after `:` (one packet over SSH) must reach the line, not the pane behind it.
        self.screen.set_focus(cl)

    def action_command_line(self) -> None:
        self.open_command_line()

    def on_command_line_submitted(self, event: CommandLine.Submitted) -> None:
        self._close_command_line()
        self.run_line(event.line)

    def on_command_line_closed(self, _event: CommandLine.Closed) -> None:
        self._close_command_line()

    def _show_candidates(self, value: str | None) -> None:
        """The completions of the word being typed, listed above the line (None: hide)."""
        box = self.query_one(Candidates)
        if value is None:
            box.show([], False)
            return
        suggester = self.query_one(CommandLine).suggester
        found = suggester.candidates(value, limit=13)
        box.show(found[:12], len(found) > 12)

    def _close_command_line(self) -> None:
        cl = self.query_one(CommandLine)
        cl.remove_class("-open")
        cl.value = ""
        self._show_candidates(None)
        if self.world is not None:  # no panes yet while the world is being built
            self.query_one(W.ServersTable).focus()

    @property
    def filters(self) -> dict[str, tuple[str, str]]:
        """The panes `/` filters: key -> (its filter line, the widget filtered)."""
        return {p.key: (f"#{p.filter_box}", p.filter) for p in self.PANE_SPECS if p.filter}

    def _focused_pane(self) -> str | None:
        """The key of the pane holding the focus (`servers`, `alerts`...), if any."""
        for node in (self.focused, *(self.focused.ancestors if self.focused else ())):
            if isinstance(node, Pane) and node.id:
                return node.id.removesuffix("-pane")
        return None

    def action_filter(self) -> None:
        """`/` filters the focused pane's table (k9s): servers, database, alerts or events."""
        pane = self._focused_pane()
        box = self.query_one(self.filters[pane if pane in self.filters else "servers"][0], Input)
        box.add_class("-open")
        self.screen.set_focus(box)  # at once: see open_command_line

    def apply_filter(self, text: str, pane: str = "servers") -> None:
        box_id, target = self.filters[pane]
        box = self.query_one(box_id, Input)
        if box.value != text:
            box.value = text
        box.set_class(bool(text), "-open")
        self.query_one(target).set_filter(text)
        self._filter_changed(pane)

    def _filter_changed(self, pane: str) -> None:
        if pane == "servers":
            self._set_servers_subtitle(len(self.world.snapshot().fleet))
        else:
            self.draw(force=True)  # subtitles say what is filtered

    def _filter_pane(self, widget) -> str | None:
        return next((pane for pane, (box, _t) in self.filters.items() if f"#{widget.id}" == box),
                    None)

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, CommandLine):
            self._show_candidates(event.value if event.input.has_class("-open") else None)
            return
        pane = self._filter_pane(event.input)
        if pane is not None:
            self.query_one(self.filters[pane][1]).set_filter(event.value)
            self._filter_changed(pane)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        pane = self._filter_pane(event.input)
        if pane is not None:
            event.input.set_class(bool(event.value), "-open")
            self.query_one(self.filters[pane][1]).focus()

    def on_key(self, event) -> None:
        if event.key != "escape" or self.focused is None:
            return
        pane = self._filter_pane(self.focused)
        if pane is not None:  # esc in the filter line: clear it, back to the table
            event.stop()
            self.apply_filter("", pane)
            self.query_one(self.filters[pane][1]).focus()
            return
        pane = self._focused_pane()
        if pane in self.filters and self.query_one(self.filters[pane][1]).filter_text:
            event.stop()  # esc on a filtered table (after enter kept the filter): clear it
            self.apply_filter("", pane)

    # ------------------------------------------------------------------ Textual's palette

    def get_system_commands(self, screen):
        """Textual's own palette commands, with "Theme" going through the control room's
        themes (validated, remembered) and "Screenshot" saved where `screenshot_dir` says,
        with a toast naming the file."""
        from textual.app import SystemCommand

        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                yield SystemCommand(command.title, "Save an SVG of the screen (to "
                                    "$XDG_PICTURES_DIR, else the working directory)",
                                    lambda: self.set_timer(0.1, self.save_screenshot_here))
            else:
                yield command

    def action_change_theme(self) -> None:
        """The palette's "Theme": the control room's themes, switched and remembered."""
        from functools import partial

        self.search_commands([(name, partial(self.set_theme, name),
                               "switch to this theme and remember it")
                              for name in self._theme_names or [self.theme]],
                             placeholder="Search for themes…")

    def save_screenshot_here(self) -> str:
        """Save an SVG of the screen in `screenshot_dir()`; a toast says where."""
        path = self.save_screenshot(path=str(screenshot_dir()))
        self.notify(f"screenshot saved: {path}", title="screenshot", timeout=8)
        return path

    def help_groups(self) -> list[tuple[str, list[Binding]]]:
        """The keys by where they act: the focused pane's first, then the global ones, then
        the other panes', the palette and the dialogs."""
        def action(b: Binding) -> str:
            return b.action.split("(")[0]

        by_pane = {pane: [b for b in self.BINDINGS if action(b) in actions]
                   for pane, actions in PANE_ACTIONS.items()}
        by_pane["servers"] += list(W.ServersTable.BINDINGS)
        local = {action(b) for actions in PANE_ACTIONS.values() for b in self.BINDINGS
                 if action(b) in actions}
        focused = self._focused_pane()
        order = sorted(by_pane, key=lambda pane: pane != focused)
        groups = [(f"{order[0]} pane", by_pane[order[0]])] if focused in by_pane else []
        groups.append(("global", [b for b in self.BINDINGS if action(b) not in local]))
        groups += [(f"{pane} pane", by_pane[pane]) for pane in order if pane != focused]
        return groups + [("palette", [Binding("ctrl+p", "command_palette", "Command palette")]),
                         ("dialogs", list(W.ConfirmScreen.BINDINGS))]

    def action_help(self) -> None:
        self.push_screen(W.HelpScreen(self.help_groups(), self.router))

    def action_toggle_pause(self) -> None:
        self.submit(C.Pause())

    def action_faster(self) -> None:
        self.submit(C.SetSpeed(speed=next_speed(self.world.speed, +1)))

    def action_slower(self) -> None:
        self.submit(C.SetSpeed(speed=next_speed(self.world.speed, -1)))

    def step(self, ticks: int = 1) -> None:
        if not self.may("step"):
            return
        if not self.RUNS_CLOCK:
            self.notify("step: the host runs the clock (a facilitator pauses and resumes it)",
                        severity="warning")
            return
        if not self.world.paused:
            self.notify("step works while paused (space pauses)", severity="warning")
            return
        if self._step_timer is not None:  # a step still running: this one replaces it
            self._step_timer.stop()
        self.clock.start_step(ticks)
        self._step_chunk()

    def _step_chunk(self) -> None:
        """Run what is left of a step within one slice of the loop, then yield and come back:
        `:step 100000` never freezes the screen or the keys (a resume, or `:step` again,
        takes over from it)."""
        self._step_timer = None
        if not self._exit and self.clock.step_slice(self.world):
            self._step_timer = self.set_timer(0.001, self._step_chunk)  # frames show progress
        else:
            self.draw(force=True)

    def action_step(self) -> None:
        self.step(1)

    def action_cycle_theme(self) -> None:
        names = self._theme_names or [self.theme]
        i = names.index(self.theme) if self.theme in names else -1
        self.set_theme(names[(i + 1) % len(names)])
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_cycle_window(self) -> None:
        names = list(WINDOWS)
        self.window = names[(names.index(self.window) + 1) % len(names)]
        self.draw(force=True)

    def action_focus_pane(self, n: int) -> None:
        spec = next(p for p in self.PANE_SPECS if p.digit == n)
        if self.screen.maximized is not None:
            self.screen.minimize()
        self.query_one(spec.focus).focus()

    def action_toggle_maximize(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
        elif screen.focused is not None:
            screen.maximize(screen.focused)
        self.draw(force=True)

    def action_scale(self, delta: int) -> None:
        self.submit(C.Scale(replicas=max(0, self.world.snapshot().agg.desired + delta)))

    def action_backup(self) -> None:
        self.submit(C.Backup(node=self._selected_db_node()))

    def action_failover(self) -> None:
        self.submit(C.Failover())

    def _selected_db_node(self) -> str | None:
        table = self.query_one("#db-table", W.KeyedTable)
        return table.selected_key if self.focused is table else None

    def action_crash(self) -> None:
        self.submit(C.CrashNode(node=self._selected_db_node() or "primary"))

    def action_restart(self) -> None:
        node = self._selected_db_node()
        if node is None:
            self.notify("select a database node first (2, then arrows)", severity="warning")
            return
        self.submit(C.RestartNode(node=node))

    def action_ack(self) -> None:
        self.submit(C.AckAlert(alert="all"))

    def action_silence(self) -> None:
        """Silence the selected alert's instance for 1h, or end its silence if it has one."""
        table = self.query_one(W.AlertsTable)
        key = table.selected_key if self.focused is table else None
        snap = self.world.snapshot()
        alert = next((a for a in snap.alerts if a.id == key), None)
        if alert is None:
            self.notify(f"{key} is a security finding: it closes when its control passes "
                        "(enter: details)" if key in {f["id"] for f in W.findings_of(snap)}
                        else "select an alert first (4, then arrows)", severity="warning")
            return
        if alert.silenced_until is not None and alert.silenced_until > snap.t:
            self.submit(C.Unsilence(alert=alert.id))
        else:
            self.submit(C.Silence(alert=alert.id, duration="1h"))

    def action_deploy(self) -> None:
        self.open_command_line("deploy ")

    def action_rollback(self) -> None:
        self.submit(C.build("rollback"))

    def action_promote(self) -> None:
        self.submit(C.build("promote"))

    def action_abort_rollout(self) -> None:
        self.submit(C.build("abort"))

    def action_chaos(self) -> None:
        self.open_command_line("chaos ")

    def action_chaos_stop_all(self) -> None:
        self.submit(C.build("chaos-stop", {"id": "all"}))

    def action_details(self) -> None:
        focused = self.focused
        if isinstance(focused, W.AlertsTable):
            self._alert_details(focused.selected_key)
            return
        if isinstance(focused, W.KeyedTable) and focused.id == "security-findings":
            self._finding_details(focused.selected_key)
            return
        if isinstance(focused, W.MetricsPane):
            self.push_screen(W.ScalerDetailScreen(self._start_hour),
                             lambda _r: self.draw(force=True))
            self.call_after_refresh(self.draw, True)
            return
        name = None
        if isinstance(focused, W.ServersTable):
            name = focused.selected_name
        elif isinstance(focused, W.KeyedTable) and focused.id == "db-table":
            name = focused.selected_key
        if name is None:
            return
        self.push_screen(W.DetailScreen(name, self._start_hour),
                         lambda _r: self.draw(force=True))
        self.call_after_refresh(self.draw, True)

    def _alert_details(self, key: str | None) -> None:
        snap = self.world.snapshot()
        alert = next((a for a in snap.alerts if a.id == key), None)
        if alert is not None:
            self.push_screen(W.AlertDetailScreen(W.alert_detail(
                alert, snap.t, lambda t: sim_clock(self._start_hour, t))))
        else:  # the alerts pane also lists the security audit's findings
            self._finding_details(key)

    def _finding_details(self, key: str | None) -> None:
        lines = W.finding_detail(self.world.snapshot(), key or "",
                                 lambda t: sim_clock(self._start_hour, t))
        if lines is not None:
            self.push_screen(W.FindingDetailScreen(lines))

    def on_servers_table_selected(self, event: W.ServersTable.Selected) -> None:
        event.stop()
        self.action_details()

    def on_keyed_table_selected(self, event: W.KeyedTable.Selected) -> None:
        if event.table.id == "db-table":
            event.stop()
            self.action_details()
        elif event.table.id == "alerts":
            event.stop()
            self._alert_details(event.key)
        elif event.table.id == "security-findings":
            event.stop()
            self._finding_details(event.key)


# ---------------------------------------------------------------------- factory


def screenshot_dir() -> Path:
    """Where screenshots go: $XDG_PICTURES_DIR when it names a directory, else the working
    directory (Textual's default, ~/Downloads, is missing on many servers)."""
    import os

    pictures = os.environ.get("XDG_PICTURES_DIR")
    if pictures and os.path.isdir(pictures):
        return Path(pictures)
    return Path.cwd()


def _theme_api():
    """The themes module (written alongside), or None if this build lacks it."""
    try:
        from devsim_tui.ui import themes
    except ImportError:
        return None
    return themes


def _is_world(obj: Any) -> bool:
    """A World already built, not a profile (nor its name or path) to build one from."""
    if isinstance(obj, (str, Path)):
        return False
    from devsim_tui.config.schema import Profile

    return not isinstance(obj, Profile)


def create_app(world_or_profile: Any = "production", *, theme: str | None = None,
               seed: int | None = None, speed: float | str | None = None, paused: bool = False,
               no_confirm: bool = False, config_dir: Path | None = None,
               warmup_ticks: int = 0, refresh_hz: float = REFRESH_HZ,
               observer: bool = False, background: bool = False,
               io: IOOptions | None = None, app_class: type[ControlRoomApp] | None = None,
               app_options: dict[str, Any] | None = None,
               record: str | None = None) -> ControlRoomApp:
    """Build the control room around a World, a Profile, or a profile name/path.

    `warmup_ticks` advances the world before the UI mounts (tests use it with `paused=True`
    to start at a known tick). With `background=True` (the CLI) the engine is built in a thread
    once the first frame is up; a built-in profile's name is also loaded there (shipped data,
    held valid by the test-suite), while a path is loaded and validated here, so a broken file
    fails before the screen opens. `app_class` (a ControlRoomApp subclass: a hosted drill, a
    replay) and its own `app_options` let those screens share this factory. `record` (a path)
    puts a `RecordedSession` behind a profile instead of a plain `LocalWorld`: every command and
    event is appended to that file as the session runs (the caller closes it: `cmd.ui.close_world`).
    """
    from devsim_tui.config.paths import is_builtin_profile

    source = world_or_profile
    if isinstance(source, (str, Path)) and not (background and is_builtin_profile(source)):
        from devsim_tui.config.loader import load_profile

        source = load_profile(str(source))

    def build(world: Any = source) -> Any:
        if isinstance(world, (str, Path)):
            from devsim_tui.config.loader import load_profile

            world = load_profile(str(world))
        if not _is_world(world) and record is not None:  # a Profile, recorded
            from devsim_tui.drill.session import RecordedSession

            world = RecordedSession(world, seed, record, source="control-room", keep=False)
        elif not _is_world(world):  # a Profile
            from devsim_tui.sim.engine import Engine
            from devsim_tui.sim.world import LocalWorld

            world = LocalWorld(Engine(world, seed=seed))
        if warmup_ticks:
            world.advance(warmup_ticks)
        if speed is not None:
            world.submit(C.SetSpeed(speed=speed))
        if paused:
            world.submit(C.Pause(paused=True))
        return world

    if background and not _is_world(source):
        # A built-in's name is its environment's (tests/test_profiles.py holds them to it).
        name, env = ((str(source), str(source)) if isinstance(source, (str, Path))
                     else (source.name, source.environment))
        world = PendingWorld(name, env, build)  # prepared by the app's worker, panes first
    else:
        world = build()
        world.prepare()  # not in the first tick, on the screen's loop
    if config_dir is None:
        api = _theme_api()
        config_dir = api.config_dir() if api is not None else None
    return (app_class or ControlRoomApp)(world, theme=theme, no_confirm=no_confirm,
                                         config_dir=config_dir, refresh_hz=refresh_hz,
                                         observer=observer, io=io, **(app_options or {}))
