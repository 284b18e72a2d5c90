"""The control room's footer: Textual's `Footer`, rebuilt only when what it shows changed.

Textual's footer recomposes all its keys on every bindings signal of the screen (each focus
change, each `refresh_bindings`), whether or not the keys it lists changed; at start-up that is
three rebuilds of a dozen keys before the panes are up. This one compares what it would list
(key, label, enabled, tooltip of each shown binding, and the palette's key) with what it lists
already and skips the rebuild when they are equal. It shows exactly what `Footer` shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.screen import Screen


class QuietFooter(Footer):
    """A `Footer` that skips rebuilding when the keys it would list are the ones it lists."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listed: tuple | None = None  # what the keys on screen were built from

    def _listing(self, screen: Screen) -> tuple:
        """What `Footer.compose` would list on `screen` now."""
        palette = self.app.COMMAND_PALETTE_BINDING
        return tuple(
            (key, binding.action, binding.description, binding.key_display, binding.group,
             enabled, tooltip)
            for key, (_ns, binding, enabled, tooltip) in screen.active_bindings.items()
            if binding.show or key == palette
        ) + (self.show_command_palette,)

    def bindings_changed(self, screen: Screen) -> None:
        # Under the conditions in which Footer's own would schedule a rebuild: none when the
        # keys on screen were built from what it would list now (a rebuild already scheduled
        # still runs, and lists the state of its own moment).
        if (self._bindings_ready and screen.app.app_focus and self.is_attached
                and screen is self.screen and self._listing(screen) == self._listed):
            return
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._listed = self._listing(self.screen)
        yield from super().compose()
