"""The screen's thread first (issue 17): a loop behind the screen waits while the screen's
thread has asked for its turn, until it says it is done, and never longer than
`LONGEST_S`; nobody asking, it does not wait at all."""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from meshtop import turns


@pytest.fixture(autouse=True)
def _no_turn() -> Iterator[None]:
    turns.done()
    yield
    turns.done()


def _behind(results: list[float]) -> threading.Thread:
    """A loop behind the screen: how long its `give_way` took."""

    def run() -> None:
        start = time.monotonic()
        turns.give_way()
        results.append(time.monotonic() - start)

    return threading.Thread(target=run)


def test_nobody_asking_a_loop_goes_on_at_once() -> None:
    took: list[float] = []
    loop = _behind(took)
    loop.start()
    loop.join()
    assert took[0] < 0.01


def test_a_loop_waits_until_the_screen_is_done() -> None:
    turns.ask()
    took: list[float] = []
    loop = _behind(took)
    loop.start()
    time.sleep(0.08)
    assert loop.is_alive()  # still waiting: the screen has not said it is done
    turns.done()
    loop.join(1)
    assert 0.07 < took[0] < 0.08 + 0.05


def test_a_loop_never_waits_longer_than_the_longest_turn() -> None:
    turns.ask(seconds=60)
    took: list[float] = []
    loop = _behind(took)
    loop.start()
    loop.join(2)
    assert turns.LONGEST_S - 0.01 < took[0] < turns.LONGEST_S + 0.1


def test_the_screens_own_thread_never_waits_for_itself() -> None:
    turns.ask()
    start = time.monotonic()
    turns.give_way()
    assert time.monotonic() - start < 0.01


def test_a_loop_that_waited_runs_a_while_before_it_waits_again() -> None:
    """Keys held down ask for turn after turn: what is behind the screen still goes on."""
    turns.ask()
    took: list[float] = []

    def run() -> None:
        for _ in range(2):
            start = time.monotonic()
            turns.give_way()
            took.append(time.monotonic() - start)
            turns.ask()  # the next key, at once

    loop = threading.Thread(target=run)
    loop.start()
    time.sleep(0.05)
    turns.done()
    loop.join(2)
    assert took[0] > 0.04  # waited for the first key
    assert took[1] < 0.01  # ran on: it had just waited


def test_a_loop_over_giving_way_has_every_item_and_gives_way_before_each_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ways: list[int] = []
    seen: list[int] = []
    monkeypatch.setattr(turns, "give_way", lambda: ways.append(len(seen)))
    for item in turns.giving_way(range(10), every=4):
        seen.append(item)
    assert seen == list(range(10))
    assert ways == [0, 4, 8]  # before the first item, and every 4 after


@pytest.mark.parametrize("reverse", [False, True])
def test_a_sort_in_turns_is_the_same_list_as_sorted_ties_in_their_order(
    monkeypatch: pytest.MonkeyPatch, reverse: bool
) -> None:
    """Many pieces, few distinct keys (ties across every piece), a key of two parts."""
    monkeypatch.setattr(turns, "PIECE", 7)
    monkeypatch.setattr(turns, "_screen", None)  # this thread is not the screen's here
    rng = random.Random(17)
    for n in (0, 1, 7, 8, 50, 333):
        items = [(rng.randrange(4), rng.choice("ab"), i) for i in range(n)]
        by: Callable[[tuple[int, str, int]], tuple[int, str]] = lambda item: item[:2]  # noqa: E731
        assert turns.sorted_in_turns(iter(items), by, reverse) == sorted(
            items, key=by, reverse=reverse
        )


def _longest_wait(work: Callable[[], object]) -> float:
    """The longest this thread waited for the interpreter's lock, asking for it every
    millisecond as the console's does, while another thread did `work` (begun once the
    thread has started: `start` waits for it, untimed)."""
    go = threading.Event()
    worker = threading.Thread(target=lambda: go.wait() and work())
    waits: list[float] = []
    worker.start()
    go.set()
    while worker.is_alive():
        start = time.perf_counter()
        time.sleep(0.001)
        waits.append(time.perf_counter() - start)
    worker.join()
    return max(waits, default=0.0)


@pytest.fixture
def switch_ms() -> Iterator[None]:
    """The interpreter's switch interval the console sets (1 ms), restored after; and no
    pass of the collector meanwhile, which holds every thread too, not the sort's doing
    (the console holds it off while a refresh is made)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("switch_ms")
def test_a_sort_in_turns_finds_each_key_once_and_lets_other_threads_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread sorting 200,000 items by tuples: the main thread, asking for the lock
    every millisecond as the console's does, never waits a whole sort's time (one
    sorted() holds it throughout: 116-212 ms on a 2-core EPYC, against 12-27 ms in
    turns). The least of three runs in turns: the machine may take the thread off its
    core once in a run, which is not the sort's doing."""
    # the screen's thread, said by an earlier test's thread, long gone, whose
    # identifier the sorting thread may be given again
    monkeypatch.setattr(turns, "_screen", None)
    items = [(i % 97, -i % 89, str(i)) for i in range(200_000)]
    expected = sorted(items, key=lambda i: (i[1], i[0]), reverse=True)
    calls = 0

    def key(item: tuple[int, int, str]) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        return item[1], item[0]

    def longest_wait(sort: Callable[[], list[tuple[int, int, str]]]) -> float:
        got: list[list[tuple[int, int, str]]] = []
        waited = _longest_wait(lambda: got.append(sort()))
        assert got == [expected]
        return waited

    whole = longest_wait(lambda: sorted(items, key=key, reverse=True))
    calls = 0
    in_turns = [longest_wait(lambda: turns.sorted_in_turns(items, key, True))]
    assert calls == len(items)  # each key found once
    in_turns += [longest_wait(lambda: turns.sorted_in_turns(items, key, True)) for _ in "ab"]
    assert min(in_turns) < whole / 2


def test_a_handlers_done_leaves_a_later_asks_turn_alone() -> None:
    """A handler's turn ends once the screen has drawn what it did (`done` with what its
    `ask` gave); a key that asked after it keeps its own until its frame (`done()`)."""
    handler = turns.ask()
    turns.ask()  # a key, before the handler's callback ran
    turns.done(handler)
    assert turns._until > time.monotonic()  # still the key's turn
    turns.done()  # its frame
    assert turns._until == 0.0
    mine = turns.ask()
    turns.done(mine)
    assert turns._until == 0.0


@pytest.mark.usefixtures("switch_ms")
def test_a_list_let_go_is_emptied_a_piece_at_a_time_letting_other_threads_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread freeing 200,000 decoded series (as a Prometheus answer's rows are): the
    main thread, asking for the lock every millisecond, never waits for the whole list
    to be freed (freed at once, one `clear()` holds it throughout: 26-30 ms on a 2-core
    EPYC, against 2.4 ms in pieces at the console's switch interval). The least of
    several runs: the machine may take a thread off its core once in a run, which is not
    the freeing's doing."""
    monkeypatch.setattr(turns, "_screen", None)  # as in the sort's test above

    def rows() -> list[object]:
        return [
            {"metric": {"meshtop_edge": f"a{i}|b{i}", "reporter": "source", "le": "25.0"},
             "value": [1733333333.5, str(i / 7)]}
            for i in range(200_000)
        ]  # fmt: skip

    def longest_wait(free: Callable[[list[object]], None]) -> float:
        held = [rows()]
        gc.collect()
        return _longest_wait(lambda: free(held.pop()))

    emptied: list[list[object]] = []

    def let_go(items: list[object]) -> None:
        turns.let_go(items)
        emptied.append(items)

    whole = min(longest_wait(list.clear) for _ in "ab")
    in_pieces = min(longest_wait(let_go) for _ in "abc")
    assert emptied == [[], [], []]
    assert in_pieces < whole / 2
