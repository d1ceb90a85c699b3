"""What every screen of the console shares: it draws again only what changed."""

from __future__ import annotations

from textual import events
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget

from meshtop import turns


class Sparing:
    """A screen that sends the terminal only what changed (issue 17; at 160x48 a whole
    screen is 13-30 kB, which an SSH link carries and a terminal reads, every byte).

    - The focus moving repaints only the widgets it moved between (each draws itself
      again): Textual repaints the whole screen, and the graph sent again was 32 kB of
      output for `/` and again for esc.
    - A screen is laid out once as it opens. Textual lays a pushed screen out as it
      resumes, which posts it a Resize from nothing to the size it was just laid out at;
      handling that lays it out again, and every screen under it (the main screen's graph
      and tables), and draws it whole once more: 20-40 ms of the screen's thread. A Resize
      to the size the screen is laid out at is dropped; a terminal's resize (a new size)
      goes on to Textual's.
    - A frame (its layout, its drawing) is the screen's turn (`meshtop.turns`): the loops
      behind it wait rather than take the interpreter's lock from it every millisecond.
    """

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    def laid_out_at(self, size: object) -> bool:
        """Whether the screen is laid out at `size` already."""
        assert isinstance(self, Screen)
        return size == self._compositor.size

    def _on_timer_update(self) -> None:
        # inside a key's turn, that turn goes on as it was (its frame ends it)
        asked = None if turns.held() else turns.ask()
        try:
            super()._on_timer_update()  # type: ignore[misc]
        finally:
            if asked is not None:
                turns.done(asked)

    async def _on_resize(self, event: events.Resize) -> None:
        if self.laid_out_at(event.size):
            event.stop()
            event.prevent_default()  # nor Screen's own handler, next in the order
