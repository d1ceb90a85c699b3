"""Settings from one place: the TOML config file in the user's config directory, then
`MESHTOP_*` environment variables, then command-line flags, each overriding the last."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from meshtop.errors import UsageError
from meshtop.units import parse_duration

APP_NAME = "meshtop"


@dataclass(frozen=True, slots=True)
class Settings:
    refresh_s: float = 2.0  # how often the TUI asks the sources again
    window_s: float = 60.0  # the window rates and latencies are computed over
    timeout_s: float = 10.0  # how long one source may take to answer
    theme: str = "meshtop"
    config_path: Path | None = None  # the file these came from, if any


# config key / env suffix -> (Settings field, parser)
_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "refresh": ("refresh_s", lambda v: parse_duration(str(v), what="refresh")),
    "window": ("window_s", lambda v: parse_duration(str(v), what="window")),
    "timeout": ("timeout_s", lambda v: parse_duration(str(v), what="timeout")),
    "theme": ("theme", str),
}


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def _apply(settings: Settings, values: Mapping[str, Any], where: str) -> Settings:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise UsageError(f"{where}: unknown setting {key!r}; known settings are {known}")
        field, parse = _KEYS[key]
        try:
            changes[field] = parse(value)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return replace(settings, **changes)


def read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror}") from None


def load(
    flags: Mapping[str, str | None] | None = None,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Settings for this run. An explicit `config_file` (or `MESHTOP_CONFIG`) must exist;
    the default one is optional. `flags` holds the raw values of flags given, by key."""
    settings = Settings()
    explicit = config_file or (
        Path(environ["MESHTOP_CONFIG"]) if environ.get("MESHTOP_CONFIG") else None
    )
    path = explicit or default_config_path()
    if explicit is not None or path.is_file():
        settings = replace(
            _apply(settings, read_file(path), f"config file {path}"), config_path=path
        )
    env_values = {
        key: environ[f"MESHTOP_{key.upper()}"]
        for key in _KEYS
        if f"MESHTOP_{key.upper()}" in environ
    }
    settings = _apply(settings, env_values, "environment")
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    return _apply(settings, given, "command line")
