"""The console's commands, in one table: what `:` runs, what the `:` prompt's hint and
the help list, and what the command palette (ctrl+p) offers on the main screen. A command
is a name, the words it takes, what it does, and the main screen's method that does it
(`cmd_NAME`, given the words after the name): they are here, beside the table, in
`Commands`, which `MainScreen` is made of."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.screen import Screen

from meshtop.errors import MeshtopError, UsageError
from meshtop.graphview import GROUPINGS, Grouping
from meshtop.posture import MtlsMode
from meshtop.tui import handoff
from meshtop.tui.placement import ZOOMS
from meshtop.tui.widgets.graph import LABELS, GraphCanvas

if TYPE_CHECKING:
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.changes import Changes
    from meshtop.tui.graph_state import GraphState
    from meshtop.tui.screens.main import MainScreen


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    words: str  # what it takes after its name, as the help writes it; "" for nothing
    does: str
    aliases: tuple[str, ...] = ()
    raw: bool = False  # given the rest of the line as typed (quotes, a regex), not words

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
    Command("find", "NAME", "select a node by name and mark every match, hiding none (f)"),
    Command("sort", "COLUMN [asc|desc]", "sort the table shown by a column (S reverses it)"),
    Command(
        "mtls",
        "NAMESPACE[/WORKLOAD] strict|permissive",
        "set an mTLS mode (shown first, with what STRICT would refuse; y makes it)",
    ),
    Command(
        "route-test",
        "[NS/NAME] REQUEST…",
        'which rule takes a request (user-agent="…" uri=/api) and why not the ones before',
        raw=True,
    ),
    Command(
        "steer",
        "[NS/NAME] --match COND --to v3 | --edit|--move|--remove RULE",
        "send requests a match picks to a subset (shown first, y makes it)",
        raw=True,
    ),
    Command(
        "fault",
        "[NS/NAME] --abort 503:10% | --delay 2s:25% [--match COND] [--for 10m] | --clear",
        "inject a fault for a while, or remove it (shown first, y makes it)",
        raw=True,
    ),
    Command("timeout", "[NS/NAME] 2s|off", "a route's timeout (shown first, y makes it)", raw=True),
    Command(
        "retries",
        "[NS/NAME] N [500ms] [5xx]|off|default",
        "a route's retries (shown first, y makes it)",
        raw=True,
    ),
    Command(
        "breaker",
        "[NS/NAME] [--subset v3] --max-connections N … | --clear",
        "a DestinationRule's circuit breaker (shown first, y makes it)",
        raw=True,
    ),
    Command("undo", "", "take back the last change, whichever kind (shown first, y makes it)"),
    Command("promql", "", "the PromQL behind the selected node or edge (y copies one)"),
    Command(
        "open",
        "[grafana|jaeger|zipkin]",
        "a link to the selection in Grafana, Jaeger or Zipkin ([links] in the config), copied",
    ),
    Command("at", "-30m|10:02|TIME|now", "the whole console at that moment ([ ] step, esc: live)"),
    Command("compare", "[-30m|10:02|off]", "each edge beside a moment before, and what changed"),
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
        text = f":{command.usage}"
        return text, partial(start, self.screen, command)

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


def run(screen: MainScreen, line: str) -> None:
    """`:NAME WORDS…`: the command's method, given the words; an unknown name is one line."""
    words = line.removeprefix(":").split()
    if not words:
        return
    command = BY_NAME.get(words[0])
    if command is None:
        raise UsageError(f"unknown command :{words[0]}; ? lists them")
    args = words[1:]
    if command.raw:  # the rest as typed: `user-agent="Mozilla/5.0 (iPhone…)"`, a regex
        rest = line.removeprefix(":").strip()[len(words[0]) :].strip()
        args = [rest] if rest else []
    getattr(screen, f"cmd_{command.name.replace('-', '_')}")(args)


def start(screen: Screen[object], command: Command) -> None:
    """From the command palette: a command that takes nothing runs at once; one that
    takes words opens the `:` prompt with its name typed."""
    from meshtop.tui.screens.main import MainScreen

    assert isinstance(screen, MainScreen)  # the palette offers these only there
    if not command.words:
        try:
            run(screen, command.name)
        except MeshtopError as exc:
            screen.say(str(exc))
        return

    def open_prompt() -> None:  # once the palette is gone and its focus given back
        prompt = screen.action_prompt(":")
        prompt.value = f"{command.name} "
        # after its focus has selected all it holds: the words go after the name
        screen.app.call_after_refresh(prompt.action_end)

    screen.app.call_after_refresh(open_prompt)


def one_of(name: str, words: list[str], choices: tuple[str, ...], alone: bool = False) -> str:
    """The one word `name` takes, which must be one of `choices` (and the only word,
    when `alone`)."""
    if not words or words[0] not in choices or (alone and len(words) > 1):
        raise UsageError(f"{name} takes one of {', '.join(choices)}")
    return words[0]


class _Main(Protocol):
    """What the commands use of the main screen."""

    app: MeshtopApp
    graph: GraphState
    changes: Changes

    def _canvas(self) -> GraphCanvas: ...
    def say(self, text: str) -> None: ...
    def redraw_graph(self) -> None: ...
    def set_filter(self, text: str) -> None: ...
    def set_grouping(self, grouping: Grouping) -> None: ...
    def set_labels(self, mode: str) -> None: ...
    def set_zoom(self, zoom: str) -> None: ...
    def find(self, text: str) -> None: ...
    def sort_table(self, column: str, descending: bool | None) -> None: ...


class Commands:
    """The `:` commands, as the main screen's methods: each given the words after its
    name; a command that cannot be done raises a `MeshtopError`, said in place."""

    def cmd_q(self: _Main, args: list[str]) -> None:
        self.app.exit()

    def cmd_ns(self: _Main, args: list[str]) -> None:
        self.set_filter("" if not args or args[0] == "all" else f"ns={args[0]}")

    def cmd_cluster(self: _Main, args: list[str]) -> None:
        self.graph.set_cluster(args[0] if args else "all", self.app.snapshot)
        self.say("")
        self.redraw_graph()

    def cmd_collapse(self: _Main, args: list[str]) -> None:
        self.graph.collapse(args)
        self.redraw_graph()

    def cmd_expand(self: _Main, args: list[str]) -> None:
        self.graph.collapse(args, collapse=False)
        self.redraw_graph()

    def cmd_focus(self: _Main, args: list[str]) -> None:
        self.graph.set_focus(args, self.app.snapshot)
        self.say("")
        self.redraw_graph()

    def cmd_graph(self: _Main, args: list[str]) -> None:
        choices = {g.value: g for g in GROUPINGS}
        self.set_grouping(choices[one_of("graph", args, tuple(choices))])

    def cmd_labels(self: _Main, args: list[str]) -> None:
        self.set_labels(one_of("labels", args, LABELS))

    def cmd_zoom(self: _Main, args: list[str]) -> None:
        self.set_zoom(one_of("zoom", args, (*ZOOMS, "fit"), alone=True))

    def cmd_find(self: _Main, args: list[str]) -> None:
        self.find(" ".join(args))

    def cmd_sort(self: _Main, args: list[str]) -> None:
        ways = {"asc": False, "desc": True}
        if not args or len(args) > 2 or (len(args) == 2 and args[1].lower() not in ways):
            raise UsageError("sort takes COLUMN [asc|desc], as in :sort p99 desc")
        self.sort_table(args[0], ways[args[1].lower()] if len(args) == 2 else None)

    def cmd_mtls(self: _Main, args: list[str]) -> None:
        if self.app.settings.read_only:
            raise UsageError("read-only: :mtls writes nothing here")
        modes = {m.value.lower(): m for m in (MtlsMode.STRICT, MtlsMode.PERMISSIVE)}
        target = args[0] if args else ""
        namespace, _, workload = target.partition("/")
        mode = modes.get(args[-1].lower()) if len(args) == 2 else None
        if mode is None or not namespace or "/" in workload or target.endswith("/"):
            raise UsageError("mtls takes NAMESPACE[/WORKLOAD] and one of strict, permissive")
        from meshtop.sources.kubernetes import check_names

        check_names(namespace, workload or "x")  # names the API could hold, said in one line
        self.changes.mtls(namespace, workload, mode)

    def cmd_undo(self: _Main, args: list[str]) -> None:
        self.changes.undo()

    # the traffic-policy commands (issue 21): tui/policy.py, given the line as typed

    def cmd_route_test(self: _Main, args: list[str]) -> None:
        self.changes.policy.route_test(" ".join(args))

    def cmd_steer(self: _Main, args: list[str]) -> None:
        self.changes.policy.steer(" ".join(args))

    def cmd_fault(self: _Main, args: list[str]) -> None:
        self.changes.policy.fault(" ".join(args))

    def cmd_timeout(self: _Main, args: list[str]) -> None:
        self.changes.policy.timeout(" ".join(args))

    def cmd_retries(self: _Main, args: list[str]) -> None:
        self.changes.policy.retries(" ".join(args))

    def cmd_breaker(self: _Main, args: list[str]) -> None:
        self.changes.policy.breaker(" ".join(args))

    def cmd_promql(self: _Main, args: list[str]) -> None:
        handoff.show_promql(cast("handoff.MainScreen", self))

    def cmd_open(self: _Main, args: list[str]) -> None:
        handoff.open_selected(cast("handoff.MainScreen", self), args)

    def cmd_theme(self: _Main, args: list[str]) -> None:
        if not args or args[0] not in self.app.available_themes:
            raise UsageError(f"themes: {', '.join(sorted(self.app.available_themes))}")
        self.app.theme = args[0]
        self._canvas().redraw()
        self.say("")
