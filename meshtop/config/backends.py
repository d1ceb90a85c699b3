"""What the config file, the environment and the flags say of each backend: Prometheus,
the clusters, Kubernetes and the trace backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from meshtop.config import values
from meshtop.config.files import read_secret
from meshtop.config.settings import ClusterConfig
from meshtop.errors import UsageError
from meshtop.sources.bounded import DEFAULT_MAX_RESPONSE_MB
from meshtop.sources.prometheus_config import PrometheusConfig, check_header_value
from meshtop.sources.tracing import TracingConfig, parse_tracing

# [prometheus] keys (file; --prometheus-KEY or the flag named in the README) -> parser
PROMETHEUS_KEYS: dict[str, Callable[[Any], Any]] = {
    "url": str,
    "dialect": str,
    "namespaces": values.strings,
    "token_file": values.path,
    "user": str,
    "password_file": values.path,
    "headers": values.headers,
    "ca_file": values.path,
    "insecure": values.boolean,
    "max_response_mb": lambda v: values.megabytes(v),
}


# Secrets may come straight from the environment, never from a flag (shell history).
PROMETHEUS_ENV = {
    "MESHTOP_PROMETHEUS_URL": "url",
    "MESHTOP_PROMETHEUS_DIALECT": "dialect",
    "MESHTOP_NAMESPACES": "namespaces",
    "MESHTOP_PROMETHEUS_TOKEN": "token",
    "MESHTOP_PROMETHEUS_USER": "user",
    "MESHTOP_PROMETHEUS_PASSWORD": "password",
}


def prometheus_values(given: Mapping[str, Any], where: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for key, value in given.items():
        if key not in PROMETHEUS_KEYS:
            known = ", ".join(PROMETHEUS_KEYS)
            raise UsageError(f"{where}: unknown prometheus setting {key!r}; known: {known}")
        try:
            parsed[key] = PROMETHEUS_KEYS[key](value)
        except UsageError as exc:
            raise UsageError(f"{where}: prometheus {key}: {exc}") from None
        except (TypeError, ValueError):
            raise UsageError(f"{where}: prometheus {key}: {value!r} is not what it takes") from None
    return parsed


def prometheus(
    layers: list[dict[str, Any]], timeout_s: float, *, url_needed: bool = True
) -> PrometheusConfig | None:
    """Merge the [prometheus] layers (file, environment, flags: later wins) and read the
    secrets they point at. Settings without a URL are an error unless `url_needed` is
    False (each cluster has a Prometheus of its own, and these settings are theirs)."""
    merged: dict[str, Any] = {}
    token: str | None = None
    password: str | None = None
    unreadable = ""  # a secret file that cannot be read: said when Prometheus is asked
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if k not in ("token", "password")})
        # A secret given in a layer replaces one from an earlier layer, however given.
        if "token_file" in layer:
            try:
                token, unreadable = read_secret(layer["token_file"], "token"), ""
            except UsageError as exc:  # not when the command never asks (export --demo)
                token, unreadable = None, str(exc)
        if "token" in layer:
            token = layer["token"]
        if "password_file" in layer:
            try:
                password = read_secret(layer["password_file"], "password")
            except UsageError as exc:
                password, unreadable = "", str(exc)
        if "password" in layer:
            password = layer["password"]
    if not merged.get("url"):
        if (merged or token or password) and url_needed:
            raise UsageError("Prometheus settings are given but no URL (--prometheus URL)")
        return None
    user = merged.get("user")
    if (user is None) != (password is None):
        raise UsageError("basic auth needs both a user and a password (file or environment)")
    return PrometheusConfig(
        url=merged["url"],
        dialect=merged.get("dialect", "auto"),
        namespaces=merged.get("namespaces", ()),
        token=token,
        basic_auth=(user, password) if user is not None and password is not None else None,
        headers=merged.get("headers", {}),
        ca_file=merged.get("ca_file"),
        insecure=merged.get("insecure", False),
        timeout_s=timeout_s,
        max_response_mb=merged.get("max_response_mb", DEFAULT_MAX_RESPONSE_MB),
        unreadable=unreadable,
    )


CLUSTER_KEYS = ("name", "context", "kubeconfig", "prometheus", "tracing")


def clusters(
    file: Any,
    where: str,
    contexts: tuple[str, ...],
    kubeconfig: Path | None,
    prometheus_at: Callable[[str], PrometheusConfig | None],
) -> list[ClusterConfig]:
    """The clusters of a multi-cluster mesh: the file's `[[clusters]]` tables, or, given
    `--context` (once or more), those contexts (each the file's cluster of that name or
    context, else a cluster named after the context). One cluster is no federation: the
    caller makes it the one cluster. A cluster's `prometheus` is a URL;
    everything else about reaching it (auth, headers, CA, dialect) is [prometheus]'s."""
    if not isinstance(file, list) or not all(isinstance(t, dict) for t in file):
        raise UsageError(f"{where}: clusters must be tables ([[clusters]] with name = …)")
    known: list[ClusterConfig] = []
    for i, table in enumerate(file):
        unknown = set(table) - set(CLUSTER_KEYS)
        if unknown:
            raise UsageError(
                f"{where}: cluster {i + 1}: unknown setting {sorted(unknown)[0]!r}; "
                f"known: {', '.join(CLUSTER_KEYS)}"
            )
        name = table.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise UsageError(f"{where}: cluster {i + 1} needs a name (no '/' in it)")
        url = table.get("prometheus")
        try:
            own = prometheus_at(str(url)) if url is not None else None
        except UsageError as exc:
            raise UsageError(f"{where}: cluster {name}: {exc}") from None
        trace = table.get("tracing")
        known.append(
            ClusterConfig(
                name=name,
                context=str(table["context"]) if table.get("context") else name,
                kubeconfig=values.path(table["kubeconfig"])
                if table.get("kubeconfig")
                else kubeconfig,
                prometheus=own,
                tracing=parse_tracing(str(trace), {}) if trace else None,
            )
        )
    names = [c.name for c in known]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"{where}: cluster {twice!r} is named twice")
    if not contexts:
        return known
    chosen = [
        next((c for c in known if context in (c.name, c.context)), None)
        or ClusterConfig(name=context, context=context, kubeconfig=kubeconfig)
        for context in dict.fromkeys(contexts)
    ]
    return chosen


def kubernetes(
    file: Any, where: str, environ: Mapping[str, str], flags: Mapping[str, Any]
) -> tuple[str | None, Path | None, float]:
    """[kubernetes] `context` and `kubeconfig`, then MESHTOP_CONTEXT, then --context and
    --kubeconfig: the cluster the console reads routes from and writes weights to; and
    `max_response_mb`, the size cap of one answer of its API."""
    if not isinstance(file, dict):
        raise UsageError(f"{where}: kubernetes must be a table ([kubernetes])")
    unknown = set(file) - {"context", "kubeconfig", "max_response_mb"}
    if unknown:
        raise UsageError(
            f"{where}: unknown kubernetes setting {sorted(unknown)[0]!r}; "
            "known: context, kubeconfig, max_response_mb"
        )
    context = (
        flags.get("kubernetes.context") or environ.get("MESHTOP_CONTEXT") or file.get("context")
    )
    path = flags.get("kubernetes.kubeconfig") or file.get("kubeconfig")
    try:
        cap = values.megabytes(file.get("max_response_mb", DEFAULT_MAX_RESPONSE_MB))
    except UsageError as exc:
        raise UsageError(f"{where}: [kubernetes] max_response_mb: {exc}") from None
    return (
        (str(context) if context else None),
        (values.path(path).expanduser() if path else None),
        cap,
    )


TRACING_KEYS = ("backend", "url", "tenant", "headers", "max_response_mb", "max_spans")


# [tracing] caps -> (TracingConfig field, parser); they hold for every cluster's backend
TRACING_CAPS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "max_response_mb": ("max_response_mb", lambda v: values.megabytes(v)),
    "max_spans": ("max_spans", lambda v: values.count(v)),
}


def tracing_caps(file: Any, where: str) -> dict[str, Any]:
    """[tracing] `max_response_mb` and `max_spans`, as `TracingConfig` fields."""
    if not isinstance(file, dict):
        return {}  # `tracing` says what is wrong
    caps: dict[str, Any] = {}
    for key, (name, parse) in TRACING_CAPS.items():
        if key in file:
            try:
                caps[name] = parse(file[key])
            except UsageError as exc:
                raise UsageError(f"{where}: tracing {key}: {exc}") from None
    return caps


def tracing(
    file: Any, where: str, environ: Mapping[str, str], flags: Mapping[str, Any]
) -> TracingConfig | None:
    """[tracing] in the file (`backend`, `url`, `tenant`, `headers`), then MESHTOP_TRACING
    and --tracing (`jaeger=URL`, `tempo=URL`, `zipkin=URL`), then --tracing-tenant."""
    if not isinstance(file, dict):
        raise UsageError(f"{where}: tracing must be a table ([tracing])")
    unknown = set(file) - set(TRACING_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown tracing setting {sorted(unknown)[0]!r}; known: "
            f"{', '.join(TRACING_KEYS)}"
        )
    headers = values.headers(file.get("headers", {})) if file.get("headers") else {}
    tenant = flags.get("tracing.tenant") or file.get("tenant")
    if tenant:
        check_header_value("the tracing tenant", str(tenant))
        headers["X-Scope-OrgID"] = str(tenant)
    given = flags.get("tracing.url") or environ.get("MESHTOP_TRACING")
    if given:
        return parse_tracing(str(given), headers)
    if not file.get("url"):
        if file.get("backend") or tenant:
            raise UsageError(f"{where}: tracing settings are given but no url")
        return None
    return parse_tracing(f"{file.get('backend', 'jaeger')}={file['url']}", headers)
