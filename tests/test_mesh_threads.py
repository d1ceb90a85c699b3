"""The console's executor (`mesh.DaemonThreads`, issue 17): a call reuses a thread left
free by an earlier one instead of starting one per call (starting a thread waits for it to
run: up to 345 ms of the screen's thread while other threads held the GIL), never waits
for another call, keeps nothing of a finished call, and its threads are daemons."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

import pytest

from meshtop.mesh import DaemonThreads


def _until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited 5s for {what}")
        time.sleep(0.001)


def _of(threads: DaemonThreads, thread: threading.Thread) -> bool:
    """The thread is one of this executor's (the thread starting them is shared)."""
    return getattr(thread, "_target", None) == threads._serve


def test_a_call_runs_on_the_thread_an_earlier_call_left_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads = DaemonThreads()
    first = threads.submit(threading.current_thread).result(5)
    started = threading.Thread.start
    starts: list[threading.Thread] = []

    def counted(thread: threading.Thread) -> None:
        if _of(threads, thread):  # not one another test's executor queued
            starts.append(thread)
        started(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for _ in range(5):
        _until(lambda: threads._idle == 1, "the thread free again")
        assert threads.submit(threading.current_thread).result(5) is first
    monkeypatch.undo()
    assert starts == []
    assert first.daemon and first.name == "meshtop-call"


def test_a_call_never_waits_for_another() -> None:
    threads = DaemonThreads()
    held = threading.Event()
    blocked = threads.submit(held.wait, 10)
    try:
        assert threads.submit(lambda: 42).result(5) == 42  # while the first still waits
        assert not blocked.done()
    finally:
        held.set()
    assert blocked.result(5) is True


def test_a_free_thread_keeps_nothing_of_the_call_it_ran() -> None:
    class Big:
        pass

    threads = DaemonThreads()
    big = Big()
    gone = weakref.ref(big)
    assert threads.submit(lambda b: b is not None, big).result(5) is True
    del big
    _until(lambda: threads._idle == 1, "the thread free again")
    assert gone() is None


def test_a_thread_idle_too_long_ends_and_a_new_one_takes_the_next_call() -> None:
    threads = DaemonThreads(idle_s=0.05)
    first = threads.submit(threading.current_thread).result(5)
    first.join(5)
    assert not first.is_alive() and threads._idle == 0
    second = threads.submit(threading.current_thread).result(5)
    assert second is not first and second.is_alive()


def test_many_calls_at_once_each_answered() -> None:
    threads = DaemonThreads(idle_s=0.01)
    for _ in range(20):
        futures = [threads.submit(pow, n, 2) for n in range(50)]
        assert [f.result(5) for f in futures] == [n * n for n in range(50)]
        time.sleep(0.005)  # some threads end for idleness as calls come
    assert threads._idle >= 0


def test_a_failed_call_leaves_no_cycle_to_collect() -> None:
    """A call that raises: its future, the exception and the traceback's frames go as soon
    as nobody holds the future, without the garbage collector (a cycle through the call's
    frame held a refresh's failed answer, 64 MiB at the cap, until a full pass)."""
    import gc

    class Held:
        pass

    seen: list[weakref.ref[Held]] = []

    def fail() -> None:
        held = Held()  # a local of a frame in the traceback
        seen.append(weakref.ref(held))
        raise ValueError("refused")

    threads = DaemonThreads()
    gc.disable()
    try:
        future = threads.submit(fail)
        error = future.exception(timeout=5)
        assert isinstance(error, ValueError)
        time.sleep(0.1)  # the call's frame ends after it set the exception
        del error, future
        assert seen[0]() is None, "kept alive by a cycle"
    finally:
        gc.enable()


def test_the_caller_never_waits_for_a_thread_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a thread waits until it runs (the interpreter's lock held elsewhere: up to
    345 ms of the screen's thread): the calls' threads are started by a thread of their
    own, never by the one that asked."""
    threads = DaemonThreads()
    started = threading.Thread.start
    starters: list[str] = []

    def noted(thread: threading.Thread) -> None:
        if _of(threads, thread):
            starters.append(threading.current_thread().name)
        started(thread)

    monkeypatch.setattr(threading.Thread, "start", noted)
    held = threading.Event()
    waiting = [threads.submit(held.wait, 10) for _ in range(3)]  # three threads, none free
    try:
        assert threads.submit(lambda: 42).result(5) == 42
    finally:
        held.set()
    assert all(f.result(5) is True for f in waiting)
    assert starters == ["meshtop-start"] * 4


def test_a_thread_that_cannot_be_started_yet_is_started_when_it_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread to be had (a process's limit reached): the thread that starts them tries
    again, and the call is answered, rather than that thread ending and every call after
    waiting for a thread that never comes."""
    threads = DaemonThreads()
    started = threading.Thread.start
    refused: list[threading.Thread] = []

    def once_refused(thread: threading.Thread) -> None:
        if _of(threads, thread) and not refused:
            refused.append(thread)
            raise RuntimeError("can't start new thread")
        started(thread)

    monkeypatch.setattr(threading.Thread, "start", once_refused)
    assert threads.submit(lambda: 42).result(5) == 42
    assert len(refused) == 1
    assert threads.submit(lambda: 43).result(5) == 43  # and the next
