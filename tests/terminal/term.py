"""A real terminal for the console's tests: the installed `meshtop` command runs in a
pseudo-terminal of a given size, keys go in as bytes, and what it draws is read back
through a terminal emulator (pyte): the text, the cursor and each cell's attributes. A
test waits for what the screen must show, never for time to pass."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ptyprocess  # type: ignore[import-untyped]
import pyte  # type: ignore[import-untyped]
from wcwidth import wcwidth  # type: ignore[import-untyped]

# The command a user runs: the one this environment installed beside its python.
MESHTOP = str(Path(sys.executable).parent / "meshtop")
LIMIT_S = 30.0  # how long a wait may take before it fails, naming what it waited for
ESC_ALONE_S = 0.25  # longer than Textual waits to read a lone ESC as the escape key

KEYS = {
    "enter": b"\r",
    "esc": b"\x1b",
    "tab": b"\t",
    "backspace": b"\x7f",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "ctrl+c": b"\x03",
    "ctrl+p": b"\x10",
}


def _shown(row: dict[int, pyte.screens.Char], cols: int) -> str:
    """A row's text as pyte's `display` makes it, a wide character's right half (kept
    as an empty cell) left out; but an empty cell after no wide character, a right half
    whose left was drawn over (which a terminal blanks and pyte keeps), is a blank, where
    `display` failed (IndexError, once in a benchmark's run)."""
    text, wide = [], False
    for x in range(cols):
        if wide:  # the right half of the character before
            wide = False
            continue
        data = row[x].data
        text.append(data or " ")
        wide = bool(data) and wcwidth(data[0]) == 2
    return "".join(text)


class Terminal:
    """One `meshtop` in one pseudo-terminal. Use as a context manager: it is killed on exit."""

    def __init__(
        self,
        args: list[str],
        *,
        cols: int = 80,
        rows: int = 24,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()  # every byte the program wrote, for what pyte does not keep
        self._changed = threading.Condition()
        self._closed = False
        environ = {
            k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TMUX")
        }
        environ.update({"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8"})
        environ.update(env or {})
        self.proc = ptyprocess.PtyProcess.spawn(
            command or [MESHTOP, *args], dimensions=(rows, cols), env=environ
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.proc.read(65536)
            except (EOFError, OSError):
                break
            with self._changed:
                self.raw += data
                self.stream.feed(data)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # -- reading the screen -----------------------------------------------------------

    def lines(self) -> list[str]:
        with self._changed:
            return [_shown(self.screen.buffer[y], self.cols).rstrip() for y in range(self.rows)]

    def text(self) -> str:
        return "\n".join(self.lines())

    def row_of(self, needle: str) -> int | None:
        return next((i for i, line in enumerate(self.lines()) if needle in line), None)

    @property
    def cursor(self) -> tuple[int, int]:
        """(column, row) of the terminal's cursor."""
        with self._changed:
            return self.screen.cursor.x, self.screen.cursor.y

    @property
    def cursor_hidden(self) -> bool:
        with self._changed:
            return bool(self.screen.cursor.hidden)

    def cell(self, x: int, y: int) -> pyte.screens.Char:
        with self._changed:
            return self.screen.buffer[y][x]

    def cells_of(self, needle: str) -> list[pyte.screens.Char]:
        """The cells where `needle` is first drawn, to check their colour and weight."""
        at = self.find(needle)
        assert at is not None, f"{needle!r} is not on screen:\n{self.text()}"
        x, y = at
        return [self.cell(x + i, y) for i in range(len(needle))]

    def column_in(self, y: int, needle: str) -> int:
        """The screen column of `needle` in row `y`: a wide character (🔒) takes two
        columns and one character, so a string index is not a column."""
        with self._changed:
            columns, text = self._row(y)
        return columns[text.index(needle)]

    def find(self, needle: str, last: bool = False) -> tuple[int, int] | None:
        """(column, row) where `needle` is first drawn (on the lowest row it is on, if
        `last`: a prompt's, at the foot), read from one screen: the program may draw
        between two reads (a prompt's placeholder gone as its first letter is typed), so
        the row and the column are found together."""
        with self._changed:
            for y in reversed(range(self.rows)) if last else range(self.rows):
                columns, text = self._row(y)
                if needle in text:
                    return columns[text.index(needle)], y
        return None

    def _row(self, y: int) -> tuple[list[int], str]:
        """Row `y`'s text and each character's column (the lock held by the caller)."""
        row = self.screen.buffer[y]
        chars = [(x, row[x].data) for x in range(self.cols) if row[x].data]
        return [x for x, _ in chars], "".join(ch for _, ch in chars)

    # -- waiting ----------------------------------------------------------------------

    def wait(self, what: str, done: Callable[[], bool], limit: float = LIMIT_S) -> None:
        """Until `done()` is true of the screen; it is asked again each time the program
        draws. Fails after `limit` seconds, naming `what` and showing the screen."""
        deadline = time.monotonic() + limit
        with self._changed:
            while True:
                if self._check(done):
                    return
                left = deadline - time.monotonic()
                if left <= 0 or (self._closed and not self._check(done)):
                    break
                self._changed.wait(min(left, 0.5))
        raise AssertionError(f"waited {limit:g}s for {what}; the screen:\n{self.text()}")

    def _check(self, done: Callable[[], bool]) -> bool:
        # the lock is re-entrant only for the reader's sake: release it for `done`
        self._changed.release()
        try:
            return done()
        finally:
            self._changed.acquire()

    def wait_for(self, *needles: str, limit: float = LIMIT_S) -> None:
        """Until every one of `needles` is on screen."""
        self.wait(
            " and ".join(repr(n) for n in needles),
            lambda: all(n in self.text() for n in needles),
            limit,
        )

    def wait_for_re(self, pattern: str, limit: float = LIMIT_S) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def match() -> bool:
            m = re.search(pattern, self.text())
            if m:
                found[:] = [m]
            return m is not None

        self.wait(f"/{pattern}/", match, limit)
        return found[0]

    def wait_gone(self, needle: str, limit: float = LIMIT_S) -> None:
        self.wait(f"{needle!r} to go", lambda: needle not in self.text(), limit)

    def ready(self) -> None:
        """The console has drawn its first snapshot."""
        self.wait_for_re(r"\d+ (of \d+ )?edges")

    def paused(self) -> None:
        """The console drawn and paused (`p`): no refresh draws from now on."""
        self.ready()
        self.press("p")
        self.wait_for("PAUSED")
        time.sleep(0.5)  # the pause's own frame sent

    def written(self, act: Callable[[], object], settle_s: float = 0.5) -> int:
        """The bytes the program wrote from `act` (keys, and the waits for their effect)
        until `settle_s` after it: what the terminal had to read for it."""
        before = len(self.raw)
        act()
        time.sleep(settle_s)
        return len(self.raw) - before

    # -- typing -----------------------------------------------------------------------

    def press(self, *keys: str) -> None:
        """Keys by name (`enter`, `esc`, `up`) or as text typed (`/rev`). A terminal
        cannot tell `esc` then `q` from alt+q if they arrive together: an escape is given
        its key-reading delay to stand alone (a property of the input protocol, not a
        wait for the program)."""
        for i, key in enumerate(keys):
            self.proc.write(KEYS.get(key, key.encode()))
            if key == "esc" and i < len(keys) - 1:
                time.sleep(ESC_ALONE_S)

    def click(self, x: int, y: int) -> None:
        """The mouse moved to the cell at column `x`, row `y` (from 0), and its left
        button pressed and let go there, as xterm reports them in the SGR mode the
        program asked for (any motion reported: a mouse is moved to where it clicks)."""
        at = f"{x + 1};{y + 1}"
        self.proc.write(f"\x1b[<35;{at}M\x1b[<0;{at}M\x1b[<0;{at}m".encode())

    def type(self, text: str, after: str = "") -> None:
        """Text one character at a time, each seen on screen (after `after`, the prompt's
        sign, if it has one) before the next: how a person types."""
        for i, ch in enumerate(text):
            self.proc.write(ch.encode())
            typed = (after + text[: i + 1]).rstrip()  # a line's trailing blanks are not kept
            self.wait(f"{typed!r} typed on screen", lambda t=typed: t in self.text())

    def resize(self, cols: int, rows: int) -> None:
        """The terminal made another size, as a window resized: the program gets SIGWINCH."""
        with self._changed:
            self.cols, self.rows = cols, rows
            self.screen.resize(rows, cols)
        self.proc.setwinsize(rows, cols)

    def command(self, text: str) -> None:
        """`:text` and enter, each key seen on screen as it is typed."""
        self.press(":")
        self.type(text, after=":")
        self.press("enter")

    def filter(self, text: str) -> None:
        """`/text` and enter, likewise."""
        self.press("/")
        self.type(text, after="/")
        self.press("enter")

    # -- ending -----------------------------------------------------------------------

    def exit_code(self, limit: float = LIMIT_S) -> int:
        """Wait for the program to end; its exit status (128+N for a signal N)."""
        deadline = time.monotonic() + limit
        while self.proc.isalive():
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {limit:g}s:\n{self.text()}")
            time.sleep(0.05)
        self._reader.join(5)
        self.proc.wait()
        if self.proc.signalstatus is not None:
            return 128 + int(self.proc.signalstatus)
        return int(self.proc.exitstatus or 0)

    def hang_up(self) -> None:
        """The terminal goes away, as when an SSH connection drops: the pseudo-terminal's
        master side is closed (no signal is sent; the kernel hangs the terminal up). The
        master's descriptor is pointed at /dev/null, so the reader's next read ends it,
        and a byte written from the program's side wakes the read in progress (a read
        in progress keeps the master open until it returns)."""
        slave = os.readlink(f"/proc/{self.proc.pid}/fd/0")  # the program's own terminal
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, self.proc.fd)
        os.close(null)
        try:
            wake = os.open(slave, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:  # already hung up: the read in progress has returned
            pass
        else:
            try:
                os.write(wake, b" ")
            except OSError:
                pass
            finally:
                os.close(wake)
        self._reader.join(LIMIT_S)
        # ptyprocess, once it read an end of file, waits blocking for the exit status;
        # `exit_code` must be able to give up on a program that never ends
        self.proc.flag_eof = False

    def output(self) -> str:
        with self._changed:
            return self.raw.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.isalive():
            self.proc.kill(signal.SIGKILL)
        self._reader.join(5)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
