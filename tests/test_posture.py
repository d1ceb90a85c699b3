"""The effective mTLS mode and the authorization verdict, table-driven from Istio's own
documentation: each case is an example or a rule of the pages named above its table."""

from __future__ import annotations

import pytest

from meshtop.posture import (
    Action,
    AuthorizationPolicy,
    Condition,
    Decision,
    MtlsMode,
    Operation,
    Peer,
    PeerAuthentication,
    Rule,
    Source,
    WorkloadInfo,
    authorize,
    effective,
    ignored,
)

STRICT, PERMISSIVE, DISABLE, UNSET = (
    MtlsMode.STRICT,
    MtlsMode.PERMISSIVE,
    MtlsMode.DISABLE,
    MtlsMode.UNSET,
)
FINANCE = {"app": "finance"}


def pa(
    namespace: str,
    mode: MtlsMode = UNSET,
    selector: dict[str, str] | None = None,
    ports: dict[int, MtlsMode] | None = None,
    *,
    name: str = "default",
    created: str = "2025-01-01T00:00:00Z",
) -> PeerAuthentication:
    return PeerAuthentication(namespace, name, mode, selector or {}, ports or {}, created)


# From https://istio.io/latest/docs/concepts/security/#authentication-policies ("Istio
# applies the narrowest matching policy for each workload: workload-specific,
# namespace-wide, mesh-wide"; "When the mode is unset, the mode of the parent scope is
# inherited. Mesh-wide peer authentication policies with an unset mode use the PERMISSIVE
# mode by default"; "multiple mesh- or namespace-wide policies: Istio ignores the newer
# policies"; "more than one workload-specific policy matches: Istio picks the oldest one"),
# and the examples of https://istio.io/latest/docs/reference/config/security/peer_authentication/
# (namespace foo PERMISSIVE with workload finance STRICT; STRICT with port 8080 DISABLE;
# UNSET inheriting the namespace's mode with port 8080 overridden).
PRECEDENCE = [
    ("no policy at all: Istio's default", [], "foo", FINANCE, "PERMISSIVE"),
    ("mesh-wide STRICT in the root namespace", [pa("istio-system", STRICT)], "foo", FINANCE,
     "STRICT"),
    ("mesh-wide UNSET is PERMISSIVE", [pa("istio-system", UNSET)], "foo", FINANCE,
     "PERMISSIVE"),
    ("namespace foo STRICT: all workloads in foo", [pa("foo", STRICT)], "foo", FINANCE,
     "STRICT"),
    ("namespace foo STRICT does not reach bar", [pa("foo", STRICT)], "bar", FINANCE,
     "PERMISSIVE"),
    ("namespace over mesh", [pa("istio-system", STRICT), pa("foo", PERMISSIVE)], "foo",
     FINANCE, "PERMISSIVE"),
    ("namespace UNSET inherits the mesh's", [pa("istio-system", STRICT), pa("foo", UNSET)],
     "foo", FINANCE, "STRICT"),
    ("mesh DISABLE, namespace UNSET", [pa("istio-system", DISABLE), pa("foo", UNSET)], "foo",
     FINANCE, "DISABLE"),
    ("foo PERMISSIVE, but finance STRICT",
     [pa("foo", PERMISSIVE), pa("foo", STRICT, FINANCE, name="finance")], "foo", FINANCE,
     "STRICT"),
    ("foo PERMISSIVE: other workloads stay so",
     [pa("foo", PERMISSIVE), pa("foo", STRICT, FINANCE, name="finance")], "foo",
     {"app": "ledger"}, "PERMISSIVE"),
    ("finance STRICT, port 8080 plain text", [pa("foo", STRICT, FINANCE, {8080: DISABLE})],
     "foo", FINANCE, "STRICT (port 8080 DISABLE)"),
    ("workload UNSET inherits the namespace's, port 8080 overridden",
     [pa("foo", STRICT, name="ns"), pa("foo", UNSET, FINANCE, {8080: DISABLE}, name="wl")],
     "foo", FINANCE, "STRICT (port 8080 DISABLE)"),
    # concepts: "disables mutual TLS on port 80 for the app:example-app workload, and uses
    # the mutual TLS settings of the namespace-wide peer authentication policy for all
    # other ports" (the policy sets no mode at all)
    ("port 80 DISABLE, the rest from the namespace",
     [pa("foo", STRICT, name="ns"), pa("foo", UNSET, {"app": "example-app"}, {80: DISABLE},
                                       name="wl")],
     "foo", {"app": "example-app"}, "STRICT (port 80 DISABLE)"),
    ("a port UNSET takes the workload's mode", [pa("foo", STRICT, FINANCE, {8080: UNSET})],
     "foo", FINANCE, "STRICT"),
    ("two namespace-wide policies: the newer is ignored",
     [pa("foo", STRICT, name="newer", created="2025-02-01T00:00:00Z"),
      pa("foo", DISABLE, name="older", created="2025-01-01T00:00:00Z")], "foo", FINANCE,
     "DISABLE"),
    ("two workload policies match: the oldest is picked",
     [pa("foo", STRICT, {"app": "finance"}, name="a", created="2025-03-01T00:00:00Z"),
      pa("foo", DISABLE, {"tier": "db"}, name="b", created="2025-01-01T00:00:00Z")], "foo",
     {"app": "finance", "tier": "db"}, "DISABLE"),
    ("a selector that does not match leaves the namespace's",
     [pa("foo", STRICT), pa("foo", DISABLE, {"app": "other"}, name="other")], "foo", FINANCE,
     "STRICT"),
    # istio/api#3604: "PeerAuthentication policies with workload selectors are ignored
    # when deployed in the root namespace"
    ("a selector in the root namespace is ignored",
     [pa("istio-system", DISABLE, FINANCE, name="finance")], "foo", FINANCE, "PERMISSIVE"),
    ("a workload in the root namespace: the mesh-wide policy",
     [pa("istio-system", STRICT)], "istio-system", {"app": "istio-ingressgateway"}, "STRICT"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policies", "namespace", "labels", "expected"),
    [case[1:] for case in PRECEDENCE],
    ids=[case[0] for case in PRECEDENCE],
)
def test_effective_mode_follows_istios_precedence(
    policies: list[PeerAuthentication], namespace: str, labels: dict[str, str], expected: str
) -> None:
    assert effective(policies, namespace, labels).text() == expected


def test_the_effective_mode_says_which_policy_set_it() -> None:
    policies = [pa("istio-system", STRICT), pa("foo", UNSET, name="foo-default")]
    assert effective(policies, "foo", FINANCE).why() == (
        "mesh-wide PeerAuthentication istio-system/default"
    )
    assert effective([], "foo", FINANCE).why() == "no PeerAuthentication applies: Istio's default"
    finance = [pa("foo", PERMISSIVE), pa("foo", STRICT, FINANCE, name="finance")]
    assert effective(finance, "foo", FINANCE).why() == "workload PeerAuthentication foo/finance"


def test_the_policies_istio_ignores_are_said_with_why() -> None:
    said = ignored(
        [
            pa("foo", STRICT, name="newer", created="2025-02-01T00:00:00Z"),
            pa("foo", DISABLE, name="older", created="2025-01-01T00:00:00Z"),
            pa("istio-system", DISABLE, FINANCE, name="selected"),
            pa("bar", STRICT, ports={8080: DISABLE}),
        ]
    )
    assert said == [
        "PeerAuthentication bar/default: port-level modes need a selector; they are ignored",
        "PeerAuthentication foo/newer: ignored, PeerAuthentication foo/older is older and "
        "covers the same namespace-wide scope",
        "PeerAuthentication istio-system/selected: a selector in the root namespace is "
        "ignored by Istio",
    ]


# -- authorization -----------------------------------------------------------------------

HTTPBIN = WorkloadInfo("foo", "httpbin-v1", {"app": "httpbin", "version": "v1"})
SLEEP = Peer("cluster.local/ns/default/sa/sleep", "default")
FROM_TEST = Peer("cluster.local/ns/test/sa/client", "test")
FROM_BAR = Peer("cluster.local/ns/bar/sa/client", "bar")
PLAIN = Peer(mtls=0.0)


def ap(
    action: Action, *rules: Rule, name: str = "p", namespace: str = "foo",
    selector: dict[str, str] | None = None, provider: str = "",
) -> AuthorizationPolicy:  # fmt: skip
    return AuthorizationPolicy(namespace, name, action, selector or {}, rules, provider)


def src(**fields: list[str]) -> Source:
    return Source({k: tuple(v) for k, v in fields.items()})


def op(**fields: list[str]) -> Operation:
    return Operation({k: tuple(v) for k, v in fields.items()})


# The reference's example ("allows requests from service account
# cluster.local/ns/default/sa/sleep or namespace test to access the workload with GET at
# /info* or POST at /data"), its order ("CUSTOM first, then DENY, and finally ALLOW: if
# there are any DENY policies that match the request, deny the request; if there are no
# ALLOW policies for the workload, allow the request; if any of the ALLOW policies match
# the request, allow the request; deny the request"; "AUDIT policies do not affect whether
# requests are allowed or denied"), its allow-all (`rules: [{}]`) and deny-all (`spec: {}`)
# and its DENY from notNamespaces: https://istio.io/latest/docs/reference/config/security/authorization-policy/
# and https://istio.io/latest/docs/concepts/security/#authorization-policies
EXAMPLE = ap(
    Action.ALLOW,
    Rule((src(principals=["cluster.local/ns/default/sa/sleep"]), src(namespaces=["test"]))),
    name="httpbin",
)
EXAMPLE_TO = ap(
    Action.ALLOW,
    Rule((src(principals=["cluster.local/ns/default/sa/sleep"]),),
         (op(methods=["GET"], paths=["/info*"]), op(methods=["POST"], paths=["/data"]))),
    name="httpbin",
)  # fmt: skip
DENY_OTHERS = ap(Action.DENY, Rule((src(notNamespaces=["foo"]),)), name="httpbin-deny")
ALLOW_ALL = ap(Action.ALLOW, Rule(), name="allow-all")
DENY_ALL = ap(Action.ALLOW, name="deny-all")
AUTHORIZATION = [
    ("no policy: allowed", [], SLEEP, Decision.ALLOWED,
     "allowed: no ALLOW policy applies to foo/httpbin-v1"),
    ("ALLOW from the sleep principal", [EXAMPLE], SLEEP, Decision.ALLOWED,
     "allowed by ALLOW AuthorizationPolicy foo/httpbin (from principals "
     "cluster.local/ns/default/sa/sleep or namespaces test)"),
    ("ALLOW from namespace test", [EXAMPLE], FROM_TEST, Decision.ALLOWED,
     "allowed by ALLOW AuthorizationPolicy foo/httpbin (from principals "
     "cluster.local/ns/default/sa/sleep or namespaces test)"),
    ("ALLOW matches no other caller", [EXAMPLE], FROM_BAR, Decision.DENIED,
     "denied: ALLOW policies apply to foo/httpbin-v1 (AuthorizationPolicy foo/httpbin) and "
     "none matches this caller"),
    ("plain text carries no identity", [EXAMPLE], PLAIN, Decision.DENIED,
     "denied: ALLOW policies apply to foo/httpbin-v1 (AuthorizationPolicy foo/httpbin) and "
     "none matches this caller (plain text carries no identity)"),
    ("ALLOW to GET /info*: per request", [EXAMPLE_TO], SLEEP, Decision.DEPENDS,
     "allowed only for requests ALLOW AuthorizationPolicy foo/httpbin (from principals "
     "cluster.local/ns/default/sa/sleep; to methods GET, paths /info* or methods POST, "
     "paths /data) matches"),
    ("DENY from outside foo", [DENY_OTHERS], FROM_BAR, Decision.DENIED,
     "denied by DENY AuthorizationPolicy foo/httpbin-deny (from notNamespaces foo)"),
    ("DENY first, whatever ALLOW says", [ALLOW_ALL, DENY_OTHERS], FROM_BAR, Decision.DENIED,
     "denied by DENY AuthorizationPolicy foo/httpbin-deny (from notNamespaces foo)"),
    ("DENY from outside foo leaves foo's own", [DENY_OTHERS],
     Peer("cluster.local/ns/foo/sa/x", "foo"), Decision.ALLOWED,
     "allowed: no ALLOW policy applies to foo/httpbin-v1"),
    ("allow-all: rules [{}]", [ALLOW_ALL], PLAIN, Decision.ALLOWED,
     "allowed by ALLOW AuthorizationPolicy foo/allow-all (any request)"),
    ("deny-all: spec {}", [DENY_ALL], SLEEP, Decision.DENIED,
     "denied: ALLOW policies apply to foo/httpbin-v1 (AuthorizationPolicy foo/deny-all) and "
     "none matches this caller"),
    ("a policy in the root namespace applies to every namespace",
     [ap(Action.DENY, Rule((src(namespaces=["default"]),)), name="mesh", namespace="istio-system")],
     SLEEP, Decision.DENIED,
     "denied by DENY AuthorizationPolicy istio-system/mesh (from namespaces default)"),
    ("a selector that does not match: the policy does not apply",
     [ap(Action.ALLOW, name="other", selector={"app": "other"})], SLEEP, Decision.ALLOWED,
     "allowed: no ALLOW policy applies to foo/httpbin-v1"),
    ("a DENY on a request field: some requests",
     [ap(Action.DENY, Rule(operations=(op(paths=["/admin"]),)), name="admin")], SLEEP,
     Decision.DEPENDS,
     "denied for requests DENY AuthorizationPolicy foo/admin (to paths /admin) matches; "
     "allowed: no ALLOW policy applies to foo/httpbin-v1"),
    ("CUSTOM first: its provider decides", [ap(Action.CUSTOM, Rule(), name="ext",
                                               provider="opa")],
     SLEEP, Decision.ALLOWED,
     "first CUSTOM by opa AuthorizationPolicy foo/ext (any request) asks its provider, which "
     "may deny; allowed: no ALLOW policy applies to foo/httpbin-v1"),
    ("AUDIT never decides", [ap(Action.AUDIT, Rule(), name="audit"), EXAMPLE], FROM_BAR,
     Decision.DENIED,
     "denied: ALLOW policies apply to foo/httpbin-v1 (AuthorizationPolicy foo/httpbin) and "
     "none matches this caller; audited by AuthorizationPolicy foo/audit"),
    ("a when on source.namespace is known from the caller",
     [ap(Action.ALLOW, Rule(conditions=(Condition("source.namespace", ("test",)),)),
         name="when")], FROM_TEST, Decision.ALLOWED,
     "allowed by ALLOW AuthorizationPolicy foo/when (when source.namespace in test)"),
    ("a when on a JWT claim is per request",
     [ap(Action.ALLOW, Rule(conditions=(Condition("request.auth.claims[iss]",
                                                  ("https://accounts.google.com",)),)),
         name="jwt")], SLEEP, Decision.DEPENDS,
     "allowed only for requests ALLOW AuthorizationPolicy foo/jwt (when "
     "request.auth.claims[iss] in https://accounts.google.com) matches"),
    ("partly on mTLS: the identity holds for some calls only", [EXAMPLE],
     Peer("cluster.local/ns/default/sa/sleep", "default", mtls=0.5), Decision.DEPENDS,
     "allowed only for requests ALLOW AuthorizationPolicy foo/httpbin (from principals "
     "cluster.local/ns/default/sa/sleep or namespaces test) matches"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policies", "peer", "decision", "words"),
    [case[1:] for case in AUTHORIZATION],
    ids=[case[0] for case in AUTHORIZATION],
)
def test_authorization_is_decided_in_istios_order_and_said_in_words(
    policies: list[AuthorizationPolicy], peer: Peer, decision: Decision, words: str
) -> None:
    verdict = authorize(policies, HTTPBIN, peer)
    assert (verdict.decision, verdict.words) == (decision, words)


def test_a_verdict_names_the_policies_that_decided_it() -> None:
    assert authorize([ALLOW_ALL, DENY_OTHERS], HTTPBIN, FROM_BAR).policies == (
        "AuthorizationPolicy foo/httpbin-deny",
    )
    assert authorize([EXAMPLE], HTTPBIN, SLEEP).policies == ("AuthorizationPolicy foo/httpbin",)
    assert authorize([], HTTPBIN, SLEEP).policies == ()


# -- another root namespace ([mesh] root_namespace; Istio's MeshConfig rootNamespace) ------

OTHER_ROOT = [
    # (case, root, policies as the Kubernetes API serves them, what foo/finance-v1 gets)
    ("istio-config's own policy is mesh-wide where it is the root", "istio-config",
     [("istio-config", "default", "STRICT", None)],
     "STRICT", "mesh-wide PeerAuthentication istio-config/default"),
    ("istio-config's policy is its namespace's alone where the root is istio-system",
     "istio-system", [("istio-config", "default", "STRICT", None)],
     "PERMISSIVE", "no PeerAuthentication applies: Istio's default"),
    ("istio-system's policy is its namespace's alone where the root is istio-config",
     "istio-config", [("istio-system", "default", "STRICT", None)],
     "PERMISSIVE", "no PeerAuthentication applies: Istio's default"),
    ("the namespace's still over the other root's", "istio-config",
     [("istio-config", "default", "STRICT", None), ("foo", "default", "PERMISSIVE", None)],
     "PERMISSIVE", "namespace-wide PeerAuthentication foo/default"),
    ("a namespace UNSET inherits the other root's", "istio-config",
     [("istio-config", "default", "DISABLE", None), ("foo", "default", "UNSET", None)],
     "DISABLE", "mesh-wide PeerAuthentication istio-config/default"),
]  # fmt: skip


def _served(namespace: str, name: str, mode: str, selector: dict[str, str] | None) -> dict:
    spec: dict[str, object] = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": spec}  # fmt: skip


@pytest.mark.parametrize(
    ("root", "policies", "mode", "why"),
    [case[1:] for case in OTHER_ROOT],
    ids=[case[0] for case in OTHER_ROOT],
)
def test_a_mesh_wide_policy_is_the_configured_roots(
    root: str, policies: list[tuple[str, str, str, dict[str, str] | None]], mode: str, why: str
) -> None:
    """The posture of a workload, judged from a configuration read with `root` as the
    root namespace: only that namespace's policies without a selector are mesh-wide."""
    from datetime import UTC, datetime

    from meshtop.model import MeshSnapshot, Workload
    from meshtop.posture import posture
    from meshtop.sources.security import security_config

    finance = {"metadata": {"name": "finance-v1", "namespace": "foo"}, "spec": {"template": {
        "metadata": {"labels": FINANCE}, "spec": {"serviceAccountName": "finance"}}}}  # fmt: skip
    config = security_config(
        {"PeerAuthentication": [_served(*p) for p in policies]}, [finance], root
    )
    node = Workload("Kubernetes", "foo", "finance-v1", "finance")
    snapshot = MeshSnapshot(datetime.now(UTC), 60.0, {node.id: node}, (), (), {})
    judged = posture(snapshot, {"": config}).workload(node.id)
    assert judged is not None
    assert (judged.effective.text(), judged.effective.why()) == (mode, why)


def test_a_selector_in_the_configured_root_is_ignored_and_elsewhere_a_workloads() -> None:
    from meshtop.sources.security import security_config

    objects = {"PeerAuthentication": [
        _served("istio-config", "finance", "DISABLE", FINANCE),
        _served("istio-system", "finance", "DISABLE", FINANCE),
    ]}  # fmt: skip
    config = security_config(objects, root="istio-config")
    assert ignored(config.peer_authentications, config.root_namespace) == [
        "PeerAuthentication istio-config/finance: a selector in the root namespace is "
        "ignored by Istio"
    ]
    config = security_config(objects)
    assert config.root_namespace == "istio-system"
    assert ignored(config.peer_authentications, config.root_namespace) == [
        "PeerAuthentication istio-system/finance: a selector in the root namespace is "
        "ignored by Istio"
    ]


def test_an_authorization_policy_in_the_configured_root_applies_to_every_namespace() -> None:
    deny = AuthorizationPolicy("istio-config", "deny-test", Action.DENY,
                               rules=(Rule(sources=(src(namespaces=["test"]),)),))  # fmt: skip
    caller = Peer("cluster.local/ns/test/sa/sleep", "test")
    assert authorize([deny], HTTPBIN, caller, "istio-config").decision is Decision.DENIED
    assert authorize([deny], HTTPBIN, caller).decision is Decision.ALLOWED  # istio-system's
