"""Errors a user can cause, each with a message written for that user and the exit code
the CLI ends with (see the README: 2 usage or configuration, 3 backend)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
EXIT_CONFLICT = 4  # a change refused because its target changed since it was read
EXIT_BUG = 70  # EX_SOFTWARE: meshtop itself went wrong


class MeshtopError(Exception):
    """Base of every error meant for the user. `str(err)` is the one line they see."""

    exit_code = EXIT_USAGE


class UsageError(MeshtopError):
    """A bad flag, value, config file or name."""

    exit_code = EXIT_USAGE


class BackendError(MeshtopError):
    """A backend could not be reached, refused us, or answered something we cannot read."""

    exit_code = EXIT_BACKEND


class GateFailed(MeshtopError):
    """An export's `--fail-on` gate was broken: the report was written, the job fails."""

    exit_code = EXIT_GATE_FAILED


class ConflictError(MeshtopError):
    """A change was refused because what it was planned against changed meanwhile (the
    server's 409 or 422): nothing was written; read again, then decide again."""

    exit_code = EXIT_CONFLICT
