"""The span tree behind the waterfall: order, folding, orphans, repeated ids and cycles
that must not crash, clock skew, the critical path, bars that never vanish, and a tree of
10,000 spans built in linear time."""

from __future__ import annotations

import time

from meshtop.model import Span, Trace
from meshtop.waterfall import Tree, bar, text, ticks


def _span(i: str, parent: str | None, start: int, duration: int, error: bool = False) -> Span:
    return Span(i, parent, "svc", f"op-{i}", start, duration, error)


def test_children_by_start_and_folding() -> None:
    trace = Trace("t", (
        _span("a", None, 0, 100), _span("c", "a", 50, 40), _span("b", "a", 10, 30),
        _span("d", "b", 15, 10),
    ))  # fmt: skip
    tree = Tree(trace)
    assert [(r.span.span_id, r.depth) for r in tree.rows()] == [
        ("a", 0),
        ("b", 1),
        ("d", 2),
        ("c", 1),
    ]
    folded = tree.rows(collapsed={"b"})
    assert [r.span.span_id for r in folded] == ["a", "b", "c"] and folded[1].collapsed


def test_missing_parents_repeated_ids_and_cycles_are_shown_not_fatal() -> None:
    trace = Trace("t", (
        _span("a", None, 0, 100), _span("x", "gone", 5, 10),  # parent not in the trace
        _span("a", None, 20, 5),  # the same id again
        _span("p", "q", 30, 5), _span("q", "p", 31, 5),  # a cycle
    ))  # fmt: skip
    tree = Tree(trace)
    rows = tree.rows()
    assert len(rows) == 5
    assert {r.span.span_id for r in rows if r.orphan} >= {"x"}
    assert {r.span.span_id for r in rows} == {"a", "x", "p", "q"}


def test_a_child_whose_clock_is_behind_is_moved_inside_its_parent() -> None:
    other = Span("b", "a", "other", "op-b", 900, 50)  # another service, another clock
    trace = Trace("t", (_span("a", None, 1000, 100), other, _span("c", "b", 905, 10)))
    rows = {r.span.span_id: r for r in Tree(trace).rows()}
    assert rows["b"].start_us == 1000 and rows["b"].skew_us == 100
    assert rows["c"].start_us == 1005  # its subtree moves with it


def test_one_clock_or_a_message_is_shown_as_recorded() -> None:
    same = Trace("t", (_span("a", None, 1000, 100), _span("b", "a", 1090, 50)))  # outlives a
    assert {r.span.span_id: r.skew_us for r in Tree(same).rows()} == {"a": 0, "b": 0}
    produced = Span("a", None, "shop", "publish", 1000, 10, kind="producer")
    consumed = Span("b", "a", "mail", "consume", 2000, 10, kind="consumer")
    rows = Tree(Trace("t", (produced, consumed))).rows()
    assert [r.start_us for r in rows] == [1000, 2000]


def test_many_spans_with_one_id_are_each_shown_quickly() -> None:
    trace = Trace("t", tuple(_span("same", None, i, 1) for i in range(10_000)))
    started = time.perf_counter()
    assert len(Tree(trace).rows()) == 10_000
    assert time.perf_counter() - started < 2  # was quadratic: seconds for this


def test_critical_path_is_what_the_parent_waited_on() -> None:
    # a waits for b then c (sequential); d runs beside b and finishes early
    trace = Trace("t", (
        _span("a", None, 0, 100), _span("b", "a", 0, 40), _span("d", "a", 5, 10),
        _span("c", "a", 45, 50),
    ))  # fmt: skip
    critical = {r.span.span_id for r in Tree(trace).rows() if r.critical}
    assert critical == {"a", "b", "c"}


def test_a_short_span_in_a_long_trace_keeps_a_column() -> None:
    assert bar(500_000, 1, 0, 1_000_000, 80) == (40, 41)
    assert bar(0, 1_000_000, 0, 1_000_000, 80) == (0, 80)
    assert bar(2_000_000, 10, 0, 1_000_000, 80) is None  # outside the zoomed range


def test_ten_thousand_spans_build_in_linear_time() -> None:
    def trace(n: int) -> Trace:
        spans = [_span("0", None, 0, n * 10)]
        spans += [_span(str(i), str((i - 1) // 3), i, 5) for i in range(1, n)]
        return Trace("big", tuple(spans))

    def took(n: int) -> float:
        t = trace(n)
        started = time.perf_counter()
        tree = Tree(t)
        rows = tree.rows()
        assert len(rows) == n
        return time.perf_counter() - started

    small, big = min(took(1000) for _ in range(3)), min(took(10_000) for _ in range(3))
    assert big < 30 * small  # ten times the spans: about ten times the time, never a hundred


def test_text_waterfall_marks_errors_and_the_critical_path() -> None:
    trace = Trace("t", (_span("a", None, 0, 100), _span("b", "a", 10, 50, error=True)))
    lines = text(Tree(trace), 100)
    assert lines[1].startswith("svc op-a") and "*" in lines[1]
    assert ("!" in lines[2] and "50µs" in lines[2]) or "0.1ms" in lines[2] or "!" in lines[2]


def test_the_rulers_ticks_read_distinct_at_every_zoom() -> None:
    """Zoomed to 2ms around 50ms of a 100ms trace the ruler read `49ms 50ms 50ms 51ms`."""
    for t0, t1 in ((0, 100_000), (49_000, 51_000), (50_000, 50_020), (50_000, 50_003),
                   (0, 3_000_000), (1_234_500, 1_234_510)):  # fmt: skip
        for width in (40, 76, 115):
            marks = ticks(t0, t1, 0, width)
            labels = [label for _, label in marks]
            assert len(marks) >= 2, (t0, t1, width)
            assert len(set(labels)) == len(labels), (t0, t1, width, labels)
            columns = [x for x, _ in marks]
            assert columns == sorted(columns) and columns[0] >= 0 and columns[-1] < width
    assert [label for _, label in ticks(49_000, 51_000, 0, 76)] == [
        "49.0ms", "49.5ms", "50.0ms", "50.5ms", "51.0ms"]  # fmt: skip
