"""The detail panels as Rich renderables: the numbers now, the history as plots (the
weight changes from the audit log marked on them), the window summed up (response codes,
Envoy flags in words, mTLS and principals, what each proxy counted), the canary
comparison, a node's calls and the routes that reach it. Headless: the console shows them
in its detail screens, `meshtop edge` prints them. Every string from outside (names,
codes, flags, principals, routes, the audit log's) is `shown()`: no control reaches the
terminal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime

from rich._ratio import ratio_reduce
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Span, Text

from meshtop import plot, units
from meshtop.audit import WeightChange
from meshtop.detail import Detail, Subject
from meshtop.health import Thresholds, explain
from meshtop.history import known
from meshtop.model import Edge, EdgeStats, History, Protocol, Route, WindowSummary
from meshtop.sanitize import shown
from meshtop.sources.protocols import ConfigChange

FLAGS = {
    "UH": "no healthy upstream",
    "UF": "upstream connection failure",
    "UO": "upstream overflow (circuit breaking)",
    "NR": "no route configured",
    "URX": "upstream retry limit exceeded",
    "UT": "upstream request timeout",
    "DC": "downstream connection termination",
    "LH": "local health check failed",
    "LR": "connection local reset",
    "UR": "upstream remote reset",
    "UC": "upstream connection termination",
    "DI": "delayed by fault injection",
    "FI": "aborted by fault injection",
    "RL": "rate limited",
    "UAEX": "unauthorized (external authorization)",
    "RLSE": "rate limit service error",
    "IH": "invalid header value",
    "SI": "stream idle timeout",
    "DPE": "downstream protocol error",
    "UPE": "upstream protocol error",
    "UMSDR": "upstream max stream duration reached",
    "OM": "overload manager",
    "DF": "DNS resolution failed",
    "NC": "no cluster",
}
KINDS = {
    "5xx": "HTTP 5xx",
    "grpc": "gRPC non-OK",
    "no response": "no response",
    "failure": "failed (proxy's verdict)",
    "4xx": "HTTP 4xx (not errors)",
}
# each kind's sparkline is labelled where the plots' y axis is: seven columns
SHORT = {"5xx": "5xx", "grpc": "gRPC", "no response": "no resp", "failure": "proxy", "4xx": "4xx"}
REPORTERS = {
    "source": "client's proxy",
    "destination": "server's proxy",
    "waypoint": "waypoint",
    "outbound": "client's proxy",
}
PLOT_HEIGHT = 4
LATENCY_HEIGHT = 6  # three quantiles need the rows


def flag_meaning(flag: str) -> str:
    """Envoy writes several flags as one, comma-separated: each in words."""
    return ", ".join(FLAGS.get(f, f"{f} (see Envoy's response flags)") for f in flag.split(","))


def _heading(text: str, note: str = "") -> Text:
    out = Text(shown(text), style="bold")
    if note:
        out.append(f"  {note}", style="dim")
    return out


class Laid:
    """A Rich `Table` of text cells, drawn as Rich draws it but as lines laid out from its
    cells' widths: Rich renders each cell through its padding and wrapping and measures
    every cell first, 0.1 s for a node's 40 calls at 20,000 services, which Textual does
    twice as a detail screen opens (its height, then its lines; issue 17). A table wider
    than the width has its columns shrunk as Rich shrinks them (the widest first) and the
    cells that no longer fit wrapped as Rich wraps them: a namespace's troubles at 2,000
    services, their calls named in full, took 9 ms through Rich. A table of a shape other
    than a plain one (no box, no collapsed padding, no column or row style, cells at the
    top of their rows, nothing highlighted, no cell left to overflow uncut), or shrunk
    below its padding, is drawn by Rich itself."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._rows = _plain_rows(table)
        self._lines = None if self._rows is None else _lines(table, self._rows, None)
        self._width = max((ln.cell_len for ln in self._lines or ()), default=0)  # unshrunk
        self._shrunk: tuple[int, list[Text] | None] | None = None  # (width, its lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines, rows, width = self._lines, self._rows, options.max_width
        if rows is not None and self._width > width:
            if self._shrunk is None or self._shrunk[0] != width:
                self._shrunk = (width, _lines(self.table, rows, (console, width)))
            lines = self._shrunk[1]
        if lines is None:
            yield self.table
            return
        for line in lines:  # a header's style under its cells' own, as Rich's Table has it
            base = console.get_style(line.style) if line.style else None
            yield from Segment.apply_style(line.render(console), base)
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)


def _plain_rows(table: Table) -> list[list[Text]] | None:
    """The table's cells by row, its header first, or None for a table whose drawing
    depends on more than its cells' widths and how they wrap."""
    columns = table.columns
    plain = (
        table.box is None and not table.collapse_padding and not table.show_footer
        and not table.expand and table.width is None and table.min_width is None
        and not table.row_styles
        and table.title is None and table.caption is None and not table.show_lines
        and table.style in ("", "none", None) and table.leading == 0
        and not any(r.style for r in table.rows) and not table.highlight
        and all(c.style in ("", None) and c.width is None and c.min_width is None
                and c.max_width is None and c.ratio is None and not c.header_style
                and c.justify in ("left", "right") and c.vertical == "top"
                and not c.highlight and c.overflow != "ignore" for c in columns)
        and table.padding[0] == table.padding[2] == 0
    )  # fmt: skip
    if not plain or not columns or not table.rows:
        return None
    rows: list[list[Text]] = [[] for _ in range(table.row_count + 1)]
    for c in columns:
        cells = [c.header, *c._cells] if table.show_header else [*c._cells]
        for i, cell in enumerate(cells):
            if isinstance(cell, str) and "[" not in cell:
                cell = Text(cell)
            if (
                not isinstance(cell, Text)
                or cell.plain != cell.plain.strip()
                or ("\n" in cell.plain or "\t" in cell.plain)
                or cell.justify is not None
                or cell.overflow == "ignore"  # Rich cuts it at its cell, wrap does not
            ):
                return None  # markup, a renderable, a cell Rich would trim, wrap or justify
            rows[i].append(cell)
    if not table.show_header:
        rows.pop()
    return rows


def _lines(
    table: Table, rows: list[list[Text]], shrink: tuple[Console, int] | None
) -> list[Text] | None:
    """The table's lines at its cells' widths, or (`shrink`) its columns shrunk to a
    console's width as Rich's Table shrinks them and its cells wrapped in them as Rich's
    Text wraps; None where Rich would shrink a column below its padding."""
    columns = table.columns
    last = len(columns) - 1
    right, left = table.padding[1], table.padding[3]
    pads = [
        (left if i or table.pad_edge else 0, right if i < last or table.pad_edge else 0)
        for i in range(len(columns))
    ]
    lens = [[cell.cell_len for cell in row] for row in rows]
    widest = [max(row[i] for row in lens) for i in range(len(columns))]
    widths: list[int] | None = [w + a + b or 1 for w, (a, b) in zip(widest, pads, strict=True)]
    if shrink is not None:
        widths = _shrunk(widest, pads, [not c.no_wrap for c in columns], shrink[1])
    if widths is None:
        return None
    lines = []
    for n, row in enumerate(rows):
        header = table.show_header and n == 0
        # each cell's lines: the text, and the spaces before and after it in its style
        cells: list[list[tuple[Text, int, int]]] = []
        for cell, size, width, column, (a, b) in zip(
            row, lens[n], widths, columns, pads, strict=True
        ):
            inner = width - a - b
            if size <= inner:  # justified in the cell's own style, as Rich does
                fill = inner - size
                cells.append([(cell, fill, 0) if column.justify == "right" else (cell, 0, fill)])
            else:
                assert shrink is not None  # at their own widths, every cell fits
                overflow = cell.overflow or column.overflow
                no_wrap = cell.no_wrap if cell.no_wrap is not None else column.no_wrap
                wrapped = cell.wrap(shrink[0], inner, justify=column.justify,
                                    overflow=overflow, no_wrap=no_wrap)  # fmt: skip
                cells.append([(part, 0, 0) for part in wrapped])
        height = max(len(parts) for parts in cells)
        for k in range(height):
            # as Text.append_text joins them: a cell's style over it, then its spans
            plain: list[str] = []
            spans: list[Span] = []
            offset = 0
            for parts, width, (a, b) in zip(cells, widths, pads, strict=True):
                # a header's cells at the foot of its lines, the others at the top
                at = k - (height - len(parts)) if header else k
                if not 0 <= at < len(parts):
                    plain.append(" " * width)
                    offset += width
                    continue
                text, before, after = parts[at]
                start = offset + a
                end = start + before + len(text.plain) + after
                if text.style:
                    spans.append(Span(start, end, text.style))
                shift = start + before
                spans.extend(  # a span past its cell ends with it, as in Rich
                    Span(x + shift, min(y + shift, end), style)
                    for x, y, style in text.spans
                    if x + shift < end
                )
                plain.append(f"{' ' * (a + before)}{text.plain}{' ' * (after + b)}")
                offset = end + b
            style = table.header_style or "" if header else ""
            lines.append(Text("".join(plain), style=style, end="", spans=spans))
    return lines


def _shrunk(
    widest: list[int], pads: list[tuple[int, int]], wrapable: list[bool], width: int
) -> list[int] | None:
    """Each column's width with its padding, shrunk to `width` as Rich's Table shrinks
    its columns (`Table._calculate_column_widths`): the widest wrapable ones first, then
    all evenly; None where one is left no room inside its padding."""
    widths = [min(w + a + b, width) or 1 for w, (a, b) in zip(widest, pads, strict=True)]
    if sum(widths) > width:
        widths = Table._collapse_widths(widths, wrapable, width)
        if sum(widths) > width:
            widths = ratio_reduce(sum(widths) - width, [1] * len(widths), widths, widths)
    if any(w - a - b < 1 for w, (a, b) in zip(widths, pads, strict=True)):
        return None
    return [min(w + a + b, c) for w, (a, b), c in zip(widest, pads, widths, strict=True)]


def now_table(s: EdgeStats) -> Table:
    """An edge's figures in the last snapshot."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    if s.protocol is Protocol.TCP:
        t.add_row("protocol", "tcp")
        t.add_row("connections", f"{s.tcp_connections_per_s:.2f}/s")
        t.add_row("bytes out / back", f"{units.bytes_per_s(s.tcp_request_bps)} / "
                  f"{units.bytes_per_s(s.tcp_response_bps)}")  # fmt: skip
    else:
        t.add_row("protocol", " + ".join(p.value for p in s.carried))
        t.add_row("requests", units.rps(s.rps))
        t.add_row("errors", units.percent(s.error_rate))
        t.add_row(
            "4xx", f"{units.percent(s.client_error_rate)} (the callers' mistakes, not errors)"
        )
        t.add_row(
            "latency",
            f"p50 {units.ms(s.p50_ms)}  p95 {units.ms(s.p95_ms)}  p99 {units.ms(s.p99_ms)}",
        )
    t.add_row("mTLS", units.percent(s.mtls))
    return t


def _last(series: Sequence[float | None]) -> float | None:
    return next((v for v in reversed(series) if v is not None), None)


def change_words(c: WeightChange) -> str:
    """A weight change as the legend says it: `▲ 10:02 reviews 90/10 → 50/50 (console)`
    (the local time; the route's name; the weights before and after, in the log's
    order of the destinations)."""
    at = datetime.fromtimestamp(c.time).strftime("%H:%M")
    name = c.resource.rpartition("/")[2] or c.resource
    before = "/".join(str(w) for _, w in c.before)
    after = "/".join(str(w) for _, w in c.after)
    return shown(f"{plot.MARK} {at} {name} {before} → {after} ({c.by})")


def config_words(c: ConfigChange) -> str:
    """A change the control plane says was made, as the legend says it:
    `◆ 10:02 VirtualService reviews generation 4 (kubectl-edit)`."""
    at = datetime.fromtimestamp(c.time).strftime("%H:%M")
    generation = f" generation {c.generation}" if c.generation else ""
    by = f" ({c.manager})" if c.manager else ""
    return shown(f"{plot.CONFIG_MARK} {at} {c.kind} {c.name}{generation}{by}")


def history_view(
    h: History,
    width: int,
    tcp: bool = False,
    changes: Sequence[WeightChange] = (),
    unread: str = "",
    config: Sequence[ConfigChange] = (),
    config_unread: str = "",
    end: str = "now",
) -> Group:
    """Requests, errors (with each kind on its own line) and latency over the window,
    each weight change of `changes` marked `▲` under them at its time, and each change
    the control plane says was made (`config`) `◆`, each said once under the requests;
    `unread`, `config_unread`: why the audit log, or a control plane, could not say;
    `end`: what the time rulers call the window's end (`now`, or a moment past)."""
    parts: list[RenderableType] = []
    marks: list[plot.Mark] = [
        *((c.time, plot.CONFIG_MARK) for c in config),
        *(float(c.time) for c in changes),
    ]
    if not known(h.rps):
        why = ": a TCP edge's bytes and connections are under Now" if tcp else ""
        window = units.duration(h.window_s)
        return Group(Text(f"no HTTP or gRPC requests in the last {window}{why}", style="dim"))

    def now_and_peak(series: Sequence[float | None], fmt: plot.Format) -> str:
        last, values = _last(series), known(series)
        shown = fmt(last) if last is not None else "-"
        return f"{shown} at the end · peak {fmt(max(values))}" if values else "no data"

    parts.append(_heading("Requests", now_and_peak(h.rps, units.rps)))
    requests = plot.plot(h.rps, h.times, width, PLOT_HEIGHT, units.rps, marks=marks, end=end)
    parts.extend(Text(line) for line in requests)
    pad = " " * plot.AXIS_WIDTH
    said = sorted([*((c.time, change_words(c)) for c in changes),
                   *((c.time, config_words(c)) for c in config)])  # fmt: skip
    parts.extend(Text(pad + words, style="dim") for _, words in said)
    if unread:
        parts.append(Text(pad + shown(f"no change markers: {unread}"), style="dim"))
    if config_unread:
        parts.append(Text(pad + shown(f"no control plane markers: {config_unread}"), style="dim"))
    parts.append(_heading("Errors", now_and_peak(h.error_rate, units.percent)))
    errors = plot.plot(
        h.error_rate, h.times, width, PLOT_HEIGHT, units.percent, least_top=0.01, marks=marks,
        end=end,
    )  # fmt: skip
    # Each kind's sparkline under the error plot and its time ruler: the plot's columns,
    # the same time in each, all on one scale (the highest rate of any kind).
    order = list(KINDS)
    kinds = sorted(h.errors.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    peak = max((v for _, s in kinds for v in s if v is not None), default=0.0)
    strips = [plot.axis_sparkline(SHORT.get(k, k), s, width, peak or None) for k, s in kinds]
    parts.extend(Text(line) for line in [*errors, *strips])
    if kinds:
        legend = Text(" " * plot.AXIS_WIDTH + "over the window: ", style="dim")
        for i, (kind, _) in enumerate(kinds):
            rate = units.rps(h.summary.errors.get(kind, 0.0))
            legend.append(f"{' · ' if i else ''}{KINDS.get(kind, kind)} {rate}", style="dim")
        parts.append(legend)
    parts.append(
        _heading(
            "Latency",
            f"p50 {units.ms(_last(h.p50_ms))}  p95 {units.ms(_last(h.p95_ms))}  "
            f"p99 {units.ms(_last(h.p99_ms))} at the end   "
            f"{plot.BAND[0]} p50 {plot.BAND[1]} p95 {plot.BAND[2]} p99",
        )
    )
    parts.extend(
        Text(line)
        for line in plot.latency_plot(
            h.p50_ms, h.p95_ms, h.p99_ms, h.times, width, LATENCY_HEIGHT, marks=marks, end=end
        )
    )
    return Group(*parts)


def window_view(s: WindowSummary, window_s: float) -> Group:
    """The window summed up: figures, codes with their share, flags in words, mTLS and
    the identities on both sides, and what each proxy counted where they differ."""
    w = units.duration(window_s)
    if not s.rps:  # nothing answered in the window: the history already says so
        return Group()
    parts: list[RenderableType] = [_heading(f"Over the last {w}")]
    figures = Table.grid(padding=(0, 2))
    figures.add_column(style="bold")
    figures.add_column()
    figures.add_row("requests", units.rps(s.rps))
    figures.add_row("errors", "-" if s.error_rate is None else units.percent(s.error_rate))
    client = s.client_error_rate
    figures.add_row("4xx", "-" if client is None else units.percent(client))
    figures.add_row(
        "latency", f"p50 {units.ms(s.p50_ms)}  p95 {units.ms(s.p95_ms)}  p99 {units.ms(s.p99_ms)}"
    )
    figures.add_row("mTLS", "unknown" if s.mtls is None else units.percent(s.mtls))
    for side, names in (("client identity", s.source_principals),
                        ("server identity", s.destination_principals)):  # fmt: skip
        if names:
            figures.add_row(side, Text("\n".join(shown(n) for n in names)))  # text, not markup
    parts.append(figures)

    if s.response_codes or s.grpc_statuses:
        codes = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
        for title, justify in (("code", "left"), ("rps", "right"), ("share", "right")):
            codes.add_column(title, justify=justify)  # type: ignore[arg-type]
        total = sum(s.response_codes.values()) or 1.0
        for code, rps in sorted(s.response_codes.items(), key=lambda kv: -kv[1]):
            codes.add_row(Text(shown(code)), units.rps(rps), units.percent(rps / total))
        for status, rps in sorted(s.grpc_statuses.items(), key=lambda kv: -kv[1]):
            codes.add_row(Text(shown(f"gRPC {status}")), units.rps(rps), units.percent(rps / total))
        parts += [Text(""), codes]
    if s.response_flags:
        flags = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
        flags.add_column("flag")
        flags.add_column("rps", justify="right")
        flags.add_column("meaning")
        for flag, rps in sorted(s.response_flags.items(), key=lambda kv: -kv[1]):
            flags.add_row(Text(shown(flag)), units.rps(rps), Text(shown(flag_meaning(flag))))
        parts += [Text(""), flags]
    lost = reporters_view(s)
    if lost is not None:
        parts += [Text(""), lost]
    return Group(*parts)


def reporters_view(s: WindowSummary) -> Table | None:
    """Both proxies' counts side by side, when they disagree: requests the client's proxy
    sent that the server's never saw (connection failures, resets before the server)."""
    sent, got = s.by_reporter.get("source"), s.by_reporter.get("destination")
    if sent is None or got is None or abs(sent - got) <= 0.005 * max(sent, got):
        return None
    t = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    t.add_column("the proxies disagree")
    t.add_column("rps", justify="right")
    # two decimals, whatever the rate: the difference is the point
    t.add_row(REPORTERS["source"], f"{sent:.2f}rps")
    t.add_row(REPORTERS["destination"], f"{got:.2f}rps")
    gap = sent - got
    t.add_row(
        "never arrived" if gap > 0 else "not seen by the client",
        f"{abs(gap):.2f}rps ({abs(gap) / max(sent, got):.1%})",
    )
    return t


def canary_view(app: str, canary: Sequence[tuple[str, History]], current: str = "") -> Table:
    """An app's versions side by side over the same window, each against the version
    taking the most traffic (the stable one): what decides whether to shift more."""
    t = Table(
        title=Text(shown(f"{app}: versions side by side"), style="bold"),  # Text: no title_style
        title_justify="left",
        box=None,
        padding=(0, 2),
        show_edge=False,
        header_style="bold",
    )
    for title in ("version", "rps", "share", "errors", "p50", "p99", "against the stable one"):
        t.add_column(title, justify="left" if title[0] in "va" else "right")
    total = sum(h.summary.rps for _, h in canary) or 1.0
    stable = max(canary, key=lambda vh: vh[1].summary.rps)[1].summary if canary else None
    for version, h in canary:
        s = h.summary
        name = Text(shown(f"{version} ◂" if version == current else version))
        if not s.rps:
            t.add_row(name, "0rps", "0%", "-", "-", "-", "no traffic")
            continue
        t.add_row(
            name,
            units.rps(s.rps),
            f"{s.rps / total:.0%}",
            "-" if s.error_rate is None else units.percent(s.error_rate),
            units.ms(s.p50_ms),
            units.ms(s.p99_ms),
            _against(s, stable),
        )
    return t


def _against(s: WindowSummary, stable: WindowSummary | None) -> str:
    if stable is None or s is stable:
        return "stable (most traffic)"
    words = []
    if s.error_rate is not None and stable.error_rate is not None:
        diff = (s.error_rate - stable.error_rate) * 100
        words.append(f"errors {diff:+.2f} points")
    if s.p99_ms and stable.p99_ms:
        words.append(f"p99 x{s.p99_ms / stable.p99_ms:.1f}")
    return ", ".join(words) or "-"


def routes_view(routes: Sequence[Route], version: str = "") -> Table:
    """The routing rules that send traffic to a service, in order, with the weights."""
    t = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    for title in ("route", "rule", "matches", "destinations"):
        t.add_column(title)
    for route in routes:
        for i, rule in enumerate(route.rules):
            to = "  ".join(
                f"{d.subset or d.host} {d.weight}"
                + (" ◂" if version and d.subset == version else "")
                for d in rule.destinations
            )
            t.add_row(  # as text: a match such as `uri regex ^/api/[a-z]+` is not markup
                Text(shown(f"{route.kind} {route.namespace}/{route.name}" if i == 0 else "")),
                Text(shown(rule.name or str(i + 1))),
                Text(shown(" and ".join(rule.matches) or "everything else")),
                Text(shown(to)),
            )
    return t


def edge_report(
    edge: Edge | None,
    about: Subject,
    detail: Detail,
    t: Thresholds,
    console: Console | None = None,
) -> None:
    """`meshtop edge`: the edge screen's panels, printed once. Colour only on a terminal
    (and never with NO_COLOR); plots as wide as the terminal, 100 columns in a pipe."""
    out = console or Console(width=None if sys.stdout.isatty() else 100, highlight=False)
    h = detail.history
    out.print(Text(shown(f"{about.title}   window {units.duration(h.window_s)}"), style="bold"))
    tcp = edge is not None and edge.stats.protocol is Protocol.TCP
    if edge is not None:
        out.print(explain(edge.stats, t))
        out.print(Text("\nNow", style="bold"))
        out.print(now_table(edge.stats))
    else:
        out.print(Text("no traffic in the last snapshot", style="dim"))
    out.print()
    out.print(history_view(h, min(out.width, 140), tcp, detail.changes, detail.unread,
                           detail.config, detail.config_unread))  # fmt: skip
    out.print()
    out.print(window_view(h.summary, h.window_s))
    if detail.canary:
        current = next((v for v, ids in about.versions if set(ids) == set(about.destinations)), "")
        out.print()
        out.print(canary_view(about.app, detail.canary, current))
