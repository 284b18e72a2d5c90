"""The help screen, generated from the live bindings and the room's command router.

Nothing is written by hand here, so the help cannot drift from what the keys and the `:` line
actually do: keys come from the app's and panes' BINDINGS, commands from the router
(ui/routing.py: summary, arguments, whether they ask for confirmation, the UI's own).
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

from devsim_tui.ui.routing import DRILL, Router


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


def command_rows(router: Router | None = None) -> list[tuple[str, str, str]]:
    """(usage, what it does, flag) of the commands `router` offers (default: the plain
    control room's): see `Router.help_rows`."""
    return (router or Router()).help_rows()


def help_renderable(groups, router: Router | None, key_style: str, dim_style: str) -> Group:
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
    for usage, note, flag in command_rows(router):
        cmds.add_row(usage, note, flag)
    return Group(Text("Keys", style=key_style), keys, Text(""),
                 Text("Commands (type : then the command; Tab completes; also in ctrl+p)",
                      style=key_style), cmds)


class HelpScreen(ModalScreen[None]):
    """`?`: every key and every command."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    COMPONENT_CLASSES = {"help--key", "help--dim"}

    def __init__(self, groups: list[tuple[str, list[Binding]]],
                 router: Router | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.router = router  # the room's commands (None: the plain control room's)

    @property
    def extra_commands(self) -> dict[str, type]:
        """The hosted drill's commands listed (those this seat may send)."""
        return {r.name: r.command for r in (self.router or Router()).offered()
                if r.scope == DRILL}

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "Help — esc to close"
            yield Static(id="help-body")

    def on_mount(self) -> None:
        st = self.get_component_rich_style
        self.query_one("#help-body", Static).update(
            help_renderable(self.groups, self.router, st("help--key"), st("help--dim")))
        self.query_one("#help-box").focus()

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)
