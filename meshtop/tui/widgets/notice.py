"""The notice under the graph: what the settings, the themes and the sources warn of, and
for a while the one line said about what the user typed or pressed. What a backend or
the user said is shown as text, never read as markup."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual.timer import Timer
from textual.widgets import Static

from meshtop.sanitize import said

SAID_FOR_S = 8.0  # how long a line said in place stays (a problem of a source stays)


class Notice(Static):
    def __init__(self) -> None:
        super().__init__(Text(""), id="notice")  # as `show` leaves it: a Text
        self.said: list[str] = []  # the line said in place, while it lasts
        self._unsay: Timer | None = None
        self._shown = ""  # what `show` last showed

    def say(self, text: str, redraw: Callable[[], None]) -> None:
        """`text` said in place ("": nothing), until SAID_FOR_S have passed or the next
        line is said; `redraw` shows the notice again with it, and without it."""
        self.said = [text] if text else []
        redraw()
        if self._unsay is not None:
            self._unsay.stop()
        self._unsay = self.set_timer(SAID_FOR_S, partial(self._gone, redraw)) if text else None

    def _gone(self, redraw: Callable[[], None]) -> None:
        self._unsay = None
        self.said = []
        redraw()

    def show(self, text: str) -> None:
        """`text` shown ("": the notice hidden); the same as shown: nothing to do (every
        refresh shows it, and an update lays the whole screen out again)."""
        if text == self._shown:
            return
        self._shown = text
        self.update(Text(said(text)))
        self.set_class(bool(text), "shown")
