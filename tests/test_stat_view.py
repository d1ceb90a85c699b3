"""The stat tab (`4`, issue 19): each node's figures added up from the snapshot's edges,
worst first by impact, the request rate over the window kept from the snapshots seen;
and the tab in the console (Pilot): its rows, its sort, `enter`, the grouping."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from meshtop import turns
from meshtop.connect import Sources
from meshtop.graphview import Grouping, ViewOptions, build
from meshtop.model import Edge, EdgeStats, Health, MeshSnapshot, Protocol, Workload
from meshtop.model.node_stats import Rates, Side, impact, side, sides
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens.detail import DetailScreen
from meshtop.tui.widgets.stat_table import SORTS, StatTable, columns_for, ordered, per_s

from .conftest import only
from .tui.test_console import _first_snapshot, keys, settled, until
from .tui.test_edge_table_worker import columns_added

T = datetime(2030, 1, 1, tzinfo=UTC).timestamp()


def _w(name: str, app: str = "", version: str = "") -> Workload:
    return Workload("", "shop", name, app or name, version)


def _e(a: str, b: str, **stats: object) -> Edge:
    return Edge(f"/shop/{a}", f"/shop/{b}", EdgeStats(**stats))  # type: ignore[arg-type]


def _snapshot(edges: list[Edge], at: float = T, window_s: float = 60.0) -> MeshSnapshot:
    names = {e.source.rpartition("/")[2] for e in edges} | {
        e.destination.rpartition("/")[2] for e in edges
    }
    nodes = {w.id: w for w in (_w(n) for n in sorted(names))}
    return MeshSnapshot(datetime.fromtimestamp(at, UTC), window_s, nodes, tuple(edges), (), {})


# -- one side of a node ---------------------------------------------------------------------


def test_a_side_adds_rates_and_weighs_shares_by_traffic() -> None:
    s = side(
        [
            _e(
                "a",
                "x",
                rps=174.0,
                error_rate=0.016,
                mtls=1.0,
                p99_ms=80.0,
                response_codes={"200": 170.0, "404": 4.0},
            ),
            _e(
                "b",
                "x",
                rps=6.0,
                error_rate=0.5,
                mtls=0.0,
                p99_ms=300.0,
                response_codes={"200": 3.0, "503": 3.0},
            ),
        ]
    )
    assert s.calls == 2 and s.rps == pytest.approx(180.0)
    assert s.errors_per_s == pytest.approx(174 * 0.016 + 3.0)
    assert s.success_rate == pytest.approx(1 - (174 * 0.016 + 3.0) / 180)  # not the worst's 50%
    assert s.client_errors == pytest.approx(4.0 / 180)
    assert s.mtls == pytest.approx(174 / 180)
    assert s.p99_ms == 300.0  # quantiles are not added up: the slowest call's
    assert s.tcp_connections_per_s is None  # no TCP edge: no figure, not zero


def test_a_side_says_4xx_only_of_requests_whose_codes_are_known() -> None:
    coded = _e("a", "x", rps=10.0, response_codes={"200": 9.0, "404": 1.0})
    uncoded = _e("b", "x", rps=90.0)  # a dialect without codes
    assert side([coded, uncoded]).client_errors == pytest.approx(0.1)
    assert side([uncoded]).client_errors is None


def test_an_unknown_error_rate_is_never_read_as_no_errors() -> None:
    s = side([_e("a", "x", rps=5.0, error_rate=math.nan), _e("b", "x", rps=5.0)])
    assert math.isnan(s.errors_per_s)
    assert s.success_rate is not None and math.isnan(s.success_rate)


def test_tcp_connections_add_up_and_weigh_mtls() -> None:
    s = side(
        [
            _e("a", "db", protocol=Protocol.TCP, tcp_connections_per_s=3.0, mtls=1.0),
            _e("b", "db", protocol=Protocol.TCP, tcp_connections_per_s=1.0, mtls=0.0),
        ]
    )
    assert s.rps == 0 and s.success_rate is None
    assert s.tcp_connections_per_s == pytest.approx(4.0)
    assert s.mtls == pytest.approx(0.75)


def test_sides_group_nodes_and_count_a_call_inside_a_group_both_ways() -> None:
    edges = [
        _e("web", "reviews-v1", rps=10.0),
        _e("web", "reviews-v2", rps=5.0, error_rate=0.2),
        _e("reviews-v1", "reviews-v2", rps=1.0),
    ]
    group = {"/shop/web": "web", "/shop/reviews-v1": "reviews", "/shop/reviews-v2": "reviews",
             "/shop/idle": "idle"}  # fmt: skip
    found = sides(edges, group)
    inbound, outbound = found["reviews"]
    assert inbound.rps == pytest.approx(16.0) and inbound.errors_per_s == pytest.approx(1.0)
    assert outbound.rps == pytest.approx(1.0)  # v1 calling v2: answered and called
    assert found["web"][0] == Side() and found["web"][1].rps == pytest.approx(15.0)
    assert found["idle"] == (Side(), Side())


def test_worst_first_by_impact_failing_before_degraded_then_errors_per_second() -> None:
    busy = side([_e("a", "x", rps=174.0, error_rate=0.016)])  # 2.8 errors/s
    quiet = side([_e("a", "y", rps=0.9, error_rate=0.02)])  # 0.018 errors/s
    unknown = side([_e("a", "z", rps=1.0, error_rate=math.nan)])
    empty = Side()
    keyed = sorted(
        [
            ("quiet", impact(Health.DEGRADED, quiet, empty)),
            ("busy", impact(Health.DEGRADED, busy, empty)),
            ("failing", impact(Health.FAILING, quiet, empty)),
            ("unknown", impact(Health.DEGRADED, unknown, empty)),
            ("idle", impact(Health.IDLE, empty, empty)),
            ("gateway", impact(Health.DEGRADED, empty, quiet)),  # judged by what it calls
        ],
        key=lambda kv: kv[1],
    )
    assert [k for k, _ in keyed] == ["failing", "unknown", "busy", "quiet", "gateway", "idle"]


# -- the rate over the window ----------------------------------------------------------------


def test_rates_keep_a_point_per_slot_of_the_window_summed_over_a_group() -> None:
    rates = Rates(slots=4)  # 15 s slots of a 60 s window
    for at, rps in ((0, 1.0), (15, 2.0), (30, 99.0), (35, 3.0), (45, 4.0)):
        # two snapshots in one slot (30 and 35): the last stands for it
        rates.record(_snapshot([_e("web", "a", rps=rps), _e("web", "b", rps=10.0)], T + at))
    rates.flush()
    last = _snapshot([], T + 45)
    assert rates.series(["/shop/a"], False, last) == (1.0, 2.0, 3.0, 4.0)
    assert rates.series(["/shop/a", "/shop/b"], False, last) == (11.0, 12.0, 13.0, 14.0)
    assert rates.series(["/shop/web"], True, last) == (11.0, 12.0, 13.0, 14.0)
    later = _snapshot([], T + 75)  # the window moved on with no snapshot seen since
    assert rates.series(["/shop/a"], False, later) == (3.0, 4.0, None, None)


def test_rates_before_the_first_snapshot_are_gaps_and_another_window_starts_afresh() -> None:
    rates = Rates(slots=4)
    first = _snapshot([_e("web", "a", rps=5.0)], T)
    rates.record(first)
    assert rates.series(["/shop/a"], False, first) == (None,) * 4  # seen, not yet recorded
    rates.flush()
    assert rates.series(["/shop/a"], False, first) == (None, None, None, 5.0)
    assert rates.series(["/shop/nobody"], False, first) == (None, None, None, 0.0)
    wider = _snapshot([_e("web", "a", rps=6.0)], T + 1, window_s=300.0)
    rates.record(wider)
    rates.flush()
    assert rates.series(["/shop/a"], False, wider) == (None, None, None, 6.0)
    assert rates.series(["/shop/a"], False, first) == (None,) * 4  # of another window


def test_rates_add_up_only_the_last_snapshot_of_each_slot() -> None:
    """Three refreshes in a slot (2 s of 6 s at a minute's window): the two before the
    last are never added up."""
    rates = Rates(slots=4)  # 15 s slots
    recorded: list[float] = []
    real = rates._record

    def counted(snapshot: MeshSnapshot) -> None:
        recorded.append(snapshot.generated_at.timestamp() - T)
        real(snapshot)

    rates._record = counted  # type: ignore[method-assign]
    for at in (0, 5, 10, 15, 20, 25):
        rates.record(_snapshot([_e("web", "a", rps=1.0 + at)], T + at))
    assert recorded == [10]  # the first slot's last, once the next slot's first came
    rates.flush()
    assert recorded == [10, 25]
    rates.flush()  # nothing seen since: nothing again
    assert recorded == [10, 25]
    assert rates.series(["/shop/a"], False, _snapshot([], T + 25)) == (None, None, 11.0, 26.0)


class _Index(dict[str, int]):
    """A rates' index of nodes that counts the lookups made in it."""

    looked_up = 0

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        _Index.looked_up += 1
        return super().get(key, default)


def test_rates_of_the_same_calls_again_look_none_of_their_ends_up() -> None:
    rates = Rates(slots=4)
    rates._index = _Index()
    calls = [("web", "a"), ("web", "b"), ("a", "b")]
    _Index.looked_up = 0
    for at in range(4):
        rates.record(_snapshot([_e(a, b, rps=1.0 + at) for a, b in calls], T + 15 * at))
    rates.flush()
    assert _Index.looked_up == 6  # each end once, then by place
    last = _snapshot([], T + 45)
    assert rates.series(["/shop/b"], False, last) == (2.0, 4.0, 6.0, 8.0)
    assert rates.series(["/shop/web"], True, last) == (2.0, 4.0, 6.0, 8.0)


def test_a_calls_end_that_becomes_a_node_is_counted_from_then_on() -> None:
    rates = Rates(slots=4)
    edges = (_e("web", "a", rps=1.0),)
    first = _snapshot(list(edges), T)
    rates.record(replace(first, nodes={k: v for k, v in first.nodes.items() if "/a" not in k}))
    rates.record(_snapshot(list(edges), T + 15))  # the same calls, "a" a node now
    rates.flush()
    assert rates.series(["/shop/a"], False, _snapshot([], T + 15)) == (None, None, 0.0, 1.0)


def test_rates_recorded_by_the_worker_give_way_to_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stat table's worker adds up every call's rate (51,239 at 20,000 services): it
    gives way to a key's work on the screen's thread as it goes, and adds them all up."""
    ways: list[int] = []
    monkeypatch.setattr(turns, "give_way", lambda: ways.append(1))
    rates = Rates(slots=4)
    edges = [_e(f"web-{i % 100}", f"a-{i}", rps=1.0) for i in range(2 * turns.BATCH + 100)]
    rates.record(_snapshot(edges, T))
    rates.flush()
    assert len(ways) == 3  # before each batch of them
    calls = len(range(0, len(edges), 100))  # web-0's
    assert rates.series(["/shop/web-0"], True, _snapshot([], T)) == (None, None, None, calls)


# -- the table's pure parts --------------------------------------------------------------


def test_narrow_terminals_keep_the_inbound_figures_and_the_sparkline() -> None:
    narrow, name = columns_for(80)
    assert narrow == ("health", "name", "sr", "rps", "errors", "p99", "mtls", "trend")
    assert name >= 16
    wide, _ = columns_for(160)
    assert {"out-sr", "out-rps", "out-errors", "out-p99", "4xx", "p50", "tcp"} <= set(wide)


def test_errors_and_connections_per_second_read_as_rates_do() -> None:
    assert [per_s(0.0), per_s(0.05), per_s(174.0), per_s(1234.0)] == ["0/s", "0.05/s", "174/s",
                                                                      "1.2k/s"]  # fmt: skip
    assert per_s(109.6, "c/s") == "110c/s"


def _rows(snapshot: MeshSnapshot) -> dict[str, object]:
    from meshtop.tui.widgets.stat_table import StatRow

    view = build(snapshot, ViewOptions(grouping=Grouping.WORKLOAD))
    node_of = {m: v.id for v in view.nodes.values() for m in v.members}
    return {n: StatRow(view.nodes[n], i, o) for n, (i, o) in sides(snapshot.edges, node_of).items()}


def test_every_column_sorts_either_way_with_rows_without_the_figure_last() -> None:
    snapshot = _snapshot(
        [
            _e("web", "fast", rps=50.0, p99_ms=10.0),
            _e("web", "slow", rps=5.0, p99_ms=900.0),
            _e("web", "db", protocol=Protocol.TCP, tcp_connections_per_s=2.0),
        ]
    )
    rows = _rows(snapshot)
    by = {k: [n.rpartition("/")[2] for n in ordered(rows, "p99", d)] for k, d in
          (("most", True), ("least", False))}  # fmt: skip
    assert by["most"][:2] == ["slow", "fast"] and by["least"][:2] == ["fast", "slow"]
    assert set(by["most"][2:]) == set(by["least"][2:]) == {"web", "db"}  # no latency: last
    for column in SORTS:  # every column sorts, both ways, every row kept
        for descending in (True, False):
            assert sorted(ordered(rows, column, descending)) == sorted(rows)  # type: ignore[arg-type]


def test_the_figures_are_the_graphs_snapshots() -> None:
    """A row's inbound requests are what the graph's lines into its box carry."""
    snapshot = _snapshot(
        [_e("web", "api", rps=7.0), _e("batch", "api", rps=3.0), _e("api", "db", rps=2.0)]
    )
    view = build(snapshot, ViewOptions(grouping=Grouping.WORKLOAD))
    rows = _rows(snapshot)
    into = sum(e.stats.rps for e in view.edges.values() if e.destination == "/shop/api")
    assert rows["/shop/api"].inbound.rps == pytest.approx(into) == 10.0  # type: ignore[attr-defined]


# -- the tab in the console ---------------------------------------------------------------


async def _stats_tab(pilot: object, app: MeshtopApp) -> StatTable:
    await keys(pilot, "4")  # type: ignore[arg-type]
    table = app.query_one(StatTable)
    await until(pilot, lambda: table.ready and table.row_count > 0, "the stat tab's rows")  # type: ignore[arg-type]
    return table


def _names(table: StatTable) -> list[str]:
    return [str(table.get_row_at(i)[1]).strip() for i in range(table.row_count)]


def _header(table: StatTable) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


def _column(table: StatTable, header: str) -> list[str]:
    i = _header(table).index(header)
    return [str(table.get_row_at(r)[i]).strip() for r in range(table.row_count)]


async def test_tab_4_lists_a_row_per_node_worst_first(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        table = await _stats_tab(pilot, app)
        names = _names(table)
        assert names[0] == "reviews v3"  # the failing node, with the most errors per second
        assert len(names) == len(set(names)) == len(app.screen.graph.view.nodes)  # type: ignore[attr-defined]
        row = [str(c).strip() for c in table.get_row_at(0)]
        header = _header(table)
        figures = dict(zip(header, row, strict=True))
        assert figures["▼"] == "FAIL"
        assert figures["ERR/S"].endswith("/s") and figures["ERR/S"] != "0/s"
        assert figures["SR"].endswith("%") and float(figures["SR"][:-1]) < 99
        assert header[-1] == "LAST 1m" and set(row[-1]) <= set(" ▁▂▃▄▅▆▇█") and row[-1]


async def test_sort_keys_a_marker_and_a_word_for_a_wrong_column(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        table = await _stats_tab(pilot, app)
        await keys(pilot, "s")  # the next column: the name, A to Z
        assert table.sort_name == "name" and "NAME▲" in _header(table)
        assert _names(table) == sorted(_names(table), key=str.casefold)
        assert table.sort_by("p99") is None
        assert "P99▼" in _header(table) and "NAME▲" not in _header(table)
        p99 = _column(table, "P99▼")
        assert p99[0] == "196ms"  # reviews v3: the slowest call into it
        table.reverse_sort()
        await settled(pilot)
        assert "P99▲" in _header(table)
        known = [ms for ms in _column(table, "P99▲") if ms != "-"]
        assert known[-1] == "196ms" and known[0] != "196ms"
        assert _column(table, "P99▲")[-1] == "-"  # no latency (a gateway): last either way
        assert table.sort_by("OUT ERR/S", descending=False) is None
        assert table.sort_name == "out-errors" and not table.descending
        said = table.sort_by("colour")
        assert said is not None and "\n" not in said
        assert said == (
            "no column 'colour': sort by health name sr rps errors 4xx p50 p95 p99 mtls tcp, "
            "or out-… (what it calls)"
        )


async def test_enter_opens_the_nodes_detail_and_g_regroups_the_rows(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        table = await _stats_tab(pilot, app)
        await keys(pilot, "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the node's detail")
        screen = app.screen
        assert isinstance(screen, DetailScreen) and not screen.about.is_edge
        assert [d.rpartition("/")[2] for d in screen.about.destinations] == ["reviews-v3"]
        await keys(pilot, "escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen), "the tab again")
        await keys(pilot, "g")  # versioned apps -> apps: one reviews row for three versions
        await until(pilot, lambda: table.ready and "reviews" in _names(table), "apps")
        assert not any(n.startswith("reviews v") for n in _names(table))


async def test_the_cursor_stays_on_its_node_whatever_the_sort(sim: Simulation) -> None:
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        table = await _stats_tab(pilot, app)
        await keys(pilot, "down", "down")
        node = table.ordered_rows[table.cursor_row].key.value
        for column in ("name", "sr", "rps", "errors", "p99", "out-rps"):
            assert table.sort_by(column) is None
            await settled(pilot)
            assert table.ordered_rows[table.cursor_row].key.value == node, column
        table.reverse_sort()
        await settled(pilot)
        assert table.ordered_rows[table.cursor_row].key.value == node


async def test_rows_taken_in_behind_another_tab_keep_the_stat_tabs_columns(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows the worker makes while the tab is hidden (`1` pressed before they came) are
    laid out for the width the table had on screen, not for 80 columns: back on the tab,
    nothing is laid out again."""
    app = MeshtopApp(Sources(only(sim.clusters), True, time.time))
    async with app.run_test(size=(160, 48)) as pilot:
        await _first_snapshot(app)
        table = await _stats_tab(pilot, app)
        wide = table._layout
        assert wide is not None and wide[:2] == columns_for(160)
        added = columns_added(monkeypatch, StatTable)
        await until(pilot, lambda: not table._working, "the stat table's worker idle")
        assert table._wanted is not None
        held, real_take = threading.Event(), StatTable._take
        monkeypatch.setattr(
            StatTable, "_take", lambda self, *a: (held.wait(10), real_take(self, *a))
        )
        later = replace(table._wanted[0])  # a refresh: rows to make again
        table.show(later, table._wanted[1])  # the worker asked while the tab shows...
        await keys(pilot, "1")  # ...and the graph's tab asked before it answers
        assert not table.size.width and table._taken is not None and table._taken[0] is not later
        held.set()
        await until(
            pilot, lambda: table._taken is not None and table._taken[0] is later, "taken hidden"
        )
        assert not table.size.width and table._layout == wide and added == []
        await _stats_tab(pilot, app)
        assert table._layout[:2] == wide[:2] and added == []  # type: ignore[index]
