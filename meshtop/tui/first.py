"""The screen's turn (`meshtop.turns`) for what a person waits to see: asked by a key, by
a snapshot handed to the screen, and by a worker's rows or graph as they are taken in;
given back once the screen's next frame is drawn. The frame that draws the edge table's
rows at 20,000 services took 70-80 ms of the screen's thread and 215-240 ms on the clock
while the refresh behind it ran (issue 17)."""

from __future__ import annotations

from textual.message_pump import MessagePump

from meshtop import turns


def drawn_first(pump: MessagePump) -> None:
    """The work behind the screen waits until the next frame is drawn."""
    turns.ask()
    pump.call_after_refresh(turns.done)
