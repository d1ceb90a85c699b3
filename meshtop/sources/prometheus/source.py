"""`PrometheusMetrics`, the metrics source over the Prometheus HTTP API (Prometheus,
Thanos, Mimir, Cortex, VictoriaMetrics) through prometheus-api-client: a refresh's
queries (`queries`), asked concurrently in worker threads within one deadline, the
latency answer made whole (`latency`), and the answers joined into edges (`answers`); an
edge's history; and, when a refresh finds nothing, why. (Over 400 lines: each of these
asks through the one client, its deadline and its check of every answer, and keeps
what it learnt for the next refresh on the source.) In the console (`latency_later`) the
latency query goes on behind the refreshes, asked again only once it is due, each refresh
carrying the newest answer in; and a refresh asks again only once the mesh can have been
scraped since it last asked, or once the latency it showed in doubt (still coming,
refused, stale) has another answer."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from meshtop.errors import BackendError, UsageError
from meshtop.history import history_step
from meshtop.model import History
from meshtop.sources import bounded
from meshtop.sources.dialects import AUTO, DETECT_QUERY, Dialect, detect, dialect
from meshtop.sources.prometheus.answers import _known, join, parse_histories
from meshtop.sources.prometheus.latency import (
    Cuts,
    Latencies,
    cuts_for,
    edge_quantiles,
    first_cuts,
    fresh,
    merge,
    missing,
    needed,
    unanswered,
    unmeshed,
    unsure,
    used,
)
from meshtop.sources.prometheus.queries import (
    BATCH_NAMES,
    Later,
    Whom,
    _selector,
    batch_queries,
    batchable,
    first_and,
    latency_query,
    snapshot_queries,
    split_by,
)
from meshtop.sources.prometheus.wire import (
    POST_REFUSED,
    STEPPED_BYTES,
    BoundedSession,
    decode,
    describe_http,
    reason,
    tls_reason,
)
from meshtop.sources.prometheus_config import PrometheusConfig
from meshtop.sources.protocols import Pair, Traffic
from meshtop.turns import let_go
from meshtop.units import duration

_T = TypeVar("_T")
# a refresh's latency: its quantiles, and the backend's warnings about its answers
_Timed = tuple[Latencies, set[str]]
_Answer = tuple[list[dict[str, Any]], tuple[str, ...]]  # a query's series and warnings


@dataclass(frozen=True, slots=True)
class _Newest:
    """The console's newest latency answer (`PrometheusMetrics._behind`): where the
    newest query failed, the last good answer of the window kept, as a stale source's
    edges are."""

    window_s: float
    latencies: Latencies | None  # the last good answer's; None: none came yet
    warnings: frozenset[str]  # the backend's, about it
    why: str  # why the newest query failed ("" where it answered)
    asked: float  # when the newest query was asked (time.monotonic())
    took_s: float  # how long it took to answer, made whole, or to fail
    of: float  # when the query of `latencies` was asked: how old they are


# The latency and TCP queries end this share of the timeout (at most SPARE_MAX_S) before
# a refresh's deadline: time to make the edges from the requests answer where they fail
SPARE_SHARE = 0.1
SPARE_MAX_S = 1.0
UNAVAILABLE = {"latency": "latency", "tcp": "TCP"}  # a failed query's figures, in words
# In the console (`latency_later`), a refresh that asks the latency waits for it this long
# once the requests and TCP answers are in, then gives its edges with the newest answer in
LATENCY_GRACE_S = 0.3
# where no latency answer has come yet, only for a requests answer of at most this many
# rows: the first latency query asks every bucket of every call, about 0.4 ms of
# Prometheus a row (at 2,000 services 9,423 rows, 3.1-4.6 s on two cores), and the first
# frame waited the whole grace for an answer that could not come in it (issue 17)
LATENCY_GRACE_ROWS = 500
# and asks it again once this many times as long as the last one took has gone by: at
# 2,000 services on two cores the query took 3-6 s, asked back to back beside the 5 s
# scrape (Prometheus busy a whole core, the live figures waiting for it every refresh)
LATENCY_SPACING = 4.0
EMPTY_RECHECK_S = 60.0  # an empty console asks why once a minute, not every refresh
SPACING_LOOKBACK_S = 900.0  # long enough to hold a few samples of a slow scrape
# In the console (`latency_later`), a refresh asks again once the mesh's proxies can have
# been scraped since the last answer was asked, or its latency in doubt has another
# answer (`PrometheusMetrics._still`; their scrape interval, read from the
# backend this often): before that, the same samples would be read, decoded and joined
# again every refresh (at 2,000 services, 20,000-30,000 series, about a tenth of a core)
RESPACE_S = 600.0
# The first latency query's bucket bounds, read from the backend's index (a millisecond at
# 2,000 services): within this, or the query asks for every bucket
BOUNDS_S = 1.0
MAX_BOUNDS = 1000  # and of at most this many (Istio's default buckets are 20)
MESH_NAMES = {"istio": "Istio", "ambient": "Istio ambient", "linkerd": "Linkerd"}
# the metrics `DETECT_QUERY` finds for each dialect
_PROBED = {
    "istio": ("istio_requests_total", "istio_tcp_sent_bytes_total"),
    "ambient": ("istio_requests_total", "istio_tcp_sent_bytes_total"),
    "linkerd": ("response_total",),
}


class _Check(threading.local):
    warnings: tuple[str, ...] = ()


def _at(rows: Sequence[dict[str, Any]]) -> float | None:
    """The moment an instant query's answer was worked out at, its samples' time (the
    backend's own clock: asking again at it reads the same window, whatever meshtop's
    clock says); None without one."""
    try:
        at = rows[0]["value"][0]
        when = float(at) if type(at) in (int, float) else math.nan
    except (IndexError, KeyError, TypeError, OverflowError):  # an integer of 400 digits
        return None
    return when if math.isfinite(when) else None


def _why(error: BaseException) -> str:
    """What a failed query says, its traceback let go: its task keeps the error, and the
    traceback's frames the refresh's answers and the task (a cycle, which the console's
    garbage collector, kept out of its way, finds late: a hostile backend's refused
    latency left every refresh's answers and edges in one)."""
    error.__traceback__ = None
    return str(error)


def _due(newest: _Newest | None) -> bool:
    """Whether the console asks the latency again: where it has no answer of this window,
    or once `LATENCY_SPACING` times as long as the last one took (answered or failed) has
    gone by since it was asked. The latency queries then take at most about a fourth of
    Prometheus's time, whatever the mesh's size."""
    return newest is None or time.monotonic() - newest.asked >= LATENCY_SPACING * newest.took_s


def _quick(newest: _Newest | None, rows: int) -> bool:
    """The last latency answer came within the grace a refresh gives the next: the next
    likely will too (a small mesh's, every refresh that asks); with none yet, the requests
    answer has so few `rows` that the first can. Where not, a refresh does not wait for
    it, and shows the last one's figures meanwhile."""
    if newest is None:
        return rows <= LATENCY_GRACE_ROWS
    return newest.took_s <= LATENCY_GRACE_S


def _free(*lists: list[Any]) -> None:
    """The decoded rows of answers nobody reads any more, freed a piece at a time on a
    thread behind the screen (`let_go`), not waited for: not on the event loop's thread,
    the screen's, as the last coroutine holding them ends (at 2,000 services the requests
    and TCP answers' 18,663 rows every refresh that asks, and with the latency answer's
    56,000: 15-37 ms of the screen's thread)."""
    asyncio.get_running_loop().run_in_executor(None, let_go, *lists)


def _retrieved(task: asyncio.Future[None]) -> None:
    """The console's latency gone on behind its refresh (`PrometheusMetrics._behind`):
    never logged by asyncio as not retrieved (a bug in it is raised by the next refresh,
    `PrometheusMetrics._earlier`)."""
    if not task.cancelled():
        task.exception()


# Sets of history queries (`PrometheusMetrics.histories`) asked at a time: at 8 (24
# requests, more than the 10 connections requests keeps) the threads' turns at the
# interpreter's lock kept the screen's thread waiting 40-80 ms as a namespace's 40-55
# histories came one at a time; at 4, under 40 ms
BATCHES_AT_ONCE = 4


@dataclass(frozen=True)
class _Batch:
    """Pairs asked in one set of history queries: every pair of `sources` and
    `destinations` (none on a side: anything there) is read, those in `pairs` kept."""

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    pairs: tuple[Pair, ...]


def _batches(pairs: Sequence[Pair]) -> list[_Batch]:
    """The pairs, each once, in sets of history queries: those whose sources are
    workloads of one namespace (or one node, or none), and so their destinations, go
    together, up to `BATCH_NAMES` workloads a side."""

    def side(node_id: str | None) -> object:
        if node_id is None:
            return None
        return batchable(node_id) or node_id

    groups: dict[tuple[object, object], list[Pair]] = {}
    for pair in dict.fromkeys(pairs):
        groups.setdefault((side(pair[0]), side(pair[1])), []).append(pair)
    out = []
    for group in groups.values():
        ends = [[*dict.fromkeys(n for p in group if (n := p[e]) is not None)] for e in (0, 1)]
        for sources in _chunks(ends[0]):
            for destinations in _chunks(ends[1]):
                mine = set(sources), set(destinations)
                asked = tuple(
                    p for p in group
                    if (p[0] is None or p[0] in mine[0]) and (p[1] is None or p[1] in mine[1])
                )  # fmt: skip
                if asked:
                    out.append(_Batch(tuple(sources), tuple(destinations), asked))
    return out


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + BATCH_NAMES] for i in range(0, len(ids), BATCH_NAMES)] or [[]]


class PrometheusMetrics:
    """The real metrics source. `name` shows the URL, never a credential."""

    def __init__(
        self, config: PrometheusConfig, *, at: float | None = None, latency_later: bool = False
    ) -> None:
        """`at`: evaluate every query at this time (seconds since the epoch) rather than
        now, so that answers can be compared with hand-written queries. `latency_later`,
        the console's: the latency query (seconds of Prometheus at 2,000 services) goes
        on behind the refreshes, asked again only once it is due, and a refresh gives its
        edges with the newest latency answer in (`_traffic`); a command that prints once
        (export) waits for every figure."""
        if config.unreadable:  # its token or password file: said now, when it is needed
            raise UsageError(config.unreadable)
        self.config = config
        self.at = at
        self.latency_later = latency_later
        self._dialect: Dialect | None = None if config.dialect == AUTO else dialect(config.dialect)
        self._check = _Check()
        session = BoundedSession(config)
        session.verify = str(config.ca_file) if config.ca_file else not config.insecure
        session.hooks["response"] += [session.read_body, self._inspect]
        headers = dict(config.headers)
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._client = PrometheusConnect(
            url=config.url.rstrip("/"),
            headers=headers,
            auth=config.basic_auth,
            session=session,
            # meshtop retries a whole refresh with backoff; a retry per query would
            # only multiply the wait on a dead backend.
            retry=Retry(total=0, raise_on_status=False),
            timeout=config.timeout_s,
        )
        for adapter in session.adapters.values():  # after the client has mounted its own
            bounded.watch(getattr(adapter, "poolmanager", None))
        self.queries_sent = 0
        # per dialect, whom the last refresh asked about which calls' latency, the
        # buckets' bounds seen, and those the next refresh leaves out (`latency`)
        self._asked: dict[str, Later | None] = {}
        self._bounds: dict[str, dict[str, float]] = {}
        self._left_out: dict[str, Cuts] = {}
        # per dialect, in the console (`latency_later`): the latency query going on behind
        # the refreshes (`_behind`), and the newest answer in
        self._learning: dict[str, asyncio.Future[None]] = {}
        self._latest: dict[str, _Newest] = {}
        # why the last empty answer was empty, kept a while: (what was asked, when, why)
        self._empty: tuple[tuple[object, ...], float, tuple[str, ...]] | None = None
        # the console's last whole answer, to give again until a scrape can have changed
        # it or the latency it showed in doubt has another answer (`_still`): (window,
        # when it was asked (time.monotonic), the answer, the latency answer it carries)
        self._kept: tuple[float, float, Traffic, _Newest | None] | None = None
        self._spacing: tuple[float, float] | None = None  # (scrape interval, when read)

    def moment(self, at: float | None) -> PrometheusMetrics:
        """This backend with every query evaluated at `at` (None: now): the console's time
        travel, where `--at` gives the constructor its moment. A copy that shares the
        client, its connections and what the source learnt of the mesh (which calls'
        latency to ask about, the buckets' bounds: true at any moment, and each answer
        made whole where it is not), so that two moments can be asked at once. A moment
        is asked once, not refreshed: its refreshes wait for every figure, latency too."""
        moved = copy.copy(self)
        moved.at = at
        moved.latency_later = False
        moved._empty = None
        moved._kept = None
        return moved

    @property
    def name(self) -> str:
        return f"prometheus {self.config.url}"

    @property
    def dialect(self) -> Dialect | None:
        return self._dialect

    def _inspect(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every answer passes here first: refusals, garbage and errors become one clear
        `BackendError`; warnings are kept for the caller. A plain good answer is decoded
        by the client, once; a large one here, a series at a time (`wire.decode`), and
        handed to the client decoded."""
        posted = response.request is not None and response.request.method == "POST"
        if posted and response.status_code in POST_REFUSED:
            return  # a long query posted: the session asks it again by GET
        problem = describe_http(self.config, response)
        if problem:
            raise BackendError(problem)
        content = response.content
        looks_fine = response.status_code == 200 and b'"status":"success"' in content[:64]
        if looks_fine and len(content) >= STEPPED_BYTES:
            # decoded here a piece at a time, and looked at decoded: a look for "warnings"
            # in the bytes read them all at once (50 ms for 122 MiB), and a label value
            # `warnings` sent the answer to the client's decoding, whole
            try:
                decoded = decode(content)
            except ValueError:
                pass  # not JSON: said below
            else:
                response.json = lambda **_: decoded  # type: ignore[method-assign]
        elif looks_fine and b'"warnings"' not in content:
            self._check.warnings = ()
            return
        try:
            body = response.json()
        except ValueError:
            snippet = content[:60].decode("utf-8", "replace").replace("\n", " ")
            raise BackendError(
                f"Prometheus at {self.config.url} answered HTTP {response.status_code} with "
                f"something that is not JSON ({snippet!r}): is this the Prometheus API?"
            ) from None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            raise BackendError(
                f"Prometheus at {self.config.url} answered JSON that is not an API response"
            )
        if body["status"] == "error":
            raise BackendError(
                f"Prometheus at {self.config.url} rejected a query: "
                f"{body.get('errorType', 'error')}: {body.get('error', 'no reason given')}"
            )
        if response.status_code != 200:
            raise BackendError(
                f"Prometheus at {self.config.url} answered HTTP {response.status_code}"
            )
        data = body.get("data")
        answered = isinstance(data, dict) and isinstance(data.get("result"), list)
        labels = isinstance(data, list) and "/api/v1/label/" in (response.url or "")
        if not answered and not labels:  # a list: a label's values
            raise BackendError(f"Prometheus at {self.config.url} answered without a result")
        self._check.warnings = tuple(str(w) for w in body.get("warnings") or ())

    def _call(self, ask: Callable[[], Iterable[_T]]) -> list[_T]:
        """Run one API call; every way it can fail becomes one clear `BackendError`."""
        self.queries_sent += 1
        try:
            return list(ask())
        except BackendError:
            raise
        except requests.exceptions.SSLError as exc:
            hint = (
                "is it serving HTTPS on that port?"  # the check is skipped already
                if self.config.insecure
                else "give the CA bundle (--prometheus-ca), or --insecure to skip the check"
            )
            raise BackendError(
                f"TLS to Prometheus at {self.config.url} failed ({tls_reason(exc)}): {hint}"
            ) from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            # With retries off, urllib3 reports a read timeout as a connection error.
            if isinstance(exc, requests.exceptions.Timeout) or reason(exc) == "timed out":
                raise BackendError(
                    f"Prometheus at {self.config.url} did not answer within "
                    f"{self.config.timeout_s:g}s"
                ) from None
            raise BackendError(
                f"cannot reach Prometheus at {self.config.url}: {reason(exc)}"
            ) from None
        except (ValueError, KeyError, TypeError):  # a body the quick look let through
            raise BackendError(
                f"Prometheus at {self.config.url} answered something that is not an API response"
            ) from None
        except (requests.exceptions.RequestException, PrometheusApiClientException) as exc:
            raise BackendError(f"Prometheus at {self.config.url}: {exc}") from None

    def _query(
        self, promql: str, at: float | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """One instant query, at `at`, else at the source's own moment, else now."""
        self._check.warnings = ()
        when = at if at is not None else self.at
        params = {"time": f"{when:.3f}"} if when is not None else None
        result = self._call(lambda: self._client.custom_query(promql, params=params))
        if any(not isinstance(r, dict) or "value" not in r for r in result[:1]):
            raise BackendError(
                f"Prometheus at {self.config.url} answered something other than an instant "
                "vector: is this the Prometheus API?"
            )
        return result, self._check.warnings

    def _owned(
        self, promql: str, at: float | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """`_query`'s rows in a list of the refresh's own, which `_free` empties once read:
        not one whoever answered may keep (a recording of the answers, a table of rows)."""
        rows, said = self._query(promql, at)
        return list(rows), said

    async def _ask(
        self, promql: str, until: float | None = None, at: float | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """One instant query in a worker thread (at `at`, as `_query`), ended by `until`
        (`time.monotonic()`) if given, else by the deadline around it."""
        if until is None:
            return await asyncio.to_thread(self._owned, promql, at)
        allowed = until - time.monotonic()
        with bounded.deadline(allowed):
            try:
                return await asyncio.to_thread(self._owned, promql, at)
            except BackendError:
                if time.monotonic() < until:
                    raise
                # cut off by `until`, not by the timeout the message of a late answer names
                raise BackendError(
                    f"Prometheus at {self.config.url} did not answer within "
                    f"{max(allowed, 0.0):.1f}s, the time left for it in a refresh of "
                    f"{self.config.timeout_s:g}s (--timeout)"
                ) from None

    async def resolve_dialect(self) -> Dialect:
        if self._dialect is None:
            series, _ = await self._ask(DETECT_QUERY)
            found = detect([s["metric"] for s in series])
            if found is None and self.at is not None:
                when = datetime.fromtimestamp(self.at).strftime("%Y-%m-%d %H:%M:%S")
                raise BackendError(
                    f"no Istio or Linkerd metrics at {self.config.url} at {when}: before "
                    "what it keeps (its retention), or before the mesh ran"
                )
            if found is None:
                raise BackendError(
                    f"no Istio or Linkerd metrics at {self.config.url}: is this the mesh's "
                    "Prometheus? (--dialect istio|ambient|linkerd skips the check)"
                )
            self._dialect = found
        return self._dialect

    async def traffic(self, window_s: float) -> Traffic:
        """The mesh's edges over the last `window_s` (`_traffic`). In the console
        (`latency_later`, now), an answer that said nothing amiss of its requests and TCP
        answers is given again until the mesh's proxies can have been scraped since it was
        asked (`_still`): its figures would be the same samples read again. A latency
        still coming, refused or stale does not make every refresh ask (against a hostile
        backend's 20,000 edges, whose latency query outlasted the timeout, every refresh
        asked, decoded and joined again); the next refresh asks once it has another
        answer. A latency due again is asked by the next refresh that asks. Its latency's
        age (`Traffic.latency_age_s`) is said only where it is a scrape interval or more
        (a second at least): older samples than its rates'."""
        if not self.latency_later or self.at is not None:
            return (await self._traffic(window_s))[0]
        kept = self._kept
        if (
            kept is not None
            and kept[0] == window_s
            and self._still(await self.resolve_dialect(), window_s, kept[3])
            and time.monotonic() - kept[1] < await self._scrape_interval()
        ):
            return kept[2]
        asked = time.monotonic()
        self._kept = None
        traffic, doubts, newest = await self._traffic(window_s)
        age = traffic.latency_age_s
        if age is not None and (age < 1.0 or age < await self._scrape_interval()):
            traffic = replace(traffic, latency_age_s=None)  # the same samples, or as good as
        if not doubts:  # the join's own words are the samples', the same until a scrape
            self._kept = (window_s, asked, traffic, newest)
        return traffic

    def _still(self, d: Dialect, window_s: float, carried: _Newest | None) -> bool:
        """Whether a kept answer carrying the latency answer `carried` still has the
        newest worth showing: where the first answer is coming, while a latency query is
        going on; where `carried` failed (unavailable, stale), until another answer is
        in. A good answer's successor waits for the next scrape, as the rates do: at
        2,000 services one comes every 12-24 s."""
        if carried is None:
            return self._newest(d, window_s) is None and self._going(d) is not None
        return not carried.why or self._newest(d, window_s) is carried

    async def _scrape_interval(self) -> float:
        """How often the mesh's proxies are scraped, read every `RESPACE_S`; 0 where it
        cannot be read (every refresh then asks)."""
        now = time.monotonic()
        if self._spacing is None or now - self._spacing[1] >= RESPACE_S:
            d = await self.resolve_dialect()
            try:
                spacing = await self._sample_spacing(f"{d.requests}{_selector(d.extra_selector)}")
            except BackendError:
                spacing = None
            self._spacing = (spacing or 0.0, now)
        return self._spacing[0]

    async def _traffic(self, window_s: float) -> tuple[Traffic, tuple[str, ...], _Newest | None]:
        """The mesh's edges over the last `window_s`; in the console, its doubts, the
        words that make the next refresh ask again (the backend's warnings about the
        requests and TCP answers, TCP unavailable, why an answer is empty: not the join's
        about the series, which the same samples would give again, as a hostile
        publisher's `|` in a label value did every refresh of 20,000 edges, the join alone
        11% of a core; nor those about the latency, whose next answer `traffic` waits
        for); and, in the console, the latency answer the edges carry (`_latest`). The
        requests, the latency buckets and the TCP traffic are asked at once, each series
        read once; rarely, one more query for the latency of calls the last refresh gave
        no reason to ask about (`latency`).
        The requests answer makes the edges: its failure fails the refresh. The latency
        or the TCP answer failing (late, too big, refused) leaves those figures out of
        every edge, said in a warning (`latency unavailable: …`).

        With `latency_later` (the console), the latency goes on behind the refreshes
        (`_behind`): a refresh asks it once the requests and TCP answers are in, only
        when it is due (`_due`) and none is going on, and gives it `LATENCY_GRACE_S`
        where there has been no answer yet or the last came within that; its edges carry
        the newest latency answer of this window in, or say why there is none (`latency:
        the first answer … is still coming`, `latency unavailable: …`); where the newest
        failed after a good one, they carry the good one's, said stale (`latency stale:
        …`)."""
        with bounded.deadline(self.config.timeout_s) as until:  # the probe and the queries
            d = await self.resolve_dialect()
            first = d.name not in self._left_out  # no answer has said where they fall
            later = self.latency_later
            earlier = self._earlier(d) if later else self._going(d)
            queries = snapshot_queries(d, window_s, self.config.namespaces)
            # the latency and TCP queries end a little before the refresh's deadline: where
            # they cannot answer, the edges are still made from the requests in time
            spare = until - min(SPARE_MAX_S, SPARE_SHARE * self.config.timeout_s)
            # asked in this order: the requests, the latency (`_timed`), the TCP; in the
            # console, the latency after the other two are in: asked at once, it slows
            # them (at 2,000 services on two cores, 0.2-0.3 s alone, 0.4-1.2 s beside it),
            # and the first frame waits for them
            rates_asked = time.monotonic()
            requests = asyncio.ensure_future(self._ask(queries["requests"]))
            latency: asyncio.Future[Any] | None = None
            newest = self._newest(d, window_s) if later else None
            if later:
                tcp = asyncio.ensure_future(self._ask(queries["tcp"], spare))
                if earlier is None and _due(newest):
                    latency = self._learning[d.name] = asyncio.ensure_future(
                        self._behind(d, window_s, requests, tcp, spare)
                    )
                    latency.add_done_callback(_retrieved)
            else:
                latency = asyncio.ensure_future(self._timed(d, window_s, requests, spare, earlier))
                tcp = asyncio.ensure_future(self._ask(queries["tcp"], spare))
            pending: dict[str, asyncio.Future[_Answer]] = {"requests": requests, "tcp": tcp}
            answered = False
            try:
                answers, unavailable = await self._answers(pending)
                answered = True
                last = self._latest.get(d.name)  # of any window: how long one takes
                rows = len(answers["requests"][0])
                if latency is not None and later and _quick(last, rows):
                    grace = min(LATENCY_GRACE_S, spare - time.monotonic())
                    await asyncio.wait({latency}, timeout=max(0.0, grace))
            except BaseException:
                if latency is not None and (not later or not answered):
                    latency.cancel()  # no latency without requests (not asked yet)
                    self._forget(d, latency)
                raise
            found = {name: rows for name, (rows, _) in answers.items()}
            warnings = {w for _, ws in answers.values() for w in ws}
            answered_words = sorted(warnings)
            timed: Latencies | None = None
            coming = False
            age: float | None = None
            if later:
                newest = self._newest(d, window_s)  # come meanwhile, maybe
                coming = newest is None  # asked, or to be asked by the next refresh
                if newest is not None:
                    timed = newest.latencies
                    warnings |= newest.warnings
                    if timed is None:
                        unavailable["latency"] = newest.why
                    elif newest.why:  # the last good answer's figures, their age said
                        warnings.add(f"latency stale: {newest.why}")
                    if timed is not None and self.at is None:  # each query evaluated as asked
                        age = rates_asked - newest.of  # (`traffic` says it, or not)
            else:
                assert latency is not None
                try:
                    timed, noted = await latency
                    warnings |= noted
                except BackendError as exc:
                    unavailable["latency"] = _why(exc)
        quantiles = timed.quantiles if timed is not None else {}
        traffic = await self._work(lambda: join(d, found, quantiles))
        answered_rows = list(found.values())
        # the latency behind the refresh reads the requests still: freed once it has
        # ended (cancelled, as the console ends, a worker of its may read them still,
        # for an answer nobody takes)
        if latency is not None and not latency.done():
            latency.add_done_callback(lambda _: _free(*answered_rows))
        else:
            _free(*answered_rows)
        if coming:
            calls = sum(1 for e in traffic.edges if e.stats.rps > 0)
            what = f"the first answer ({calls} calls)" if first else "its answer"
        said = (
            *sorted(warnings),
            *(f"{UNAVAILABLE[name]} unavailable: {why}" for name, why in unavailable.items()),
            *((f"latency: {what} is still coming",) if coming else ()),
            *traffic.warnings,  # and the join's: series it could not key
        )
        empty = await self._why_empty(d, window_s, until) if not traffic.edges else ()
        said += empty  # never an empty report without a word
        doubts = (
            *answered_words,
            *(
                f"{UNAVAILABLE[name]} unavailable: {why}"
                for name, why in unavailable.items()
                if name != "latency" or not later
            ),
            *empty,
        )
        traffic = Traffic(traffic.nodes, traffic.edges, said, latency_age_s=age)
        return traffic, doubts, newest

    def _newest(self, d: Dialect, window_s: float) -> _Newest | None:
        """The console's newest latency answer, if it is of `window_s`."""
        newest = self._latest.get(d.name)
        return newest if newest is not None and newest.window_s == window_s else None

    async def _behind(
        self,
        d: Dialect,
        window_s: float,
        requests: asyncio.Future[_Answer],
        tcp: asyncio.Future[_Answer],
        spare: float,
    ) -> None:
        """The console's latency (`_timed`), asked once the `requests` and `tcp` answers
        are in, gone on behind its refresh: its answer, or why it failed, kept as the
        newest (`_latest`) for the refreshes until the next, with how long it took.
        Not called off with its refresh (`r`: a newer one): it is for those after."""
        bounded.on_its_own()
        await asyncio.wait((requests, tcp))  # each ends by the deadline
        asked = time.monotonic()
        timed: Latencies | None
        try:
            timed, warnings = await self._timed(d, window_s, requests, spare, None)
            why = ""
        except BackendError as exc:
            timed, warnings, why = None, set(), _why(exc)
        took = time.monotonic() - asked
        of = asked
        last = self._newest(d, window_s)
        if timed is None and last is not None and last.latencies is not None:
            timed, warnings, of = last.latencies, set(last.warnings), last.of  # kept, stale
        self._latest[d.name] = _Newest(window_s, timed, frozenset(warnings), why, asked, took, of)

    def _going(self, d: Dialect) -> asyncio.Future[None] | None:
        """The latency the console left going on behind a refresh (`_behind`), while it
        still is, for a moment to wait for (one learns at a time); looked at only: the
        console's own refreshes take it back (`_earlier`)."""
        task = self._learning.get(d.name)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def _earlier(self, d: Dialect) -> asyncio.Future[None] | None:
        """The latency the console left going on behind a refresh (`_behind`), while it
        still is; once ended, taken back, a bug in it raised here."""
        task = self._learning.get(d.name)
        if task is None:
            return None
        if task.get_loop() is not asyncio.get_running_loop():
            # its loop has ended (a console's run, a test's): whatever it ended with went
            # with that run
            del self._learning[d.name]
            return None
        if not task.done():
            return task
        del self._learning[d.name]
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error  # a bug, as if it had happened in its own refresh
        return None

    def _forget(self, d: Dialect, task: asyncio.Future[Any]) -> None:
        if self._learning.get(d.name) is task:
            del self._learning[d.name]

    async def _timed(
        self,
        d: Dialect,
        window_s: float,
        requests: asyncio.Future[_Answer],
        spare: float,
        earlier: asyncio.Future[None] | None,
    ) -> _Timed:
        """A refresh's latency, by `spare` (`time.monotonic()`): its query, asked with
        what the refreshes before learnt, once `earlier` (the console's, going on behind
        its refresh, where a moment is asked meanwhile) has come or failed, so that one
        learns at a time; made whole with the `requests` answer (`_whole_latency`)."""
        if earlier is not None:
            await asyncio.wait({earlier}, timeout=max(0.0, spare - time.monotonic()))
        asked = self._asked.get(d.name) or unmeshed(d)
        left_out = self._left_out.get(d.name)
        guessed = left_out is None
        if left_out is None:  # before any answer: the buckets above a second
            left_out = await self._first_cuts(d, window_s, spare)
        namespaces = self.config.namespaces
        promql = latency_query(d, window_s, namespaces, first_and(d, asked), left_out.matchers(d))
        rows, said = await self._ask(promql, spare)
        warnings = set(said)
        requests_rows, _ = await asyncio.shield(requests)
        found = {"requests": requests_rows, "latency": rows}
        at = self.at if self.at is not None else _at(rows)  # the follow-ups' moment
        with bounded.deadline(spare - time.monotonic()):
            timed = await self._whole_latency(
                d, window_s, found, asked, left_out, warnings, guessed=guessed, at=at
            )
        _free(rows, found["latency"])  # read by this coroutine alone
        return timed, warnings

    async def _first_cuts(self, d: Dialect, window_s: float, until: float) -> Cuts:
        """What the first latency query leaves out (`first_cuts`), from the bounds the
        backend's latency buckets have in the window (the `le` label's values: an index
        lookup, no sample read), the bounds left out kept (`_bounds`: the next refresh's
        cut is a bucket above where the quantiles fell, and those were not read); none
        where it cannot say (an API without it, a slow answer, or one that is not a
        short list of strings)."""
        end = self.at if self.at is not None else time.time()
        params = {
            "match[]": f"{d.duration}_bucket{_selector(d.extra_selector)}",
            "start": f"{end - window_s:.3f}",
            "end": f"{end:.3f}",
        }
        with bounded.deadline(min(BOUNDS_S, until - time.monotonic())):
            try:
                (les,) = await asyncio.to_thread(
                    self._call, lambda: [self._client.get_label_values("le", params=params)]
                )
            except BackendError:
                return Cuts()
        if (
            not isinstance(les, list)
            or len(les) > MAX_BOUNDS
            or not all(isinstance(le, str) for le in les)
        ):
            return Cuts()
        cuts, bounds = first_cuts(les)
        self._bounds[d.name] = {**bounds, **self._bounds.get(d.name, {})}
        return cuts

    @staticmethod
    async def _answers(
        pending: dict[str, asyncio.Future[tuple[list[dict[str, Any]], tuple[str, ...]]]],
    ) -> tuple[dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]], dict[str, str]]:
        """The refresh's answers, by query, and why those that failed did, the requests
        query's failure raised at once (the others then left to end, unread)."""
        answers: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {}
        unavailable: dict[str, str] = {}
        try:
            for name, task in pending.items():  # the requests first
                try:
                    answers[name] = await task
                except BackendError as exc:
                    if name == "requests":
                        raise
                    answers[name], unavailable[name] = ([], ()), _why(exc)
        except BaseException:
            for task in pending.values():
                task.cancel()
            raise
        return answers, unavailable

    async def _whole_latency(
        self,
        d: Dialect,
        window_s: float,
        found: dict[str, list[dict[str, Any]]],
        asked: Later,
        left_out: Cuts,
        warnings: set[str],
        *,
        guessed: bool = False,
        at: float | None = None,
    ) -> Latencies:
        """Every call's quantiles, the latency answer (`found`) made whole where it is
        not: the calls the later reporters were not asked about, those whose first
        reporter kept no buckets, and the buckets left out where a quantile fell among
        them (or, those left out by a guess, `guessed`, might have), each asked once more
        if any, at the moment the answer was (`at`: its buckets and theirs over one
        window); and what the next refresh asks (`latency`)."""
        requests_rows, rows = found["requests"], found["latency"]
        within = left_out.matchers(d)
        asking: Later | None = asked
        wanted = await self._work(lambda: needed(d, requests_rows))
        more = await self._work(lambda: missing(wanted, asking))
        if more is not None:  # calls the reporters after the first were not asked about
            extra = await self._latency(d, window_s, more, within, warnings, at)
            rows = [*rows, *await self._work(lambda: fresh(d, extra, asking))]
            asking = merge(asking, more)
        again = await self._work(lambda: unanswered(d, requests_rows, rows, asking))
        if again is not None:  # calls whose first reporter kept no buckets
            extra = await self._latency(d, window_s, again, within, warnings, at)
            rows = [*rows, *await self._work(lambda: fresh(d, extra, asking))]
        beyond, slow_beyond = left_out.beyond(self._bounds.get(d.name, {}))
        timed = await self._work(
            lambda: edge_quantiles(d, rows, beyond, left_out.slow, slow_beyond, guessed)
        )
        if timed.unsure:  # quantiles among the buckets left out: those buckets too
            beyond_rows = left_out.matchers(d, "=~")
            rows = [
                *rows,
                *await self._latency(d, window_s, unsure(d, timed), beyond_rows, warnings, at),
            ]
            timed = await self._work(lambda: edge_quantiles(d, rows))
        found["latency"] = rows
        # next time, the later reporters are asked about what they were needed for now,
        # and the buckets no quantile came near are left out
        bounds = {**self._bounds.get(d.name, {}), **timed.bounds}
        self._asked[d.name], self._left_out[d.name] = await self._work(
            lambda: (merge(wanted, used(d, timed)), cuts_for(d, bounds, timed))
        )
        self._bounds[d.name] = {**self._bounds.get(d.name, {}), **bounds}  # a moment's too
        return timed

    async def _latency(
        self,
        d: Dialect,
        window_s: float,
        whom: Whom,
        le: list[str],
        warnings: set[str],
        at: float | None,
    ) -> list[dict[str, Any]]:
        """The latency buckets of the calls `whom` names, of the bounds `le` matches, at
        `at` (as `_query`)."""
        promql = latency_query(d, window_s, self.config.namespaces, whom, le)
        rows, said = await self._ask(promql, at=at)
        warnings.update(said)
        return rows

    async def _work(self, work: Callable[[], _T]) -> _T:
        """`_read` in a worker thread: the work on a refresh's answers (over 380,000 bucket
        rows against 20,000 fan-out edges, a second of CPU) never holds the event loop,
        which is the console's, drawing and taking keys meanwhile."""
        return await asyncio.to_thread(self._read, work)

    def _read(self, work: Callable[[], _T]) -> _T:
        """`work` on the answers; an answer that is not what the queries ask for (a sample
        without its labels, a value that is not a number) is the backend's, not our bug."""
        try:
            return work()
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise BackendError(
                f"Prometheus at {self.config.url} answered series that are not what the "
                f"queries ask for ({type(exc).__name__} {exc}): is it PromQL-compatible?"
            ) from None

    async def _why_empty(self, d: Dialect, window_s: float, until: float) -> tuple[str, ...]:
        """Why a refresh found no edge, in words: the backend holds no series of the
        dialect (another mesh's, or none), the namespaces asked for have no calls, or the
        window is too short for two samples of the series. A few small queries, asked
        only when an answer is empty, again at most every `EMPTY_RECHECK_S`, and within
        the refresh's own deadline (`until`): an empty answer never makes it late."""
        asked = (d.name, window_s, self.config.namespaces, self.at)
        kept = self._empty
        if kept is not None and kept[0] == asked and time.monotonic() - kept[1] < EMPTY_RECHECK_S:
            return kept[2]
        try:
            with bounded.deadline(until - time.monotonic()):
                why = await self._diagnose(d, window_s)
        except BackendError as exc:  # the refresh itself went well: say what we could
            return (f"no edge in the last {duration(window_s)}: cannot tell why ({exc})",)
        said = (f"no edge in the last {duration(window_s)}: {why}",)
        self._empty = (asked, time.monotonic(), said)
        return said

    async def _diagnose(self, d: Dialect, window_s: float) -> str:
        url = self.config.url
        present, _ = await self._ask(DETECT_QUERY)
        names = {(s["metric"].get("__name__"), s["metric"].get("reporter")) for s in present}
        names |= {(s["metric"].get("__name__"), s["metric"].get("direction")) for s in present}
        if not present and self.at is not None:  # the console's time travel, `--at`
            when = datetime.fromtimestamp(self.at).strftime("%Y-%m-%d %H:%M:%S")
            return (
                f"no series at all at {url} at {when}: before what it keeps (its "
                "retention), or before the mesh ran"
            )
        if not any(n == metric for n, _ in names for metric in _PROBED[d.name]):
            other = detect([s["metric"] for s in present])
            if other is None:
                return (
                    f"no {MESH_NAMES[d.name]} series at {url}, nor any other mesh's: is this "
                    "the mesh's Prometheus?"
                )
            return (
                f"no {MESH_NAMES[d.name]} series at {url}, which holds "
                f"{MESH_NAMES[other.name]}'s: --dialect {other.name} (or auto) reads them"
            )
        metric = f"{d.requests}{_selector(d.extra_selector)}"
        wanted = self.config.namespaces
        if wanted:
            by = [x for x in (d.source.namespace, d.destination.namespace) if x]
            rows, _ = await self._ask(" or ".join(f"group by ({x}) ({metric})" for x in by))
            seen = sorted({v for r in rows for x in by if _known(v := r["metric"].get(x, ""))})
            if not set(wanted) & set(seen):
                shown = ", ".join(seen[:12]) + (", …" if len(seen) > 12 else "")
                which = ", ".join(wanted)
                return (
                    f"no calls from or to namespace {which} at {url} (the namespaces with "
                    f"calls: {shown or 'none'})"
                )
        interval = await self._sample_spacing(metric)
        if interval is not None and window_s < 2 * interval:
            return (
                f"the window ({duration(window_s)}) is shorter than two scrape intervals (the "
                f"samples are {duration(interval)} apart here), and rate() needs two samples "
                f"in it: give a window of {duration(4 * interval)} or more"
            )
        return "the mesh's series are there, but did not grow: no traffic in the window"

    async def _sample_spacing(self, metric: str) -> float | None:
        """How far apart one live series' samples are: its scrape interval, read from
        the backend itself (any PromQL engine keeps the samples' times). An answer that
        is not what was asked for is the backend's error (`_read`)."""
        rows, _ = await self._ask(f"topk(1, {metric})")
        if not rows:
            return None
        selector = self._read(
            lambda: ",".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}"
                for k, v in sorted(rows[0]["metric"].items())
            )
        )
        when = self.at
        params = {"time": f"{when:.3f}"} if when is not None else None
        samples = f"{{{selector}}}[{duration(SPACING_LOOKBACK_S)}]"  # raw, with their times
        result = await asyncio.to_thread(
            self._call, lambda: self._client.custom_query(samples, params=params)
        )
        times = self._read(lambda: [float(t) for r in result[:1] for t, _ in r.get("values", ())])
        gaps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
        if not gaps:
            return None
        spacing = gaps[len(gaps) // 2]  # the median: a missed scrape is not the interval
        return float(round(spacing)) if spacing >= 1 else spacing  # scrapes jitter by ms

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        """Rate, errors by kind and latency quantiles of one edge (or of everything a node
        answers, with `source=None`) over the last `window_s`, at a step chosen from it,
        and the window summed up: three queries, whatever the window."""
        return (await self.histories([(source, destination)], window_s))[0]

    async def histories(self, pairs: Sequence[Pair], window_s: float) -> list[History]:
        """`history` of each pair, in their order, all at one moment. Pairs that differ
        only in which workloads of one namespace they join are asked together, up to
        `BATCH_NAMES` a side: three queries, split by workload, where a namespace's
        detail asked three for each member. `BATCHES_AT_ONCE` sets at a time."""
        d = await self.resolve_dialect()
        # prometheus-api-client sends whole seconds: align to them, so the points' times
        # are the times Prometheus evaluated.
        end = float(math.floor(self.at if self.at is not None else time.time()))
        gate = asyncio.Semaphore(BATCHES_AT_ONCE)

        async def asked(batch: _Batch) -> list[History]:
            async with gate:
                return await self._batch(d, batch, window_s, end)

        batches = _batches(pairs)
        found: dict[Pair, History] = {}
        # a detail closed, or another window asked, while its histories are under way:
        # their requests are cut off, and Prometheus stops evaluating them (a namespace's
        # histories at 2,000 services keep its two cores busy for half a second or more)
        with bounded.called_off_on_error():
            answers = await asyncio.gather(*map(asked, batches))
        for batch, got in zip(batches, answers, strict=True):
            found.update(zip(batch.pairs, got, strict=True))
        return [found[p] for p in pairs]

    async def _batch(self, d: Dialect, batch: _Batch, window_s: float, end: float) -> list[History]:
        step = history_step(window_s)
        queries = batch_queries(d, batch.sources, batch.destinations, window_s, step)
        start_dt = datetime.fromtimestamp(end - window_s, UTC)
        end_dt = datetime.fromtimestamp(end, UTC)

        def ask_range(promql: str) -> list[dict[str, Any]]:
            step_text = f"{step:g}s"
            result = self._call(
                lambda: self._client.custom_query_range(promql, start_dt, end_dt, step_text)
            )
            if any(not isinstance(r, dict) or "values" not in r for r in result[:1]):
                raise BackendError(
                    f"Prometheus at {self.config.url} answered something other than a matrix"
                )
            return result

        def ask_instant(promql: str) -> list[dict[str, Any]]:
            return self._query(promql, at=end)[0]

        with bounded.deadline(self.config.timeout_s):
            codes, quantiles, window = await asyncio.gather(
                asyncio.to_thread(ask_range, queries["codes"]),
                asyncio.to_thread(ask_range, queries["latency"]),
                asyncio.to_thread(ask_instant, queries["window"]),
            )
        split = split_by(d, batch.sources, batch.destinations)
        try:  # on a thread, as a refresh's join: a namespace's history is thousands of series
            return await asyncio.to_thread(
                parse_histories, d, batch.pairs, split, window_s, end, codes, quantiles, window
            )
        except (KeyError, ValueError, TypeError, IndexError, AttributeError):
            raise BackendError(
                f"Prometheus at {self.config.url} answered a range query with something "
                "that is not a matrix of samples"
            ) from None
