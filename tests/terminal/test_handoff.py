"""Issue 19's hand-off in a real terminal: `y` writes the selection to the terminal's
clipboard as OSC 52 (seen in the bytes the program wrote) and says it on screen; `:open`
and `:promql` likewise; `[console] clipboard = false` writes nothing; a bad `[links]`
stops the start with one line."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from meshtop.history import history_step
from meshtop.sources.dialects import ISTIO
from meshtop.sources.prometheus import history_queries

from .term import Terminal

CONFIG = """
[links]
grafana = "https://grafana.example/"
jaeger = "https://jaeger.example/"
"""
TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")


def osc52(text: str) -> str:
    """The sequence that sets the clipboard to `text`, as the terminal receives it."""
    return f"\x1b]52;c;{base64.b64encode(text.encode()).decode()}\x07"


def unwrapped(t: Terminal) -> str:
    """The screen's lines as one, each stripped: a line said that wraps reads whole."""
    return "".join(line.strip() for line in t.lines())


def _config(tmp_path: Path, text: str = CONFIG) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"MESHTOP_CONFIG": str(path)}


def _worst_edge_selected(t: Terminal) -> None:
    """The edge table, its first row (the worst edge) highlighted: `y` and the commands
    take the row the table shows highlighted."""
    t.ready()
    t.press("2")
    t.wait_for("SOURCE", "DESTINATION")
    t.wait("the worst edge first", lambda: "productpage-v1  reviews-v3" in t.lines()[5])
    t.press(*["up"] * 12)  # from the row of the graph's selection, which the table follows


def test_y_copies_the_edge_with_osc52_and_says_it_at_80x24(tmp_path: Path) -> None:
    with Terminal(["demo"], cols=80, rows=24, env=_config(tmp_path)) as t:
        _worst_edge_selected(t)
        t.press("y")
        t.wait_for("copied: productpage-v1 → reviews-v3")
        assert osc52("productpage-v1 → reviews-v3") in t.output()
        # a link to it: Jaeger's search for its caller's traces, copied and said
        t.command("open jaeger")
        url = "https://jaeger.example/search?service=productpage.bookinfo&lookback=1h&limit=20"
        t.wait("the link said", lambda: f"copied:{url}" in unwrapped(t))  # on 2 lines at 80
        assert osc52(url) in t.output()


def test_promql_lists_the_queries_and_y_copies_one(tmp_path: Path) -> None:
    with Terminal(["demo"], cols=80, rows=24, env=_config(tmp_path)) as t:
        _worst_edge_selected(t)
        t.command("promql")
        t.wait_for("PromQL: productpage-v1 → reviews-v3", "simulated mesh", "istio_requests")
        t.press("y")
        t.wait_for("copied: requests by response code")
        page, v3 = "Kubernetes/bookinfo/productpage-v1", "Kubernetes/bookinfo/reviews-v3"
        codes = history_queries(ISTIO, page, v3, 60, history_step(900))["codes"]
        assert osc52(codes) in t.output()
        t.press("esc")
        t.wait_gone("PromQL:")
        t.ready()


def test_y_copies_a_node_at_160x48(tmp_path: Path) -> None:
    with Terminal(["demo"], cols=160, rows=48, env=_config(tmp_path)) as t:
        t.ready()
        t.wait_for("▸ istio-ingressgateway")
        t.press("n")  # the failing node (which j reaches depends on the column's order)
        t.wait_for_re(r"1/\d+:? reviews v3 failing")
        t.press("y")
        t.wait_for("copied: reviews-v3")
        assert osc52("reviews-v3") in t.output()


def test_with_the_clipboard_off_y_writes_nothing(tmp_path: Path) -> None:
    env = _config(tmp_path, "[console]\nclipboard = false\n")
    with Terminal(["demo"], cols=80, rows=24, env=env) as t:
        _worst_edge_selected(t)
        t.press("y")
        t.wait_for("productpage-v1 → reviews-v3   (not copied: [console] clipboard = false)")
        assert "\x1b]52;" not in t.output()
        t.command("open")  # and no [links]: which key to set
        t.wait_for("no link to open: set grafana or jaeger or zipkin under [links] in")


def test_y_on_the_trace_list_copies_the_trace_id(tmp_path: Path) -> None:
    with Terminal(["demo"], cols=80, rows=30, env=_config(tmp_path)) as t:
        _worst_edge_selected(t)
        t.press("enter")
        t.wait_for("productpage v1 → reviews v3", "Requests")
        t.press("t")
        t.wait_for("traces, slowest first", "trace id")
        t.press("y")
        found = t.wait_for_re(r"copied: ([0-9a-f]{32})")
        assert osc52(found.group(1)) in t.output()
        t.press("O")
        link = f"https://jaeger.example/trace/{found.group(1)}"
        t.wait("the link said", lambda: f"copied: {link}" in unwrapped(t))
        assert osc52(link) in t.output()


def test_a_bad_link_is_one_line_at_start(tmp_path: Path) -> None:
    env = _config(tmp_path, '[links]\ngrafana = "ftp://grafana.example/"\n')
    with Terminal(["demo"], cols=120, rows=24, env=env) as t:
        assert t.exit_code() == 2
        said = [line for line in t.output().replace("\r", "").split("\n") if line.strip()]
        assert said == [
            f"meshtop: config file {tmp_path / 'config.toml'}: links grafana: "
            "'ftp://grafana.example/' is not an http or https URL; give one such as "
            "https://grafana.example/"
        ]
