"""A change shown before it is made (`:undo`): the diff of every copy it writes, `y` to
make it, `esc` to leave everything as it is."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from meshtop.sanitize import shown
from meshtop.tui.screens.sparing import Sparing


class ConfirmScreen(Sparing, ModalScreen[bool]):
    """Dismissed with True (`y`) or False (`esc`, `n`)."""

    AUTO_FOCUS = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "apply"),
        Binding("escape,n", "answer(False)", "cancel"),
    ]

    def __init__(self, title: str, lines: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines

    def compose(self) -> ComposeResult:
        body = [
            Text(shown(self.title_text), style="bold"),
            Text(""),
            *(Text(shown(line)) for line in self.lines),
            Text(""),
            Text("y apply   esc cancel", style="bold"),
        ]
        with Vertical(id="confirm"):
            yield Static(Group(*body))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
