"""The screen's turn (`meshtop.turns`) for what a person waits to see: asked by a key, by
a snapshot handed to the screen, and by a worker's rows or graph as they are taken in;
given back by the next frame the screen draws (`MeshtopApp._display`), or once the
screen has nothing to draw. The frame that draws the edge table's rows at 20,000
services took 70-80 ms of the screen's thread and 215-240 ms on the clock while the
refresh behind it ran (issue 17).

A key's turn is given back by a frame only (`key_first`), or after `LONGEST_S`: its
effect is made by messages to other widgets (enter: the graph's, then the main screen's,
which opens the detail), and the screen, with nothing to draw yet, ran its callbacks
(`call_after_refresh`) at once. The turn was given back a millisecond after the key,
80-200 ms before its frame. A frame already due when the key came (a refresh's status
line) still ends it early. What a message handler draws is marked by the time it
returns: its turn ends with the frame, or at once where it drew nothing (a table behind
another tab taking rows in), rather than holding the work behind it for `LONGEST_S`."""

from __future__ import annotations

from textual.message_pump import MessagePump

from meshtop import turns


def key_first() -> None:
    """The work behind the screen waits until the next frame is drawn (or `LONGEST_S`)."""
    turns.ask()


def drawn_first(pump: MessagePump) -> None:
    """The work behind the screen waits until the next frame is drawn, or until the screen
    has nothing to draw after what this handler did."""
    pump.call_after_refresh(turns.done, turns.ask())
