"""The HTTP side of the Prometheus source: a session whose every request ends by one
deadline and whose every body is capped, the failures a user can meet said in one line,
and large answers decoded a series at a time."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import requests

from meshtop import turns
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


# A query longer than this goes in a POST's form body, as Prometheus's API takes a large
# query, not in a GET's URL: there requests and urllib3 walk the URL a character at a
# time, three times over (0.8-0.9 ms of Python for a namespace's 9 kB history query on a
# 2-core machine, 4 ms for a set of three), and the twelve of a namespace's detail, begun
# together on their threads, held the screen's thread 50-90 ms (issue 17).
POSTED_CHARS = 1024
QUERY_PATHS = ("/api/v1/query", "/api/v1/query_range")
# what a server (or a proxy before it) that takes no POST answers: asked by GET from then on
POST_REFUSED = frozenset({405, 501})


class BoundedSession(requests.Session):
    """A session whose every request ends by its deadline (connect, send and every byte
    of the body, not each read on its own) and whose every body is capped in size.
    Responses stream; `read_body`, the first response hook, reads them in chunks.
    A long query is posted (`POSTED_CHARS`)."""

    def __init__(self, config: PrometheusConfig) -> None:
        super().__init__()
        self.config = config
        self.posting = True  # until the server refuses a POST

    def request(  # type: ignore[override]
        self, method: str, url: str, params: Any = None, data: Any = None, **kwargs: Any
    ) -> requests.Response:
        """The client's GET of a long query sent as a POST of a form, the same fields,
        unless the server has refused one (then that GET, and every one after it)."""
        if (
            self.posting
            and method.upper() == "GET"
            and data is None
            and isinstance(params, dict)
            and len(str(params.get("query", ""))) > POSTED_CHARS
            and url.rstrip("/").endswith(QUERY_PATHS)
        ):
            response = super().request("POST", url, data=params, **kwargs)
            if response.status_code not in POST_REFUSED:
                return response
            self.posting = False
        return super().request(method, url, params=params, data=data, **kwargs)

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
        # raised after the `except`, not in it: an exception raised in one keeps the one
        # it handles (`__context__`, even `from None`), and that one's traceback the frame
        # that read, with every chunk read so far (64 MiB at the cap, kept as long as the
        # error is: a refresh's task, in a cycle the garbage collector must find)
        error: BackendError | None = None
        try:
            response._content = bounded.read_all(response.raw, until=until, cap=cap)
        except bounded.Late:
            error = BackendError(late(self.config))
        except bounded.TooBig:
            error = BackendError(too_big(self.config))
        except bounded.BrokenOff as exc:
            error = BackendError(
                f"Prometheus at {self.config.url} broke off its answer: {reason(exc)}"
            )
        if error is not None:
            raise error
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


# An answer this large is decoded a piece at a time: one `json.loads` of it would hold the
# interpreter (and the console's thread) for its whole length, some 5 ms per MiB, and so
# would one `bytes.decode` of it (0.6 ms per MiB: 70 ms for a hostile backend's 122 MiB).
STEPPED_BYTES = 1 << 20
PIECE_CHARS = 1 << 18  # about a millisecond of decoding
_RESULT = re.compile(rb'"result"\s*:\s*\[')
_SPACE = re.compile(r"[ \t\n\r]*")
# Where one series ends and the next begins, in the compact JSON Prometheus writes: it
# cannot occur inside a JSON string, whose quotes are escaped, and it is ASCII, so a piece
# cut there is whole UTF-8.
_BETWEEN = b'},{"metric":'


def _skip(text: str, at: int) -> int:
    """Where the JSON after `at` goes on, past any whitespace."""
    found = _SPACE.match(text, at)
    return found.end() if found is not None else at


# put where the list was, to find that it was the answer's `data.result` (not a list
# nested elsewhere, nor one a later `"result"` key replaces, as the last key wins)
_IN_ITS_PLACE = "\u0000meshtop: the result"


def _text(content: bytes) -> str:
    """Bytes as the client decodes an answer (`application/json`: UTF-8, a byte that is
    not UTF-8 as U+FFFD)."""
    return content.decode("utf-8", "replace")


def decode(content: bytes) -> Any:
    """The JSON of an API answer. A large one's `result` is decoded a piece of some
    thousand series at a time, the bytes of each piece too, other threads running in
    between (the last piece, or an answer written with spaces, one series at a time),
    and what surrounds the list (status, warnings, the result's type) apart. The same
    document as `json.loads` of the whole text gives, or its `ValueError`: every cut is
    at an ASCII byte, so each piece's text is the whole text's."""
    start = _RESULT.search(content) if len(content) >= STEPPED_BYTES else None
    if start is None:
        return json.loads(_text(content))
    step = json.JSONDecoder().raw_decode
    result: list[Any] = []
    try:
        at = start.end()
        while (cut := content.find(_BETWEEN, at + PIECE_CHARS)) >= 0:
            turns.give_way()  # a key's work on the screen's thread first
            result += json.loads(f"[{_text(content[at : cut + 1])}]")
            at = cut + 2
        rest = _text(content[at:])  # the last piece, and what follows the list
        at = _skip(rest, 0)
        while rest[at : at + 1] != "]":
            element, at = step(rest, at)
            result.append(element)
            at = _skip(rest, at)
            if rest[at : at + 1] == ",":
                at = _skip(rest, at + 1)
                if rest[at : at + 1] == "]":
                    raise ValueError("a comma before the end")
            elif rest[at : at + 1] != "]":
                raise ValueError("not a list")
        body = json.loads(_text(content[: start.end()]) + json.dumps(_IN_ITS_PLACE) + rest[at:])
    except ValueError:
        return json.loads(_text(content))  # not the shape expected: decoded whole
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("result") != [_IN_ITS_PLACE]:
        return json.loads(_text(content))  # the list found was not the answer's result
    data["result"] = result
    return body
