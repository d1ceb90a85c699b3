"""The prompt under the graph: `/` and a filter, or `:` and a command. Hidden until asked
for; shown over the row above the key line, on a layer of its own (meshtop.tcss)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Static


class Prompt(Horizontal):
    def __init__(self) -> None:
        super().__init__(id="prompt-row")
        self.kind = ""  # what it was opened for: `/` or `:`

    def compose(self) -> ComposeResult:
        yield Static("/", id="prompt-kind")
        yield Input(id="prompt")

    def open(self, kind: str, value: str, hint: str) -> Input:
        """Shown for `kind`, holding `value`, with `hint` while empty; its input, which
        the screen gives the focus at once."""
        prompt = self.query_one("#prompt", Input)
        self.kind = kind
        prompt.placeholder = hint
        prompt.value = value
        sign = self.query_one("#prompt-kind", Static)
        sign.update(kind)
        sign.styles.width = len(kind) + 1  # `find:` as well as `/`
        self.add_class("shown")
        return prompt

    def close(self) -> bool:
        """Hidden again; whether it was shown."""
        shown = self.has_class("shown")
        self.remove_class("shown")
        return shown
