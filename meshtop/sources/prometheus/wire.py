"""The HTTP side of the Prometheus source: a session whose every request ends by one
deadline and whose every body is capped, and the failures a user can meet said in one line."""

from __future__ import annotations

import re
import time
from typing import Any

import requests

from meshtop.errors import BackendError
from meshtop.sources import bounded
from meshtop.sources.prometheus_config import PrometheusConfig


def describe_http(config: PrometheusConfig, response: requests.Response) -> str | None:
    status = response.status_code
    where = config.url
    if status == 401:
        return f"Prometheus at {where} refused the credentials (HTTP 401): check the token or user"
    if status == 403:
        return f"Prometheus at {where} forbids this query (HTTP 403): check the token's permissions"
    if status == 404:
        return f"no Prometheus API at {where} (HTTP 404): check the URL and its path prefix"
    return None


class BoundedSession(requests.Session):
    """A session whose every request ends by its deadline (connect, send and every byte
    of the body, not each read on its own) and whose every body is capped in size.
    Responses stream; `read_body`, the first response hook, reads them in chunks."""

    def __init__(self, config: PrometheusConfig) -> None:
        super().__init__()
        self.config = config

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with bounded.deadline(self.config.timeout_s) as until:
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise BackendError(late(self.config))
            kwargs["stream"] = True
            kwargs["timeout"] = remaining  # connecting, and each read until the headers
            bounded.arm()
            try:
                return super().send(request, **kwargs)
            except requests.exceptions.ConnectionError:
                if bounded.cut_off():  # the watchdog's doing, not the server's
                    raise BackendError(
                        f"Prometheus at {self.config.url} did not answer within "
                        f"{self.config.timeout_s:g}s"
                    ) from None
                raise

    def read_body(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The whole body, by the deadline and within the cap, or one clear `BackendError`
        (and the connection closed, not reused)."""
        until = bounded.DEADLINE.get() or time.monotonic() + self.config.timeout_s
        cap = int(self.config.max_response_mb * bounded.MIB)
        try:
            response._content = bounded.read_all(response.raw, until=until, cap=cap)
        except bounded.Late:
            raise BackendError(late(self.config)) from None
        except bounded.TooBig:
            raise BackendError(too_big(self.config)) from None
        except bounded.BrokenOff as exc:
            raise BackendError(
                f"Prometheus at {self.config.url} broke off its answer: {reason(exc)}"
            ) from None
        response._content_consumed = True


def late(config: PrometheusConfig) -> str:
    return f"Prometheus at {config.url} did not finish answering within {config.timeout_s:g}s"


def too_big(config: PrometheusConfig) -> str:
    return (
        f"Prometheus at {config.url} answered more than {config.max_response_mb:g} MiB; "
        "raise [prometheus] max_response_mb if a query really needs it"
    )


def tls_reason(exc: Exception) -> str:
    """What OpenSSL said, in its words (`wrong version number`), not the nested reprs
    (`SSLError(SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version…`)."""
    found = re.search(r"\[SSL: [A-Z0-9_]+\] ([^('\"]+)", str(exc))
    return found[1].strip() if found else reason(exc)


def reason(exc: Exception) -> str:
    """The innermost reason of a requests error, e.g. `connection refused`."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "certificate verify failed",
        "No route to host",
        "Temporary failure in name resolution",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return text.split("(Caused by ")[-1].rstrip(")")[:120]
