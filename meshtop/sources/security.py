"""Turns Istio's security objects, as the Kubernetes API serves them (or as YAML manifests
hold them), into the posture's model: PeerAuthentication and AuthorizationPolicy
(`security.istio.io`), DestinationRule `trafficPolicy.tls`, ServiceEntry and
WorkloadEntry (`networking.istio.io`), and the labels and service account of each
Deployment's or StatefulSet's pods. Outside text is hostile: an object with a field of the
wrong shape is left out and said (in `SecurityConfig.malformed`), never a crash, and the
rest is still read. And back: a PeerAuthentication written (`KubernetesPolicies`), only
through the change workflow.
Over 400 lines: every kind of security object is read and checked here, each in the same
shape, so that a malformed one is said in one place."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from meshtop.errors import BackendError, MeshtopError
from meshtop.posture import (
    ROOT_NAMESPACE,
    Action,
    AuthorizationPolicy,
    Condition,
    DestinationRuleTls,
    MtlsMode,
    MtlsPlan,
    Operation,
    PeerAuthentication,
    Rule,
    SecurityConfig,
    ServiceEntry,
    Source,
    TlsMode,
    TlsSetting,
    WorkloadInfo,
)

if TYPE_CHECKING:
    from meshtop.sources.kubernetes import KubernetesControlPlane
    from meshtop.sources.protocols import SecuritySource

T = TypeVar("T")
KINDS = (
    "PeerAuthentication",
    "AuthorizationPolicy",
    "DestinationRule",
    "ServiceEntry",
    "WorkloadEntry",
)


class Malformed(ValueError):
    """A field of the wrong shape: said with the object's kind and name."""


def _map(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not a mapping")
    return value


def _text(value: Any, what: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise Malformed(f"{what} is not text")
    return value


def _texts(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Malformed(f"{what} is not a list of text")
    return tuple(value)


def _labels(value: Any, what: str) -> dict[str, str]:
    labels = _map(value, what)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise Malformed(f"{what} holds a label that is not text")
    return labels


def _items(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Malformed(f"{what} is not a list of mappings")
    return value


E = TypeVar("E", MtlsMode, TlsMode, Action)


def _enum(kind: type[E], value: Any, what: str, default: E) -> E:
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)
        raise Malformed(f"{what} {value!r} is not one of {choices}") from None


def _port(value: Any, what: str) -> int:
    """A port as a key (`"8080"`) or a number, 1 to 65535."""
    if isinstance(value, bool):
        raise Malformed(f"{what} {value!r} is not a port")
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise Malformed(f"{what} {value!r} is not a port") from None
    if not 0 < port <= 65535 or str(port) != str(value).strip():
        raise Malformed(f"{what} {value!r} is not a port")
    return port


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(namespace, name, creationTimestamp, resourceVersion)."""
    meta = _map(obj.get("metadata"), "metadata")
    name = _text(meta.get("name"), "metadata.name")
    if not name:
        raise Malformed("no metadata.name")
    return (
        _text(meta.get("namespace"), "metadata.namespace"),
        name,
        _text(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        _text(meta.get("resourceVersion"), "metadata.resourceVersion"),
    )


def _selector(spec: Mapping[str, Any], key: str = "selector") -> dict[str, str]:
    return _labels(_map(spec.get(key), key).get("matchLabels"), f"{key}.matchLabels")


def peer_authentication(obj: Mapping[str, Any], namespace: str = "") -> PeerAuthentication:
    ns, name, created, version = _meta(obj)
    spec = _map(obj.get("spec"), "spec")
    mtls = _map(spec.get("mtls"), "spec.mtls")
    ports: dict[int, MtlsMode] = {}
    for port, setting in _map(spec.get("portLevelMtls"), "spec.portLevelMtls").items():
        what = f"spec.portLevelMtls.{port}"
        mode = _map(setting, what).get("mode")
        ports[_port(port, "spec.portLevelMtls key")] = _enum(
            MtlsMode, mode, f"{what}.mode", MtlsMode.UNSET
        )
    return PeerAuthentication(
        ns or namespace,
        name,
        _enum(MtlsMode, mtls.get("mode"), "spec.mtls.mode", MtlsMode.UNSET),
        _selector(spec),
        ports,
        created,
        version,
    )


def _tls(value: Any, what: str) -> TlsMode | None:
    tls = _map(value, what)
    return _enum(TlsMode, tls.get("mode"), f"{what}.mode", TlsMode.DISABLE) if tls else None


def _policy_settings(policy: Mapping[str, Any], subset: str, what: str) -> list[TlsSetting]:
    """The `tls` of a traffic policy and of each of its ports."""
    out: list[TlsSetting] = []
    mode = _tls(policy.get("tls"), f"{what}.tls")
    if mode is not None:
        out.append(TlsSetting(mode, subset))
    levels = _items(policy.get("portLevelSettings"), f"{what}.portLevelSettings")
    for i, setting in enumerate(levels):
        where = f"{what}.portLevelSettings[{i}]"
        mode = _tls(setting.get("tls"), f"{where}.tls")
        if mode is not None:
            number = _map(setting.get("port"), f"{where}.port").get("number")
            out.append(TlsSetting(mode, subset, _port(number, f"{where}.port.number")))
    return out


def destination_rule(obj: Mapping[str, Any], namespace: str = "") -> DestinationRuleTls:
    ns, name, _, _ = _meta(obj)
    spec = _map(obj.get("spec"), "spec")
    host = _text(spec.get("host"), "spec.host")
    if not host:
        raise Malformed("no spec.host")
    settings = _policy_settings(_map(spec.get("trafficPolicy"), "spec.trafficPolicy"), "",
                                "spec.trafficPolicy")  # fmt: skip
    labels: dict[str, dict[str, str]] = {}
    for i, subset in enumerate(_items(spec.get("subsets"), "spec.subsets")):
        sub = _text(subset.get("name"), f"spec.subsets[{i}].name")
        labels[sub] = _labels(subset.get("labels"), f"spec.subsets[{i}].labels")
        policy = _map(subset.get("trafficPolicy"), f"spec.subsets[{i}].trafficPolicy")
        settings += _policy_settings(policy, sub, f"spec.subsets[{i}].trafficPolicy")
    return DestinationRuleTls(ns or namespace, name, host, tuple(settings), labels)


def _fields(value: Any, what: str) -> dict[str, tuple[str, ...]]:
    """A source's or an operation's fields, each a list of text; a field meshtop does not
    evaluate (one newer than it, an IP block) makes the match depend on the request."""
    given = _map(value, what)
    return {str(k): _texts(v, f"{what}.{k}") for k, v in given.items() if v}


def _rule(rule: Mapping[str, Any], what: str) -> Rule:
    sources = tuple(
        Source(_fields(f.get("source"), f"{what}.from[{i}].source"))
        for i, f in enumerate(_items(rule.get("from"), f"{what}.from"))
    )
    operations = tuple(
        Operation(_fields(t.get("operation"), f"{what}.to[{i}].operation"))
        for i, t in enumerate(_items(rule.get("to"), f"{what}.to"))
    )
    conditions = tuple(
        Condition(
            _text(c.get("key"), f"{what}.when[{i}].key"),
            _texts(c.get("values"), f"{what}.when[{i}].values"),
            _texts(c.get("notValues"), f"{what}.when[{i}].notValues"),
        )
        for i, c in enumerate(_items(rule.get("when"), f"{what}.when"))
    )
    return Rule(sources, operations, conditions)


def authorization_policy(obj: Mapping[str, Any], namespace: str = "") -> AuthorizationPolicy:
    ns, name, _, _ = _meta(obj)
    spec = _map(obj.get("spec"), "spec")
    action = _enum(Action, spec.get("action"), "spec.action", Action.ALLOW)
    rules = tuple(
        _rule(r, f"spec.rules[{i}]") for i, r in enumerate(_items(spec.get("rules"), "spec.rules"))
    )
    provider = _text(_map(spec.get("provider"), "spec.provider").get("name"), "provider.name")
    return AuthorizationPolicy(ns or namespace, name, action, _selector(spec), rules, provider)


def service_entry(obj: Mapping[str, Any], namespace: str = "") -> ServiceEntry:
    ns, name, _, _ = _meta(obj)
    spec = _map(obj.get("spec"), "spec")
    return ServiceEntry(
        ns or namespace,
        name,
        _texts(spec.get("hosts"), "spec.hosts"),
        _text(spec.get("location"), "spec.location", "MESH_EXTERNAL"),
        _text(spec.get("resolution"), "spec.resolution"),
    )


_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", re.ASCII)  # a DNS-1123 subdomain


def _group(obj: Mapping[str, Any]) -> str:
    """The WorkloadGroup that owns a WorkloadEntry (Istio's auto-registration makes one
    per VM that joins the group), by its name; "" for an entry of its own."""
    refs = _items(_map(obj.get("metadata"), "metadata").get("ownerReferences"),
                  "metadata.ownerReferences")  # fmt: skip
    for ref in refs:
        if ref.get("kind") == "WorkloadGroup":
            name = _text(ref.get("name"), "metadata.ownerReferences.name")
            if len(name) > 253 or not _OBJECT_NAME.fullmatch(name):
                raise Malformed(f"its WorkloadGroup {name[:64]!r} is not an object name")
            return name
    return ""


def workload_entry(obj: Mapping[str, Any], namespace: str = "") -> WorkloadInfo:
    """A WorkloadEntry: a workload outside Kubernetes (a VM), as a workload of its own,
    named as Istio's telemetry names it: by its WorkloadGroup, else by its own name."""
    ns, name, _, _ = _meta(obj)
    spec = _map(obj.get("spec"), "spec")
    return WorkloadInfo(
        ns or namespace,
        _group(obj) or name,
        _labels(spec.get("labels"), "spec.labels"),
        _text(spec.get("serviceAccount"), "spec.serviceAccount") or "default",
        _text(spec.get("address"), "spec.address"),
        f"WorkloadEntry {ns or namespace}/{name}",
    )


def workload(obj: Mapping[str, Any], namespace: str = "") -> WorkloadInfo:
    """A Deployment or StatefulSet: its pods' labels and service account."""
    ns, name, _, _ = _meta(obj)
    template = _map(_map(obj.get("spec"), "spec").get("template"), "spec.template")
    pod = _map(template.get("spec"), "spec.template.spec")
    return WorkloadInfo(
        ns or namespace,
        name,
        _labels(_map(template.get("metadata"), "template.metadata").get("labels"), "labels"),
        _text(pod.get("serviceAccountName"), "serviceAccountName") or "default",
    )


def _name(obj: Mapping[str, Any], namespace: str) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    ns, name = meta.get("namespace", namespace), meta.get("name", "?")
    return f"{ns if isinstance(ns, str) else namespace}/{name if isinstance(name, str) else '?'}"


def parsed(
    kind: str,
    parse: Callable[[Mapping[str, Any], str], T],
    items: Iterable[Mapping[str, Any]],
    malformed: list[str],
    namespace: str = "",
) -> list[T]:
    """Each item parsed; one of the wrong shape left out and said in `malformed`."""
    out: list[T] = []
    for item in items:
        try:
            out.append(parse(item, namespace))
        except (Malformed, KeyError, TypeError, AttributeError, ValueError) as exc:
            malformed.append(f"{kind} {_name(item, namespace)} is malformed: {exc}")
    return out


def security_config(
    objects: Mapping[str, Iterable[Mapping[str, Any]]],
    workloads: Iterable[Mapping[str, Any]] = (),
    root: str = ROOT_NAMESPACE,
) -> SecurityConfig:
    """The configuration from objects by kind (`PeerAuthentication`, …, as `KINDS`) and
    the Deployments and StatefulSets; DestinationRules that set no `tls` are left out."""
    unknown = set(objects) - set(KINDS)
    if unknown:
        raise BackendError(f"no security kind {sorted(unknown)[0]}")
    bad: list[str] = []

    def each(kind: str, parse: Callable[[Mapping[str, Any], str], T]) -> tuple[T, ...]:
        return tuple(parsed(kind, parse, objects.get(kind, ()), bad))

    rules = each("DestinationRule", destination_rule)
    known = parsed("workload", workload, workloads, bad)
    return SecurityConfig(
        peer_authentications=each("PeerAuthentication", peer_authentication),
        destination_rules=tuple(r for r in rules if r.settings),
        authorization_policies=each("AuthorizationPolicy", authorization_policy),
        service_entries=each("ServiceEntry", service_entry),
        workloads=(*known, *each("WorkloadEntry", workload_entry)),
        root_namespace=root,
        malformed=tuple(bad),
    )


async def read_configs(
    sources: Mapping[str, SecuritySource], timeout_s: float
) -> tuple[dict[str, SecurityConfig], dict[str, str]]:
    """Each cluster's security configuration, asked at once and none waited for longer
    than `timeout_s`, and the clusters that could not answer, with why."""
    answers = await asyncio.gather(
        *(asyncio.wait_for(s.security(), timeout_s) for s in sources.values()),
        return_exceptions=True,
    )
    found: dict[str, SecurityConfig] = {}
    unread: dict[str, str] = {}
    for cluster, answer in zip(sources, answers, strict=True):
        if isinstance(answer, MeshtopError):
            unread[cluster] = str(answer)
        elif isinstance(answer, TimeoutError):
            unread[cluster] = f"no answer within {timeout_s:g}s"
        elif isinstance(answer, BaseException):
            raise answer  # a bug, not the cluster's answer
        else:
            found[cluster] = answer
    return found, unread


class KubernetesPolicies:
    """Where a cluster's PeerAuthentications are read and written: its Kubernetes API,
    through the control plane's bounded requests. A creation is refused by the server if
    one of that name exists by then (409); a change is a JSON patch that tests the
    resource version it was planned on; a deletion has it as a precondition: a policy
    changed since it was read is a `ConflictError`, never overwritten. Only the change
    workflow calls `apply`."""

    def __init__(self, plane: KubernetesControlPlane) -> None:
        self.plane = plane

    @property
    def name(self) -> str:
        return self.plane.name

    @property
    def context(self) -> str:
        return self.plane.context

    async def security(self) -> SecurityConfig:
        return await self.plane.security()

    async def apply(self, plan: MtlsPlan, *, dry_run: bool = False) -> PeerAuthentication | None:
        from meshtop.sources.kubernetes import PEER_AUTHENTICATIONS, check_names

        policy = plan.policy
        check_names(policy.namespace, policy.name)
        group, versions, plural, kind = PEER_AUTHENTICATIONS
        version = self.plane._versions.get(plural, versions[0])
        where = f"/apis/{group}/{version}/namespaces/{policy.namespace}/{plural}"
        what = f"{'check' if dry_run else plan.action} {kind} {policy.namespace}/{policy.name}"
        query = [("fieldManager", "meshtop"), *([("dryRun", "All")] if dry_run else [])]
        if plan.before is None:
            obj = await self.plane._call(
                what, "POST", where, query=query, body=_manifest(policy, group, version),
                content_type="application/json",
            )  # fmt: skip
        elif plan.after is None:
            # with a body, the API server reads a deletion's options from it alone: a
            # `dryRun` in the query would be ignored, and the check would delete
            options: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "preconditions": {"resourceVersion": plan.before.resource_version},
                **({"dryRun": ["All"]} if dry_run else {}),
            }
            await self.plane._call(
                what, "DELETE", f"{where}/{policy.name}", body=options,
                content_type="application/json",
            )  # fmt: skip
            return None
        else:
            ops = [
                {"op": "test", "path": "/metadata/resourceVersion",
                 "value": plan.before.resource_version},
                {"op": "add", "path": "/spec/mtls", "value": {"mode": plan.after.mode.value}},
            ]  # fmt: skip
            obj = await self.plane._call(
                what, "PATCH", f"{where}/{policy.name}", query=query, body=ops
            )
        try:
            return peer_authentication(obj, policy.namespace)
        except (Malformed, ValueError) as exc:
            raise BackendError(f"cannot {what}: the Kubernetes API answered {exc}") from None


def _manifest(policy: PeerAuthentication, group: str, version: str) -> dict[str, Any]:
    """A PeerAuthentication as the Kubernetes API takes one."""
    spec: dict[str, Any] = {"mtls": {"mode": policy.mode.value}}
    if policy.selector:
        spec["selector"] = {"matchLabels": dict(policy.selector)}
    if policy.ports:
        spec["portLevelMtls"] = {str(p): {"mode": m.value} for p, m in policy.ports.items()}
    return {
        "apiVersion": f"{group}/{version}",
        "kind": "PeerAuthentication",
        "metadata": {"name": policy.name, "namespace": policy.namespace},
        "spec": spec,
    }
