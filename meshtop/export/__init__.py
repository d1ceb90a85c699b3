"""Renderers that turn a `Report` (a snapshot, graded and narrowed) into a report, one
module per format; a format's module loads only when asked for."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from meshtop.errors import UsageError
from meshtop.report import Report

FORMATS = ("json", "markdown", "html", "csv", "dot", "mermaid", "svg")


def renderer(fmt: str) -> Callable[[Report], str]:
    """The `render` function of the format's module."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = import_module(f"meshtop.export.{fmt}_report")
    render: Callable[[Report], str] = module.render
    return render
