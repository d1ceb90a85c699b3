"""The screen's thread first (issue 17). Python runs one thread at a time (the GIL), and
a thread that wants to run is let in only every few milliseconds, taking turns with every
other thread that wants to: a key's work on the screen's thread took two or three times
its own time while the simulator walked the mesh, a worker took in the edge table or the
graph was made for the next refresh. So the screen's thread says when a person is
waiting (`ask`: a key, until its effect is on the screen), and the long loops behind it
(`give_way`, every few hundred items) wait until it is done, never longer than `LONGEST_S`
at a time: work behind the screen comes a few tens of milliseconds later, a key's effect
in its own time. A frame the screen makes, a key's or a refresh's, is its turn too.

Nothing here makes a thread wait for another, so nothing here can deadlock: `give_way`
only sleeps, and for no longer than the screen asked, at most `LONGEST_S`; then the loop
runs `RUNS_S` before it gives way again.

A sort is one call that holds the interpreter's lock from start to end, whatever its key:
the edge table's worker sorting 51,239 rows by health (20,000 services) held every
thread, the screen's too, for 111-119 ms. `sorted_in_turns` sorts a piece at a time and
merges the pieces, the lock let go between: a thread asking for it every millisecond
waited 10-12 ms at most, and the sort took 12-15% longer (benchmarks/RESULTS.md).

So is freeing what only one list holds: the last references to a Prometheus refresh's
decoded rows (at 2,000 services the latency answer's 37,000, the requests' 9,423 and the
TCP answer's 9,240), dropped by the coroutines that read them, freed them all on the
screen's own thread, 15-37 ms every latency answer (a hostile backend's 380,000 latency
rows: 166 ms at the least). `let_go` empties such a list a piece at a time on a thread
behind the screen."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")

LONGEST_S = 0.25  # the longest a loop behind the screen waits for it at a time
# after waiting, a loop runs this long before it waits again: keys held down (a cursor
# moving at the keyboard's repeat rate) never starve what is behind the screen, whose
# sources have their deadlines
RUNS_S = 0.1
PIECE = 2048  # items `sorted_in_turns` sorts in one call (rows by health: 2-4 ms)
BATCH = 2 * PIECE  # items it takes a key of, or merges, between two looks at the screen
FREED = 1024  # items `let_go` frees at once (decoded series: 0.1-0.7 ms)

_until = 0.0  # the screen's turn ends here (time.monotonic), unless said done before
_screen: int | None = None  # the screen's thread: it never waits for itself
_ran = threading.local()  # a loop's thread: when it last stopped waiting
_asked = 0  # how many times the screen has asked


def ask(seconds: float = LONGEST_S) -> int:
    """The screen's thread has work a person waits for: loops behind it wait until it
    says `done`, or for `seconds` at most. Which ask this is, for `done`."""
    global _until, _screen, _asked
    _screen = threading.get_ident()
    _until = max(_until, time.monotonic() + min(seconds, LONGEST_S))
    _asked += 1
    return _asked


def done(asked: int | None = None) -> None:
    """What the person waited for is on the screen: the loops behind it go on. With
    `asked` (what `ask` gave), only if nothing has asked since: a key that came after
    a handler asked keeps its turn until its own frame."""
    global _until
    if asked is None or asked == _asked:
        _until = 0.0


def held() -> bool:
    """Whether the screen's thread has its turn now."""
    return _until > time.monotonic()


def give_way() -> None:
    """Called by a long loop behind the screen every few hundred items: while the screen's
    thread has asked for its turn, sleep (which lets it run alone) until it is done."""
    now = time.monotonic()
    left = _until - now
    if left <= 0 or threading.get_ident() == _screen or now < getattr(_ran, "since", 0) + RUNS_S:
        return
    end = now + min(left, LONGEST_S)
    while left > 0:
        time.sleep(min(0.002, left))
        now = time.monotonic()
        left = min(_until, end) - now
    _ran.since = now


def giving_way(items: Iterable[T], every: int = 256) -> Iterator[T]:
    """`items`, for a long loop behind the screen: it gives way (`give_way`) before each
    `every` of them (as fast as a counter checked in the loop itself)."""
    it = iter(items)
    while batch := list(islice(it, every)):
        give_way()
        yield from batch


def sorted_in_turns(items: Iterable[T], key: Callable[[T], Any], reverse: bool = False) -> list[T]:
    """`sorted(items, key=key, reverse=reverse)`, the same list (ties keep their order)
    for keys that are ordered (no NaN: where `sorted` puts one depends on what it
    compares it with), for a loop behind the screen: each item's key found once, the
    items sorted `PIECE` at a time and the pieces merged, giving way (`give_way`)
    between pieces and batches. On the screen's own thread, the one a person waits on,
    one `sorted`: the fastest."""
    whole = list(items)
    if len(whole) <= PIECE or threading.get_ident() == _screen:
        return sorted(whole, key=key, reverse=reverse)
    keys = [key(item) for item in giving_way(whole, BATCH)]
    at = keys.__getitem__
    runs = []
    for start in range(0, len(whole), PIECE):
        give_way()
        runs.append(sorted(range(start, min(start + PIECE, len(whole))), key=at, reverse=reverse))
    # merge: a tie goes to the earlier piece, so the whole stays stable either way
    return [whole[i] for i in giving_way(heapq.merge(*runs, key=at, reverse=reverse), BATCH)]


def let_go(*lists: list[Any]) -> None:
    """Empty `lists`, on a thread behind the screen, `FREED` items at a time from the end,
    giving way between pieces: what only they held is freed there a piece at a time, the
    interpreter's lock let go between pieces (freed at once, a list's items hold it for
    their whole length, every thread waiting). A list others still read must not be
    given: it is emptied."""
    for items in lists:
        while items:
            give_way()
            del items[-FREED:]
