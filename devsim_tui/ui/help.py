"""The help screen, generated from the live bindings and the engine's COMMANDS registry.

Nothing is written by hand here, so the help cannot drift from what the keys and the `:` line
actually do: keys come from the app's and panes' BINDINGS, commands from `COMMANDS` (summary,
positional arguments, whether they ask for confirmation) and the UI's own command table.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from devsim_tui.sim.commands import ALIASES, COMMANDS


#: Commands that ask for confirmation only with some arguments (see app.needs_confirm).
ASKS_SOMETIMES = {"scale": "scaling to 0", "deploy": "a bad:KIND release",
                  "code-change": "a kind other than good", "chaos-stop": "'all'"}


def key_label(key: str) -> str:
    names = {"space": "space", "question_mark": "?", "full_stop": ".", "plus": "+",
             "minus": "-", "colon": ":", "slash": "/", "escape": "esc", "enter": "enter",
             "left_square_bracket": "[", "right_square_bracket": "]", "ctrl+p": "ctrl+p",
             "ctrl+c": "ctrl+c", "exclamation_mark": "!"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def binding_rows(groups: list[tuple[str, list[Binding]]]) -> list[tuple[str, str, str]]:
    rows = []
    seen = set()
    for where, bindings in groups:
        for b in bindings:
            if not isinstance(b, Binding) or not b.description:
                continue
            ident = (where, b.key)
            if ident in seen:
                continue
            seen.add(ident)
            rows.append((key_label(b.key_display or b.key), b.description, where))
    return rows


def command_rows(ui_commands: dict[str, tuple[str, str]],
                 extra_commands: dict | None = None) -> list[tuple[str, str, str]]:
    """Engine commands (plus `extra_commands`, e.g. a hosted drill's), then the UI's own."""
    aliases: dict[str, list[str]] = {}
    for alias, target in ALIASES.items():
        aliases.setdefault(target, []).append(alias)
    rows = []
    for name, cls in {**COMMANDS, **(extra_commands or {})}.items():
        usage = " ".join([f":{name}"] + [f"[{p}]" for p in cls.positional])
        note = cls.summary
        if aliases.get(name):
            note += f" (alias: {', '.join(sorted(aliases[name]))})"
        hurts = "confirm" if cls.hurts or name in ASKS_SOMETIMES else ""
        if name in ASKS_SOMETIMES:
            note += f"; {ASKS_SOMETIMES[name]} asks for confirmation"
        rows.append((usage, note, hurts))
    for name, (args, summary) in ui_commands.items():
        rows.append((f":{name}" + (f" {args}" if args else ""), summary, "ui"))
    return rows


def help_renderable(groups, ui_commands, key_style: str, dim_style: str,
                    extra_commands: dict | None = None) -> Group:
    keys = Table(box=None, expand=True, show_header=True, header_style=dim_style, pad_edge=False)
    keys.add_column("KEY", style=key_style, no_wrap=True, min_width=8)
    keys.add_column("ACTION", ratio=1)
    keys.add_column("WHERE", style=dim_style, no_wrap=True)
    for key, desc, where in binding_rows(groups):
        keys.add_row(key, desc, where)
    cmds = Table(box=None, expand=True, show_header=True, header_style=dim_style, pad_edge=False)
    cmds.add_column("COMMAND", style=key_style, no_wrap=True)
    cmds.add_column("WHAT IT DOES", ratio=1)
    cmds.add_column("", style=dim_style, no_wrap=True)
    for usage, note, flag in command_rows(ui_commands, extra_commands):
        cmds.add_row(usage, note, flag)
    return Group(Text("Keys", style=key_style), keys, Text(""),
                 Text("Commands (type : then the command; Tab completes; also in ctrl+p)",
                      style=key_style), cmds)


class HelpScreen(ModalScreen[None]):
    """`?`: every key and every command."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    COMPONENT_CLASSES = {"help--key", "help--dim"}

    def __init__(self, groups: list[tuple[str, list[Binding]]],
                 ui_commands: dict[str, tuple[str, str]],
                 extra_commands: dict | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.ui_commands = ui_commands
        self.extra_commands = extra_commands  # a hosted drill's commands

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "Help — esc to close"
            yield Static(id="help-body")

    def on_mount(self) -> None:
        st = self.get_component_rich_style
        self.query_one("#help-body", Static).update(
            help_renderable(self.groups, self.ui_commands, st("help--key"), st("help--dim"),
                            self.extra_commands))
        self.query_one("#help-box").focus()

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)
