"""Match conditions of content-based steering (issue 21): read from the command line
(`header:user-agent~^.*iPhone.*$`), checked (a regex in RE2's syntax, which is what Envoy
compiles), written as an Istio `HTTPMatchRequest` or a Gateway API `HTTPRouteMatch`, and
tested against a request (`:route-test`): which rule of a route takes it, with Envoy's
semantics (rules in order for a VirtualService, the most specific match for an HTTPRoute;
a regex matches the whole value; header names ignore case)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshtop.errors import UsageError

FIELDS = ("header", "query", "source", "uri", "method", "authority", "scheme")
NAMED = ("header", "query", "source")  # a field with a name of its own: `header:NAME`
OPS = {"=": "exact", "^=": "prefix", "~": "regex"}
_CONDITION = re.compile(
    r"^(?:(?P<field>header|query|source):(?P<name>[A-Za-z0-9_.\-/]+)|(?P<plain>uri|method|authority|scheme))"
    r"(?P<op>\^=|=|~)(?P<value>.*)$",
    re.DOTALL,
)
MAX_VALUE = 1024  # a condition's value; a regex longer than this is refused, not compiled


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of a match: `field` (`name` for headers, query parameters and source
    labels) compared by `op` (exact, prefix or regex) with `value`."""

    field: str
    name: str
    op: str
    value: str

    def words(self) -> str:
        symbol = {v: k for k, v in OPS.items()}[self.op]
        what = {"query": "query", "header": "header", "source": "source"}.get(self.field)
        return (
            f"{what} {self.name} {symbol} {self.value}"
            if what
            else f"{self.field} {symbol} {self.value}"
        )


def _options() -> Any:
    import re2  # on first use: start-up pays for no RE2

    options = re2.Options()
    options.log_errors = False  # RE2 logs to the terminal's stderr otherwise
    return options


def compile_regex(value: str, where: str) -> Any:
    """The regex as Envoy would compile it (RE2), or a `UsageError` saying why not: RE2
    has no look-around and no back-references, which Python's `re` would accept."""
    if len(value) > MAX_VALUE:
        raise UsageError(f"{where}: the regex is longer than {MAX_VALUE} characters")
    import re2

    try:
        return re2.compile(value, _options())
    except re2.error as exc:
        said = exc.args[0] if exc.args else exc
        said = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        raise UsageError(
            f"{where}: {value!r} is not an RE2 regex as Envoy reads it ({said})"
        ) from None


def parse_condition(text: str) -> Condition:
    """`header:user-agent~^.*iPhone.*$`, `header:end-user=jason`, `uri^=/api`,
    `query:debug=1`, `source:app=legacy`, `method=GET`: `=` exact, `^=` prefix, `~`
    regex (checked now, as RE2)."""
    found = _CONDITION.match(text.strip())
    if not found or not found.group("value"):
        raise UsageError(
            f"match {text!r} is not FIELD[:NAME]OP VALUE, e.g. 'header:end-user=jason', "
            "'header:user-agent~.*iPhone.*', 'uri^=/api', 'query:v=2', 'source:app=web' "
            "(= exact, ^= prefix, ~ regex)"
        )
    field_ = found.group("field") or found.group("plain")
    name = found.group("name") or ""
    op = OPS[found.group("op")]
    value = found.group("value")
    if field_ == "header":
        name = name.lower()  # HTTP header names ignore case; Istio wants them lower case
    if field_ == "source" and op != "exact":
        raise UsageError(f"match {text!r}: a source label is matched exactly (=) only")
    if op == "regex":
        compile_regex(value, f"match {text!r}")
    if len(value) > MAX_VALUE:
        raise UsageError(f"match {text!r}: the value is longer than {MAX_VALUE} characters")
    return Condition(field_, name, op, value)


def istio_match(conditions: Sequence[Condition]) -> dict[str, Any]:
    """An Istio `HTTPMatchRequest`: every condition must hold (an AND)."""
    match: dict[str, Any] = {}
    for c in conditions:
        if c.field == "header":
            match.setdefault("headers", {})[c.name] = {c.op: c.value}
        elif c.field == "query":
            if c.op == "prefix":
                raise UsageError("Istio matches a query parameter exactly (=) or by regex (~)")
            match.setdefault("queryParams", {})[c.name] = {c.op: c.value}
        elif c.field == "source":
            match.setdefault("sourceLabels", {})[c.name] = c.value
        else:
            match[c.field] = {c.op: c.value}
    return match


_GATEWAY_PATH = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}


def gateway_match(conditions: Sequence[Condition]) -> dict[str, Any]:
    """A Gateway API `HTTPRouteMatch`, where it can say the same: no header prefix, no
    source labels (said as a `UsageError`, naming what to use instead)."""
    match: dict[str, Any] = {}
    for c in conditions:
        if c.field == "uri":
            match["path"] = {"type": _GATEWAY_PATH[c.op], "value": c.value}
        elif c.field in ("header", "query"):
            if c.op == "prefix":
                raise UsageError(
                    f"an HTTPRoute has no {c.field} prefix match: use a regex, "
                    f"'{c.field}:{c.name}~^{re.escape(c.value)}.*'"
                )
            key = "headers" if c.field == "header" else "queryParams"
            match.setdefault(key, []).append(
                {"type": "Exact" if c.op == "exact" else "RegularExpression",
                 "name": c.name, "value": c.value}
            )  # fmt: skip
        elif c.field == "method" and c.op == "exact":
            match["method"] = c.value.upper()
        else:
            raise UsageError(
                f"an HTTPRoute cannot match on {c.words()} (Istio's VirtualService can)"
            )
    return match


@dataclass(frozen=True, slots=True)
class Request:
    """A request as `:route-test` describes it: its headers (names in lower case), path,
    query parameters, the caller's labels, method, authority and scheme."""

    headers: Mapping[str, str] = field(default_factory=dict)
    uri: str = "/"
    query: Mapping[str, str] = field(default_factory=dict)
    source: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    authority: str = ""
    scheme: str = "http"


def parse_request(text: str) -> Request:
    """`user-agent="Mozilla/5.0 (iPhone…)" uri=/api query:v=2 source:app=web method=POST`:
    a bare `NAME=VALUE` is a header (as `header:NAME=VALUE`)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot read the request: {exc}") from None
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    source: dict[str, str] = {}
    plain: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(
                f"{word!r} is not NAME=VALUE (a header), uri=, method=, query:NAME= "
                "or source:LABEL="
            )
        kind, colon, name = key.partition(":")
        if colon and kind == "query":
            query[name] = value
        elif colon and kind == "source":
            source[name] = value
        elif colon and kind == "header":
            headers[name.lower()] = value
        elif key in ("uri", "method", "authority", "scheme"):
            plain[key] = value
        else:
            headers[key.lower()] = value
    uri = plain.get("uri", "/")
    path, _, query_string = uri.partition("?")
    for pair in filter(None, query_string.split("&")):
        name, _, value = pair.partition("=")
        query.setdefault(name, value)
    return Request(
        headers, path or "/", query, source, plain.get("method", "GET").upper(),
        plain.get("authority", headers.get("host", "")), plain.get("scheme", "http"),
    )  # fmt: skip


def _string_match(spec: Any, value: str | None) -> tuple[bool, bool]:
    """Whether `value` meets an Istio `StringMatch`, and whether a regex there found it
    only as a part (Envoy matches the whole value: worth saying when it is the reason)."""
    if value is None or not isinstance(spec, Mapping):
        return False, False
    if "exact" in spec:
        return value == str(spec["exact"]), False
    if "prefix" in spec:
        return value.startswith(str(spec["prefix"])), False
    if "regex" in spec:
        pattern = compile_regex(str(spec["regex"]), "the route's regex")
        whole = pattern.fullmatch(value) is not None
        return whole, not whole and pattern.search(value) is not None
    return False, False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Which rule takes a request: its index (None: no rule does, Envoy answers 404 `NR`)
    and, for each rule passed over, why, in words."""

    rule: int | None
    why: tuple[str, ...] = ()


def _istio_block(match: Mapping[str, Any], request: Request) -> tuple[bool, str]:
    """Whether one `HTTPMatchRequest` holds, and if not the first condition that fails."""
    for name, spec in (match.get("headers") or {}).items():
        held, partly = _string_match(spec, request.headers.get(str(name).lower()))
        if not held:
            hint = " (the regex matches a part, Envoy needs the whole value)" if partly else ""
            return False, f"header {name} does not match{hint}"
    for name in match.get("withoutHeaders") or {}:
        if str(name).lower() in request.headers:
            return False, f"header {name} is there"
    for name, spec in (match.get("queryParams") or {}).items():
        if not _string_match(spec, request.query.get(str(name)))[0]:
            return False, f"query {name} does not match"
    for name, value in (match.get("sourceLabels") or {}).items():
        if request.source.get(str(name)) != str(value):
            return False, f"source {name} is not {value}"
    for key, seen in (("uri", request.uri), ("method", request.method),
                      ("authority", request.authority), ("scheme", request.scheme)):  # fmt: skip
        if key in match:
            held, partly = _string_match(match[key], seen)
            if not held:
                hint = " (the regex matches a part, Envoy needs the whole value)" if partly else ""
                return False, f"{key} does not match{hint}"
    return True, ""


def route_test_istio(http: Sequence[Mapping[str, Any]], request: Request) -> Verdict:
    """A VirtualService's rules in order: the first with a match block that holds (a
    rule without `match` takes every request)."""
    why: list[str] = []
    for i, rule in enumerate(http):
        blocks = rule.get("match") or [{}]
        reasons = []
        for block in blocks:
            held, reason = _istio_block(block, request)
            if held:
                return Verdict(i, tuple(why))
            reasons.append(reason)
        why.append(f"rule {i}: {'; or '.join(reasons)}")
    return Verdict(None, tuple(why))


def _gateway_holds(match: Mapping[str, Any], request: Request) -> bool:
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = path.get("type", "PathPrefix"), str(path.get("value", "/"))
    if kind == "Exact" and request.uri != value:
        return False
    if kind == "PathPrefix":
        # a prefix matches whole path elements: /api matches /api and /api/x, not /apix
        trimmed = value.rstrip("/") or "/"
        if not (trimmed == "/" or request.uri == trimmed or request.uri.startswith(trimmed + "/")):
            return False
    if kind == "RegularExpression" and not _string_match({"regex": value}, request.uri)[0]:
        return False
    for key, seen in (("headers", request.headers), ("queryParams", request.query)):
        for h in match.get(key) or []:
            name = str(h.get("name", ""))
            got = seen.get(name.lower() if key == "headers" else name)
            op = "regex" if h.get("type") == "RegularExpression" else "exact"
            if not _string_match({op: str(h.get("value", ""))}, got)[0]:
                return False
    return not ("method" in match and str(match["method"]).upper() != request.method)


def _specificity(match: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """The Gateway API's precedence between matches: an exact path, then the longest
    prefix, then a method, then the most headers, then the most query parameters."""
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    exact = path.get("type") == "Exact"
    prefix = (
        len(str(path.get("value", "/"))) if path.get("type", "PathPrefix") == "PathPrefix" else 0
    )
    return (int(exact), prefix, int("method" in match), len(match.get("headers") or []),
            len(match.get("queryParams") or []))  # fmt: skip


def route_test_gateway(rules: Sequence[Mapping[str, Any]], request: Request) -> Verdict:
    """An HTTPRoute's rules: of every match that holds, the most specific wins (ties go
    to the earlier rule)."""
    best: tuple[tuple[int, int, int, int, int], int] | None = None
    for i, rule in enumerate(rules):
        for match in rule.get("matches") or [{}]:
            if _gateway_holds(match, request):
                rank = (_specificity(match), -i)
                if best is None or rank > (best[0], -best[1]):
                    best = (rank[0], i)
    if best is None:
        return Verdict(None, ("no rule's match holds",))
    return Verdict(best[1])
