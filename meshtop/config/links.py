"""What the config file says of the console's hand-off to other tools: `[links]`, the
Grafana, Jaeger and Zipkin a link opens the selection in, and `[console]`, whether `y`
writes to the terminal's clipboard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from meshtop.config import values
from meshtop.errors import UsageError
from meshtop.sanitize import said


@dataclass(frozen=True, slots=True)
class Links:
    """Where `:open` points: each base URL, "" when not set."""

    grafana: str = ""
    grafana_datasource: str = ""  # the UID of Grafana's Prometheus data source; "" its default
    jaeger: str = ""
    zipkin: str = ""

    def bases(self) -> dict[str, str]:
        """The tools a link can be made for, by name, those set only."""
        named = {"grafana": self.grafana, "jaeger": self.jaeger, "zipkin": self.zipkin}
        return {name: url for name, url in named.items() if url}


NO_LINKS = Links()

LINK_KEYS = ("grafana", "grafana_datasource", "jaeger", "zipkin")
EXAMPLES = {
    "grafana": "https://grafana.example/",
    "jaeger": "https://jaeger.example/",
    "zipkin": "https://zipkin.example/zipkin/",
}
CONSOLE_KEYS = ("clipboard",)


def base_url(value: Any, key: str) -> str:
    """A base URL a link is made from: http or https, with a host."""
    if not isinstance(value, str):
        raise UsageError(f"links {key}: {value!r} is not a URL")
    text = value.strip()
    try:
        parts = urlsplit(text)
        _ = parts.port  # a port that is no number is refused here
    except ValueError:
        parts = None
    clean = not any(c.isspace() or not c.isprintable() for c in text)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not clean:
        raise UsageError(
            f"links {key}: {said(repr(text))} is not an http or https URL; give one such as "
            f"{EXAMPLES[key]}"
        )
    return text


def links(file: Any, where: str) -> Links:
    """[links] as the config file says it."""
    if not isinstance(file, dict):
        raise UsageError(f"{where}: links must be a table ([links])")
    unknown = set(file) - set(LINK_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown links setting {sorted(unknown)[0]!r}; known: {', '.join(LINK_KEYS)}"
        )
    try:
        found = {k: base_url(v, k) for k, v in file.items() if k != "grafana_datasource"}
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    datasource = file.get("grafana_datasource", "")
    if not isinstance(datasource, str) or not datasource.isprintable():
        raise UsageError(f"{where}: links grafana_datasource: a data source's UID is text")
    return Links(**found, grafana_datasource=datasource)


def clipboard(file: Any, where: str) -> bool:
    """[console] `clipboard`: whether `y` writes to the terminal's clipboard (OSC 52)."""
    if not isinstance(file, dict):
        raise UsageError(f"{where}: console must be a table ([console])")
    unknown = set(file) - set(CONSOLE_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown console setting {sorted(unknown)[0]!r}; "
            f"known: {', '.join(CONSOLE_KEYS)}"
        )
    try:
        return values.boolean(file.get("clipboard", True))
    except UsageError as exc:
        raise UsageError(f"{where}: console clipboard: {exc}") from None
