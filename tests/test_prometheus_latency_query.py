"""The shape of a refresh's latency query, which decides what it costs Prometheus (issue
17); the real-Prometheus tests check its figures against hand-written PromQL."""

from __future__ import annotations

import pytest

from meshtop.sources.dialects import AMBIENT, ISTIO, Dialect
from meshtop.sources.prometheus import EDGE, latency_query


def _top_level(promql: str, op: str) -> list[str]:
    """`promql` cut at each `op` outside every parenthesis and string."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(promql):
        c = promql[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0 and promql.startswith(op, i):
            parts.append(promql[start:i])
            start = i + len(op)
        i += 1
    assert depth == 0 and not quoted
    return [*parts, promql[start:]]


@pytest.mark.parametrize(
    ("d", "whom"),
    [
        (ISTIO, {"source": None, "destination": {"unknown"}}),
        (AMBIENT, {"waypoint": None, "source": {"a", "b"}, "destination": None}),
    ],
)
@pytest.mark.parametrize("namespaces", [(), ("shop", "pay")])
def test_each_reporters_buckets_are_summed_before_the_reporters_are_set_together(
    d: Dialect, whom: dict[str, set[str] | None], namespaces: tuple[str, ...]
) -> None:
    """`or` sets the reporters' summed buckets beside each other, not their raw series:
    over raw series it hashes every label of each (a tenth of the query at 1,000
    services); a reporter's groups are its own, so the sums are the same."""
    q = latency_query(d, 60, namespaces, whom, 'le!~"5000"')
    parts = _top_level(q, " or ")
    assert len(parts) == len(whom)
    for part, reporter in zip(parts, whom, strict=True):
        assert part.startswith(f"sum by ({EDGE}, {d.reporter_label}, le) (label_join(sum by (")
        assert f'{d.reporter_label}="{reporter}"' in part
        assert all(f'"{r}"' not in part for r in whom if r != reporter)
        assert part.count("rate(") == (3 if namespaces else 1)  # from, to, to a host in them
