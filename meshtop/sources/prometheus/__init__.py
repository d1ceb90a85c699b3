"""`MetricsSource` over the Prometheus HTTP API (Prometheus, Thanos, Mimir, Cortex,
VictoriaMetrics): `PrometheusMetrics`. A refresh is three aggregated queries, whatever the
size of the mesh, each series they need read once: requests by edge and outcome, TCP
traffic by edge, and the latency histogram's buckets by edge, from which the quantiles
are worked out as Prometheus's `histogram_quantile` works them out.

- `queries`: the PromQL, built from the mesh's dialect;
- `latency`: which reporter each edge's latency comes from, and what to ask whom;
- `quantiles`: `histogram_quantile`, as Prometheus computes it;
- `answers`: the answers joined into edges and nodes, and an edge's history;
- `wire`: the HTTP session (one deadline, a size cap) and its failures in words;
- `source`: the source itself, asking the queries and saying why an answer is empty."""

from meshtop.sources.prometheus.answers import _is_error, _kind, _node, join, parse_history
from meshtop.sources.prometheus.queries import (
    EDGE,
    SEPARATOR,
    history_queries,
    latency_query,
    snapshot_queries,
)
from meshtop.sources.prometheus.queries import peer_selector as _peer_selector
from meshtop.sources.prometheus.source import PrometheusMetrics

__all__ = [
    "EDGE",
    "SEPARATOR",
    "PrometheusMetrics",
    "_is_error",
    "_kind",
    "_node",
    "_peer_selector",
    "history_queries",
    "join",
    "latency_query",
    "parse_history",
    "snapshot_queries",
]
