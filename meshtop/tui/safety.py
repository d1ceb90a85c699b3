"""The console's backstop against outside text: a line filter that takes every control
character out of what is about to be written to the terminal.

Outside text is made visible where it enters a widget (`meshtop.sanitize.shown`: ESC as
`␛`, and so on); this filter is for anything that path missed. It removes C0 controls,
DEL, C1 controls and bidi controls from each segment's text (a control takes no cell, so
removing it keeps every width right), and leaves Textual's own control segments (cursor
moves) alone. Ordinary text passes through untouched, at the cost of one search."""

from __future__ import annotations

import re

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class ControlFilter(LineFilter):
    """Removes any control or bidi character left in a line's text."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if not any(_CONTROL.search(s.text) for s in segments if s.control is None):
            return segments
        return [
            s if s.control is not None else Segment(_CONTROL.sub("", s.text), s.style)
            for s in segments
        ]
