"""The `:` command line and its completion over command names and their arguments.

Completion knows the engine's commands (`COMMANDS` and aliases), the UI's own commands, and for
arguments: database node names, theme names, speeds, windows, alert names and ids, versions,
fault ids and, word by word, a chaos fault's type, scope, duration and intensity, all read from
the latest snapshot through a callback (no engine internals).
"""

from __future__ import annotations

from typing import Callable

from textual.binding import Binding
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Static

from devsim_tui.lazy import lazy_module

C = lazy_module("devsim_tui.sim.commands")  # pydantic models: not needed for the first frame


class CommandSuggester(Suggester):
    """Suggest the first command or argument that starts with what was typed."""

    def __init__(self, names: Callable[[], list[str]],
                 arguments: Callable[[str, list[str]], list[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=False)
        self.names = names
        self.arguments = arguments

    def candidates(self, value: str, limit: int = 12) -> list[str]:
        """Every command or argument that fits what is typed (the list shown above the line),
        the word being completed only."""
        words = value.lstrip(":").split(" ")
        if len(words) == 1:
            options = self.names()
        else:
            options = self.arguments(C.ALIASES.get(words[0], words[0]), words[1:-1])
        partial = words[-1]
        return [o for o in dict.fromkeys(options) if o.startswith(partial)][:limit]

    async def get_suggestion(self, value: str) -> str | None:
        text = value.lstrip(":")
        prefix = value[: len(value) - len(text)]
        words = text.split(" ")
        if len(words) == 1:
            for name in self.names():
                if name.startswith(words[0]) and name != words[0]:
                    return prefix + name
            return None
        command = C.ALIASES.get(words[0], words[0])
        partial = words[-1]
        # The words already typed decide what comes next (chaos TYPE, then its scopes...).
        for arg in self.arguments(command, words[1:-1]):
            if arg.startswith(partial) and arg != partial:
                return prefix + " ".join(words[:-1] + [arg])
        return None


def command_names(ui_commands: list[str]) -> list[str]:
    return sorted(set(C.COMMANDS) | set(C.ALIASES) | set(ui_commands))


class Candidates(Static):
    """What Tab can complete to, above the open `:` line (`scale  set-speed  silence`)."""

    def show(self, options: list[str], more: bool) -> None:
        self.set_class(bool(options), "-open")
        self.update("  ".join(options) + ("  …" if more else ""))


class CommandLine(Input):
    """`:` line: Enter runs it, Escape closes it; Tab/Right accepts the suggestion."""

    BINDINGS = [
        Binding("escape", "close", "Close", show=False),
        Binding("tab", "complete", "Complete", show=False),
    ]

    class Submitted(Message):
        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    class Closed(Message):
        pass

    def __init__(self, *args, **kwargs) -> None:
        # Keys and the palette open the line prefilled ("chaos ", "deploy "): typing must add
        # to that text, not replace it, so focusing never selects it.
        kwargs.setdefault("select_on_focus", False)
        super().__init__(*args, **kwargs)

    def action_close(self) -> None:
        self.post_message(self.Closed())

    def action_complete(self) -> None:
        if self._suggestion:
            self.value = self._suggestion
            self.cursor_position = len(self.value)

    async def action_submit(self) -> None:
        line = self.value.strip()
        self.value = ""
        # Give up the focus at once: a key typed right after Enter (a typist, or one SSH
        # packet) must reach the screen's bindings, not this line, while the app handles
        # the submission.
        self.screen.set_focus(None)
        self.post_message(self.Submitted(line))
