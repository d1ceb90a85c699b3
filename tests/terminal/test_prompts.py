"""The prompts, as the operator sees them: what is typed shows as it is typed, with the
cursor after it, at every size and on every screen that has a prompt."""

from __future__ import annotations

import time

import pytest

from tests.terminal.term import Terminal

SIZES = [(80, 24), (160, 48)]


def cursor_after(t: Terminal, typed: str) -> None:
    """Until the cell after `typed` on its row is drawn as the cursor (colours swapped);
    a blinking cursor is off half the time, so this waits for the screen to show it."""

    def shown() -> bool:
        at = t.find(typed, last=True)  # the prompt's row, not the same text above it
        if at is None:
            return False
        x, y = at[0] + len(typed), at[1]
        after, before = t.cell(x, y), t.cell(x - 1, y)
        return bool(after.reverse) or (after.bg, after.fg) != (before.bg, before.fg)

    t.wait(f"the cursor after {typed!r}", shown)


@pytest.mark.parametrize(("cols", "rows"), SIZES)
def test_filter_shows_what_is_typed_as_it_is_typed(cols: int, rows: int) -> None:
    with Terminal(["demo"], cols=cols, rows=rows) as t:
        t.ready()
        t.press("/")
        t.type("rev", after="/")  # each letter waited for on screen before the next
        assert t.row_of("/rev") is not None, t.text()
        assert t.row_of("/rev") < rows - 1, "the prompt is above the footer, not under it"
        cursor_after(t, "/rev")
        t.press("enter")
        t.wait("the prompt closed", lambda: not t.lines()[-2].strip().startswith("/rev"))
        t.wait("the filter in the status line", lambda: "rev" in t.lines()[1])


@pytest.mark.parametrize(("cols", "rows"), SIZES)
def test_command_prompt_shows_undo_as_it_is_typed(cols: int, rows: int) -> None:
    with Terminal(["demo"], cols=cols, rows=rows) as t:
        t.ready()
        t.press(":")
        t.type("undo", after=":")
        assert t.row_of(":undo") is not None
        cursor_after(t, ":undo")
        t.press("enter")
        t.wait_for("nothing to undo")
        t.wait_gone(":undo")  # the prompt closed


def test_keys_typed_right_after_the_slash_all_reach_the_prompt() -> None:
    """A fast typist, or a paste: the letter right after `/` is the filter's, not the
    graph's (`r` would refresh)."""
    with Terminal(["demo"]) as t:
        t.ready()
        t.press("/rev")
        t.wait_for("/rev")


def test_keys_read_at_once_behind_enter_go_to_the_graph() -> None:
    """`:zoom compact⏎p` read in one piece (typed fast, pasted, one packet over SSH):
    Textual acts on enter once the key has gone round to the app, and the `p` behind it
    went into the prompt first (`zoom compactp`: an error, and no pause)."""
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.press(":")
        t.type("zoom compact", after=":")
        t.proc.write(b"\rp")
        t.wait("paused", lambda: "PAUSED" in t.lines()[1])
        assert "zoom compact (fit)" not in t.lines()[1], t.text()  # the zoom chosen
        assert "takes one of" not in t.text(), t.text()


def test_keys_read_at_once_behind_backspace_and_left_keep_their_order() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.press("/")
        t.type("rex", after="/")
        t.proc.write(b"\x7fv")  # backspace, then v: `rev`, not `rex` (v in, then out)
        t.wait_for("/rev")
        t.proc.write(b"\x1b[Dq")  # left, then q: before the v
        t.wait_for("/reqv")


def test_the_prompt_opens_and_closes_without_the_graph_sent_again() -> None:
    """The prompt shows over the graph's last row, and the focus moving to it and back
    repaints only the widgets it moved between: the whole screen was sent again each
    way (about 60 kB here; 32-37 kB and 100-150 ms a key at 2,000 services)."""
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.paused()  # no refresh draws meanwhile
        opened = t.written(lambda: (t.press("/"), t.wait_for("filter: names")))
        closed = t.written(lambda: (t.press("esc"), t.wait_gone("filter: names")))
        assert opened < 10_000 and closed < 10_000, (opened, closed)
        assert "istio-ingressgateway" in t.text()  # the graph is still there


@pytest.mark.parametrize(("cols", "rows"), SIZES)
def test_the_prompt_leaves_the_notice_on_screen(cols: int, rows: int) -> None:
    """The prompt is drawn over the graph, not over the line said under it: the error a
    command made is still there as it is typed again."""
    with Terminal(["demo"], cols=cols, rows=rows) as t:
        t.ready()
        t.command("undo")
        t.wait_for("nothing to undo")
        t.press(":")
        t.wait_for("command: ns NAME|all")
        prompt, said = t.row_of("command: ns NAME|all"), t.row_of("nothing to undo")
        assert prompt is not None and said is not None, t.text()
        assert prompt < said, t.text()  # above it, both whole
        assert t.lines()[-1].strip().startswith("enter apply"), t.text()


def test_window_prompt_in_the_detail_screen_is_visible() -> None:
    with Terminal(["demo"], cols=100, rows=30) as t:
        t.ready()
        t.press("enter")  # the selected node's detail
        t.wait_for("window 15m")
        t.press(":")
        t.wait_for("up to 30d")  # the prompt's placeholder: it is on screen
        t.type("window 2h")
        cursor_after(t, "window 2h")
        t.press("enter")
        t.wait_for("window 2h")
        t.wait_gone("up to 30d")


def test_operation_prompt_in_the_trace_list_is_visible() -> None:
    with Terminal(["demo"], cols=120, rows=40) as t:
        t.ready()
        t.press("enter")
        t.wait_for("window 15m")
        t.press("t")
        t.wait_for_re(r"\d+ traces?")
        t.press("/")
        t.wait_for("operation (empty: any)")
        t.type("GET")
        cursor_after(t, "GET")


def test_esc_then_a_key_90_ms_later_are_two_keys() -> None:
    """esc stands alone once the escape delay (25 ms) has passed with nothing after it:
    Textual's input thread looked only every 100 ms, so esc took 100 ms to act and a key
    typed within that time made alt+key of it (here: the prompt stayed, `j` was lost)."""
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.wait_for("▸ istio-ingressgateway")
        t.press("/")
        t.type("x", after="/")
        t.press("esc")
        time.sleep(0.09)
        t.press("j")
        t.wait("j moved the selection", lambda: "▸ unknown" in t.lines()[1])
        assert "/x" not in t.text(), t.text()
