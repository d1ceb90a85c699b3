"""Links to other tools (`meshtop.tui.links`), and the `[links]` and `[console]` settings
that name their bases and say whether `y` copies."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from meshtop.config import Settings, load
from meshtop.errors import UsageError
from meshtop.tui import links

HOSTILE = 'sum(rate(x{a="b\\"c", d=~"e|f"}[5m])) & panes=#?/ %20 ü'


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


# -- the links ----------------------------------------------------------------------------


def test_explore_url_is_grafanas_documented_form_with_each_query_exact() -> None:
    url = links.explore("https://grafana.example/", ["up", HOSTILE], "prom-uid", 900)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "grafana.example", "/explore")
    q = _query(url)
    assert q["schemaVersion"] == ["1"]
    panes = json.loads(q["panes"][0])
    assert list(panes) == ["meshtop"]
    pane = panes["meshtop"]
    assert pane["datasource"] == "prom-uid"
    assert pane["range"] == {"from": "now-15m", "to": "now"}
    assert [(x["refId"], x["expr"]) for x in pane["queries"]] == [("A", "up"), ("B", HOSTILE)]
    assert all(
        x["datasource"] == {"type": "prometheus", "uid": "prom-uid"} for x in pane["queries"]
    )
    assert not set(url) & set(' "{}|\\'), url  # nothing a URL cannot hold as it is


def test_explore_without_a_data_source_leaves_it_to_grafanas_default() -> None:
    pane = json.loads(_query(links.explore("http://g:3000", ["up"], "", 60))["panes"][0])["meshtop"]
    assert "datasource" not in pane and "datasource" not in pane["queries"][0]
    assert pane["range"]["from"] == "now-1m"


@pytest.mark.parametrize(
    ("base", "path"),
    [
        ("https://h.example", "/explore"),
        ("https://h.example/", "/explore"),
        ("https://h.example/grafana", "/grafana/explore"),  # served under a prefix
        ("https://h.example/grafana/", "/grafana/explore"),
    ],
)
def test_a_base_with_a_path_keeps_it(base: str, path: str) -> None:
    assert urlsplit(links.explore(base, ["up"], "", 60)).path == path


def test_jaeger_search_and_trace() -> None:
    url = links.jaeger_search("https://jaeger.example/ui/", "reviews.bookinfo&x=1", 3600)
    assert urlsplit(url).path == "/ui/search"
    assert _query(url) == {"service": ["reviews.bookinfo&x=1"], "lookback": ["1h"], "limit": ["20"]}
    assert links.jaeger_search("http://j", "a", 5 * 3600).endswith("lookback=6h&limit=20")
    assert links.jaeger_trace("http://j:16686", "4bf92f3577b34da6") == (
        "http://j:16686/trace/4bf92f3577b34da6"
    )
    # an id is a path segment, whatever a backend answered
    assert links.jaeger_trace("http://j", "../x?y#z") == "http://j/trace/..%2Fx%3Fy%23z"


def test_zipkin_search_is_what_lens_reads_back() -> None:
    url = links.zipkin_search("http://zipkin:9411/zipkin/", "productpage.bookinfo", 1_800_000_000)
    assert urlsplit(url).path == "/zipkin/"
    # a fixed look-back is read only with the end it counts back from, in milliseconds
    assert _query(url) == {
        "serviceName": ["productpage.bookinfo"],
        "lookback": ["1h"],
        "endTs": ["1800000000000"],
        "limit": ["20"],
    }
    assert links.zipkin_trace("http://zipkin:9411/zipkin", "abc") == (
        "http://zipkin:9411/zipkin/traces/abc"
    )


# -- the settings -------------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load(config_file=path, environ={})


def test_links_and_clipboard_from_the_config_file(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        '[links]\ngrafana = "https://grafana.example/"\ngrafana_datasource = "prom"\n'
        'jaeger = "http://jaeger:16686"\n[console]\nclipboard = false\n',
    )
    assert settings.links.bases() == {
        "grafana": "https://grafana.example/",
        "jaeger": "http://jaeger:16686",
    }
    assert settings.links.grafana_datasource == "prom"
    assert settings.clipboard is False


def test_without_them_nothing_is_linked_and_y_copies(tmp_path: Path) -> None:
    settings = _load(tmp_path, 'refresh = "2s"\n')
    assert settings.links.bases() == {}
    assert settings.clipboard is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[links]\ngrafana = "ftp://grafana.example/"',
         r"links grafana: 'ftp://grafana.example/' is not an http or https URL; give one such "
         r"as https://grafana\.example/"),
        ('[links]\njaeger = "jaeger:16686"', "links jaeger: 'jaeger:16686' is not an http"),
        ('[links]\nzipkin = "http:///zipkin/"', "links zipkin: 'http:///zipkin/' is not an http"),
        ('[links]\ngrafana = "http://g:port/"', "links grafana: 'http://g:port/' is not an http"),
        ('[links]\ngrafana = "http://g/ x"', "links grafana: 'http://g/ x' is not an http"),
        ("[links]\ngrafana = 3", "links grafana: 3 is not a URL"),
        ('[links]\nkibana = "http://k/"', "unknown links setting 'kibana'; known: grafana, "),
        ('links = "http://g/"', r"links must be a table \(\[links\]\)"),
        ('[console]\nclipboard = "maybe"', "console clipboard: 'maybe' is not true or false"),
        ("[console]\ncolour = 1", "unknown console setting 'colour'; known: clipboard"),
        ("colour = 1", r"known settings are .*, \[console\], \[links\]"),
    ],
)  # fmt: skip
def test_bad_links_are_one_line_at_start(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        _load(tmp_path, text)
    assert "\n" not in str(caught.value)


def test_a_password_in_a_bad_link_is_not_said(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        _load(tmp_path, '[links]\ngrafana = "ftp://admin:hunter2@grafana.example/"')
    assert "hunter2" not in str(caught.value)
