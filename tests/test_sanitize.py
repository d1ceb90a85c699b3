"""meshtop.sanitize: outside text made safe for the terminal and for each report format."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from meshtop.sanitize import (
    csv_cell,
    dot_string,
    markdown_code,
    markdown_text,
    mermaid_label,
    redact,
    said,
    shown,
    xml_text,
)

HOSTILE = "shop\x1b]2;PWNED\x1b\\\x1b]52;c;cHduZWQ=\x1b\\"
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ORDINARY = ["reviews-v2", "bookinfo/productpage-v1", "🔒 100%", "a → b", "┌─┐│└┘", "東京-ß-é",
            "19.5rps · 0.00% · p99 62ms", "(no workload)"]  # fmt: skip


def test_ordinary_text_is_unchanged() -> None:
    for text in ORDINARY:
        assert shown(text) == text
        assert xml_text(text) == text
        assert csv_cell(text) == text
        assert markdown_text(text) == text


def test_controls_are_shown_not_sent() -> None:
    assert shown(HOSTILE) == "shop␛]2;PWNED␛\\␛]52;c;cHduZWQ=␛\\"
    assert shown("a\x9bb\x7fc\x00") == "a\\x9bb\\x7fc␀"
    assert shown("a\u202eb\u2066c\u200fd\u061c") == "a<U+202E>b<U+2066>c<U+200F>d<U+061C>"
    assert shown("a\nb\tc\rd") == "a␊b␉c␍d"
    assert shown("a\nb\tc\rd", newlines=True, tabs=True) == "a\nb\tc␍d"
    assert shown("\ud800") == "<U+D800>"  # a lone surrogate cannot even be encoded


@given(st.text())
def test_shown_leaves_no_control_and_no_bidi(text: str) -> None:
    assert not UNSAFE.search(shown(text))
    assert not UNSAFE.search(
        shown(text, newlines=True, tabs=True).replace("\n", "").replace("\t", "")
    )
    shown(text).encode("utf-8")


@given(st.text())
def test_xml_text_is_always_valid_xml(text: str) -> None:
    element = ET.fromstring(f"<t a='{xml_text(text)}' b=\"{xml_text(text)}\">{xml_text(text)}</t>")
    assert element.tag == "t"


@given(st.text())
def test_csv_cell_never_starts_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not UNSAFE.search(cell)


def test_csv_cell_neutralises_formulas() -> None:
    assert csv_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert csv_cell("-1+1") == "'-1+1"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("\t=1") == "␉=1"


@given(st.text())
def test_markdown_text_stays_on_one_line_and_starts_nothing(text: str) -> None:
    out = markdown_text(text)
    assert "\n" not in out and "\r" not in out
    assert "<" not in out and not UNSAFE.search(out)
    assert not re.search(r"(?<!\\)(\\\\)*[`\[\]|*_#]", out)  # every one escaped


def test_markdown_text_escapes_what_markdown_reads() -> None:
    assert markdown_text("ns\n# Owned") == "ns \\# Owned"
    assert markdown_text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert markdown_text("[x](javascript:alert(1))") == "\\[x\\](javascript:alert(1))"
    assert markdown_text("a`b|c\rd") == "a\\`b\\|c d"


@given(st.text())
def test_markdown_code_cannot_be_broken_out_of(text: str) -> None:
    out = markdown_code(text)
    fence = re.match("`+", out)
    assert fence is not None
    inner = out[len(fence.group()) : -len(fence.group())]
    assert fence.group() not in inner and "\n" not in out


def test_dot_and_mermaid_strings() -> None:
    assert dot_string('a"b\\c\nd\x1b&#27;') == '"a\\"b\\\\c\\nd␛&amp;#27;"'
    assert mermaid_label('a"b#c<d>`e\x9b') == '"a#quot;b#35;c#lt;d#gt;#96;e\\x9b"'


def test_redact_takes_the_password_out_of_every_url() -> None:
    message = "cannot reach http://admin:P@ss/w#rd?x@host:9090/x: connection refused"
    assert redact(message) == "cannot reach http://admin:***@host:9090/x: connection refused"
    assert "P@ss" not in redact(message) and "w#rd" not in redact(message)
    assert redact("jaeger=https://a@b.io:pw@h/x 'http://u:v@h'") == (
        "jaeger=https://a@b.io:***@h/x 'http://u:***@h'"
    )
    assert redact("http://host:9090/api and host:9090") == "http://host:9090/api and host:9090"


def test_redact_takes_a_token_given_as_the_user_part() -> None:
    assert redact("cannot reach https://ghp_s3cr3t@prom.example/x: refused") == (
        "cannot reach https://***@prom.example/x: refused"
    )
    assert redact("tempo=http://glc_abc@h:3200 and http://u:v@h") == (
        "tempo=http://***@h:3200 and http://u:***@h"
    )


def test_invisible_characters_and_line_separators_are_shown() -> None:
    """`reviews\u200b` must not pass for `reviews`, nor U+2028 split a report's line;
    the joiners scripts and emoji sequences need stay."""
    assert shown("reviews\u200b") == "reviews<U+200B>"
    assert shown("a\u2028b\u2029c\u2060d\ufeffe") == "a<U+2028>b<U+2029>c<U+2060>d<U+FEFF>e"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert shown(family) == family and shown("\u0645\u200c\u06cc") == "\u0645\u200c\u06cc"


def test_said_is_redacted_and_shown() -> None:
    assert said(f"bad body {HOSTILE} from http://a:b@h") == (
        "bad body shop␛]2;PWNED␛\\␛]52;c;cHduZWQ=␛\\ from http://a:***@h"
    )


def test_the_console_filter_removes_any_control_left() -> None:
    from rich.segment import ControlType, Segment
    from textual.color import Color

    from meshtop.tui.safety import ControlFilter

    ordinary = [Segment("reviews v2 🔒 ─┐"), Segment("\x1b[2J", None, [(ControlType.CLEAR,)])]
    assert ControlFilter().apply(ordinary, Color(0, 0, 0)) is ordinary
    line = [Segment(HOSTILE + "\x9b\u202e!")]
    (out,) = ControlFilter().apply(line, Color(0, 0, 0))
    assert out.text == "shop]2;PWNED\\]52;c;cHduZWQ=\\!"
