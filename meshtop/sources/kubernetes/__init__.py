"""`ControlPlane` over the Kubernetes API, through the official Kubernetes client (which
reads kubeconfig contexts, exec credential plugins and in-cluster config): Istio
VirtualServices (`networking.istio.io/v1`, else `v1beta1`) and DestinationRules, Gateway
API HTTPRoutes (`v1`, else `v1beta1`), the Deployments and StatefulSets behind them and
the security configuration; and the one write, a weight change as a JSON patch that
tests what it was planned on. Every request goes through `api.py`'s bounded calls.
Over 400 lines: every read and the writes of one cluster's control plane share its
version negotiation, its names' checks and `api.py`'s bounded calls."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from meshtop.canary import Plan
from meshtop.errors import BackendError, UsageError
from meshtop.model import CircuitBreaker, NodeKind, Route, Workload
from meshtop.posture import SecurityConfig, ServiceEntry, WorkloadInfo
from meshtop.sources.kubernetes.api import LIST_PAGES_CAPPED as LIST_PAGES_CAPPED
from meshtop.sources.kubernetes.api import PAGE as PAGE
from meshtop.sources.kubernetes.api import Forbidden, KubeAPI, _entries, _NotServed, _table
from meshtop.sources.kubernetes.api import KubeConfig as KubeConfig
from meshtop.sources.protocols import ConfigChange
from meshtop.sources.routing import (
    breakers_from_destination_rule,
    json_patch,
    route_from_httproute,
    route_from_virtual_service,
)
from meshtop.steering.plan import EditPlan

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


KINDS = {"VirtualService": VIRTUAL_SERVICES, "HTTPRoute": HTTP_ROUTES}
EDITABLE = {**KINDS, "DestinationRule": DESTINATION_RULES}  # what an `EditPlan` may change


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


def _moment(text: object) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def config_change(item: dict[str, Any], kind: str, cluster: str) -> ConfigChange | None:
    """When an object last changed, as its metadata says: the latest `time` of its
    managed fields written to the object itself (a write to its status subresource is
    the controllers' progress, not a change), by whom, and its `generation`; the creation
    time when no managed field has a time. None when it says neither."""
    meta = _table(item.get("metadata"))
    written = [
        (when, str(entry.get("manager") or ""))
        for entry in _entries(meta.get("managedFields"))
        if not entry.get("subresource")
        for when in [_moment(entry.get("time"))]
        if when is not None
    ]
    created = _moment(meta.get("creationTimestamp"))
    time, manager = max(written) if written else (created, "")
    if time is None:
        return None
    generation = meta.get("generation")
    return ConfigChange(
        time,
        kind,
        cluster,
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        generation if isinstance(generation, int) else 0,
        manager,
    )


# A ServiceEntry's host as a node's name: a DNS name (or an address); a wildcard host is
# no node of its own (the telemetry names the host each call went to).
_HOST = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?", re.ASCII)


def outside_nodes(
    cluster: str,
    entries: Sequence[WorkloadInfo],
    services: Sequence[ServiceEntry],
    malformed: list[str],
) -> list[Workload]:
    """The nodes of what runs or answers outside Kubernetes: a VM per WorkloadEntry (one
    per WorkloadGroup: its entries are one workload, as the telemetry names it), with its
    `app` and `version` labels (its name for an app without one, as the telemetry does),
    and a node per host of a `MESH_EXTERNAL` ServiceEntry (a `MESH_INTERNAL` one's hosts
    are in the mesh). A host that is no host name is left out and said in `malformed`."""
    nodes: dict[str, Workload] = {}
    for info in entries:
        labels = info.labels
        vm = Workload(
            cluster,
            info.namespace,
            info.name,
            app=labels.get("app") or labels.get("app.kubernetes.io/name") or info.name,
            version=labels.get("version", labels.get("app.kubernetes.io/version", "")),
            kind=NodeKind.VM,
        )
        nodes.setdefault(vm.id, vm)
    for entry in services:
        if entry.location != "MESH_EXTERNAL":
            continue
        for host in entry.hosts:
            if host.startswith("*"):
                continue
            if len(host) > 253 or not _HOST.fullmatch(host):
                malformed.append(f"{entry.ref} is malformed: host {host[:64]!r} is not a host name")
                continue
            node = Workload.service_entry(host)
            nodes.setdefault(node.id, node)
    return list(nodes.values())


class KubernetesControlPlane(KubeAPI):
    """Routes, subsets, services, workloads and the security configuration of one
    cluster, and the one write of a route's weights."""

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
        self._malformed_routes = malformed
        return out

    @property
    def malformed(self) -> list[str]:
        """What the last refresh's reads left out: malformed routes, DestinationRules and
        entries, and the entries the user may not list."""
        return [
            *getattr(self, "_malformed_routes", []),
            *getattr(self, "_malformed_rules", []),
            *getattr(self, "_malformed_entries", []),
        ]

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

    async def breakers(self) -> Sequence[CircuitBreaker]:
        """Every DestinationRule's connection pool and outlier detection; a malformed one
        is left out and said in `malformed`, as a malformed route is."""
        out: list[CircuitBreaker] = []
        malformed: list[str] = []
        for namespace in self.config.namespaces or ("",):
            for item in await self._list(DESTINATION_RULES, namespace):
                try:
                    out += breakers_from_destination_rule(
                        item, self.config.cluster, namespace or "default"
                    )
                except (BackendError, UsageError) as exc:
                    malformed.append(str(exc))
        self._malformed_rules = malformed
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
        """The Deployments and StatefulSets, each a workload, and what runs or answers
        outside Kubernetes (`outside`): the VMs of the WorkloadEntries and the hosts of
        the ServiceEntries, each a node of its own kind."""
        kubernetes, outside = await asyncio.gather(self._deployed(), self._outside())
        return [*kubernetes, *outside]

    async def _outside(self) -> list[Workload]:
        """The WorkloadEntries' VMs and the `MESH_EXTERNAL` ServiceEntries' hosts
        (`outside_nodes`), one list of each per namespace read, concurrently and bounded
        as every list is. A list the user may not read (403) is none, said once in
        `malformed` with the first refusal; a malformed entry is left out and said."""
        from meshtop.sources.security import parsed, service_entry, workload_entry

        wanted = [(r, ns) for ns in self.config.namespaces or ("",)
                  for r in (WORKLOAD_ENTRIES, SERVICE_ENTRIES)]  # fmt: skip

        async def listed(
            resource: tuple[str, tuple[str, ...], str, str], namespace: str
        ) -> list[dict[str, Any]] | Forbidden:
            try:
                return await self._list(resource, namespace)
            except Forbidden as refused:
                return refused

        answers = await asyncio.gather(*(listed(r, ns) for r, ns in wanted))
        bad: list[str] = []
        refused: dict[str, Forbidden] = {}
        entries, services = [], []
        for (resource, namespace), answer in zip(wanted, answers, strict=True):
            kind = resource[3]
            if isinstance(answer, Forbidden):
                refused.setdefault(kind, answer)
            elif resource is WORKLOAD_ENTRIES:
                entries += parsed(kind, workload_entry, answer, bad, namespace)
            else:
                services += parsed(kind, service_entry, answer, bad, namespace)
        nodes = outside_nodes(self.config.cluster, entries, services, bad)
        if refused:
            unseen = {"WorkloadEntry": "VMs (WorkloadEntries)",
                      "ServiceEntry": "ServiceEntry hosts"}  # fmt: skip
            what = " nor ".join(unseen[kind] for kind in refused)
            bad.append(f"no {what} shown: {next(iter(refused.values()))}")
        self._malformed_entries = bad
        return nodes

    async def _deployed(self) -> list[Workload]:
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

    async def changes(self) -> Sequence[ConfigChange]:
        """When each VirtualService, HTTPRoute and Deployment last changed
        (`config_change`): the latest the API server keeps of each, not every change.
        One list of each, concurrently, bounded as every list is."""
        cluster = self.config.cluster
        scoped = self.config.namespaces or ("",)

        def deployment(item: dict[str, Any]) -> ConfigChange | None:
            return config_change(item, "Deployment", cluster)

        async def routes(
            resource: tuple[str, tuple[str, ...], str, str], ns: str
        ) -> list[ConfigChange | None]:
            return [config_change(i, resource[3], cluster) for i in await self._list(resource, ns)]

        lists = await asyncio.gather(
            *(routes(r, ns) for ns in scoped for r in (VIRTUAL_SERVICES, HTTP_ROUTES)),
            *(
                self._items(
                    f"list deployments{f' in {ns}' if ns else ''}",
                    f"/apis/apps/v1{f'/namespaces/{ns}' if ns else ''}/deployments",
                    deployment,
                )
                for ns in scoped
            ),
        )
        return [c for found in lists for c in found if c is not None]

    async def security(self) -> SecurityConfig:
        """The security configuration (`sources/security.py`): PeerAuthentications,
        AuthorizationPolicies, DestinationRules' tls, ServiceEntries and WorkloadEntries
        (with the root namespace's mesh-wide policies when namespaces are scoped: `[mesh]
        root_namespace`, Istio's `istio-system` by default), and each Deployment's and
        StatefulSet's pod labels and service account; one list of each, concurrently, each
        bounded as every list is. Malformed objects are left out and said in the answer's
        `malformed`."""
        from meshtop.sources.security import security_config

        scoped, root = self.config.namespaces, self.config.root_namespace
        wanted = [(r, ns) for ns in scoped or ("",) for r in (
            PEER_AUTHENTICATIONS, AUTHORIZATION_POLICIES, DESTINATION_RULES, SERVICE_ENTRIES,
            WORKLOAD_ENTRIES)]  # fmt: skip
        if scoped and root not in scoped:  # the mesh-wide ones
            check_names(root, "root")  # it becomes part of a path
            wanted += [(r, root) for r in (PEER_AUTHENTICATIONS, AUTHORIZATION_POLICIES)]
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
        return security_config(objects, workloads, root)

    async def read(self, kind: str, namespace: str, name: str) -> tuple[Route, dict[str, Any]]:
        """One route as it is now, and the object itself (for its owners)."""
        obj = await self.get(kind, namespace, name)
        parse = route_from_virtual_service if kind == "VirtualService" else route_from_httproute
        return parse(obj, self.config.cluster, namespace), obj

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A VirtualService, HTTPRoute or DestinationRule as it is now, whole."""
        check_names(namespace, name)
        if kind not in EDITABLE:
            raise UsageError(f"meshtop does not change a {kind}")
        group, versions, plural, _ = EDITABLE[kind]
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
            if not isinstance(obj, dict):
                raise BackendError(f"read {kind} {namespace}/{name}: the answer is not an object")
            obj.setdefault("kind", kind)
            return obj
        raise UsageError(f"no {kind} {namespace}/{name}: this cluster does not serve {group}")

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

    async def edit(self, plan: EditPlan, *, dry_run: bool = False) -> dict[str, Any]:
        """The plan's JSON patch: the server tests the version and the spec read (a
        concurrent change is a `ConflictError`, nothing written); with `dry_run` it
        validates (the CRD's schema, Istio's and the Gateway API's rules) and writes
        nothing. The object as written."""
        check_names(plan.namespace, plan.name)
        group, versions, plural, kind = EDITABLE[plan.kind]
        version = self._versions.get(plural, versions[0])
        obj = await self._call(
            f"{'check' if dry_run else 'change'} {kind} {plan.namespace}/{plan.name}",
            "PATCH",
            f"/apis/{group}/{version}/namespaces/{plan.namespace}/{plural}/{plan.name}",
            query=[("fieldManager", "meshtop"), *([("dryRun", "All")] if dry_run else [])],
            body=plan.json_patch(),
        )
        if not isinstance(obj, dict):
            raise BackendError(f"change {kind} {plan.namespace}/{plan.name}: no object answered")
        obj.setdefault("kind", kind)
        return obj
