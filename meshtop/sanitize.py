"""Outside text made safe to show: the one place that knows how.

Label values, span fields, Kubernetes fields and backend error bodies are written by
other people. Before any of it reaches a terminal, a report or a message, it goes through
`shown()`: control characters become visible symbols (ESC as `␛`, other C0 controls as
their control pictures U+2400…, DEL and C1 as `\\x7f`, `\\x9b`), bidi controls and lone
surrogates become `<U+202E>`-style text. Ordinary text (letters, CJK, emoji, arrows,
box drawing) is left exactly as it is. The per-format helpers build on it: `csv_cell`,
`markdown_text`, `markdown_code`, `xml_text`, `dot_string`, `mermaid_label`. JSON needs
none of this (it escapes by itself) and keeps values exact. `redact()` takes the password
out of any URL in a message."""

from __future__ import annotations

import re

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
# Characters that show as nothing, or break a line where no newline is seen: a name with
# one looks like another name (`reviews\u200b`), or splits a report's line. (The joiners
# U+200C/U+200D stay: scripts and emoji sequences need them.)
_INVISIBLE = (0x200B, 0x2028, 0x2029, 0x2060, 0xFEFF)


def _table() -> dict[int, str]:
    table: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}  # ␀ … ␟ (ESC is ␛)
    table[0x7F] = "\\x7f"
    table.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
    table.update({c: f"<U+{c:04X}>" for c in (*_BIDI, *_INVISIBLE, *range(0xD800, 0xE000))})
    return table


_SHOWN = _table()
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060"
    "\u2066-\u2069\ufeff\ud800-\udfff]"
)


def shown(text: str, *, newlines: bool = False, tabs: bool = False) -> str:
    """`text` with every control character visible and bidi controls neutralised (shown as
    `<U+202E>`), so it cannot move the cursor, set a title, write the clipboard or reorder
    what is around it. `newlines`/`tabs`: the caller's sink takes `\\n`/`\\t` as they are
    (a bare `\\r` is always shown)."""
    if _UNSAFE.search(text) is None:  # the common case: nothing to do
        return text
    table = _SHOWN
    if newlines or tabs:
        table = dict(table)
        if newlines:
            del table[0x0A]
        if tabs:
            del table[0x09]
    return text.translate(table)


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A text cell from outside, for CSV: shown, and a leading `'` when a spreadsheet would
    read it as a formula (OWASP: a cell starting with `=`, `+`, `-`, `@`, tab or CR). Only
    for text: numbers we write ourselves (`-1.5`) are not passed through here."""
    text = shown(text)
    return "'" + text if text.startswith(_FORMULA) else text


_MARKDOWN = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "{": "\\{",
        "}": "\\}",
        "[": "\\[",
        "]": "\\]",
        "#": "\\#",
        "|": "\\|",
        "~": "\\~",
        "$": "\\$",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\n": " ",
        "\r": " ",
    }
)


def _one_line(text: str) -> str:
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def markdown_text(text: str) -> str:
    """Outside text inline in Markdown (a table cell, a heading, a list item): shown, on one
    line (newline and bare CR as spaces, so no heading or list can start), with what
    Markdown and inline HTML interpret escaped: emphasis, code spans, links and images
    (`[`), raw HTML and autolinks (`<` as `&lt;`), table cells (`|`), headings (`#`).
    `(`, `)`, `.`, `-`, `+`, `!` start nothing once `[`, `<` and line starts are gone, and
    stay as they are."""
    return shown(_one_line(text), newlines=True).translate(_MARKDOWN)


def markdown_code(text: str) -> str:
    """Outside text as a Markdown code span: a fence of backticks longer than any run of
    them inside, so a backtick cannot break out (nothing is interpreted inside)."""
    text = shown(_one_line(text))
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_XML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
                      "\ufffe": "<U+FFFE>", "\uffff": "<U+FFFF>"})  # fmt: skip


def xml_text(text: str) -> str:
    """Outside text for SVG and HTML, in an element or a quoted attribute: shown (no
    character XML 1.0 forbids is left), then `& < > " '` escaped. The document stays
    valid XML whatever the value."""
    return shown(text).translate(_XML)


def dot_string(text: str) -> str:
    """A DOT double-quoted string: shown (a newline is a line break of the label), `\\`
    and `"` escaped, and `&` as `&amp;` (Graphviz reads entities in labels: `&#27;`
    would put a control character into its SVG)."""
    text = shown(text, newlines=True).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("&", "&amp;").replace("\n", "\\n") + '"'


def mermaid_label(text: str) -> str:
    """A Mermaid quoted label: shown on one line, `#` first (it starts an entity), then
    `&`, quotes, backticks (a Markdown string) and angle brackets as entity codes."""
    text = shown(text)
    for char, entity in (("#", "#35;"), ("&", "#38;"), ('"', "#quot;"), ("`", "#96;"),
                         ("<", "#lt;"), (">", "#gt;")):  # fmt: skip
        text = text.replace(char, entity)
    return '"' + text + '"'


# scheme://user:password@ : the password runs to the last `@` of the address (it may hold
# `/`, `#`, `?` and `@` itself); when unsure, more is hidden, never less.
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*(?:@[^\s:/@'\"]*)*):[^\s'\"]*@")
# scheme://token@ : a user part alone is often the secret itself (a token, an API key)
# (not the user of a `user:***@` already redacted, which may hold an `@` itself)
_TOKEN = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?![^\s/'\"]*:\*\*\*@)[^\s:/@'\"]+@")


def redact(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` in it as `***`,
    and the user part of `scheme://token@host` too (it is often a token)."""
    return _TOKEN.sub(r"\1***@", _CREDENTIALS.sub(r"\1:***@", text))


def said(message: str) -> str:
    """A message for stderr or a notice: credentials redacted, controls shown."""
    return shown(redact(message), newlines=True, tabs=True)
