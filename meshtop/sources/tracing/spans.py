"""What every backend's span parser shares: when a span failed, the cap on a trace's
spans, and what parsing an answer that is not what its API promises raises."""

from __future__ import annotations

from collections.abc import Mapping

from meshtop.errors import BackendError


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


# What parsing an answer that is JSON but not what the API promises raises: a missing key,
# a wrong type, a number too big for an int (`"duration": 1e400` is infinity), too deep.
GARBLED = (
    KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError, RecursionError
)  # fmt: skip


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
