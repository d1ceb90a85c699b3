"""The config file and the files that hold secrets: read, and said when others can read them."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

from meshtop.errors import UsageError


def read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror}") from None


SECRET_KEYS = frozenset(("token", "password", "headers", "tenant"))


def exposed(path: Path, what: str) -> str | None:
    """A one-line warning, as ssh gives for a key file, when a file that holds a secret
    can be read by its group or by others; None when only its owner can."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return f"{what} {path} holds a secret and is readable by others (mode {mode:04o}); chmod 600 it"


def holds_secret(value: Any) -> bool:
    """Whether a config file's tables say a secret themselves (not a file that has one)."""
    if isinstance(value, dict):
        return any(k in SECRET_KEYS or holds_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_secret(v) for v in value)
    return False


def read_secret(path: Path, what: str) -> str:
    try:
        secret = path.read_text("utf-8").strip()
    except OSError as exc:
        raise UsageError(f"{what} file {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} file {path} is not text (UTF-8)") from None
    if not secret:
        raise UsageError(f"{what} file {path} is empty")
    return secret
