"""The console's commands, in one table: what `:` runs, what the `:` prompt's hint and
the help list, and what the command palette (ctrl+p) offers. A command is a name, the
words it takes, what it does, and the `MeshtopApp` method that does it (`cmd_NAME`,
given the words after the name)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

if TYPE_CHECKING:
    from meshtop.tui.app import MeshtopApp


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    words: str  # what it takes after its name, as the help writes it; "" for nothing
    does: str
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        return f"{self.name} {self.words}".strip()


COMMANDS = (
    Command("ns", "NAME|all", "show one namespace (the filter ns=NAME)", ("namespace",)),
    Command("cluster", "NAME|all", "show one cluster of several"),
    Command("focus", "NODE [HOPS]", "a node and what is up to HOPS calls away from it"),
    Command("graph", "app|version|workload|service", "group the nodes"),
    Command("labels", "rps|errors|p95|p99", "the figure on every edge"),
    Command("collapse", "NS|cluster NAME", "a namespace or a cluster as one box"),
    Command("expand", "NS|cluster NAME", "a collapsed namespace or cluster opened again"),
    Command("zoom", "full|compact|namespaces|fit", "how much of each node is drawn"),
    Command("undo", "", "take back the last weight change (shown first, y makes it)"),
    Command("theme", "NAME", "the colours"),
    Command("q", "", "quit", ("quit",)),
)

BY_NAME = {n: c for c in COMMANDS for n in (c.name, *c.aliases)}


def hint() -> str:
    """The `:` prompt's placeholder: every command, as it is written."""
    return "command: " + " | ".join(c.usage for c in COMMANDS)


def listed() -> str:
    """The commands as the help lists them."""
    return "command: " + ", ".join(c.usage for c in COMMANDS)


class Palette(Provider):
    """The command palette's commands: each of the table. One that takes no words runs
    at once; one that does opens the `:` prompt with its name typed."""

    def _hit(self, command: Command) -> tuple[str, object]:
        app = self.app
        assert hasattr(app, "start_command")
        text = f":{command.usage}"
        return text, partial(app.start_command, command)

    async def discover(self) -> Hits:
        for command in COMMANDS:
            text, run = self._hit(command)
            yield DiscoveryHit(Content(text), run, text=text, help=command.does)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in COMMANDS:
            text, run = self._hit(command)
            # its name first: `ns` is the ns command before any whose words hold an N, an S
            score = max(matcher.match(command.name), matcher.match(text) / 2)
            if score > 0:  # shown as plain text: `[HOPS]` is words, not markup
                yield Hit(score, Content(text), run, text=text, help=command.does)  # type: ignore[arg-type]


def run(app: MeshtopApp, line: str) -> None:
    """`:NAME WORDS…`: the command's method, given the words; an unknown name is one line."""
    from meshtop.errors import UsageError

    words = line.removeprefix(":").split()
    if not words:
        return
    command = BY_NAME.get(words[0])
    if command is None:
        raise UsageError(f"unknown command :{words[0]}; ? lists them")
    getattr(app, f"cmd_{command.name}")(words[1:])
