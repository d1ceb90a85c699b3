"""Which latency buckets a refresh leaves out (issue 17): the first, those above a second;
then those above where any quantile fell for every caller, and lower still for all but
the few callers whose quantiles fell high, named; the quantiles the same as from every
bucket, or said unsure and asked again."""

from __future__ import annotations

import math
from typing import Any

from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import EDGE, SEPARATOR
from meshtop.sources.prometheus.latency import (
    MAX_NAMES_CHARS,
    SLOW_NAMES_CHARS,
    Cuts,
    cuts_for,
    edge_quantiles,
    first_cuts,
)

BOUNDS = ("0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
          "10000", "30000", "60000", "300000", "600000", "1.8e+06", "3.6e+06", "+Inf")  # fmt: skip


def _key(caller: str) -> str:
    labels = {"source_workload": caller, "destination_workload": "db-v1"}
    return SEPARATOR.join(labels.get(x, "") for x in ISTIO.edge_labels())


def _histogram(caller: str, observations: list[float]) -> list[dict[str, Any]]:
    """A caller's buckets' rates, as the latency answer gives them."""
    return [
        {
            "metric": {EDGE: _key(caller), "reporter": "source", "le": le},
            "value": [0, repr(float(sum(1 for o in observations if o <= float(le))))],
        }
        for le in BOUNDS
    ]


def _asked(rows: list[dict[str, Any]], cuts: Cuts) -> list[dict[str, Any]]:
    """The rows a refresh with these cuts reads (as its matchers select them)."""
    out = []
    for row in rows:
        caller = row["metric"][EDGE].split(SEPARATOR)[ISTIO.edge_labels().index("source_workload")]
        left_out = cuts.slow_left_out if caller in cuts.slow else cuts.left_out
        if row["metric"]["le"] not in left_out:
            out.append(row)
    return out


FAST = [3.0, 7.0, 12.0, 20.0, 22.0, 40.0, 45.0, 60.0, 80.0, 90.0]  # p99 in the 100 bucket
SLOW = [20.0, 30.0, 40.0, 700.0, 1500.0, 2000.0, 2200.0, 2400.0, 2450.0, 2490.0]


def _mesh() -> list[dict[str, Any]]:
    rows = [r for i in range(30) for r in _histogram(f"shop-{i}-v1", FAST)]
    return rows + _histogram("batch-v1", SLOW)


def test_the_few_slow_callers_are_named_and_the_others_buckets_cut_lower() -> None:
    rows = _mesh()
    timed = edge_quantiles(ISTIO, rows)
    cuts = cuts_for(ISTIO, timed.bounds, timed)
    assert cuts.slow == {"batch-v1"}
    # every caller: nothing above one bucket past 2,500 ms; the others: past 100 ms
    assert cuts.slow_left_out == {b for b in BOUNDS if 5000 < float(b) < math.inf}
    assert cuts.left_out == {b for b in BOUNDS if 250 < float(b) < math.inf}
    asked = _asked(rows, cuts)
    assert len(asked) < 0.7 * len(rows)
    again = edge_quantiles(ISTIO, asked, *_limits(cuts, timed.bounds))
    assert again.quantiles == timed.quantiles and not again.unsure


def _limits(cuts: Cuts, bounds: dict[str, float]) -> tuple[float, frozenset[str], float]:
    beyond, slow_beyond = cuts.beyond(bounds)
    return beyond, cuts.slow, slow_beyond


def test_a_caller_grown_slow_is_unsure_and_its_whole_histogram_gives_its_quantiles() -> None:
    rows = _mesh()
    timed = edge_quantiles(ISTIO, rows)
    cuts = cuts_for(ISTIO, timed.bounds, timed)
    now = [r for r in rows if r["metric"][EDGE] != _key("shop-3-v1")]
    now += _histogram("shop-3-v1", SLOW)  # its calls now take as long as batch's
    read = edge_quantiles(ISTIO, _asked(now, cuts), *_limits(cuts, timed.bounds))
    assert set(read.unsure) == {_key("shop-3-v1")}
    whole = edge_quantiles(ISTIO, now)
    assert read.quantiles[_key("shop-3-v1")] != whole.quantiles[_key("shop-3-v1")]
    # the buckets left out, asked once more, as `=~` selects them
    more = [r for r in now if r not in _asked(now, cuts) and r["metric"][EDGE] == _key("shop-3-v1")]
    assert edge_quantiles(ISTIO, [*_asked(now, cuts), *more]).quantiles == whole.quantiles


def test_the_first_refresh_reads_the_buckets_up_to_a_second() -> None:
    """Before any answer, from the bounds the backend holds: those above a second left out
    but +Inf; the calls whose quantiles fall below have them as from every bucket, the
    one whose fall above is unsure, and its whole histogram gives its quantiles."""
    # as Prometheus reads `le`, or skips it
    cuts, bounds = first_cuts([*BOUNDS, "1_000", " 5000", "fast", "NaN", "1e999"])
    assert cuts == Cuts(frozenset(b for b in BOUNDS if 1000 < float(b) < math.inf))
    assert bounds == {b: float(b) for b in cuts.left_out}
    rows = _mesh()
    whole = edge_quantiles(ISTIO, rows)
    read = edge_quantiles(ISTIO, _asked(rows, cuts), *_limits(cuts, bounds))
    assert set(read.unsure) == {_key("batch-v1")}  # its quantiles in the 2,500 bucket
    assert {k: q for k, q in read.quantiles.items() if k not in read.unsure} == {
        k: q for k, q in whole.quantiles.items() if k != _key("batch-v1")
    }
    # its buckets left out, asked once more (as `=~` selects them)
    more = [
        r for r in rows if r not in _asked(rows, cuts) and r["metric"][EDGE] == _key("batch-v1")
    ]
    assert edge_quantiles(ISTIO, [*_asked(rows, cuts), *more]).quantiles == whole.quantiles


def test_a_histogram_with_no_bucket_up_to_a_second_is_unsure() -> None:
    """The first refresh's guess: its only bucket read is +Inf, where no quantile is
    found, so it is asked again for the buckets left out, unless it counts nothing (then
    none is found in any bucket). A later refresh's cut comes from where quantiles fell:
    a histogram with no quantile in any bucket is not asked again every refresh."""
    cuts, bounds = first_cuts(BOUNDS)
    slow = [r for r in _histogram("batch-v1", SLOW) if r["metric"]["le"] in cuts.left_out]
    custom = [{**r, "metric": {**r["metric"], EDGE: _key("custom-v1")}} for r in slow]
    top = _histogram("custom-v1", SLOW)[-1]  # +Inf
    idle = [{**top, "metric": {**top["metric"], EDGE: _key("idle-v1")}, "value": [0, "0.0"]}]
    rows = [*custom, top, *idle]
    read = edge_quantiles(ISTIO, _asked(rows, cuts), *_limits(cuts, bounds), guessed=True)
    assert set(read.unsure) == {_key("custom-v1")}
    assert all(math.isnan(q) for q in read.quantiles[_key("custom-v1")])
    assert not any(math.isnan(q) for q in edge_quantiles(ISTIO, rows).quantiles[_key("custom-v1")])
    bare = [top]  # +Inf alone: no quantile over every bucket either
    assert not edge_quantiles(ISTIO, bare, *_limits(cuts, bounds)).unsure


def test_no_first_cut_where_the_bounds_would_make_too_long_a_query() -> None:
    many = [f"{1000 + i}.{i:06}" for i in range(MAX_NAMES_CHARS // 10)]  # 11 characters each
    assert first_cuts([*BOUNDS, *many]) == (Cuts(), {})
    assert first_cuts([*BOUNDS, *many[: MAX_NAMES_CHARS // 20]])[0] != Cuts()
    assert first_cuts([]) == (Cuts(), {})


def test_one_set_for_every_caller_where_the_slow_cannot_be_named() -> None:
    rows = _mesh()
    unnamed = _histogram("x|y", SLOW)  # a `|` in a name: its workload cannot be told
    timed = edge_quantiles(ISTIO, [*rows, *unnamed])
    cuts = cuts_for(ISTIO, timed.bounds, timed)
    assert not cuts.slow and cuts.left_out == {b for b in BOUNDS if 5000 < float(b) < math.inf}
    many = [r for i in range(SLOW_NAMES_CHARS // 10) for r in _histogram(f"slow-{i:04}-v1", SLOW)]
    timed = edge_quantiles(ISTIO, [*rows, *many])
    assert not cuts_for(ISTIO, timed.bounds, timed).slow  # too many to name


def test_the_groups_matchers_select_no_series_twice() -> None:
    cuts = Cuts(frozenset({"250", "500"}), frozenset({"batch-v1"}), frozenset({"500"}))
    assert cuts.matchers(ISTIO) == [
        'source_workload!~"batch\\\\-v1",le!~"250|500"',
        'source_workload=~"batch\\\\-v1",le!~"500"',
    ]
    assert cuts.matchers(ISTIO, "=~") == [
        'source_workload!~"batch\\\\-v1",le=~"250|500"',
        'source_workload=~"batch\\\\-v1",le=~"500"',
    ]
    nothing_more = Cuts(frozenset({"250", "500"}), frozenset({"batch-v1"}), frozenset())
    assert nothing_more.matchers(ISTIO, "=~") == ['source_workload!~"batch\\\\-v1",le=~"250|500"']
    assert Cuts().matchers(ISTIO) == [""] and Cuts().matchers(ISTIO, "=~") == []


def test_each_pass_over_a_large_latency_answer_gives_way_to_a_key(monkeypatch: Any) -> None:
    """The latency answer (135,180 series at 2,000 services) is read in a thread beside
    the screen's: each pass over it gives way to a key every `BATCH` series (`turns`),
    and the quantiles are the same."""
    from meshtop import turns
    from meshtop.sources.prometheus.latency import fresh, unanswered

    rows = [r for i in range(300) for r in _histogram(f"shop-{i}-v1", FAST)]  # 6,000
    whole = edge_quantiles(ISTIO, rows)
    ways: list[int] = []
    monkeypatch.setattr(turns, "give_way", lambda: ways.append(1))
    assert edge_quantiles(ISTIO, rows).quantiles == whole.quantiles
    assert len(ways) == 2 + 2  # the rows by BATCH, then the 300 calls by 256
    requests = [{**r, "metric": {**r["metric"], "reporter": "destination"}} for r in rows]
    ways.clear()
    assert unanswered(ISTIO, requests, rows, None) is None
    assert len(ways) == 2 + 2  # the latency's calls, then the requests' reporters
    ways.clear()
    assert fresh(ISTIO, requests, {"destination": set()}) == requests
    assert len(ways) == 2
