"""The screens beyond the graph, in a real terminal (issue 14): `?` says the keys of the
screen it is pressed on; a failed span's `!` sits on its own row and level of the
waterfall; `↑` `↓` select in the shift dialog; the error kinds' sparklines are on the
plots' time axis, column for column."""

from __future__ import annotations

import re
import time
from itertools import pairwise

from .term import Terminal

BLOCKS = set("▁▂▃▄▅▆▇█")
GRAPH_KEYS = "the graph / the edge table / the routes"  # a line of the graph's help only
TREE_WIDTH = 44  # the waterfall's tree column at 120 columns
PAGE_DOWN = "\x1b[6~"  # the key's escape sequence


def _worst_edge(t: Terminal) -> None:
    """The edge table lists the worst edge first, the failing productpage → reviews v3:
    `enter` opens its detail, whose history shows HTTP 5xx."""
    t.ready()
    t.press("2")
    t.wait_for("SOURCE", "DESTINATION")
    t.press("enter")
    t.wait_for("productpage v1 → reviews v3", "Requests", "Latency")


def _waterfall_with_errors(t: Terminal) -> None:
    """The worst edge's traces with an error, and the first of them as a waterfall."""
    _worst_edge(t)
    t.press("t")
    t.wait_for("slowest first")
    t.press("e")
    # a sample of 20 traces of a call failing ~15% of the time has none that failed about
    # once in 25 (CI met one): `r` asks for a new sample, the filter kept
    for _ in range(5):
        t.wait(
            "the traces listed, or none matching",
            lambda: _first_trace(t).startswith(" !") or " 0 of " in t.text(),
        )
        if _first_trace(t).startswith(" !"):
            break
        t.press("r")
        t.wait_gone(" 0 of ")
    t.wait("the first trace listed to have an error", lambda: _first_trace(t).startswith(" !"))
    t.press("enter")
    t.wait_for_re(r"\d+ spans, \d+ services, .*\d+ failed")
    t.wait_for("tag ")  # the first span's detail: the waterfall is drawn


def _first_trace(t: Terminal) -> str:
    """The trace list's first row, under its header ("" while there is none)."""
    lines = t.lines()
    head = next((i for i, line in enumerate(lines) if "duration" in line and "spans" in line), None)
    return lines[head + 1] if head is not None and head + 1 < len(lines) else ""


def _shift_dialog(t: Terminal) -> None:
    """The routes tab, its second route (reviews: v1 70, v2 20, v3 10), and `w`."""
    t.ready()
    t.press("3")
    t.wait_for("VirtualService bookinfo/reviews")
    t.press("down")
    t.press("w")
    t.wait_for("Shift VirtualService bookinfo/reviews", "▸ v1", "esc cancel")


# -- the key line at the foot of every screen --------------------------------------------


def test_a_detail_and_the_trace_list_show_their_keys_in_whole_pairs_at_80_columns() -> None:
    """The graph's key line on the other screens too (Textual's Footer, a widget per key,
    cut the last key mid-word at 80 columns, and was slower to open): whole `key what`
    pairs, and while the prompt is open, only what ends it."""
    with Terminal(["demo"], cols=80, rows=24) as t:
        t.ready()
        t.press("enter")
        t.wait_for("esc back")
        assert t.lines()[-1].strip() == "esc back  : command  r reload  t traces  ? help"
        t.press(":")
        t.wait("the prompt's keys", lambda: t.lines()[-1].strip() == "enter apply  esc cancel")
        t.press("esc")
        t.wait("the detail's keys again", lambda: t.lines()[-1].startswith(" esc back"))
        t.press("t")
        t.wait_for("e errors only")
        last = t.lines()[-1].rstrip()
        assert last.startswith(" esc back") and last.endswith("? help") and len(last) <= 80


def test_a_namespaces_detail_names_its_members_once_and_says_what_is_wrong_at_80x24() -> None:
    """A namespace's members by name, its cluster and namespace said once before them: each
    member's whole id took a line of its own at 80 columns, and a namespace's twenty
    pushed the line that says what is wrong in it off the first screen."""
    with Terminal(["demo", "--services", "200"], cols=80, rows=24) as t:
        t.ready()
        # a namespace of 40-odd members: `j` from the gateway's, past the unknown caller
        catalog = re.compile(r"▸ catalog \(all\)")
        for _ in range(8):
            if catalog.search(t.lines()[1]):
                break
            t.press("j")
            t.wait("a namespace's box selected", lambda: "(all)" in t.lines()[1] or
                   "▸ unknown" in t.lines()[1])  # fmt: skip
            time.sleep(0.3)  # the key's own frame, not a refresh's, read
        t.wait_for_re(catalog.pattern)
        t.press("enter")
        t.wait_for("esc back", "its worst")
        lines = t.lines()
        assert re.match(r" Kubernetes/catalog · workload · \S+, \S+,", lines[1]), lines[1]
        # what is wrong: its worst call, or its worst member where a call inside decides it
        why = next((i for i, x in enumerate(lines) if re.search(r"its worst", x)), None)
        assert why is not None and why <= 8, t.text()  # twenty names in a few lines
        listed = " ".join(lines[1:why])
        assert listed.count("Kubernetes/") == 1 and listed.rstrip().endswith("more"), listed


# -- `?`: the keys of the screen it is pressed on ---------------------------------------


def test_help_on_the_graph_lists_the_graphs_keys() -> None:
    """The graph's own keys, the zoom among them."""
    with Terminal(["demo"], cols=120, rows=40) as t:
        t.ready()
        t.press("?")
        t.wait_for(GRAPH_KEYS, "move between nodes")
        t.press(PAGE_DOWN)  # the help is longer than 40 rows
        t.wait_for("+ / - / z")  # the zoom keys are new
        t.press("?")
        t.wait_gone(GRAPH_KEYS)


def test_help_in_a_detail_lists_the_detail_keys() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        _worst_edge(t)
        t.press("?")
        t.wait_for("Keys: an edge's or a node's detail", ":window 2h", "fetch again",
                   "window 5m, 15m, 1h, 6h, 1d, 7d", "esc, q", "back to the graph")  # fmt: skip
        assert GRAPH_KEYS not in t.text()
        t.press("esc")
        t.wait_gone("Keys: an edge's or a node's detail")
        t.wait_for("productpage v1 → reviews v3")


def test_help_in_the_trace_list_lists_its_keys() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        _worst_edge(t)
        t.press("t")
        t.wait_for("slowest first")
        t.press("?")
        t.wait_for("Keys: the trace list", "only the traces with an error",
                   "slower than 50ms", "with an operation", "order by start",
                   "open the trace as a waterfall", "back to the detail")  # fmt: skip
        text = t.text()
        assert GRAPH_KEYS not in text and "fetch again" not in text


def test_help_in_the_waterfall_lists_its_keys() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        _waterfall_with_errors(t)
        t.press("?")
        t.wait_for("Keys: the waterfall", "zoom to the selected span's time",
                   "fold or unfold", "back to the list")  # fmt: skip
        text = t.text()
        assert GRAPH_KEYS not in text and "only the traces with an error" not in text


def test_help_in_the_shift_dialog_lists_its_keys() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        _shift_dialog(t)
        t.press("?")
        t.wait_for("Keys: the shift dialog", "↑ ↓ ← →", "select a destination",
                   "promote", "review the change")  # fmt: skip
        assert GRAPH_KEYS not in t.text()
        t.press("esc")
        t.wait_gone("Keys: the shift dialog")
        t.wait_for("Shift VirtualService bookinfo/reviews")


# -- the waterfall: a failed span's `!` on its own level --------------------------------


def _name_column(tree: str) -> int:
    """Where the span's own text (its service) starts, after the marks."""
    return next(i for i, c in enumerate(tree) if c not in " ▾▸!⤷")


def test_a_failed_spans_mark_sits_at_its_own_level() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        _waterfall_with_errors(t)
        lines = t.lines()
        top = next(i for i, line in enumerate(lines) if " trace " in line[:TREE_WIDTH])
        rows = []
        for line in lines[top + 1 :]:
            if not line.strip() or line.startswith("─"):
                break
            rows.append(line[:TREE_WIDTH])
        failed = [r for r in rows if "!" in r]
        assert failed, "\n".join(rows)
        for row in rows:
            name = _name_column(row)
            for fold in "▾▸":
                if fold in row:  # the span's name right after its own fold mark
                    assert name == row.index(fold) + 2, f"{row!r} in\n" + "\n".join(rows)
            if "!" in row:  # the mark on the span's level: before its fold mark and name
                assert name - 3 <= row.index("!") < name, row
        for parent, child in pairwise(rows):
            if "▾" in parent:  # an open span's first child, one level in: two columns
                assert _name_column(child) == _name_column(parent) + 2, (
                    f"{parent!r} then {child!r} in\n" + "\n".join(rows)
                )


# -- the shift dialog: ↑ ↓ select -------------------------------------------------------


def test_up_and_down_select_a_destination_in_the_shift_dialog() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        _shift_dialog(t)
        t.wait_for("↑↓")  # said in the dialog's key line
        t.press("down")
        t.wait_for("▸ v2")
        t.press("down")
        t.wait_for("▸ v3")
        t.press("up")
        t.wait_for("▸ v2")
        t.press("]")  # the selected one takes 10 more
        t.wait_for_re(r"▸ v2 .*  30  was 20")


# -- the detail: error kinds on the plots' time axis ------------------------------------


def _blocks(line: str, scrollbar: int = 2) -> set[int]:
    """The columns holding a bar, left of the screen's scrollbar (its thumb is a block too:
    a detail taller than the screen has one)."""
    return {x for x, c in enumerate(line[: len(line) - scrollbar]) if c in BLOCKS}


def test_error_kind_sparklines_share_the_plots_columns() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        _worst_edge(t)
        t.wait_for("5xx")
        lines = t.lines()
        requests = next(i for i, line in enumerate(lines) if line.startswith(" Requests"))
        errors = next(i for i, line in enumerate(lines) if line.startswith(" Errors"))
        latency = next(i for i, line in enumerate(lines) if line.startswith(" Latency"))
        # the Requests plot's lowest row: a bar in every column that has a point
        floor = next(line for line in lines[requests:errors] if "0rps┤" in line)
        plotted = _blocks(floor)
        assert len(plotted) > 60, floor
        kinds = [line for line in lines[errors:latency] if "5xx" in line and _blocks(line)]
        assert kinds, "\n".join(lines[errors:latency])
        for line in kinds:
            assert _blocks(line) == plotted, f"\n{floor}\n{line}"


# -- what opening and closing a screen sends ----------------------------------------------


def test_a_detail_opens_and_closes_sending_each_screen_once() -> None:
    """Esc back sends the main screen once: Textual laid it out and drew it whole again
    after the detail was taken off the stack (42 kB here, 22 kB now). Opening the detail
    draws it once as it opens and again as its history comes (the first frame, then what
    changed), not once more as its scrollbar shows or its focus moves (95 kB, 78 kB now)."""
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.paused()  # no refresh draws meanwhile
        # the detail, and its history drawn
        opened = t.written(lambda: (t.press("enter"), t.wait_for("esc back", "Requests")), 0.8)
        closed = t.written(lambda: (t.press("esc"), t.wait_gone("esc back")), 0.8)
        assert "istio-ingressgateway" in t.text()  # the graph is back
        assert closed < 30_000, closed
        assert opened < 85_000, opened


def test_the_graph_comes_back_at_the_size_the_terminal_took_under_a_detail() -> None:
    """A screen hidden under the detail is not laid out as the terminal is resized (no
    screen shows through an opaque one): it is laid out as it comes back, at the new size.
    The detail's plots are drawn again for its new width (they kept the old one, each
    line wrapped in two, when drawn as the screen heard of the resize, before its body
    was laid out at the new size)."""
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.press("enter")
        t.wait_for("esc back", "Requests")
        t.resize(80, 24)

        def axis_at_80() -> bool:  # a plot's time axis ends at the right edge
            ends = [ln.rstrip() for ln in t.lines() if "-15m" in ln]
            return bool(ends) and all(e.endswith("now") and len(e) <= 80 for e in ends)

        t.wait("the detail at 80 columns", axis_at_80)
        t.press("esc")
        t.wait_gone("esc back")
        t.wait_for("╭─ bookinfo ─", "/ filter")
        box = next(line for line in t.lines() if "╭─ bookinfo ─" in line)
        assert box.rstrip().endswith("╮") and len(box.rstrip()) == 80, t.text()
