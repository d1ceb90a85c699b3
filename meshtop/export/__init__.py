"""Renderers that turn a `MeshSnapshot` into a report, one module per format."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from meshtop.errors import UsageError

FORMATS = ("json", "markdown")


def renderer(fmt: str) -> Callable[..., str]:
    """The `render` function of the format's module; formats load only when asked for."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = import_module(f"meshtop.export.{fmt}_report")
    render: Callable[..., str] = module.render  # (snapshot, thresholds=DEFAULT_THRESHOLDS)
    return render
