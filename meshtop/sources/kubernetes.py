"""`ControlPlane` over the Kubernetes API, through the official Kubernetes client (which
reads kubeconfig contexts, exec credential plugins and in-cluster config): Istio
VirtualServices (`networking.istio.io/v1`, else `v1beta1`) and DestinationRules, Gateway
API HTTPRoutes (`v1`, else `v1beta1`), and the Deployments and StatefulSets behind them;
and the one write, a weight change as a JSON patch that tests what it was planned on.
Calls run in worker threads; every refusal becomes one clear error."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from meshtop import __version__
from meshtop.canary import Plan
from meshtop.errors import BackendError, ConflictError, MeshtopError, UsageError
from meshtop.model import Route, Workload
from meshtop.posture import SecurityConfig
from meshtop.sources import bounded
from meshtop.sources.routing import (
    json_patch,
    route_from_httproute,
    route_from_virtual_service,
)

T = TypeVar("T")

# (group, versions newest first, plural, kind)
VIRTUAL_SERVICES = ("networking.istio.io", ("v1", "v1beta1"), "virtualservices", "VirtualService")
DESTINATION_RULES = (
    "networking.istio.io",
    ("v1", "v1beta1"),
    "destinationrules",
    "DestinationRule",
)
HTTP_ROUTES = ("gateway.networking.k8s.io", ("v1", "v1beta1"), "httproutes", "HTTPRoute")
# the security configuration (issue 22): read, never written here
PEER_AUTHENTICATIONS = (
    "security.istio.io",
    ("v1", "v1beta1"),
    "peerauthentications",
    "PeerAuthentication",
)
AUTHORIZATION_POLICIES = (
    "security.istio.io",
    ("v1", "v1beta1"),
    "authorizationpolicies",
    "AuthorizationPolicy",
)
SERVICE_ENTRIES = ("networking.istio.io", ("v1", "v1beta1"), "serviceentries", "ServiceEntry")
WORKLOAD_ENTRIES = ("networking.istio.io", ("v1", "v1beta1"), "workloadentries", "WorkloadEntry")
# Items a list asks for at a time, as kubectl does: no one answer grows with the cluster.
PAGE = 500
# A whole list (all its pages) may be this many times one answer's cap: 512 MiB of
# Deployments is some 80,000 of them; a server that pages for ever stops there.
LIST_PAGES_CAPPED = 8
KINDS = {"VirtualService": VIRTUAL_SERVICES, "HTTPRoute": HTTP_ROUTES}

# Who else steers a route's weights, and how they mark what they own or manage.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(rf"{_LABEL}", re.ASCII)  # a namespace: 63 at most
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*", re.ASCII)  # a name: 253 at most


def check_names(namespace: str, name: str) -> None:
    """A namespace (a DNS-1123 label) and an object name (a DNS-1123 subdomain), checked
    before they become part of a request's path: `bookinfo/..` would otherwise be a GET of
    the namespace's whole collection."""
    if len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace):
        raise UsageError(
            f"{namespace!r} is not a Kubernetes namespace (lower-case letters, digits and "
            "'-', 63 at most, starting and ending with a letter or digit)"
        )
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a Kubernetes object name (lower-case letters, digits, '-' and "
            "'.', 253 at most)"
        )


def route_name(target: str) -> tuple[str, str]:
    """`NAMESPACE/NAME` as a user gives a route, checked."""
    namespace, sep, name = target.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise UsageError(f"{target!r}: give the route as NAMESPACE/NAME")
    check_names(namespace, name)
    return namespace, name


@dataclass(frozen=True)
class KubeConfig:
    context: str | None = None  # None: the kubeconfig's current context, or in-cluster
    kubeconfig: Path | None = None  # None: $KUBECONFIG or ~/.kube/config
    namespaces: tuple[str, ...] = ()  # () : every namespace the user may list
    cluster: str = "Kubernetes"
    timeout_s: float = 10.0  # a deadline for each request, all of it; a list's pages share one
    max_response_mb: float = bounded.DEFAULT_MAX_RESPONSE_MB  # a bigger answer (a page) is refused
    extra: Mapping[str, str] = field(default_factory=dict)


class KubernetesControlPlane:
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

    # -- calling ---------------------------------------------------------------------

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

    # -- reading ---------------------------------------------------------------------

    async def routes(self) -> Sequence[Route]:
        """Every route; one the cluster serves malformed is left out and said in
        `malformed` (the rest of the control plane is still shown)."""
        out: list[Route] = []
        malformed: list[str] = []
        for namespace in self.config.namespaces or ("",):
            for resource, parse in ((VIRTUAL_SERVICES, route_from_virtual_service),
                                    (HTTP_ROUTES, route_from_httproute)):  # fmt: skip
                for item in await self._list(resource, namespace):
                    try:
                        out.append(parse(item, self.config.cluster, namespace or "default"))
                    except BackendError as exc:
                        malformed.append(str(exc))
        self.malformed = malformed
        return out

    async def subsets(self) -> dict[tuple[str, str], set[str]]:
        """(namespace, host) -> the subsets its DestinationRules define."""
        out: dict[tuple[str, str], set[str]] = {}
        for namespace in self.config.namespaces or ("",):
            for item in await self._list(DESTINATION_RULES, namespace):
                meta, spec = _table(item.get("metadata")), _table(item.get("spec"))
                host = str(spec.get("host", "")).split(".")[0]
                key = (str(meta.get("namespace", namespace)), host)
                out.setdefault(key, set()).update(
                    str(s.get("name"))
                    for s in spec.get("subsets") or ()
                    if isinstance(s, dict) and s.get("name")
                )
        return out

    async def services(self) -> set[tuple[str, str]]:
        """(namespace, name) of every Service: a route to a host with none is flagged."""
        out: set[tuple[str, str]] = set()
        for namespace in self.config.namespaces or ("",):
            where = f"/namespaces/{namespace}" if namespace else ""

            def name(item: dict[str, Any], namespace: str = namespace) -> tuple[str, str]:
                meta = _table(item.get("metadata"))
                return str(meta.get("namespace", namespace)), str(meta.get("name", ""))

            out.update(
                await self._items(
                    f"list services{f' in {namespace}' if namespace else ''}",
                    f"/api/v1{where}/services",
                    name,
                )
            )
        return out

    async def workloads(self) -> Sequence[Workload]:
        out: list[Workload] = []
        for namespace in self.config.namespaces or ("",):
            where = f"/namespaces/{namespace}" if namespace else ""

            def workload(item: dict[str, Any], namespace: str = namespace) -> Workload:
                meta = _table(item.get("metadata"))
                template = _table(_table(item.get("spec")).get("template"))
                labels = _table(_table(template.get("metadata")).get("labels"))
                return Workload(
                    self.config.cluster,
                    str(meta.get("namespace", namespace)),
                    str(meta.get("name", "")),
                    app=str(labels.get("app", labels.get("app.kubernetes.io/name", ""))),
                    version=str(labels.get("version", labels.get("app.kubernetes.io/version", ""))),
                )

            for plural in ("deployments", "statefulsets"):  # each item kept as a Workload
                out += await self._items(
                    f"list {plural}{f' in {namespace}' if namespace else ''}",
                    f"/apis/apps/v1{where}/{plural}",
                    workload,
                )
        return out

    malformed: Sequence[str] = ()  # the routes the last `routes()` left out, and why

    async def security(self) -> SecurityConfig:
        """The security configuration (`sources/security.py`): PeerAuthentications,
        AuthorizationPolicies, DestinationRules' tls, ServiceEntries and WorkloadEntries
        (with the root namespace's mesh-wide policies when namespaces are scoped), and each
        Deployment's and StatefulSet's pod labels and service account; one list of each,
        concurrently, each bounded as every list is. Malformed objects are left out and
        said in the answer's `malformed`."""
        from meshtop.posture import ROOT_NAMESPACE
        from meshtop.sources.security import security_config

        scoped = self.config.namespaces
        wanted = [(r, ns) for ns in scoped or ("",) for r in (
            PEER_AUTHENTICATIONS, AUTHORIZATION_POLICIES, DESTINATION_RULES, SERVICE_ENTRIES,
            WORKLOAD_ENTRIES)]  # fmt: skip
        if scoped and ROOT_NAMESPACE not in scoped:  # the mesh-wide ones
            wanted += [(r, ROOT_NAMESPACE) for r in (PEER_AUTHENTICATIONS, AUTHORIZATION_POLICIES)]
        pods = [
            self._items(
                f"list {plural}{f' in {ns}' if ns else ''}",
                f"/apis/apps/v1{f'/namespaces/{ns}' if ns else ''}/{plural}",
                _pod_template,
            )
            for ns in scoped or ("",)
            for plural in ("deployments", "statefulsets")
        ]
        lists = await asyncio.gather(*(self._list(r, ns) for r, ns in wanted), *pods)
        objects: dict[str, list[dict[str, Any]]] = {}
        for (resource, _), items in zip(wanted, lists, strict=False):
            objects.setdefault(resource[3], []).extend(items)
        workloads = [item for found in lists[len(wanted) :] for item in found]
        return security_config(objects, workloads)

    async def read(self, kind: str, namespace: str, name: str) -> tuple[Route, dict[str, Any]]:
        """One route as it is now, and the object itself (for its owners)."""
        check_names(namespace, name)
        group, versions, plural, _ = KINDS[kind]
        for version in [self._versions[plural]] if plural in self._versions else versions:
            try:
                obj = await self._call(
                    f"read {kind} {namespace}/{name}",
                    "GET",
                    f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                )
            except _NotServed:
                continue
            self._versions[plural] = version
            parse = route_from_virtual_service if kind == "VirtualService" else route_from_httproute
            return parse(obj, self.config.cluster, namespace), obj
        raise UsageError(f"no {kind} {namespace}/{name}: this cluster does not serve {group}")

    # -- writing ---------------------------------------------------------------------

    async def apply(self, plan: Plan, *, dry_run: bool = False) -> Route:
        """The plan's JSON patch: the server checks every test (a concurrent change is a
        `ConflictError`, nothing written); with `dry_run` it validates and writes nothing."""
        route = plan.route
        check_names(route.namespace, route.name)
        group, versions, plural, kind = KINDS[route.kind]
        version = self._versions.get(plural, versions[0])
        ops = json_patch(plan)
        obj = await self._call(
            f"{'check' if dry_run else 'change'} {kind} {route.namespace}/{route.name}",
            "PATCH",
            f"/apis/{group}/{version}/namespaces/{route.namespace}/{plural}/{route.name}",
            # recorded as meshtop's in managedFields (what Flagger, Argo and `owner()`
            # go by), not as the client's default "OpenAPI-Generator"
            query=[("fieldManager", "meshtop"), *([("dryRun", "All")] if dry_run else [])],
            body=ops,
        )
        parse = route_from_virtual_service if kind == "VirtualService" else route_from_httproute
        return parse(obj, self.config.cluster, route.namespace)


class _NotServed(BackendError):
    """404 for a whole API version: try the next one."""


def _in_cluster() -> bool:
    import os

    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()
    )


def _table(value: Any) -> dict[str, Any]:
    """A field of an object from the API as a mapping, whatever the server sent."""
    return value if isinstance(value, dict) else {}


def _whole(item: dict[str, Any]) -> dict[str, Any]:
    return item


def _pod_template(item: dict[str, Any]) -> dict[str, Any]:
    """Of a Deployment or StatefulSet, what the security posture needs: its name and its
    pods' labels and service account (not the whole object, kept for every workload)."""
    meta, template = _table(item.get("metadata")), _table(_table(item.get("spec")).get("template"))
    labels = _table(template.get("metadata")).get("labels")
    account = _table(template.get("spec")).get("serviceAccountName")
    return {
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": {"template": {"metadata": {"labels": labels},
                              "spec": {"serviceAccountName": account}}},
    }  # fmt: skip


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
        return BackendError(f"cannot {what}: forbidden by RBAC in {context} ({message})")
    if status == 401:
        return BackendError(
            f"cannot {what}: the Kubernetes API refused the credentials of {context}"
        )
    return BackendError(f"cannot {what}: the Kubernetes API answered {status} {message}".rstrip())
