"""A trace backend's settings (`TracingConfig`) and `--tracing KIND=URL` read into them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from meshtop.errors import UsageError
from meshtop.sources.bounded import DEFAULT_MAX_RESPONSE_MB

KINDS = ("jaeger", "tempo", "zipkin")
# A cap that no real mesh's traces come near (a trace of a few thousand spans is already a
# large one) and that keeps a hostile or broken backend from taking meshtop's memory.
DEFAULT_MAX_SPANS = 100_000


@dataclass(frozen=True)
class TracingConfig:
    kind: str  # jaeger, tempo, zipkin
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. X-Scope-OrgID for Tempo
    timeout_s: float = 10.0  # a deadline for each request, all of it: connect to last byte
    max_response_mb: float = DEFAULT_MAX_RESPONSE_MB  # a bigger answer is refused
    max_spans: int = DEFAULT_MAX_SPANS  # a trace with more spans is refused


def parse_tracing(text: str, headers: Mapping[str, str] | None = None) -> TracingConfig:
    """`jaeger=http://jaeger:16686`, `tempo=…`, `zipkin=…`. Raises `UsageError`."""
    kind, sep, url = text.partition("=")
    if not sep or kind not in KINDS:
        raise UsageError(f"--tracing {text!r}: write jaeger=URL, tempo=URL or zipkin=URL")
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"--tracing {text!r}: {url!r} is not an http(s) URL")
    if parsed.userinfo:
        raise UsageError(f"--tracing {text!r}: credentials do not go in the URL")
    return TracingConfig(kind, url.rstrip("/"), dict(headers or {}))
