"""The values a setting takes, parsed from a file, the environment or a flag: one clear
line for a value that is not one."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from meshtop.errors import UsageError
from meshtop.sanitize import said
from meshtop.units import parse_duration


def duration(what: str) -> Callable[[Any], float]:
    return lambda v: parse_duration(str(v), what=what)


def path(value: Any) -> Path:
    if not isinstance(value, str | Path):
        raise UsageError(f"{value!r} is not a file name")
    return Path(value).expanduser()


def strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"{value!r} is not a list of names")


def headers(value: Any) -> dict[str, str]:
    """A table `{"X-Scope-OrgID" = "team-a"}`, or flags `NAME: VALUE`."""
    if not isinstance(value, Mapping | str | list | tuple):
        raise UsageError(f"headers: a {type(value).__name__} is not a table of headers")
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    headers = {}
    for text in strings(value) if isinstance(value, str) else value:
        name, sep, val = str(text).partition(":")
        if not sep or not name.strip():
            # never the text itself: a header may carry a token
            raise UsageError("a header is not NAME: VALUE (its text is not shown)")
        headers[name.strip()] = val.strip()
    return headers


def megabytes(value: Any) -> float:
    """A size cap in MiB: a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UsageError(f"{value!r} is not a number of MiB")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a number of MiB") from None
    if not 0 < number < 1e6:
        raise UsageError(f"{value!r} is not a size between 0 and 1000000 MiB")
    return number


def count(value: Any) -> int:
    """A cap on a count: a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UsageError(f"{value!r} is not a whole number")
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise UsageError(f"{value!r} is not a positive whole number")
    return number


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{value!r} is not true or false")


def share(value: Any) -> float:
    """`10%` or `0.1` -> 0.1."""
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"{value!r} is not a share such as 10% or 0.1") from None
    if not 0 <= share <= 1:
        raise UsageError(f"{value!r} is not between 0% and 100%")
    return share


_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)


def namespace(value: Any) -> str:
    """A Kubernetes namespace: a DNS-1123 label (lower-case letters, digits and '-', 63 at
    most, starting and ending with a letter or digit)."""
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        shown = said(repr(value)) if isinstance(value, str) else repr(value)
        raise UsageError(
            f"{shown} is not a Kubernetes namespace (lower-case letters, digits and '-', "
            "63 at most, starting and ending with a letter or digit)"
        )
    return value
