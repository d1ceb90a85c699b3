"""Where a command's report goes: standard output, or a file written atomically (a
temporary file beside it, renamed over it only once complete, so a failure never leaves
half a report); and progress on standard error, only when that is a terminal and the
work takes more than a moment, so pipes and CI logs stay clean."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from meshtop.errors import UsageError

SHOW_AFTER_S = 0.5  # a report faster than this shows no progress at all


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all. Raises `UsageError` when it cannot."""
    target = path.expanduser()
    if target.is_dir():
        raise UsageError(f"cannot write the report to {path}: it is a directory")
    folder = target.parent
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # as a plain new file would be, not mkstemp's 0600
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
    yields a function that says the next step."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    from rich.console import Console

    status = Console(stderr=True).status(first)
    timer = threading.Timer(SHOW_AFTER_S, status.start)
    timer.daemon = True
    timer.start()
    try:
        yield status.update
    finally:
        timer.cancel()
        status.stop()
