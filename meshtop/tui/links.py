"""Links that open what the console shows in another tool: a Grafana Explore pane with
PromQL queries, a Jaeger or Zipkin search for a service, a trace in either. Pure: a base
URL (`[links]`, checked when the config is read) and what to show in, a URL out; every
value the URL carries is percent-encoded, whatever text it is."""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote, urlencode

from meshtop.units import duration

GRAFANA_PANE = "meshtop"  # the pane's id: any text unique among the URL's panes


def _under(base: str, path: str) -> str:
    """`path` under `base`, kept whole: `https://h/jaeger` is the UI at `/jaeger/`, not `/`."""
    return base.rstrip("/") + "/" + path


def explore(base: str, queries: Sequence[str], datasource: str, range_s: float) -> str:
    """A Grafana Explore pane with `queries` (PromQL, refIds A, B, …) over the last
    `range_s`, against the data source of UID `datasource` ("": Grafana's default).

    Grafana documents this form for tools outside it ("Generate Explore URLs from external
    tools", https://grafana.com/docs/grafana/latest/explore/get-started-with-explore/):
    `/explore?schemaVersion=1&panes=<url-encoded JSON>`, the JSON an object of panes by
    id, each `{datasource, queries: [{refId, datasource: {type, uid}, …}], range: {from,
    to}}` (`from`, `to` in milliseconds or relative: `now-15m`): Grafana 10 and later,
    the `left=` form of Grafana 9 and before being the one it replaced."""
    source = {"type": "prometheus", "uid": datasource} if datasource else None
    refs = [chr(ord("A") + i) if i < 26 else f"Q{i}" for i in range(len(queries))]
    pane: dict[str, object] = {
        "queries": [
            {"refId": ref, "expr": q, "range": True, "instant": False}
            | ({"datasource": source} if source else {})
            for ref, q in zip(refs, queries, strict=True)
        ],
        "range": {"from": f"now-{duration(range_s)}", "to": "now"},
    }
    if datasource:
        pane = {"datasource": datasource, **pane}
    panes = json.dumps({GRAFANA_PANE: pane}, separators=(",", ":"), ensure_ascii=False)
    return _under(base, "explore?" + urlencode({"schemaVersion": 1, "panes": panes}))


# Jaeger's UI offers these look-backs in its search form (and reads any of them from the
# URL); a longer one is asked for as the next one up.
JAEGER_LOOKBACKS = (("1h", 3600), ("2h", 7200), ("3h", 10800), ("6h", 21600),
                    ("12h", 43200), ("24h", 86400), ("2d", 172800), ("7d", 604800))  # fmt: skip


def _lookback(seconds: float, choices: Sequence[tuple[str, int]]) -> str:
    return next((name for name, s in choices if s >= seconds), choices[-1][0])


def jaeger_search(base: str, service: str, lookback_s: float = 3600, limit: int = 20) -> str:
    """Jaeger's search page for a service's traces (`/search?service=…`, as its UI writes
    it when a search is made)."""
    query = {"service": service, "lookback": _lookback(lookback_s, JAEGER_LOOKBACKS),
             "limit": limit}  # fmt: skip
    return _under(base, "search?" + urlencode(query))


def jaeger_trace(base: str, trace_id: str) -> str:
    """Jaeger's page of one trace: `/trace/<id>`."""
    return _under(base, "trace/" + quote(trace_id, safe=""))


# Zipkin Lens's fixed look-backs (zipkin-lens/src/components/DiscoverPage/lookback.ts);
# a fixed one is read from the URL only with the `endTs` it ends at, in milliseconds.
ZIPKIN_LOOKBACKS = (("15m", 900), ("30m", 1800), ("1h", 3600), ("2h", 7200), ("3h", 10800),
                    ("6h", 21600), ("12h", 43200), ("1d", 86400), ("2d", 172800),
                    ("7d", 604800))  # fmt: skip


def zipkin_search(
    base: str, service: str, end_s: float, lookback_s: float = 3600, limit: int = 20
) -> str:
    """Zipkin Lens's search for a service's traces up to `end_s` (its discover page, as
    it writes a search into its URL: `?serviceName=…&lookback=1h&endTs=…&limit=…`).
    `base` is where Lens is served, `http://zipkin:9411/zipkin/` by default."""
    query = {"serviceName": service, "lookback": _lookback(lookback_s, ZIPKIN_LOOKBACKS),
             "endTs": int(end_s * 1000), "limit": limit}  # fmt: skip
    return _under(base, "?" + urlencode(query))


def zipkin_trace(base: str, trace_id: str) -> str:
    """Zipkin Lens's page of one trace: `traces/<id>` under where Lens is served."""
    return _under(base, "traces/" + quote(trace_id, safe=""))
