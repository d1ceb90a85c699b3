"""The console's commands come from one table (meshtop/tui/commands.py): the `:` prompt's
hint, the help and the command palette (ctrl+p) show the same commands, and the palette
runs them, as the operator sees it in a real terminal."""

from __future__ import annotations

from meshtop.tui.commands import COMMANDS
from tests.terminal.term import Terminal


def test_the_palette_offers_the_commands_and_runs_them() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.press("ctrl+p")
        t.type("undo")
        t.wait_for(":undo", "take back the last change, whichever kind")
        t.press("enter")  # a command that takes nothing runs at once
        t.wait_for("nothing to undo: no weight change in this session")
        t.press("ctrl+p")
        t.type("ns")
        t.wait_for(":ns NAME|all", "show one namespace")
        t.wait_for(":focus NODE [HOPS]")  # words, not markup
        t.press("enter")  # the best hit, highlighted; one that takes words: the `:` prompt
        t.wait(
            "the prompt with the command's name", lambda: t.lines()[-2].strip().startswith(":ns")
        )
        t.type("bookinfo", after=":ns ")
        t.press("enter")
        t.wait("the filter in the status line", lambda: "ns=bookinfo" in t.lines()[1])


def test_the_prompt_hint_and_the_help_list_every_command() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.press(":")
        t.wait_for("command: ns NAME|all | cluster NAME|all | focus NODE [HOPS]")
        t.press("esc")
        t.wait_gone("command: ns NAME|all")
        t.press("?")
        t.wait_for("command palette")
        help_text = " ".join(line.strip("│ ") for line in t.lines())
        for command in COMMANDS:
            assert command.name in help_text, (command.name, t.text())
