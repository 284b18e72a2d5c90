"""Command palette (ctrl+p) provider: the engine's commands and the UI's actions.

Each hit goes through the same path as keys and the `:` line (`app.run_line` for commands,
`app.run_action` for UI actions), so confirmation and validation behave identically.
"""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ControlRoomCommands(Provider):
    """Everything the control room can do, searchable by name."""

    def _entries(self) -> list[tuple[str, str, object]]:
        return self.app.palette_entries()  # (title, help, callback)

    async def discover(self) -> Hits:
        for title, help_text, callback in self._entries():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)

