"""GETs against one trace backend, each within one deadline for all of it and a size
cap, with every way they fail turned into one clear `BackendError`, over a client the
adapter keeps: one per running event loop, its connections reused from one request to the
next, closed by `aclose()` or with its loop."""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from meshtop.errors import BackendError
from meshtop.sources.bounded import MIB
from meshtop.sources.tracing.config import TracingConfig
from meshtop.sources.tracing.spans import TooManySpans


@dataclass(frozen=True, slots=True)
class _LoopClient:
    client: httpx.AsyncClient
    closer: AsyncGenerator[None, None]  # `_closed_with_the_loop(client)`, started


async def _closed_with_the_loop(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Started once on the client's loop, this generator is one the loop closes when it
    ends (`asyncio.run`'s `shutdown_asyncgens`, Textual's too): the client's connections
    are closed on their own loop, not left to the garbage collector."""
    try:
        yield
    finally:
        await client.aclose()


class TraceHTTP:
    """GETs against one trace backend; every failure is one clear `BackendError`.

    An `httpx.AsyncClient` is bound to the event loop it runs on, and meshtop runs more
    than one: the console's, one per CLI command, a test's. So there is one client per
    running loop, keyed weakly by the loop: a closed loop never runs again, so its client
    is never handed out again, and is dropped once its loop is gone."""

    def __init__(self, config: TracingConfig, what: str) -> None:
        self.config = config
        self.what = what  # "Jaeger", "Tempo", "Zipkin"
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # loops on several threads may ask at once

    @property
    def name(self) -> str:
        return f"{self.config.kind} {self.config.url}"

    async def _client(self) -> httpx.AsyncClient:
        """The running loop's client, made on its first request."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for gone in [other for other in self._clients if other.is_closed()]:
                del self._clients[gone]  # a loop closed without closing its generators
            held = self._clients.get(loop)
            if held is not None and not held.client.is_closed:
                return held.client
            client = httpx.AsyncClient(
                timeout=self.config.timeout_s, headers=dict(self.config.headers)
            )
            closer = _closed_with_the_loop(client)
            self._clients[loop] = _LoopClient(client, closer)
        await anext(closer)  # runs to its `yield` at once: the loop now knows it
        return client

    async def aclose(self) -> None:
        """Close the running loop's client and its connections; a later request opens a
        new one. (The clients of other loops are closed with their loops.)"""
        with self._lock:
            held = self._clients.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held.closer.aclose()  # its `finally` closes the client

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
                client = await self._client()
                async with client.stream("GET", self.config.url + path, params=params) as response:
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
