"""The values a traffic-policy change is given, as the CLI's flags and the console's
commands both take them (issue 21): a share of requests (`10%`), a fault's abort
(`503:10%`) and delay (`2s:25%`), a duration Istio accepts, a number of retry attempts
(or `off`, or `default`), the conditions Envoy retries on. Each wrong one is one
`UsageError` line that says what was expected."""

from __future__ import annotations

import re

from meshtop.errors import UsageError
from meshtop.steering.edit import OFF
from meshtop.units import parse_duration

# what Envoy retries on (x-envoy-retry-on, x-envoy-retry-grpc-on), as Istio passes it on;
# a status code (503) is one too
RETRY_ON = frozenset((
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
    "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
    "retriable-headers", "http3-post-connect-failure", "cancelled", "deadline-exceeded",
    "internal", "resource-exhausted", "unavailable",
))  # fmt: skip
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%?\s*")
_COUNT = re.compile(r"[0-9]{1,7}")


def percent(text: str, what: str) -> float:
    """`10%` (or `10`, `0.5%`): a share of requests, more than 0 and at most 100."""
    found = _PERCENT.fullmatch(text)
    share = float(found.group(1)) if found else -1.0
    if not 0 < share <= 100:
        raise UsageError(f"{what}: {text!r} is not a percentage above 0 and at most 100, e.g. 10%")
    return share


def seconds(text: str, what: str) -> float:
    """A duration from 1ms to under a day: what Istio's CRDs take (Go's durations have
    no days)."""
    said = parse_duration(text.strip(), what=what)
    if said < 0.001 or said >= 86400:
        raise UsageError(f"{what} {text!r} is not from 1ms to under a day")
    return said


def abort(text: str) -> tuple[int, float]:
    """`503:10%`: the HTTP status to answer (200 to 599, as Envoy takes it) and the share."""
    status, sep, share = text.partition(":")
    if not sep or not status.strip().isdigit() or not 200 <= int(status) <= 599:
        raise UsageError(
            f"--abort {text!r} is not STATUS:PERCENT with a status from 200 to 599, e.g. 503:10%"
        )
    return int(status), percent(share, f"--abort {text!r}")


def delay(text: str) -> tuple[float, float]:
    """`2s:25%`: how long to hold a request, and the share."""
    held, sep, share = text.rpartition(":")
    if not sep:
        raise UsageError(f"--delay {text!r} is not DURATION:PERCENT, e.g. 2s:25%")
    return seconds(held, f"--delay {text!r}:"), percent(share, f"--delay {text!r}")


def count(text: str, what: str, most: int = 1_000_000) -> int:
    """A whole number from 0 to `most`."""
    if not _COUNT.fullmatch(text.strip()) or int(text) > most:
        raise UsageError(f"{what} {text!r} is not a whole number from 0 to {most}")
    return int(text)


def attempts(text: str, what: str = "--retries") -> int:
    """A number of attempts (0 to 100), `off` (0: no retries) or `default` (`OFF`: no
    retry policy, so Istio's own, 2 attempts)."""
    word = text.strip().lower()
    if word == "off":
        return 0
    if word == "default":
        return int(OFF)
    if not word.isdigit() or int(word) > 100:
        raise UsageError(f"{what} {text!r} is not a number of attempts (0 to 100), off or default")
    return int(word)


def retry_on(text: str, what: str = "--retry-on") -> str:
    """`5xx,reset,503`: conditions Envoy retries on, or status codes."""
    said = [w.strip() for w in text.split(",") if w.strip()]
    wrong = [w for w in said if w not in RETRY_ON and not (w.isdigit() and 100 <= int(w) <= 599)]
    if not said or wrong:
        raise UsageError(
            f"{what} {text!r}: {', '.join(wrong) or 'nothing'} is not a condition Envoy "
            f"retries on ({', '.join(sorted(RETRY_ON))}, or a status code)"
        )
    return ",".join(said)
