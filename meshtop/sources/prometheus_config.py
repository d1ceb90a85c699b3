"""How to reach a Prometheus-compatible backend: the Prometheus adapter's own settings,
checked as they are made (a URL without credentials, header values HTTP can carry, a
known dialect). `meshtop.config` fills them from the file, the environment and flags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from meshtop.errors import UsageError
from meshtop.sources.bounded import DEFAULT_MAX_RESPONSE_MB

DIALECT_NAMES = ("auto", "istio", "ambient", "linkerd")


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_url(url: str) -> None:
    """A URL meshtop can use, or one clear line saying why not (never a password)."""
    shown = repr(url.rpartition("@")[2]) if "@" in url else repr(url)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number or out of range
    except ValueError as exc:
        raise UsageError(f"Prometheus URL {shown} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"Prometheus URL {shown} must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "put no credentials in the Prometheus URL: use --prometheus-user with "
            "--prometheus-password-file, or a token file"
        )
    if not parts.hostname:
        raise UsageError(f"Prometheus URL {shown} has no host")


def check_header_value(what: str, value: str) -> None:
    if any(c in value for c in "\r\n\0") or not value.isprintable():
        raise UsageError(f"{what} holds a line break or a control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise UsageError(f"{what} holds characters HTTP headers cannot carry") from None


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    """How to reach a Prometheus-compatible backend. Secrets are held, never shown."""

    url: str
    dialect: str = "auto"
    namespaces: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)  # bearer token
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold API keys
    ca_file: Path | None = None
    insecure: bool = False
    timeout_s: float = 10.0
    max_response_mb: float = DEFAULT_MAX_RESPONSE_MB  # a bigger answer is refused
    unreadable: str = ""  # why a secret file could not be read: said when this is used

    def __post_init__(self) -> None:
        _check_url(self.url)
        for name in self.namespaces:
            if not _NAMESPACE.fullmatch(name):
                raise UsageError(f"namespace {name!r} is not a Kubernetes namespace name")
        if self.token is not None:
            check_header_value("the token", self.token)
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise UsageError(f"header name {name!r} is not a valid HTTP header name")
            check_header_value(f"header {name}", value)
        if self.dialect not in DIALECT_NAMES:
            raise UsageError(f"unknown dialect {self.dialect!r}; choose {', '.join(DIALECT_NAMES)}")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise UsageError(f"CA bundle {self.ca_file} is not a readable file")
