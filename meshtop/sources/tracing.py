"""What the trace adapters share: trace and span ids as the backends send them (hex or
base64) made one form, the HTTP calls with every way they fail turned into one clear
`BackendError`, and how a trace is matched to a service or an edge of the mesh by the
tags Istio's proxies write (`istio.canonical_service`, `istio.namespace`,
`upstream_cluster`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from meshtop.errors import BackendError, UsageError
from meshtop.model import Span, Trace, TraceQuery
from meshtop.sources.bounded import DEFAULT_MAX_RESPONSE_MB, MIB

_HEX = re.compile(r"^[0-9a-fA-F]+$")
KINDS = ("jaeger", "tempo", "zipkin")
# A cap that no real mesh's traces come near (a trace of a few thousand spans is already a
# large one) and that keeps a hostile or broken backend from taking meshtop's memory.
DEFAULT_MAX_SPANS = 100_000


def hex_id(value: object) -> str:
    """A trace or span id in lower-case hex, 16 or 32 digits, from hex (any case; leading
    zeros may have been dropped, as Jaeger's and Tempo's JSON do) or from base64 (padded or
    not, standard or URL-safe, as protobuf-JSON writes ids). '' for none. An id that is
    neither is kept as it is, lower-cased: a span still shows."""
    text = str(value or "").strip()
    if not text:
        return ""
    # 11 and 22 characters: 8 and 16 bytes in unpadded base64, before hex that lost zeros
    if _HEX.match(text) and len(text) <= 32 and len(text) not in (11, 22):
        return text.lower().rjust(16 if len(text) <= 16 else 32, "0")
    raw = _base64(text)
    if raw is not None and len(raw) in (8, 16):
        return raw.hex()
    if _HEX.match(text) and len(text) <= 32:
        return text.lower().rjust(16 if len(text) <= 16 else 32, "0")
    return text.lower()


def _base64(text: str) -> bytes | None:
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return (
                decode(padded.encode(), validate=True)
                if decode is base64.b64decode
                else decode(padded.encode())
            )
        except (binascii.Error, ValueError):
            continue
    return None


def user_trace_id(text: str) -> str:
    """A trace id the user typed: hex (16 or 32 digits) or base64. Raises `UsageError`."""
    found = hex_id(text)
    if len(found) not in (16, 32) or not _HEX.match(found):
        raise UsageError(f"{text!r} is not a trace id: give 16 or 32 hex digits (or base64)")
    return found


# -- matching traces to the mesh ---------------------------------------------------------


def canonical(span: Span) -> tuple[str, str]:
    """(service, namespace) of the workload that wrote the span: Istio's own tags first,
    else the service name, which Istio writes `app.namespace`."""
    name = span.tags.get("istio.canonical_service") or span.service
    namespace = span.tags.get("istio.namespace", "")
    if "." in name and not span.tags.get("istio.canonical_service"):
        name, _, rest = name.partition(".")
        namespace = namespace or rest.split(".")[0]
    return name, namespace


def _is(span: Span, service: str, namespace: str, version: str = "") -> bool:
    name, ns = canonical(span)
    if name != service and span.service != service:  # `my.service` may be a whole name
        return False
    if name == service and namespace and ns and ns != namespace:
        return False
    revision = span.tags.get("istio.canonical_revision", "")
    return not version or not revision or revision == version


def calls(trace: Trace, q: TraceQuery) -> bool:
    """Whether the trace shows `q.service` calling `q.peer_service`: a span of the peer
    whose parent is the service's, or a client span of the service whose upstream
    cluster is the peer's host (a call that never reached the peer, e.g. `UF`)."""
    assert q.peer_service is not None
    by_id = {s.span_id: s for s in trace.spans}
    for s in trace.spans:
        if _is(s, q.peer_service, q.peer_namespace, q.peer_version):
            parent = by_id.get(s.parent_id or "")
            if parent is not None and _is(parent, q.service, q.namespace, q.version):
                return True
        elif _is(s, q.service, q.namespace, q.version):
            # Istio's cluster name carries the subset: outbound|9080|v3|reviews.bookinfo…
            cluster = s.tags.get("upstream_cluster", "")
            host = f"|{q.peer_service}.{q.peer_namespace}." if q.peer_namespace else ""
            subset = f"|{q.peer_version}|" if q.peer_version else "|"
            if host and host in cluster and (subset == "|" or subset in cluster):
                return True
    return False


def matches(trace: Trace, q: TraceQuery) -> bool:
    """Whether a trace belongs in the list `q` asks for."""
    if not any(_is(s, q.service, q.namespace, q.version) for s in trace.spans):
        return False
    if q.peer_service is not None and not calls(trace, q):
        return False
    if q.errors_only and not trace.has_error:
        return False
    if q.operation and not any(s.operation == q.operation for s in trace.spans):
        return False
    return q.min_duration_ms is None or trace.duration_us >= q.min_duration_ms * 1000


def backend_service(service: str, namespace: str) -> str:
    """The service name a backend files Istio's spans under: `app.namespace`."""
    return f"{service}.{namespace}" if namespace else service


def is_error(tags: Mapping[str, str], status_code: int | None = None) -> bool:
    """A span failed: OTLP status ERROR, an `error` tag, an HTTP 5xx, a gRPC status other
    than OK, or Envoy response flags."""
    if status_code == 2:
        return True
    if tags.get("error", "").lower() in ("true", "1"):
        return True
    if tags.get("otel.status_code", "").upper() == "ERROR":
        return True
    code = tags.get("http.status_code") or tags.get("http.response.status_code") or ""
    if code.startswith("5"):
        return True
    grpc = tags.get("grpc.status_code") or tags.get("rpc.grpc.status_code") or ""
    if grpc and grpc != "0":
        return True
    return tags.get("response_flags", "-") not in ("-", "")


# -- HTTP --------------------------------------------------------------------------------


# What parsing an answer that is JSON but not what the API promises raises: a missing key,
# a wrong type, a number too big for an int (`"duration": 1e400` is infinity), too deep.
GARBLED = (
    KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError, RecursionError
)  # fmt: skip


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


class TraceHTTP:
    """GETs against one trace backend; every failure is one clear `BackendError`."""

    def __init__(self, config: TracingConfig, what: str) -> None:
        self.config = config
        self.what = what  # "Jaeger", "Tempo", "Zipkin"

    @property
    def name(self) -> str:
        return f"{self.config.kind} {self.config.url}"

    async def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, missing: str = ""
    ) -> Any:
        """The decoded JSON of `GET url+path`. `missing`: what a 404 means here (an
        unknown trace id); without it a 404 says the URL is wrong."""
        where = f"{self.what} at {self.config.url}"
        headers_in = False  # whether the answer had begun: then a timeout cut its body
        cap = int(self.config.max_response_mb * MIB)
        chunks: list[bytes] = []
        try:
            # One deadline for all of it: connecting, sending and every byte of the body.
            async with asyncio.timeout(self.config.timeout_s):
                async with (
                    httpx.AsyncClient(
                        timeout=self.config.timeout_s, headers=dict(self.config.headers)
                    ) as client,
                    client.stream("GET", self.config.url + path, params=params) as response,
                ):
                    headers_in = True
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > cap:
                            raise BackendError(
                                f"{where} answered more than {self.config.max_response_mb:g} "
                                "MiB; raise [tracing] max_response_mb if an answer really "
                                "needs it"
                            )
                        chunks.append(chunk)
        except (TimeoutError, httpx.TimeoutException):
            said = "finish answering" if headers_in else "answer"
            timeout = self.config.timeout_s
            raise BackendError(f"{where} did not {said} within {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach {where}: {_reason(exc)}") from None
        body = b"".join(chunks)
        del chunks
        status = response.status_code
        if status == 404:
            raise NotFound(missing or f"no {self.what} API at {where} (HTTP 404 for {path})")
        if status in (401, 403):
            raise BackendError(f"{where} refused the request (HTTP {status}): check credentials")
        if status >= 400:
            raise BackendError(f"{where} answered HTTP {status}: {error_reason(body)}")
        try:
            return json.loads(body)
        except RecursionError:  # 200,000 nested `[`: too deep for the decoder, not a crash
            raise BackendError(f"{where} answered JSON nested too deep to read") from None
        except ValueError:
            snippet = body[:60].decode("utf-8", "replace").replace("\n", " ")
            raise BackendError(
                f"{where} answered something that is not JSON ({snippet!r}): is this its API?"
            ) from None

    def garbled(self, exc: Exception) -> BackendError:
        """The error for an answer that parsed as JSON but is not what the API promises."""
        return shape_error(self.what, self.config.url, f"{type(exc).__name__} {exc}")

    def too_many(self, exc: TooManySpans) -> BackendError:
        """The error for a trace over the span cap, naming the backend."""
        return BackendError(
            f"{self.what} at {self.config.url} answered a trace of more than {exc.cap:,} "
            "spans; raise [tracing] max_spans if a trace really has that many"
        )


class NotFound(BackendError):
    """HTTP 404: an unknown trace, or an API the backend does not have."""


class TooManySpans(BackendError):
    """A trace with more spans than the cap; `TraceHTTP.too_many` says whose."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"a trace has more than {cap:,} spans")
        self.cap = cap


def check_spans(count: int, cap: int | None) -> None:
    """Raise `TooManySpans` when a trace's `count` of spans is over `cap` (None: no cap).
    Called before the spans are built, so that a huge trace costs no more than its JSON."""
    if cap is not None and count > cap:
        raise TooManySpans(cap)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    for marker in ("Connection refused", "Name or service not known", "No route to host"):
        if marker.lower() in text.lower():
            return marker.lower()
    return text[:120]


def shape_error(what: str, url: str, detail: str) -> BackendError:
    return BackendError(
        f"{what} at {url} answered JSON that is not what its API promises: {detail}"
    )


def error_reason(body: bytes) -> str:
    """A trace backend's error answer in one line of 200 characters at most: Jaeger v3's
    `error.message`, its older API's `errors[0].msg`, a `message` or `error` string, else
    the body's text (Zipkin's, Tempo's)."""
    text = body[:65536].decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict):
        error, errors = doc.get("error"), doc.get("errors")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            text = error["message"]
        elif isinstance(errors, list) and errors and isinstance(errors[0], dict):
            text = str(errors[0].get("msg") or text)
        elif isinstance(doc.get("message"), str):
            text = doc["message"]
        elif isinstance(error, str):
            text = error
    return " ".join(text.split())[:200]
