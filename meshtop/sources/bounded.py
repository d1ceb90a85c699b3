"""One deadline for a whole request, whatever the server does, and a cap on every answer,
for the sources that speak HTTP through urllib3: Prometheus (through requests) and the
Kubernetes API (through its client).

urllib3's timeouts bound each read, not the request: a server that drips a byte a second
keeps a request alive for ever, and one that never ends its body fills memory. Here the
deadline is a point in time (`time.monotonic()`) carried by a context variable, so that
`asyncio.to_thread` takes it along; until the headers are in, a watchdog shuts the socket
at the deadline (a read can be dripped too), and the body is read in chunks, each read
bounded by the time left, within the cap."""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import urllib3.exceptions
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MIB = 1024 * 1024
# A size cap that no real mesh's answers come near (a few MiB is already a large one; a
# Kubernetes list comes in pages), and that keeps a hostile or broken backend from taking
# meshtop's memory: [prometheus], [tracing] and [kubernetes] max_response_mb.
DEFAULT_MAX_RESPONSE_MB = 64.0
_CHUNK = 64 * 1024

# When the request under way must have ended: one for a whole call of a source (e.g.
# Prometheus's dialect probe and the queries after it), set by `deadline`, or one per
# request, set by whoever sends it.
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "meshtop_deadline", default=None
)


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Every request made inside (and in threads started inside) ends within `seconds`
    of now, all of them together; an outer deadline that comes sooner stays."""
    outer = DEADLINE.get()
    mine = time.monotonic() + seconds
    if outer is not None:
        mine = min(outer, mine)
    token = DEADLINE.set(mine)
    try:
        yield mine
    finally:
        DEADLINE.reset(token)


class CalledOff:
    """Requests whose answers nobody waits for any more: a detail's histories once the
    screen is closed or another window asked, a refresh's once a newer one started. Each
    one under way is cut off (its socket shut: a Prometheus stops evaluating a query whose
    client has gone), and none starts."""

    def __init__(self) -> None:
        self.off = False
        self._cuts: set[Callable[[], None]] = set()
        self._lock = threading.Lock()

    def call_off(self) -> None:
        with self._lock:
            self.off = True
            cuts = list(self._cuts)
        for cut in cuts:
            cut()

    def watch(self, cut: Callable[[], None]) -> bool:
        """`cut` is called when these are called off; False if they already are."""
        with self._lock:
            if not self.off:
                self._cuts.add(cut)
            return not self.off

    def forget(self, cut: Callable[[], None]) -> None:
        with self._lock:
            self._cuts.discard(cut)


# The requests the one under way belongs with, if they may be called off together.
CALLED: contextvars.ContextVar[CalledOff | None] = contextvars.ContextVar(
    "meshtop_called", default=None
)


@contextmanager
def called_off_on_error() -> Iterator[CalledOff]:
    """Every request made inside (and in threads started inside) is cut off, and none
    starts, once the block ends with an exception: the task cancelled (a detail closed,
    a refresh superseded), or one of its requests failed, so that the others' answers
    would not be read. A request's thread goes on after its task is cancelled, and so
    would the backend's work for it. Inside another such block, they are cut off with
    that one's too."""
    mine = CalledOff()
    outer = CALLED.get()  # these belong with those too: called off with them
    if outer is not None and not outer.watch(mine.call_off):
        mine.call_off()
    token = CALLED.set(mine)
    try:
        yield mine
    except BaseException:
        mine.call_off()
        raise
    finally:
        CALLED.reset(token)
        if outer is not None:
            outer.forget(mine.call_off)


def on_its_own() -> None:
    """What the calling task asks from now on is not called off with the set it was
    started in: work meant to go on behind that set's caller (the console's latency
    query, behind the refresh that started it, for the refreshes after)."""
    CALLED.set(None)


class Late(Exception):
    """The deadline came before the answer's last byte."""


class TooBig(Exception):
    """The answer was longer than its cap."""


class BrokenOff(Exception):
    """The connection broke before the answer's last byte; the reason is the message."""


class _Cut:
    fired = False


class _Watch(threading.local):
    """The watchdog of the request under way in this thread, if any."""

    current: _Cut | None = None


_WATCH = _Watch()


def arm() -> None:
    """Before a request: forget whatever the last watchdog on this thread did."""
    _WATCH.current = None


def cut_off() -> bool:
    """Whether the watchdog ended the last request of this thread (not the server)."""
    return _WATCH.current is not None and _WATCH.current.fired


@contextmanager
def _watchdog(conn: Any) -> Iterator[None]:
    """Until the answer's headers are in (connecting, TLS, sending, the headers), each
    read is bounded by the time left, but a server could drip its headers a byte at a
    time: at the deadline this shuts the connection's socket, which ends any read. So
    does calling off the requests this one belongs with (`called_off_on_error`)."""
    when = DEADLINE.get()
    called = CALLED.get()
    if when is None and called is None:
        yield
        return
    mine = _WATCH.current = _Cut()
    if when is not None and when <= time.monotonic():  # a retry after the deadline
        mine.fired = True
        raise urllib3.exceptions.TimeoutError("the deadline has passed")

    def cut() -> None:  # on the timer's thread, or the one calling off
        sock = getattr(conn, "sock", None)
        if isinstance(sock, socket.socket):
            mine.fired = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    if called is not None and not called.watch(cut):
        raise urllib3.exceptions.ProtocolError("called off")
    timer = None
    if when is not None:
        timer = threading.Timer(max(0.0, when - time.monotonic()), cut)
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        if called is not None:
            called.forget(cut)


class _WatchedPool(HTTPConnectionPool):
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        with _watchdog(conn):
            return super()._make_request(conn, *args, **kwargs)


class _WatchedTLSPool(HTTPSConnectionPool):
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        with _watchdog(conn):
            return super()._make_request(conn, *args, **kwargs)


def watch(manager: Any) -> None:
    """Every connection pool a urllib3 pool manager makes from now on, under the
    watchdog (a SOCKS proxy's manager makes pools of its own and is left as it is)."""
    if isinstance(getattr(manager, "pool_classes_by_scheme", None), dict):
        manager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedTLSPool}


def read_all(raw: Any, *, until: float, cap: int) -> bytes:
    """The whole body of a streamed urllib3 response by `until` (`time.monotonic()`) and
    within `cap` bytes, or `Late`, `TooBig` or `BrokenOff`; the connection is closed (not
    reused) on any of them."""
    chunks: list[bytes] = []
    size = 0
    called = CALLED.get()
    try:
        while True:
            if called is not None and called.off:  # nobody waits for the rest
                raise BrokenOff("called off")
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise Late
            # the response's connection until its last byte is read: then urllib3 hands
            # it back to its pool, which may give it to another request or, full, close
            # it (a timeout set on that socket failed with EBADF: every history of a
            # namespace's detail against Prometheus, 24 requests at once in a pool of 10)
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if isinstance(sock, socket.socket):
                sock.settimeout(remaining)  # no one read outlasts the deadline
            chunk = raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > cap:
                raise TooBig
            chunks.append(chunk)
    except (TimeoutError, urllib3.exceptions.ReadTimeoutError):
        raw.close()
        raise Late from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raw.close()
        raise BrokenOff(str(exc)) from None
    except (Late, TooBig, BrokenOff):
        raw.close()
        raise
