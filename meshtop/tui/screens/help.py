"""`?`: every key and what the columns mean, on one screen."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("q", "quit"),
    ("?", "this help (esc closes it)"),
    ("r", "refresh now"),
    ("p", "pause or resume refreshing"),
    ("s", "sort by health, rps, p99 or name"),
    ("↑ ↓ pgup pgdn", "move through the edges"),
)
COLUMNS = (
    (
        "health",
        "ok / warn / FAIL / idle, from Kiali's thresholds: 5xx above 0 warns, "
        "from 10% fails; 4xx from 10% warns, from 20% fails",
    ),
    ("RPS", "requests per second over the window (c/s: TCP connections per second)"),
    ("ERR%", "share of requests failing: HTTP 5xx, gRPC non-OK, no response"),
    ("P50 P95 P99", "latency percentiles over the window"),
    ("MTLS", "yes: all traffic on mutual TLS; no: none; else the share"),
)


def help_table() -> Group:
    """Keys and columns as two aligned tables; long descriptions wrap in their column."""
    parts: list[Text | Table] = []
    for title, rows in (("Keys", KEYS), ("Columns", COLUMNS)):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for key, what in rows:
            grid.add_row(key, what)
        parts += [Text(title, style="bold underline"), grid, Text("")]
    return Group(*parts[:-1])


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "app.pop_screen", "close", show=True),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_table(), id="help-text")
