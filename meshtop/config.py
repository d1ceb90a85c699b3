"""Settings from one place: the TOML config file in the user's config directory, then
`MESHTOP_*` environment variables, then command-line flags, each overriding the last."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from meshtop.errors import UsageError
from meshtop.health import DEFAULT_THRESHOLDS, Thresholds
from meshtop.sources.bounded import DEFAULT_MAX_RESPONSE_MB
from meshtop.sources.prometheus_config import PrometheusConfig, check_header_value
from meshtop.sources.tracing import TracingConfig, parse_tracing
from meshtop.units import parse_duration

APP_NAME = "meshtop"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """One cluster of the mesh: `name` as the mesh names it (Istio's cluster ID, the
    `source_cluster` of its metrics; "" for the one cluster of a mesh of one, whose
    workloads carry no cluster), the kubeconfig context its control plane is reached
    through (none: no control plane is read), and its metrics and trace backends: its
    own, or the one every cluster shares."""

    name: str = ""
    context: str | None = None
    kubeconfig: Path | None = None
    prometheus: PrometheusConfig | None = None
    tracing: TracingConfig | None = None

    @property
    def reaches_kubernetes(self) -> bool:
        """Whether a control plane is named for it (a context or a kubeconfig)."""
        return bool(self.context or self.kubeconfig)


@dataclass(frozen=True, slots=True)
class Settings:
    refresh_s: float = 2.0  # how often the TUI asks the sources again
    window_s: float = 60.0  # the window rates and latencies are computed over
    timeout_s: float = 10.0  # how long one source may take to answer
    theme: str = "meshtop"
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    config_path: Path | None = None  # the file these came from, if any
    read_only: bool = False  # no write path at all: `meshtop shift` refuses
    kube_max_response_mb: float = DEFAULT_MAX_RESPONSE_MB  # [kubernetes] a page's size cap
    # the mesh, a cluster at a time: one ("" named) unless [[clusters]] or --context twice
    clusters: tuple[ClusterConfig, ...] = (ClusterConfig(),)
    warnings: tuple[str, ...] = ()  # said once, on stderr and in the console's notice

    @property
    def several(self) -> bool:
        """Whether the mesh spans several clusters (its workloads named `cluster/ns/name`)."""
        return len(self.clusters) > 1

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces the metrics are scoped to (-n), none for all."""
        return next((c.prometheus.namespaces for c in self.clusters if c.prometheus), ())


def _duration(what: str) -> Callable[[Any], float]:
    return lambda v: parse_duration(str(v), what=what)


# top-level key (file, MESHTOP_KEY, --key) -> (Settings field, parser)
_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "refresh": ("refresh_s", _duration("refresh")),
    "window": ("window_s", _duration("window")),
    "timeout": ("timeout_s", _duration("timeout")),
    "theme": ("theme", str),
    "read_only": ("read_only", lambda v: _bool(v)),
}


def _path(value: Any) -> Path:
    if not isinstance(value, str | Path):
        raise UsageError(f"{value!r} is not a file name")
    return Path(value).expanduser()


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"{value!r} is not a list of names")


def _headers(value: Any) -> dict[str, str]:
    """A table `{"X-Scope-OrgID" = "team-a"}`, or flags `NAME: VALUE`."""
    if not isinstance(value, Mapping | str | list | tuple):
        raise UsageError(f"headers: a {type(value).__name__} is not a table of headers")
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    headers = {}
    for text in _strings(value) if isinstance(value, str) else value:
        name, sep, val = str(text).partition(":")
        if not sep or not name.strip():
            # never the text itself: a header may carry a token
            raise UsageError("a header is not NAME: VALUE (its text is not shown)")
        headers[name.strip()] = val.strip()
    return headers


def _megabytes(value: Any) -> float:
    """A size cap in MiB: a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UsageError(f"{value!r} is not a number of MiB")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a number of MiB") from None
    if not 0 < number < 1e6:
        raise UsageError(f"{value!r} is not a size between 0 and 1000000 MiB")
    return number


def _count(value: Any) -> int:
    """A cap on a count: a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UsageError(f"{value!r} is not a whole number")
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise UsageError(f"{value!r} is not a positive whole number")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{value!r} is not true or false")


# [prometheus] keys (file; --prometheus-KEY or the flag named in the README) -> parser
_PROMETHEUS_KEYS: dict[str, Callable[[Any], Any]] = {
    "url": str,
    "dialect": str,
    "namespaces": _strings,
    "token_file": _path,
    "user": str,
    "password_file": _path,
    "headers": _headers,
    "ca_file": _path,
    "insecure": _bool,
    "max_response_mb": lambda v: _megabytes(v),
}
# Secrets may come straight from the environment, never from a flag (shell history).
_PROMETHEUS_ENV = {
    "MESHTOP_PROMETHEUS_URL": "url",
    "MESHTOP_PROMETHEUS_DIALECT": "dialect",
    "MESHTOP_NAMESPACES": "namespaces",
    "MESHTOP_PROMETHEUS_TOKEN": "token",
    "MESHTOP_PROMETHEUS_USER": "user",
    "MESHTOP_PROMETHEUS_PASSWORD": "password",
}


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def _apply(settings: Settings, values: Mapping[str, Any], where: str) -> Settings:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _KEYS:
            known = ", ".join(
                sorted(
                    [*_KEYS, "[[clusters]]", "[health]", "[kubernetes]", "[prometheus]",
                     "[tracing]"]
                )
            )  # fmt: skip
            raise UsageError(f"{where}: unknown setting {key!r}; known settings are {known}")
        name, parse = _KEYS[key]
        try:
            changes[name] = parse(value)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return replace(settings, **changes)


def _prometheus_values(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _PROMETHEUS_KEYS:
            known = ", ".join(_PROMETHEUS_KEYS)
            raise UsageError(f"{where}: unknown prometheus setting {key!r}; known: {known}")
        try:
            parsed[key] = _PROMETHEUS_KEYS[key](value)
        except UsageError as exc:
            raise UsageError(f"{where}: prometheus {key}: {exc}") from None
        except (TypeError, ValueError):
            raise UsageError(f"{where}: prometheus {key}: {value!r} is not what it takes") from None
    return parsed


SECRET_KEYS = frozenset(("token", "password", "headers", "tenant"))


def exposed(path: Path, what: str) -> str | None:
    """A one-line warning, as ssh gives for a key file, when a file that holds a secret
    can be read by its group or by others; None when only its owner can."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return f"{what} {path} holds a secret and is readable by others (mode {mode:04o}); chmod 600 it"


def _holds_secret(value: Any) -> bool:
    """Whether a config file's tables say a secret themselves (not a file that has one)."""
    if isinstance(value, dict):
        return any(k in SECRET_KEYS or _holds_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def read_secret(path: Path, what: str) -> str:
    try:
        secret = path.read_text("utf-8").strip()
    except OSError as exc:
        raise UsageError(f"{what} file {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} file {path} is not text (UTF-8)") from None
    if not secret:
        raise UsageError(f"{what} file {path} is empty")
    return secret


def _prometheus(
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


def _share(value: Any) -> float:
    """`10%` or `0.1` -> 0.1."""
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"{value!r} is not a share such as 10% or 0.1") from None
    if not 0 <= share <= 1:
        raise UsageError(f"{value!r} is not between 0% and 100%")
    return share


def _thresholds(values: Any, where: str) -> Thresholds:
    if not isinstance(values, dict):
        raise UsageError(f"{where}: health must be a table ([health])")
    known = {f for f in Thresholds.__dataclass_fields__}
    unknown = set(values) - known
    if unknown:
        first, names = sorted(unknown)[0], ", ".join(sorted(known))
        raise UsageError(f"{where}: unknown health setting {first!r}; known: {names}")
    try:
        t = replace(DEFAULT_THRESHOLDS, **{k: _share(v) for k, v in values.items()})
    except UsageError as exc:
        raise UsageError(f"{where}: health: {exc}") from None
    if t.errors_failing <= t.errors_degraded or t.client_errors_failing <= t.client_errors_degraded:
        raise UsageError(f"{where}: health: a failing threshold must be above its degraded one")
    return t


def read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror}") from None


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
        if _holds_secret(file_values):
            warnings.append(exposed(path, "config file") or "")
    where = f"config file {path}"
    thresholds = _thresholds(file_values.pop("health", {}), where)
    file_tracing = file_values.pop("tracing", {})
    caps = _tracing_caps(file_tracing, where)
    if caps:
        file_tracing = {k: v for k, v in file_tracing.items() if k not in _TRACING_CAPS}
    tracing = _tracing(file_tracing, where, environ, flags or {})
    kube = _kubernetes(file_values.pop("kubernetes", {}), where, environ, flags or {})
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
        key: environ[var] for var, key in _PROMETHEUS_ENV.items() if environ.get(var)
    }
    if "namespaces" in env_prom:
        env_prom["namespaces"] = _strings(env_prom["namespaces"])

    given = {k: v for k, v in (flags or {}).items() if v not in (None, (), [], False)}
    flag_prom = {
        k.removeprefix("prometheus."): v for k, v in given.items() if k.startswith("prometheus.")
    }
    settings = _apply(settings, {k: v for k, v in given.items() if "." not in k}, "command line")

    layers = [
        _prometheus_values(file_prom, where),
        env_prom,
        _prometheus_values(flag_prom, "command line"),
    ]
    own = isinstance(file_clusters, list) and any(
        isinstance(t, dict) and t.get("prometheus") for t in file_clusters
    )
    prometheus = _prometheus(layers, settings.timeout_s, url_needed=not own)
    for layer in layers:
        for key in ("token_file", "password_file"):
            if key in layer:
                warnings.append(exposed(Path(layer[key]), key.replace("_", " ")) or "")

    def prometheus_at(url: str) -> PrometheusConfig | None:
        return _prometheus([*layers, {"url": url}], settings.timeout_s)

    contexts = (flags or {}).get("kubernetes.contexts", ())
    clusters = _clusters(file_clusters, where, contexts, kube[1], prometheus_at)
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
        clusters=tuple(
            replace(c, tracing=replace(c.tracing, timeout_s=settings.timeout_s, **caps))
            if c.tracing
            else c
            for c in clusters
        ),
    )


_CLUSTER_KEYS = ("name", "context", "kubeconfig", "prometheus", "tracing")


def _clusters(
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
        unknown = set(table) - set(_CLUSTER_KEYS)
        if unknown:
            raise UsageError(
                f"{where}: cluster {i + 1}: unknown setting {sorted(unknown)[0]!r}; "
                f"known: {', '.join(_CLUSTER_KEYS)}"
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
                kubeconfig=_path(table["kubeconfig"]) if table.get("kubeconfig") else kubeconfig,
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


def _kubernetes(
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
        cap = _megabytes(file.get("max_response_mb", DEFAULT_MAX_RESPONSE_MB))
    except UsageError as exc:
        raise UsageError(f"{where}: [kubernetes] max_response_mb: {exc}") from None
    return (
        (str(context) if context else None),
        (_path(path).expanduser() if path else None),
        cap,
    )


_TRACING_KEYS = ("backend", "url", "tenant", "headers", "max_response_mb", "max_spans")
# [tracing] caps -> (TracingConfig field, parser); they hold for every cluster's backend
_TRACING_CAPS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "max_response_mb": ("max_response_mb", lambda v: _megabytes(v)),
    "max_spans": ("max_spans", lambda v: _count(v)),
}


def _tracing_caps(file: Any, where: str) -> dict[str, Any]:
    """[tracing] `max_response_mb` and `max_spans`, as `TracingConfig` fields."""
    if not isinstance(file, dict):
        return {}  # `_tracing` says what is wrong
    caps: dict[str, Any] = {}
    for key, (name, parse) in _TRACING_CAPS.items():
        if key in file:
            try:
                caps[name] = parse(file[key])
            except UsageError as exc:
                raise UsageError(f"{where}: tracing {key}: {exc}") from None
    return caps


def _tracing(
    file: Any, where: str, environ: Mapping[str, str], flags: Mapping[str, Any]
) -> TracingConfig | None:
    """[tracing] in the file (`backend`, `url`, `tenant`, `headers`), then MESHTOP_TRACING
    and --tracing (`jaeger=URL`, `tempo=URL`, `zipkin=URL`), then --tracing-tenant."""
    if not isinstance(file, dict):
        raise UsageError(f"{where}: tracing must be a table ([tracing])")
    unknown = set(file) - set(_TRACING_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown tracing setting {sorted(unknown)[0]!r}; known: "
            f"{', '.join(_TRACING_KEYS)}"
        )
    headers = _headers(file.get("headers", {})) if file.get("headers") else {}
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
