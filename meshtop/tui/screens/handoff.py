"""Text to hand to another tool, whole: the PromQL behind a selection (`:promql`), or a
link too long for the lines under the graph (`:open`). Each item is its title and its
text, wrapped to the screen; `y` copies the highlighted one, `esc` goes back."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from meshtop.sanitize import said, shown
from meshtop.tui.handoff import copy
from meshtop.tui.screens.sparing import Sparing
from meshtop.tui.widgets.keyline import KeyLine


class HandoffScreen(Sparing, Screen[None]):
    DEFAULT_CSS = """
    HandoffScreen #handoff-title { height: 1; padding: 0 1; background: $panel; }
    HandoffScreen #handoff-note { height: auto; max-height: 3; padding: 0 1; }
    HandoffScreen #handoff-list { height: 1fr; border: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "back"),
        Binding("y", "copy", "copy"),
    ]

    def __init__(self, title: str, note: str, items: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.note = note
        self.items = items

    def compose(self) -> ComposeResult:
        yield Static(Text(shown(self.title_text), style="bold"), id="handoff-title")
        yield Static(Text(said(self.note), style="dim"), id="handoff-note")
        options: list[Option | None] = []
        for i, (title, text) in enumerate(self.items):
            if i:
                options.append(None)  # a rule between two
            body = Group(Text(shown(title), style="bold"), Text(shown(text)))
            options.append(Option(body, id=str(i)))
        yield OptionList(*options, id="handoff-list")
        yield KeyLine()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_copy(self) -> None:
        """`y`: the highlighted item copied (as `y` copies everywhere), and said."""
        option = self.query_one(OptionList).highlighted_option
        if option is None or option.id is None:
            return
        title, text = self.items[int(option.id)]
        line = copy(self.app, text, said_as=title)  # type: ignore[arg-type]
        self.query_one("#handoff-note", Static).update(Text(said(line), style="bold"))
