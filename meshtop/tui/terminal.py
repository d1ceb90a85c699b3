"""The console's terminal going away (an SSH session dropped, a terminal window closed)
when nothing else ends meshtop: SIGHUP ignored (`nohup`, `trap '' HUP`) or never sent.

Textual writes to the terminal from a thread of its own. On a terminal that has hung
up, its first write fails with EIO, that thread ends, and every later write (restoring
the terminal on the way out included) waits forever for room in its queue: the console
would never end. So a thread here looks at the terminal twice a second; once it is gone,
it points the standard streams at /dev/null (so that what is still written, and the
flushes at exit, go nowhere instead of failing), asks the console to end, and, if it has
not within a couple of seconds, ends the process with `EXIT_TERMINAL_LOST`."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from types import TracebackType

# 128 + SIGHUP: the status the hang-up would have given had it not been ignored, and not
# 0 (a script that started the console sees a dropped session) nor 1 (a failed gate).
EXIT_TERMINAL_LOST = 129
POLL_S = 0.5
GRACE_S = 2.0


class TerminalWatch:
    """While in its `with` block, watches the terminal on `fd`. `lost` says whether it
    went away. `on_lost` is called from the watching thread: it must be thread-safe."""

    def __init__(
        self,
        fd: int,
        on_lost: Callable[[], object] | None = None,
        *,
        poll_s: float = POLL_S,
        grace_s: float = GRACE_S,
        end: Callable[[int], object] = os._exit,
    ) -> None:
        self.fd = fd
        self.on_lost = on_lost
        self.poll_s, self.grace_s = poll_s, grace_s
        self.end = end
        self.lost = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams: list[int] = []  # of 0, 1, 2, those on the terminal

    def gone(self) -> bool:
        """Whether the terminal went away: a hung-up terminal answers no terminal
        request (EIO), so it is no longer one."""
        return not os.isatty(self.fd)

    def __enter__(self) -> TerminalWatch:
        if os.isatty(self.fd):
            self._streams = [fd for fd in (0, 1, 2) if os.isatty(fd)]
            self._thread = threading.Thread(
                target=self._watch, name="meshtop-terminal-watch", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            if not self.lost and self.gone():  # gone as the console was ending
                self._lost()

    def _watch(self) -> None:
        while not self._done.wait(self.poll_s):
            if self.gone():
                self._lost()
                if self.on_lost is not None:
                    with contextlib.suppress(Exception):  # the end below comes regardless
                        self.on_lost()
                if not self._done.wait(self.grace_s):
                    self.end(EXIT_TERMINAL_LOST)  # the orderly exit is stuck: end here
                return

    def _lost(self) -> None:
        self.lost = True
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError:
            return
        for fd in self._streams:
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
        os.close(null)
