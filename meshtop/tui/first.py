"""The screen's turn (`meshtop.turns`) for what a person waits to see: asked by a key, by
a snapshot handed to the screen, and by a worker's rows or graph as they are taken in;
given back by the next frame the screen draws (`MeshtopApp._display`). The frame that
draws the edge table's rows at 20,000 services took 70-80 ms of the screen's thread and
215-240 ms on the clock while the refresh behind it ran (issue 17).

Not once the screen has run its callbacks (`call_after_refresh`): a key's effect is made
by messages to other widgets (enter: the graph's, then the main screen's, which opens the
detail), and the screen, with nothing yet to draw, ran them at once. The turn was given
back a millisecond after the key, 80-200 ms before its frame."""

from __future__ import annotations

from meshtop import turns


def drawn_first() -> None:
    """The work behind the screen waits until the next frame is drawn (or `LONGEST_S`)."""
    turns.ask()
