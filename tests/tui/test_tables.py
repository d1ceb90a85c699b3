"""Tables filled from a backend's answer draw right at once, and show text as it is."""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from meshtop.model import Route, RouteRule, Span, WeightedDestination, WindowSummary
from meshtop.panels import routes_view, window_view
from meshtop.tui.screens.traces import span_detail
from meshtop.tui.widgets.tables import fill
from meshtop.waterfall import Row


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable[str](cursor_type="row")


HEADERS = [("root", "root"), ("matches", "matches"), ("mark", "")]
ROWS = [
    ("a", ["istio-ingressgateway.istio-system: ingress", "uri regex ^/api/[a-z]+", Text("!")]),
    ("b", ["productpage: GET /users/[id]", "[bold]not markup[/bold]", ""]),
]


async def test_a_table_painted_before_it_is_idle_shows_whole_cells() -> None:
    app = OneTable()
    async with app.run_test(size=(120, 8)) as pilot:
        table = app.query_one(DataTable)
        fill(table, HEADERS, [])
        await pilot.pause()
        fill(table, HEADERS, ROWS)
        # drawn now, before the table has been idle (a loaded machine paints here)
        assert "istio-ingressgateway.istio-system: ingress" in table.render_line(1).text
        assert "[bold]not markup[/bold]" in table.render_line(2).text
        await pilot.pause()
        assert "uri regex ^/api/[a-z]+" in table.render_line(1).text
        assert "productpage: GET /users/[id]" in table.render_line(2).text


async def test_columns_fit_the_widest_cell_or_the_title() -> None:
    app = OneTable()
    async with app.run_test(size=(120, 8)):
        table = app.query_one(DataTable)
        fill(table, HEADERS, ROWS)
        widths = {str(k.value): c.width for k, c in table.columns.items()}
        assert widths == {"root": 42, "matches": 23, "mark": 1}
        assert [str(k.value) for k in table.rows] == ["a", "b"]
        fill(table, HEADERS, [])  # nothing: as wide as the titles, and no rows left
        widths = {str(k.value): c.width for k, c in table.columns.items()}
        assert widths == {"root": 4, "matches": 7, "mark": 0} and table.row_count == 0


def _shown(renderable: object) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_span_tags_and_route_matches_are_shown_as_sent() -> None:
    tags = {"http.url": "/search?q=[/x]", "payload": "[object Object]", "route": "/users/[id]"}
    span = Span("ab", None, "web", "GET /users/[id]", 0, 1000, tags=tags)
    row = Row(span, 0, 0, False, False, False, False, 0)
    pane = _shown(span_detail(row))  # a closing tag of its own raised MarkupError here
    assert all(value in pane for value in tags.values())
    assert "web  GET /users/[id]" in pane
    rule = RouteRule((WeightedDestination("api", "v1", 100),), ("uri regex ^/api/[a-z]+",))
    route = Route("VirtualService", "", "shop", "api", ("api",), (rule,), "1")
    assert "uri regex ^/api/[a-z]+" in _shown(routes_view([route]))


def test_label_values_in_the_window_summary_are_shown_as_sent() -> None:
    s = WindowSummary(
        rps=2.0,
        response_codes={"[/x]": 1.0},
        response_flags={"[bold]": 1.0},
        grpc_statuses={"[id]": 1.0},
        source_principals=("spiffe://[/x]",),
    )
    pane = _shown(window_view(s, 900))  # each of these raised or vanished as markup
    assert all(value in pane for value in ("[/x]", "[bold]", "gRPC [id]", "spiffe://[/x]"))
