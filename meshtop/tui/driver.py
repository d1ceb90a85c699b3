"""The console's terminal driver: Textual's own for Linux and macOS, with two changes: how
soon a lone ESC becomes the esc key, and each frame written in fewer bytes (`sgr`: its
styles as their changes, and on a terminal that erases in the current background, runs
of blanks as erases).

A terminal sends the esc key as the byte ESC, which also starts every other key's escape
sequence: a lone ESC is the esc key only once nothing follows it within the escape delay
(`ESCDELAY`, which the console sets to 25 ms: `cli/console.py`). Textual's input thread
waits for input 100 ms at a time and looks at that delay only when it wakes, so every esc
took 100 ms whatever the delay (`bench_console.py`: 100-105 ms with `ESCDELAY=25`). Here
the thread waits no longer than the delay while a sequence is pending, and 100 ms as
before when none is: no more wakeups while idle.

The frames are made fewer bytes on Textual's writer thread, as it writes them to the
terminal, not on the screen's thread as they are made: 4-6 ms of each full frame at
160x48 (issue 17), which a key's frame waited behind (`2` at 2,000 services took 36-48 ms
of that thread, with a 50 ms budget).

`run_input_thread` is Textual 8's (MIT licence, `textual/drivers/linux_driver.py`) but
for that wait; the parser's pending deadline is its `_timeout_time`, and without it
(another Textual) the wait is Textual's own."""

from __future__ import annotations

import os
import selectors
import sys
from codecs import getincrementaldecoder
from typing import IO, Any

from textual._loop import loop_last
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

from meshtop.tui.sgr import compact, erase_blanks

IDLE_WAIT_S = 0.1  # Textual's


def wait_for(parser: XTermParser, now: float) -> float:
    """How long the input thread may wait for input: until the pending sequence's
    deadline, when one is pending, else Textual's 100 ms."""
    deadline: float | None = getattr(parser, "_timeout_time", None)
    if deadline is None:
        return IDLE_WAIT_S
    return max(0.0, min(IDLE_WAIT_S, deadline - now))


def erases_in_background(term: str | None) -> bool:
    """Whether the terminal `term` names erases in the current background colour
    (terminfo's `bce`), as xterm's entries and the Linux console's say; False where that
    is not known (no TERM, no terminfo entry, no curses)."""
    if not term:
        return False
    try:
        import curses

        curses.setupterm(term, sys.__stdout__.fileno() if sys.__stdout__ else -1)
        return curses.tigetflag("bce") > 0
    except Exception:  # no curses here, an unknown TERM, no terminal: keep the blanks
        return False


class FewerBytes:
    """The terminal's file as Textual's writer thread writes to it: each frame written
    with its styles as their changes and, where the terminal erases in the current
    background (`erases`), its runs of blanks as erases. Should that fail, the frame is
    written as it came: the writer thread must not die, or nothing more is shown."""

    def __init__(self, file: IO[str], erases: bool) -> None:
        self._file = file
        self._erases = erases

    def write(self, text: str) -> None:
        try:
            fewer = compact(text)
            if self._erases:
                fewer = erase_blanks(fewer)
        except Exception:  # a bug here: the same screen, in more bytes
            fewer = text
        self._file.write(fewer)

    def flush(self) -> None:
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()


class PromptEscDriver(LinuxDriver):
    """Textual's Linux driver, waking for a pending escape sequence's deadline, and
    writing each frame in fewer bytes (`FewerBytes`) on its writer thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._file is not None:  # the file the writer thread writes to, and only it
            erases = erases_in_background(os.environ.get("TERM"))
            self._file = FewerBytes(self._file, erases)  # type: ignore[assignment]

    def run_input_thread(self) -> None:
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        fileno = self.fileno
        event_read = selectors.EVENT_READ
        parser = XTermParser(self._debug)
        feed = parser.feed
        tick = parser.tick
        decode = getincrementaldecoder("utf-8")().decode
        read = os.read

        def process_selector_events(
            selector_events: list[tuple[selectors.SelectorKey, int]], final: bool = False
        ) -> None:
            for last, (_key, mask) in loop_last(selector_events):
                if mask & event_read:
                    unicode_data = decode(read(fileno, 1024 * 4), final=final and last)
                    if not unicode_data:
                        break  # stdin piped
                    for event in feed(unicode_data):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process_selector_events(selector.select(wait_for(parser, get_time())))
            selector.unregister(self.fileno)
            process_selector_events(selector.select(IDLE_WAIT_S), final=True)
        finally:
            selector.close()
            try:
                for _event in feed(""):
                    pass
            except (EOFError, ParseError):
                pass
