"""Where a command's report goes: standard output, or a file written atomically (a
temporary file beside it, renamed over it only once complete, so a failure never leaves
half a report); and progress on standard error, only when that is a terminal and the
work takes more than a moment, so pipes and CI logs stay clean."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from meshtop.errors import UsageError

SHOW_AFTER_S = 0.5  # a report faster than this shows no progress at all


def write_report(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all. `-` is stdout. A symlink is followed
    (the file it names is replaced, the link stays); a device or a pipe (`/dev/stdout`,
    a FIFO) is written to as it is, since it cannot be replaced; an existing file keeps
    its permissions. Raises `UsageError` when it cannot write."""
    if str(path) == "-":
        sys.stdout.write(text)
        return
    given = path.expanduser()
    # the path as given, links followed by the system: /dev/stdout into a pipe is a link
    # to /proc/self/fd/1, itself a "link" to `pipe:[…]`, which realpath makes a path that
    # is not there
    try:
        mode: int | None = os.stat(given).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"cannot write the report to {path}: it is a directory")
    target = Path(os.path.realpath(given))
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with open(given, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from None
        return
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temp, stat.S_IMODE(mode))  # a private report stays private
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)  # as a plain new file would be, not 0600
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def progress(first: str) -> Iterator[Callable[[str], None]]:
    """A spinner with what is being done, on a terminal's stderr, from half a second on;
    yields a function that says the next step. It never touches stdout: the report
    written there meanwhile goes where it was sent."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.text import Text

    from meshtop.sanitize import said

    def line(text: str) -> Text:  # a backend's name or URL is outside text (and not markup)
        return Text(said(text))

    spinner = Spinner("dots", line(first))
    live = Live(
        spinner,
        console=Console(stderr=True),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
        refresh_per_second=8,
    )
    lock = threading.Lock()
    state = {"done": False, "started": False}

    def start() -> None:
        with lock:
            if not state["done"]:
                live.start()
                state["started"] = True

    timer = threading.Timer(SHOW_AFTER_S, start)
    timer.daemon = True
    timer.start()
    try:
        yield lambda text: spinner.update(text=line(text))
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            if state["started"]:
                live.stop()
