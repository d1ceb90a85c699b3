"""The Kubernetes API, bounded: one cluster's client (kubeconfig contexts, exec
credential plugins, in-cluster config), and every request made through it with one
deadline for all of it (connect, headers, each byte of the body), a size cap, one try,
lists read in pages; every refusal one clear error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from meshtop import __version__
from meshtop.errors import BackendError, ConflictError, MeshtopError, UsageError
from meshtop.posture.config import ROOT_NAMESPACE
from meshtop.sources import bounded

T = TypeVar("T")


# Items a list asks for at a time, as kubectl does: no one answer grows with the cluster.
PAGE = 500


# A whole list (all its pages) may be this many times one answer's cap: 512 MiB of
# Deployments is some 80,000 of them; a server that pages for ever stops there.
LIST_PAGES_CAPPED = 8


@dataclass(frozen=True)
class KubeConfig:
    context: str | None = None  # None: the kubeconfig's current context, or in-cluster
    kubeconfig: Path | None = None  # None: $KUBECONFIG or ~/.kube/config
    namespaces: tuple[str, ...] = ()  # () : every namespace the user may list
    cluster: str = "Kubernetes"
    timeout_s: float = 10.0  # a deadline for each request, all of it; a list's pages share one
    max_response_mb: float = bounded.DEFAULT_MAX_RESPONSE_MB  # a bigger answer (a page) is refused
    extra: Mapping[str, str] = field(default_factory=dict)
    # where the mesh-wide security policies are ([mesh] root_namespace), read with them
    root_namespace: str = ROOT_NAMESPACE


class _NotServed(BackendError):
    """404 for a whole API version: try the next one."""


class Forbidden(BackendError):
    """403: RBAC does not let the user do it (a list meshtop can do without is then said,
    not a failure)."""


def _in_cluster() -> bool:
    import os

    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()
    )


def _table(value: Any) -> dict[str, Any]:
    """A field of an object from the API as a mapping, whatever the server sent."""
    return value if isinstance(value, dict) else {}


def _entries(value: Any) -> list[dict[str, Any]]:
    """A list field of an object from the API: its mappings, whatever else it holds."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _refusal(what: str, status: int, body: bytes, context: str) -> MeshtopError:
    """The Kubernetes API's refusal, in one line for the user (its message is the
    server's words: `said` makes them safe to show)."""
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        doc = None
    doc = _table(doc)
    message, reason = str(doc.get("message", "")), str(doc.get("reason", ""))
    if status == 404:
        # a whole group/version not served reads "the server could not find the requested
        # resource"; one object missing names it
        if reason == "NotFound" and "not found" in message and '"' in message:
            return UsageError(f"cannot {what}: there is none ({message})")
        return _NotServed(f"cannot {what}: not served")
    causes = _table(doc.get("details")).get("causes")
    if status == 422 and causes:
        # a field the object's schema refuses (the value asked for, not a change since the
        # read): a failed `test` of the patch is a 422 too, but names no field
        return UsageError(f"cannot {what}: the Kubernetes API refuses it: {message}")
    if status in (409, 422):
        # a failed `test` of the patch: the API server's words for it ("the server rejected
        # our request due to an error in our request") tell the user nothing more
        said = "" if status == 422 and "rejected our request" in message else message
        why = f" ({said})" if said else ""
        return ConflictError(
            f"cannot {what}: it changed since it was read{why}; nothing was written"
        )
    if status == 403:
        return Forbidden(f"cannot {what}: forbidden by RBAC in {context} ({message})")
    if status == 401:
        return BackendError(
            f"cannot {what}: the Kubernetes API refused the credentials of {context}"
        )
    return BackendError(f"cannot {what}: the Kubernetes API answered {status} {message}".rstrip())


class KubeAPI:
    """One cluster's API, as the control plane calls it: raw requests on worker threads."""

    def __init__(self, config: KubeConfig) -> None:
        from kubernetes import client
        from kubernetes import config as kube_config
        from kubernetes.config.config_exception import ConfigException

        self.config = config
        self.context = config.context or ""
        try:
            if config.kubeconfig is None and config.context is None and _in_cluster():
                configuration = client.Configuration()
                kube_config.load_incluster_config(client_configuration=configuration)
                api_client = client.ApiClient(configuration)
                self.context = "in-cluster"
            else:
                path = str(config.kubeconfig.expanduser()) if config.kubeconfig else None
                if path is not None and not Path(path).is_file():
                    # the client would say "Invalid kube-config file. No configuration found."
                    what = "no such file" if not Path(path).exists() else "not a file"
                    raise UsageError(f"kubeconfig {path}: {what}")
                api_client = kube_config.new_client_from_config(
                    config_file=path, context=config.context
                )
                if not self.context:
                    _, active = kube_config.list_kube_config_contexts(config_file=path)
                    self.context = str(active.get("name", ""))
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            which = f" for context {config.context}" if config.context else ""
            raise UsageError(
                f"cannot use the kubeconfig{which}: {str(exc).splitlines()[0]}"
            ) from None
        api_client.user_agent = f"meshtop/{__version__}"
        manager = api_client.rest_client.pool_manager
        bounded.watch(manager)
        # one try per request: meshtop retries a whole refresh, and a retry would start
        # after the deadline
        manager.connection_pool_kw["retries"] = False
        self._cap = int(config.max_response_mb * bounded.MIB)
        self._versions: dict[str, str] = {}  # group/plural -> the version that answered
        self.api_client = api_client

    @property
    def name(self) -> str:
        return f"kubernetes {self.context}"

    def _request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        until: float | None = None,
        content_type: str = "application/json-patch+json",  # of a body: a patch, or an object
    ) -> tuple[dict[str, Any], int]:
        """One request (on a worker thread): its answer as JSON, by the deadline (all of
        it: connecting, the headers and every byte of the body) and within the cap, or one
        clear error. The client's own API methods read every answer whole, however long it
        takes and however big it is; this reads it raw, as Prometheus's answers are read."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        until = until or time.monotonic() + self.config.timeout_s
        token = bounded.DEADLINE.set(until)  # for the watchdog, while the headers come
        try:
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise BackendError(self._late(what))
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            request = self.api_client.param_serialize(
                method, path, query_params=list(query), header_params=headers,
                body=body, auth_settings=["BearerToken"],
            )  # fmt: skip
            bounded.arm()
            answer = self.api_client.call_api(*request, _request_timeout=(remaining, remaining))
            raw = answer.response
            text = bounded.read_all(raw, until=until, cap=self._cap)
        except ApiException as exc:  # TLS, as the client reports it
            raise BackendError(
                f"cannot reach the Kubernetes API ({self.context}): "
                f"{str(exc.reason).splitlines()[-1]}"
            ) from None
        except HTTPError as exc:
            if bounded.cut_off() or time.monotonic() >= until:  # the deadline's doing
                raise BackendError(self._late(what)) from None
            raise BackendError(f"cannot reach the Kubernetes API ({self.context}): {exc}") from None
        except bounded.Late:
            raise BackendError(self._late(what)) from None
        except bounded.TooBig:
            raise BackendError(
                f"cannot {what}: the Kubernetes API ({self.context}) answered more than "
                f"{self.config.max_response_mb:g} MiB; raise [kubernetes] max_response_mb "
                "if a list really needs it"
            ) from None
        except bounded.BrokenOff as exc:
            raise BackendError(
                f"cannot {what}: the Kubernetes API ({self.context}) broke off its answer ({exc})"
            ) from None
        finally:
            bounded.DEADLINE.reset(token)
        if not 200 <= raw.status <= 299:
            raise _refusal(what, raw.status, text, self.context)
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            raise BackendError(
                f"cannot {what}: the Kubernetes API ({self.context}) answered something that "
                "is not a JSON object"
            )
        return doc, len(text)

    def _late(self, what: str) -> str:
        return (
            f"cannot {what}: the Kubernetes API ({self.context}) did not finish answering "
            f"within {self.config.timeout_s:g}s"
        )

    async def _call(self, what: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        doc, _ = await self._sized(what, method, path, **kwargs)
        return doc

    async def _sized(
        self, what: str, method: str, path: str, **kwargs: Any
    ) -> tuple[dict[str, Any], int]:
        """The answer, and how many bytes it took."""
        return await asyncio.to_thread(partial(self._request, what, method, path, **kwargs))

    async def _items(self, what: str, path: str, keep: Callable[[dict[str, Any]], T]) -> list[T]:
        """What `keep` takes of every item of a list, a page of `PAGE` at a time (as
        kubectl reads them), all the pages within one deadline and `LIST_PAGES_CAPPED`
        caps in all: a server that never stops paging cannot keep the caller waiting, nor
        fill its memory."""
        out: list[T] = []
        query: list[tuple[str, str]] = [("limit", str(PAGE))]
        until = time.monotonic() + self.config.timeout_s
        budget = LIST_PAGES_CAPPED * self._cap
        while True:
            doc, size = await self._sized(what, "GET", path, query=query, until=until)
            budget -= size
            if budget < 0:
                raise BackendError(
                    f"cannot {what}: the Kubernetes API ({self.context}) answered more than "
                    f"{LIST_PAGES_CAPPED * self.config.max_response_mb:g} MiB in all; raise "
                    "[kubernetes] max_response_mb if a list really needs it"
                )
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise BackendError(
                    f"cannot {what}: the Kubernetes API ({self.context}) answered a list "
                    "without items"
                )
            out.extend(keep(item) for item in items if isinstance(item, dict))
            more = _table(doc.get("metadata")).get("continue")
            if not more or not isinstance(more, str):
                return out
            query = [("limit", str(PAGE)), ("continue", more)]

    async def _list(
        self, resource: tuple[str, tuple[str, ...], str, str], namespace: str
    ) -> list[dict[str, Any]]:
        """Items of a custom resource in a namespace ("" for all), at its newest version
        the server serves; [] where the CRD is not installed at all."""
        group, versions, plural, kind = resource
        tried = [self._versions[plural]] if plural in self._versions else list(versions)
        for version in tried:
            where = f"/namespaces/{namespace}" if namespace else ""
            try:
                items = await self._items(
                    f"list {kind}s{f' in {namespace}' if namespace else ''}",
                    f"/apis/{group}/{version}{where}/{plural}",
                    _whole,
                )
            except _NotServed:
                continue
            self._versions[plural] = version
            return items
        return []


def _whole(item: dict[str, Any]) -> dict[str, Any]:
    return item
