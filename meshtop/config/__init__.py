"""Settings from one place: the TOML config file in the user's config directory, then
`MESHTOP_*` environment variables, then command-line flags, each overriding the last."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from meshtop.config import backends, values
from meshtop.config.files import exposed, holds_secret, read_file
from meshtop.config.links import clipboard, links
from meshtop.config.mesh import root_namespace
from meshtop.config.settings import ClusterConfig, Settings
from meshtop.config.values import boolean, duration, share
from meshtop.errors import UsageError
from meshtop.health import DEFAULT_THRESHOLDS, Thresholds
from meshtop.sources.prometheus_config import PrometheusConfig

__all__ = [
    "APP_NAME",
    "ClusterConfig",
    "PrometheusConfig",
    "Settings",
    "default_config_path",
    "load",
]


APP_NAME = "meshtop"


# top-level key (file, MESHTOP_KEY, --key) -> (Settings field, parser)
_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "refresh": ("refresh_s", duration("refresh")),
    "window": ("window_s", duration("window")),
    "timeout": ("timeout_s", duration("timeout")),
    "theme": ("theme", str),
    "read_only": ("read_only", lambda v: boolean(v)),
}


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def _apply(settings: Settings, values: Mapping[str, Any], where: str) -> Settings:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _KEYS:
            known = ", ".join(
                [*sorted([*_KEYS, "[[clusters]]", "[health]", "[kubernetes]", "[prometheus]",
                          "[tracing]"]), "[console]", "[links]", "[mesh]"]
            )  # fmt: skip
            raise UsageError(f"{where}: unknown setting {key!r}; known settings are {known}")
        name, parse = _KEYS[key]
        try:
            changes[name] = parse(value)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return replace(settings, **changes)


def _thresholds(values: Any, where: str) -> Thresholds:
    if not isinstance(values, dict):
        raise UsageError(f"{where}: health must be a table ([health])")
    known = {f for f in Thresholds.__dataclass_fields__}
    unknown = set(values) - known
    if unknown:
        first, names = sorted(unknown)[0], ", ".join(sorted(known))
        raise UsageError(f"{where}: unknown health setting {first!r}; known: {names}")
    try:
        t = replace(DEFAULT_THRESHOLDS, **{k: share(v) for k, v in values.items()})
    except UsageError as exc:
        raise UsageError(f"{where}: health: {exc}") from None
    if t.errors_failing <= t.errors_degraded or t.client_errors_failing <= t.client_errors_degraded:
        raise UsageError(f"{where}: health: a failing threshold must be above its degraded one")
    return t


def load(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Settings for this run. An explicit `config_file` (or `MESHTOP_CONFIG`) must exist;
    the default one is optional. `flags` holds the flags given, by key; keys under
    `prometheus.` are the [prometheus] table's."""
    settings = Settings()
    explicit = config_file or (
        Path(environ["MESHTOP_CONFIG"]) if environ.get("MESHTOP_CONFIG") else None
    )
    path = explicit or default_config_path()
    file_values: dict[str, Any] = {}
    warnings: list[str] = []
    if explicit is not None or path.is_file():
        file_values = read_file(path)
        settings = replace(settings, config_path=path)
        if holds_secret(file_values):
            warnings.append(exposed(path, "config file") or "")
    where = f"config file {path}"
    thresholds = _thresholds(file_values.pop("health", {}), where)
    # the console's hand-off to other tools: checked at start, as everything else is
    copies = clipboard(file_values.pop("console", {}), where)
    bases = links(file_values.pop("links", {}), where)
    root = root_namespace(file_values.pop("mesh", {}), where)
    file_tracing = file_values.pop("tracing", {})
    caps = backends.tracing_caps(file_tracing, where)
    if caps:
        file_tracing = {k: v for k, v in file_tracing.items() if k not in backends.TRACING_CAPS}
    tracing = backends.tracing(file_tracing, where, environ, flags or {})
    kube = backends.kubernetes(file_values.pop("kubernetes", {}), where, environ, flags or {})
    file_clusters = file_values.pop("clusters", [])
    file_prom = file_values.pop("prometheus", {})
    if not isinstance(file_prom, dict):
        raise UsageError(f"{where}: prometheus must be a table ([prometheus])")
    settings = _apply(settings, file_values, where)

    env_values = {
        k: environ[f"MESHTOP_{k.upper()}"] for k in _KEYS if f"MESHTOP_{k.upper()}" in environ
    }
    settings = _apply(settings, env_values, "environment")
    env_prom: dict[str, Any] = {
        key: environ[var] for var, key in backends.PROMETHEUS_ENV.items() if environ.get(var)
    }
    if "namespaces" in env_prom:
        env_prom["namespaces"] = values.strings(env_prom["namespaces"])

    given = {k: v for k, v in (flags or {}).items() if v not in (None, (), [], False)}
    flag_prom = {
        k.removeprefix("prometheus."): v for k, v in given.items() if k.startswith("prometheus.")
    }
    settings = _apply(settings, {k: v for k, v in given.items() if "." not in k}, "command line")

    layers = [
        backends.prometheus_values(file_prom, where),
        env_prom,
        backends.prometheus_values(flag_prom, "command line"),
    ]
    own = isinstance(file_clusters, list) and any(
        isinstance(t, dict) and t.get("prometheus") for t in file_clusters
    )
    prometheus = backends.prometheus(layers, settings.timeout_s, url_needed=not own)
    for layer in layers:
        for key in ("token_file", "password_file"):
            if key in layer:
                warnings.append(exposed(Path(layer[key]), key.replace("_", " ")) or "")

    def prometheus_at(url: str) -> PrometheusConfig | None:
        return backends.prometheus([*layers, {"url": url}], settings.timeout_s)

    contexts = (flags or {}).get("kubernetes.contexts", ())
    clusters = backends.clusters(file_clusters, where, contexts, kube[1], prometheus_at)
    # one backend named in the environment or on the command line beats the file's own
    if "url" in env_prom or "url" in flag_prom:
        clusters = [replace(c, prometheus=None) for c in clusters]
    if (flags or {}).get("tracing.url") or environ.get("MESHTOP_TRACING"):
        clusters = [replace(c, tracing=None) for c in clusters]
    context, kubeconfig, kube_cap = kube
    if len(clusters) <= 1:  # a mesh of one: as [kubernetes] says, with what the file says of it
        one = clusters[0] if clusters else ClusterConfig(context=context, kubeconfig=kubeconfig)
        clusters = [ClusterConfig("", one.context, one.kubeconfig, one.prometheus, one.tracing)]
    # the backend every cluster shares, unless some cluster has its own (then each says)
    if not any(c.prometheus for c in clusters):
        clusters = [replace(c, prometheus=prometheus) for c in clusters]
    if not any(c.tracing for c in clusters):
        clusters = [replace(c, tracing=tracing) for c in clusters]
    return replace(
        settings,
        warnings=tuple(dict.fromkeys(w for w in warnings if w)),
        thresholds=thresholds,
        kube_max_response_mb=kube_cap,
        clipboard=copies,
        links=bases,
        root_namespace=root,
        clusters=tuple(
            replace(c, tracing=replace(c.tracing, timeout_s=settings.timeout_s, **caps))
            if c.tracing
            else c
            for c in clusters
        ),
    )
