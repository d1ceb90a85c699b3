"""The Kubernetes adapter and `meshtop shift` against a REAL Kubernetes API server
(kube-apiserver and etcd, tests/servers/kube.py): RBAC on, the Istio and Gateway API CRDs
with their real schemas, Bookinfo's manifests applied in a namespace of each test's own.
What the emulator (tests/kube/emulator.py) answered as we thought the server would, the
server answers here itself: resource versions, server-side dry run, the JSON patch's
`test`, 403 from RBAC, 422 from a CRD's schema, managed fields."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshtop.canary import Plan, Split, parse_set
from meshtop.change.workflow import Copy, Workflow
from meshtop.connect import Sources
from meshtop.errors import BackendError, ConflictError, MeshtopError, UsageError
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane
from meshtop.sources.protocols import ClusterSources
from meshtop.sources.routing import json_patch

from ..servers import kube as real
from ..servers.kube import KubeServer, interposed

# the fixtures: the session's real API server, and a namespace of the test's own in it
kube = real.kube
bookinfo = real.bookinfo

VS, HR = "VirtualService", "HTTPRoute"
REVIEWS_VERSIONS = ("reviews-v1", "reviews-v2", "reviews-v3")  # Services, for the HTTPRoute


def _plane(kubeconfig: Path, *namespaces: str) -> KubernetesControlPlane:
    return KubernetesControlPlane(KubeConfig(kubeconfig=kubeconfig, namespaces=namespaces))


def _weights(kube: KubeServer, kind: str, namespace: str, name: str = "reviews") -> list[int]:
    """The weights of the route's first rule as the server has them now."""
    spec = kube.get(kind, namespace, name)["spec"]
    rule = spec["http"][0]["route"] if kind == VS else spec["rules"][0]["backendRefs"]
    return [d.get("weight") for d in rule]


def _set_weights(kube: KubeServer, kind: str, namespace: str, weights: list[int]) -> None:
    """The second writer: a real write of the reviews route's weights."""
    base = "/spec/http/0/route" if kind == VS else "/spec/rules/0/backendRefs"
    ops = [{"op": "replace", "path": f"{base}/{i}/weight", "value": w}
           for i, w in enumerate(weights)]  # fmt: skip
    kube.patch(kind, namespace, "reviews", ops)


def _plan(plane: KubernetesControlPlane, kind: str, namespace: str, text: str) -> Plan:
    route, _ = asyncio.run(plane.read(kind, namespace, "reviews"))
    before = Split.of(route, route.rules[0])
    return Plan(route, 0, before, parse_set(text, before))


# -- reading ------------------------------------------------------------------------------


def test_routes_subsets_services_and_workloads_are_read(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """As the read-only user: every VirtualService and HTTPRoute with its weights and its
    resource version, the DestinationRules' subsets, the Services, the Deployments."""
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"), bookinfo)
    assert plane.name == "kubernetes reader"
    routes = {(r.kind, r.name): r for r in asyncio.run(plane.routes())}
    assert set(routes) == {(VS, "productpage"), (VS, "reviews"), (VS, "ratings"),
                           (VS, "details"), (HR, "reviews")}  # fmt: skip
    assert plane.malformed == []
    reviews = routes[(VS, "reviews")]
    assert [(d.host, d.subset, d.weight) for d in reviews.rules[0].destinations] == [
        ("reviews", "v1", 90),
        ("reviews", "v2", 10),
    ]
    stored = kube.get(VS, bookinfo, "reviews")
    assert reviews.resource_version == stored["metadata"]["resourceVersion"]
    assert reviews.namespace == bookinfo
    gamma = routes[(HR, "reviews")]
    assert [(d.host, d.weight) for d in gamma.rules[0].destinations] == [
        ("reviews-v1", 90),
        ("reviews-v2", 10),
    ]
    assert (
        gamma.resource_version == kube.get(HR, bookinfo, "reviews")["metadata"]["resourceVersion"]
    )
    subsets = asyncio.run(plane.subsets())
    assert subsets[(bookinfo, "reviews")] == {"v1", "v2", "v3"}
    assert subsets[(bookinfo, "ratings")] == {"v1", "v2", "v2-mysql", "v2-mysql-vm"}
    services = asyncio.run(plane.services())
    assert {(bookinfo, s) for s in ("productpage", "reviews", "reviews-v1", "ratings")} <= services
    assert {s for s in services if s[0] == bookinfo} == {
        (bookinfo, "reviews-v2"),
        (bookinfo, "reviews-v3"),
    } | {
        (bookinfo, s)
        for app in ("details", "ratings", "reviews", "productpage")
        for s in (app, f"{app}-v1")
    }
    workloads = {(w.name, w.app, w.version) for w in asyncio.run(plane.workloads())}
    assert workloads == {
        ("details-v1", "details", "v1"), ("ratings-v1", "ratings", "v1"),
        ("reviews-v1", "reviews", "v1"), ("reviews-v2", "reviews", "v2"),
        ("reviews-v3", "reviews", "v3"), ("productpage-v1", "productpage", "v1"),
    }  # fmt: skip


def test_every_namespace_is_read_when_none_is_given(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"))
    routes = [r for r in asyncio.run(plane.routes()) if r.namespace == bookinfo]
    assert sorted((r.kind, r.name) for r in routes) == [
        (HR, "reviews"), (VS, "details"), (VS, "productpage"), (VS, "ratings"), (VS, "reviews"),
    ]  # fmt: skip
    assert {w.name for w in asyncio.run(plane.workloads()) if w.namespace == bookinfo} == {
        "details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3", "productpage-v1",
    }  # fmt: skip


def test_reads_ask_for_istio_v1_first(kube: KubeServer, bookinfo: str, tmp_path: Path) -> None:
    with interposed(kube) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", "reader", server=proxy.url)
        asyncio.run(_plane(config, bookinfo).routes())
    paths = [r["path"] for r in proxy.requests]
    assert f"/apis/networking.istio.io/v1/namespaces/{bookinfo}/virtualservices" in paths
    assert f"/apis/gateway.networking.k8s.io/v1/namespaces/{bookinfo}/httproutes" in paths
    assert not any("v1beta1" in p for p in paths)


def test_a_missing_route_is_said_as_missing(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"), bookinfo)
    with pytest.raises(UsageError, match="there is none"):
        asyncio.run(plane.read(VS, bookinfo, "nope"))
    with pytest.raises(UsageError, match="there is none"):
        asyncio.run(plane.read(HR, bookinfo, "nope"))


def test_reads_by_a_user_without_rights_are_forbidden_and_bad_credentials_refused(
    kube: KubeServer, tmp_path: Path
) -> None:
    """`nobody` is known to the server but bound to no role: a 403 on the first list, said
    as RBAC's; a token the server does not know is a 401, said as the credentials'."""
    plane = _plane(kube.kubeconfig(tmp_path / "nobody", "nobody"), "default")
    with pytest.raises(BackendError, match="forbidden by RBAC in nobody") as forbidden:
        asyncio.run(plane.routes())
    assert 'User "nobody" cannot list resource "virtualservices"' in str(forbidden.value)
    with pytest.raises(BackendError, match="forbidden by RBAC in nobody"):
        asyncio.run(plane.workloads())
    config = kube.kubeconfig(tmp_path / "stranger", "reader", context="stranger")
    config.write_text(config.read_text().replace(kube.tokens["reader"], "not-a-token"))
    with pytest.raises(BackendError, match="refused the credentials of stranger"):
        asyncio.run(_plane(config, "default").routes())


# -- writing, through the adapter --------------------------------------------------------


def test_a_change_is_a_json_patch_that_tests_first(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    with interposed(kube) as proxy:
        plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url), bookinfo)
        plan = _plan(plane, VS, bookinfo, "v1=50,v2=50")
        checked = asyncio.run(plane.apply(plan, dry_run=True))
        assert [d.weight for d in checked.rules[0].destinations] == [50, 50]
        assert _weights(kube, VS, bookinfo) == [90, 10]  # the server's dry run wrote nothing
        applied = asyncio.run(plane.apply(plan))
    assert [d.weight for d in applied.rules[0].destinations] == [50, 50]
    assert _weights(kube, VS, bookinfo) == [50, 50]
    assert int(applied.resource_version) > int(plan.route.resource_version)
    assert (
        applied.resource_version == kube.get(VS, bookinfo, "reviews")["metadata"]["resourceVersion"]
    )
    patches = [r for r in proxy.requests if r["verb"] == "PATCH"]
    assert [p["query"].get("dryRun") for p in patches] == [["All"], None]
    assert patches[-1]["body"] == json_patch(plan)
    assert patches[-1]["body"][0] == {"op": "test", "path": "/metadata/resourceVersion",
                                      "value": plan.route.resource_version}  # fmt: skip


def test_an_httproute_change_is_written_and_read_back(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    plan = _plan(plane, HR, bookinfo, "reviews-v1=25,reviews-v2=75")
    applied = asyncio.run(plane.apply(plan))
    assert [d.weight for d in applied.rules[0].destinations] == [25, 75]
    assert _weights(kube, HR, bookinfo) == [25, 75]


def test_a_concurrent_change_is_refused_never_overwritten(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    plan = _plan(plane, VS, bookinfo, "v1=50,v2=50")
    _set_weights(kube, VS, bookinfo, [80, 20])  # a real second writer, after meshtop's read
    with pytest.raises(ConflictError, match="changed since it was read") as refused:
        asyncio.run(plane.apply(plan))
    # the server's generic words for a failed test say nothing more: left out
    assert str(refused.value) == (
        f"cannot change VirtualService {bookinfo}/reviews: it changed since it was read; "
        "nothing was written"
    )
    assert _weights(kube, VS, bookinfo) == [80, 20]


def test_a_concurrent_change_elsewhere_in_the_object_is_refused_too(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """Only a label changes: the weights are as read, but the resource version is not, and
    the server's `test` of it refuses the patch."""
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    plan = _plan(plane, HR, bookinfo, "reviews-v1=50,reviews-v2=50")
    label = {"op": "add", "path": "/metadata/labels", "value": {"team": "reviews"}}
    kube.patch(HR, bookinfo, "reviews", [label])
    with pytest.raises(ConflictError, match="changed since it was read"):
        asyncio.run(plane.apply(plan))
    assert _weights(kube, HR, bookinfo) == [90, 10]


@pytest.mark.parametrize("user", ["reader", "restricted"])
def test_a_user_who_may_not_patch_routes_is_refused_by_rbac(
    kube: KubeServer, bookinfo: str, tmp_path: Path, user: str
) -> None:
    from kubernetes import client

    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", user), bookinfo)
    for kind, text in ((VS, "v1=50,v2=50"), (HR, "reviews-v1=50,reviews-v2=50")):
        plan = _plan(plane, kind, bookinfo, text)  # reading is allowed
        for dry_run in (True, False):
            with pytest.raises(BackendError, match=f"forbidden by RBAC in {user}") as refused:
                asyncio.run(plane.apply(plan, dry_run=dry_run))
            assert not isinstance(refused.value, ConflictError)
            plural = "virtualservices" if kind == VS else "httproutes"
            assert f'User "{user}" cannot patch resource "{plural}"' in str(refused.value)
        assert _weights(kube, kind, bookinfo) == [90, 10]
    if user == "restricted":  # who may write other things: the refusal is the routes'
        client.CustomObjectsApi(kube.api(user)).patch_namespaced_custom_object(
            "networking.istio.io", "v1", bookinfo, "destinationrules", "reviews",
            {"metadata": {"labels": {"checked": "yes"}}},
        )  # fmt: skip


def test_a_value_the_crd_schema_refuses_is_the_servers_message_not_a_conflict(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """The Gateway API's schema bounds a backendRef's weight at 1,000,000; meshtop's own
    check (relative weights, not all 0) lets 2,000,000 through, and the server's 422 is
    about the value, not about a change since the read: it must not be called a conflict."""
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    plan = _plan(plane, HR, bookinfo, "reviews-v1=2000000")
    for dry_run in (True, False):
        with pytest.raises(MeshtopError) as refused:
            asyncio.run(plane.apply(plan, dry_run=dry_run))
        said = str(refused.value)
        assert "less than or equal to 1000000" in said, said
        assert "changed since it was read" not in said
        assert not isinstance(refused.value, ConflictError)
    assert _weights(kube, HR, bookinfo) == [90, 10]


# -- what the real schemas refuse that the emulator took ---------------------------------


@pytest.mark.parametrize(
    ("destination", "says"),
    [
        ({"destination": {"host": "reviews"}, "weight": "ninety"}, "must be of type integer"),
        ({"destination": {"subset": "v1"}, "weight": 100}, "Required value"),
    ],
)
def test_the_real_schema_refuses_a_malformed_route_at_creation(
    kube: KubeServer, bookinfo: str, destination: dict[str, Any], says: str
) -> None:
    """The malformed routes meshtop must survive (tests/kube/test_kubernetes.py, against
    the emulator) cannot be made on a server with Istio's CRDs: the schema refuses them."""
    from kubernetes import client

    with pytest.raises(client.ApiException) as refused:
        kube.create(
            {"apiVersion": "networking.istio.io/v1", "kind": VS,
             "metadata": {"name": "malformed"},
             "spec": {"hosts": ["reviews"], "http": [{"route": [destination]}]}},
            bookinfo,
        )  # fmt: skip
    assert refused.value.status == 422
    assert says in json.loads(refused.value.body)["message"]


# -- meshtop shift, end to end -----------------------------------------------------------


def _shift(kubeconfig: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "meshtop", "shift", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def _audit(state: Path) -> list[dict[str, Any]]:
    """The audit log's outcomes; each write's intent, logged before it, checked and left
    out (`meshtop.change.workflow`)."""
    lines = [
        json.loads(line) for line in (state / "meshtop" / "audit.jsonl").read_text().splitlines()
    ]
    for i, entry in enumerate(lines):
        if entry["outcome"] in ("applied",) or entry["outcome"].startswith("conflict"):
            intent = [e for e in lines[:i] if e["outcome"] == "about to apply"]
            if entry["outcome"] == "applied":
                assert intent and intent[-1]["after"] == entry["after"], lines
    return [e for e in lines if e["outcome"] != "about to apply"]


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.startswith("meshtop: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize(
    ("kind", "after", "diff"),
    [
        (VS, "v1=75,v2=25", ("-   reviews v1: weight 90", "+   reviews v1: weight 75")),
        (HR, "reviews-v1=75,reviews-v2=25",
         ("-   reviews-v1: weight 90", "+   reviews-v1: weight 75")),
    ],
)  # fmt: skip
def test_shift_shows_checks_applies_and_records(
    kube: KubeServer, bookinfo: str, tmp_path: Path, kind: str, after: str, diff: tuple[str, str],
) -> None:  # fmt: skip
    state = tmp_path / "state"
    target = [f"{bookinfo}/reviews", "--kind", kind, "--set", after]
    with interposed(kube) as proxy:
        config = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        dry = _shift(config, state, *target, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert diff[0] in dry.stdout and diff[1] in dry.stdout, dry.stdout
        assert "nothing was written" in dry.stdout
        assert _weights(kube, kind, bookinfo) == [90, 10]
        # the check is the server's own: a dry-run PATCH reached it, and no other write
        patches = [r for r in proxy.requests if r["verb"] == "PATCH"]
        assert [p["query"].get("dryRun") for p in patches] == [["All"]]
        refused = _shift(config, state, *target)
        assert refused.returncode == 2 and "give --yes" in refused.stderr  # no terminal
        assert _weights(kube, kind, bookinfo) == [90, 10]
        done = _shift(config, state, *target, "--yes")
    assert done.returncode == 0, done.stderr
    stored = kube.get(kind, bookinfo, "reviews")
    assert _weights(kube, kind, bookinfo) == [75, 25]
    assert f"resourceVersion {stored['metadata']['resourceVersion']}" in done.stdout
    log = _audit(state)
    assert [e["outcome"] for e in log] == ["dry run: the server accepted it", "applied"]
    names = [part.partition("=")[0] for part in after.split(",")]
    assert log[-1]["before"] == dict(zip(names, (90, 10), strict=True))
    assert log[-1]["after"] == dict(zip(names, (75, 25), strict=True))
    assert log[-1]["context"] == "admin" and log[-1]["user"]
    assert log[-1]["new_resource_version"] == stored["metadata"]["resourceVersion"]


def test_shift_picks_the_virtualservice_when_no_kind_is_given(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    done = _shift(
        config, tmp_path / "state", f"{bookinfo}/reviews", "--set", "v1=0,v2=100", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert _weights(kube, VS, bookinfo) == [0, 100] and _weights(kube, HR, bookinfo) == [90, 10]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("{ns}/reviews", "--set", "v1=80,v2=10"), 2, "add up to 90, not 100"),
        (("{ns}/reviews", "--set", "v9=10"), 2, "no destination 'v9'"),
        (("reviews", "--set", "v1=10"), 2, "give the route as NAMESPACE/NAME"),
        (("{ns}/nope", "--set", "v1=10"), 2, "there is none"),
        (("{ns}/reviews", "--set", "reviews-v2=100", "--kind", "HTTPRoute", "--rule", "7"), 2,
         "has no rule '7'"),
        (("no-such-namespace/reviews", "--set", "v1=100"), 2, "there is none"),
    ],
)  # fmt: skip
def test_shift_errors_are_one_line(
    kube: KubeServer, bookinfo: str, tmp_path: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    result = _shift(config, tmp_path / "state", *(a.format(ns=bookinfo) for a in args))
    assert result.returncode == code, result.stderr
    assert says in _one_line(result)
    assert _weights(kube, VS, bookinfo) == [90, 10] and _weights(kube, HR, bookinfo) == [90, 10]


def test_shift_in_conflict_with_a_real_second_writer_writes_nothing(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """Between meshtop's read (and its dry run) and its write, another writer changes the
    weights on the server: meshtop's patch is refused by the server's `test`, exit 4, and
    the other writer's change stands."""
    state = tmp_path / "state"
    with interposed(kube) as proxy:
        proxy.before_next_write = lambda: _set_weights(kube, VS, bookinfo, [70, 30])
        config = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        result = _shift(config, state, f"{bookinfo}/reviews", "--set", "v1=50,v2=50", "--yes")
    assert proxy.before_next_write is None  # the other writer did write, before meshtop's
    assert result.returncode == 4, result.stdout + result.stderr
    said = _one_line(result)
    assert "changed since it was read" in said and "nothing was written" in said
    assert _weights(kube, VS, bookinfo) == [70, 30]
    assert [e["outcome"].partition(":")[0] for e in _audit(state)] == ["conflict"]


@pytest.mark.parametrize("user", ["reader", "restricted"])
@pytest.mark.parametrize("kind", [VS, HR])
def test_shift_by_a_user_rbac_refuses_writes_nothing_one_line_exit_3(
    kube: KubeServer, bookinfo: str, tmp_path: Path, user: str, kind: str
) -> None:
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig", user)
    weights = "v1=50,v2=50" if kind == VS else "reviews-v1=50,reviews-v2=50"
    result = _shift(config, state, f"{bookinfo}/reviews", "--kind", kind, "--set", weights, "--yes")
    assert result.returncode == 3, result.stdout + result.stderr
    said = _one_line(result)
    assert f"forbidden by RBAC in {user}" in said
    assert f'User \\"{user}\\" cannot patch' in said or f'User "{user}" cannot patch' in said
    assert _weights(kube, kind, bookinfo) == [90, 10]
    assert [e["outcome"].partition(":")[0] for e in _audit(state)] == [
        "refused by the server's dry run"
    ]


def test_shift_a_weight_the_schema_refuses_is_said_as_the_server_says_not_a_conflict(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """meshtop lets a relative weight of 2,000,000 through; the Gateway API's schema does
    not (at most 1,000,000). The server's dry run refuses it with a 422 whose message says
    so: that is a bad value (exit 2), not a route changed since it was read (exit 4)."""
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    result = _shift(config, state, f"{bookinfo}/reviews", "--kind", HR,
                    "--set", "reviews-v1=2000000", "--yes")  # fmt: skip
    said = _one_line(result)
    assert "less than or equal to 1000000" in said
    assert "changed since it was read" not in said
    assert result.returncode == 2, said
    assert _weights(kube, HR, bookinfo) == [90, 10]


@pytest.mark.parametrize(
    ("steer", "says"),
    [
        ("owner", "steered by Flagger (Canary reviews)"),
        ("flagger", "steered by Flagger (manages its fields)"),
        ("rollouts-controller", "steered by Argo Rollouts (manages its fields)"),
    ],
)
def test_shift_leaves_a_route_a_controller_steers_unless_forced(
    kube: KubeServer, bookinfo: str, tmp_path: Path, steer: str, says: str
) -> None:
    """Flagger's owner reference on the route, or Flagger's or Argo Rollouts' own write of
    the weights (the server records its field manager in managedFields)."""
    from kubernetes import client

    custom = client.CustomObjectsApi(kube.api())
    if steer == "owner":
        canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews",
                  "uid": "0b0c6f3e-2a8e-4a51-9d0f-3c1a5e7d9b21", "controller": True}  # fmt: skip
        owned = {"op": "add", "path": "/metadata/ownerReferences", "value": [canary]}
        kube.patch(VS, bookinfo, "reviews", [owned])
    else:
        custom.patch_namespaced_custom_object(
            "networking.istio.io", "v1", bookinfo, "virtualservices", "reviews",
            [{"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 95},
             {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 5}],
            field_manager=steer, _content_type="application/json-patch+json",
        )  # fmt: skip
        managers = {
            e["manager"] for e in kube.get(VS, bookinfo, "reviews")["metadata"]["managedFields"]
        }
        assert steer in managers
    before = _weights(kube, VS, bookinfo)
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    refused = _shift(config, state, f"{bookinfo}/reviews", "--set", "v1=50,v2=50", "--yes")
    assert refused.returncode == 2 and says in _one_line(refused)
    assert _weights(kube, VS, bookinfo) == before
    forced = _shift(config, state, f"{bookinfo}/reviews", "--set", "v1=50,v2=50", "--yes",
                    "--force")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert _weights(kube, VS, bookinfo) == [50, 50]
    assert [e["outcome"][:8] for e in _audit(state)] == ["refused:", "applied"]


def test_meshtops_own_write_does_not_make_it_a_controller(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """After meshtop's write the server records meshtop's client among the route's field
    managers: that must not read as Flagger or Argo, or the next shift would need --force."""
    state = tmp_path / "state"
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    for weights in ("v1=50,v2=50", "v1=60,v2=40"):
        done = _shift(config, state, f"{bookinfo}/reviews", "--set", weights, "--yes")
        assert done.returncode == 0, done.stderr
    assert _weights(kube, VS, bookinfo) == [60, 40]
    assert [e["outcome"] for e in _audit(state)] == ["applied", "applied"]


def test_meshtops_write_is_recorded_under_its_own_field_manager(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """Who last set the weights is what `kubectl get -o yaml --show-managed-fields` (and
    Flagger, Argo, meshtop's own `owner()`) go by: meshtop's write must be recorded as
    meshtop's, not as the Python client's default "OpenAPI-Generator" (the manager the
    admin's own writes here go under)."""
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    done = _shift(
        config, tmp_path / "state", f"{bookinfo}/reviews", "--set", "v1=50,v2=50", "--yes"
    )
    assert done.returncode == 0, done.stderr
    fields = kube.get(VS, bookinfo, "reviews")["metadata"]["managedFields"]
    weights = [e["manager"] for e in fields if "f:http" in json.dumps(e.get("fieldsV1", {}))]
    assert "meshtop" in weights, fields


# -- the console, against the real server ------------------------------------------------


def _select_reviews(app: Any) -> list[list[str]]:
    """The routes table's cursor on the reviews VirtualService's v1 line: its rows."""
    from textual.widgets import DataTable

    table = app.query_one("#routes", DataTable)
    rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
    table.move_cursor(row=[r[3] for r in rows].index("reviews v1"))
    return rows


async def test_the_console_reads_and_shifts_routes_in_the_cluster(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, settled, undo, until

    with interposed(kube) as proxy:
        plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url), bookinfo)
        app = MeshtopApp(
            Sources(ClusterSources.one(sim.metrics, plane, None, plane), False, sim.clock)
        )
        async with app.run_test(size=(120, 34)) as pilot:
            await _first_snapshot(app)
            assert app.snapshot is not None
            assert app.snapshot.sources["control_plane"].state.value == "fresh"
            await keys(pilot, "3")
            await settled(pilot)
            rows = _select_reviews(app)
            assert [r[3] for r in rows if r[3].startswith("reviews ")] == [
                "reviews v1",
                "reviews v2",
            ]
            await keys(pilot, "w")  # the route is read again first
            await until(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift dialog")
            await keys(pilot, "4", "enter", "y")  # v1 (selected) to 100%
            await until(pilot, lambda: not isinstance(app.screen, ShiftScreen), "the write")
            await until(pilot, lambda: ":undo takes it back" in _notice(app), "the write said")
            assert _weights(kube, VS, bookinfo) == [100, 0]
            await undo(pilot)
            await until(pilot, lambda: "undone:" in _notice(app), "the undo said")
    assert _weights(kube, VS, bookinfo) == [90, 10]
    patches = [r for r in proxy.requests if r["verb"] == "PATCH"]
    assert [p["query"].get("dryRun") for p in patches][:2] == [["All"], None]
    assert patches[-1]["query"].get("dryRun") is None  # the undo, written
    log = Path(os.environ["XDG_STATE_HOME"]) / "meshtop" / "audit.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["by"] for e in entries if e.get("outcome") == "applied"] == ["console", "undo"]


def _notice(app: Any) -> str:
    return str(app.query_one("#notice").render())


async def test_the_console_leaves_a_route_flagger_steers_alone(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any
) -> None:
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, settled, until

    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews",
              "uid": "0b0c6f3e-2a8e-4a51-9d0f-3c1a5e7d9b21", "controller": True}  # fmt: skip
    owned = {"op": "add", "path": "/metadata/ownerReferences", "value": [canary]}
    kube.patch(VS, bookinfo, "reviews", [owned])
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    app = MeshtopApp(Sources(ClusterSources.one(sim.metrics, plane, None, plane), False, sim.clock))
    async with app.run_test(size=(120, 34)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "3")
        await settled(pilot)
        _select_reviews(app)
        await keys(pilot, "w")

        def said() -> bool:
            return "steered by Flagger" in str(app.query_one("#notice").render())

        await until(pilot, said, "why the route is left alone")
        assert not isinstance(app.screen, ShiftScreen)
        assert "steered by Flagger (Canary reviews)" in str(app.query_one("#notice").render())
    assert _weights(kube, VS, bookinfo) == [90, 10]


@pytest.mark.parametrize("how", ["flag", "config"])
def test_read_only_writes_nothing(
    kube: KubeServer, bookinfo: str, tmp_path: Path, how: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("read_only = true\n")
    first = ["--read-only"] if how == "flag" else ["--config", str(config)]
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    with interposed(kube) as proxy:
        kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url)
        result = subprocess.run(
            [sys.executable, "-m", "meshtop", *first, "shift", "--kubeconfig", str(kubeconfig),
             f"{bookinfo}/reviews", "--set", "v1=50,v2=50", "--yes"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    assert result.returncode == 2 and "read-only" in _one_line(result)
    assert proxy.requests == []  # not even a read
    assert _weights(kube, VS, bookinfo) == [90, 10]


def test_istio_v1beta1_is_read_where_v1_is_not_served(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """An Istio whose CRD does not serve v1 (before 1.22): the VirtualServices are read at
    v1beta1. The CRD is changed for this test and put back."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(kube.api())
    custom = client.CustomObjectsApi(kube.api())
    name = "virtualservices.networking.istio.io"
    crd = ext.read_custom_resource_definition(name)
    v1 = [v.name for v in crd.spec.versions].index("v1")

    def served(yes: bool) -> None:
        ext.patch_custom_resource_definition(
            name, [{"op": "replace", "path": f"/spec/versions/{v1}/served", "value": yes}]
        )

    def listing_v1() -> int:
        try:
            custom.list_namespaced_custom_object(
                "networking.istio.io", "v1", bookinfo, "virtualservices"
            )
        except client.ApiException as exc:
            return int(exc.status)
        return 200

    served(False)
    try:
        real.poll("v1 VirtualServices gone", lambda: listing_v1() == 404, 30)
        with interposed(kube) as proxy:
            config = kube.kubeconfig(tmp_path / "kubeconfig", "reader", server=proxy.url)
            plane = _plane(config, bookinfo)
            routes = asyncio.run(plane.routes())
            route, _ = asyncio.run(plane.read(VS, bookinfo, "reviews"))
        assert sorted(r.name for r in routes if r.kind == VS) == [
            "details", "productpage", "ratings", "reviews",
        ]  # fmt: skip
        assert [d.weight for d in route.rules[0].destinations] == [90, 10]
        paths = [r["path"] for r in proxy.requests]
        assert f"/apis/networking.istio.io/v1/namespaces/{bookinfo}/virtualservices" in paths
        assert f"/apis/networking.istio.io/v1beta1/namespaces/{bookinfo}/virtualservices" in paths
        assert (
            f"/apis/networking.istio.io/v1beta1/namespaces/{bookinfo}/virtualservices/reviews"
            in paths
        )
    finally:
        served(True)
        real.poll("v1 VirtualServices back", lambda: listing_v1() == 200, 30)


@contextlib.contextmanager
def _schemaless_virtualservices(kube: KubeServer, namespace: str) -> Iterator[None]:
    """Istio's VirtualService CRD with no schema for `spec` (as CRDs installed without one
    are) for as long as the block runs, then its real schema back: what was created in the
    meantime stays as it was written, and the server serves it so."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(kube.api())
    name = "virtualservices.networking.istio.io"
    crd = json.loads(ext.read_custom_resource_definition(name, _preload_content=False).data)
    v1 = [v["name"] for v in crd["spec"]["versions"]].index("v1")
    path = f"/spec/versions/{v1}/schema/openAPIV3Schema/properties/spec"
    real_schema = crd["spec"]["versions"][v1]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    probe = {"apiVersion": "networking.istio.io/v1", "kind": VS, "metadata": {"name": "probe"},
             "spec": {"hosts": ["x"], "http": [{"route": [{"weight": "ninety"}]}]}}  # fmt: skip
    custom = client.CustomObjectsApi(kube.api())

    def accepted() -> bool:
        try:
            custom.create_namespaced_custom_object(
                "networking.istio.io", "v1", namespace, "virtualservices", probe, dry_run="All"
            )
        except client.ApiException as exc:
            if exc.status != 422:
                raise
            return False
        return True

    loose = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    ext.patch_custom_resource_definition(name, [{"op": "replace", "path": path, "value": loose}])
    try:
        real.poll("the schemaless VirtualService CRD in force", accepted, 30)
        yield
    finally:
        ext.patch_custom_resource_definition(
            name, [{"op": "replace", "path": path, "value": real_schema}]
        )
        real.poll("the VirtualService CRD's schema back in force", lambda: not accepted(), 30)


def test_a_malformed_route_the_server_serves_is_left_out_and_said_the_rest_shown(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """Routes written while the CRD had no schema (a weight "ninety", a destination without
    a host) are served as written after the schema is back: each is said on its own, the
    others are read; `meshtop shift` of one is one line and exit 3, not a crash (70)."""
    bad = {
        "ninety": {"destination": {"host": "reviews"}, "weight": "ninety"},
        "hostless": {"destination": {"subset": "v1"}, "weight": 100},
    }
    with _schemaless_virtualservices(kube, bookinfo):
        for name, destination in bad.items():
            kube.create(
                {"apiVersion": "networking.istio.io/v1", "kind": VS,
                 "metadata": {"name": name},
                 "spec": {"hosts": [name], "http": [{"route": [destination]}]}},
                bookinfo,
            )  # fmt: skip
    assert kube.get(VS, bookinfo, "ninety")["spec"]["http"][0]["route"][0]["weight"] == "ninety"
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"), bookinfo)
    routes = {r.name for r in asyncio.run(plane.routes())}
    assert "reviews" in routes and not routes & {"ninety", "hostless"}
    said = " ".join(plane.malformed)
    assert f"VirtualService {bookinfo}/ninety: weight 'ninety' is not a whole number" in said
    assert f"VirtualService {bookinfo}/hostless: a destination without a host" in said
    from meshtop.mesh import refresh
    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import bookinfo as bookinfo_topology
    from meshtop.sources.protocols import ClusterSources

    snapshot = asyncio.run(
        refresh(ClusterSources.one(Simulation(bookinfo_topology()).metrics, plane))
    )
    health = snapshot.sources["control_plane"]
    assert health.state.value == "fresh" and f"{bookinfo}/ninety" in (health.reason or "")
    done = _shift(
        kube.kubeconfig(tmp_path / "admin"), tmp_path / "state", f"{bookinfo}/ninety",
        "--set", "v1=100", "--yes",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"meshtop: VirtualService {bookinfo}/ninety: weight 'ninety' is not a whole number from 0"
    ]


# -- meshtop rollout's steps, written to the real server ---------------------------------


def _rollout(
    plane: KubernetesControlPlane, sim: Any, clock: Any, namespace: str, to: str,
    gates: Any, between: Any = None,
) -> tuple[Any, list[str]]:  # fmt: skip
    """A guarded rollout of the reviews VirtualService in `namespace` on the real server,
    judged on the simulated mesh's traffic (reviews v1 70%, v2 20%, v3 10%: v3 fails);
    `between()` runs in each interval, after a step is written."""
    from meshtop.mesh import refresh
    from meshtop.rollout import rollout

    said: list[str] = []
    asyncio.run(refresh(sim.clusters, clock=clock))
    clock.advance(120)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        if between is not None:
            between()

    change = Workflow({"kube": Copy("kube", plane, plane.context)}, by="rollout")

    async def go() -> Any:
        return await rollout(
            change, sim.metrics, cluster="kube", kind=VS, namespace=namespace, name="reviews",
            to=to, step=25,
            interval_s=60, gates=gates, sleep=sleep, say=said.append,
            nodes=lambda route, subset: [f"Kubernetes/bookinfo/reviews-{subset}"],
        )  # fmt: skip

    return asyncio.run(go()), said


def test_a_rollout_writes_each_step_to_the_server_and_promotes(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any, clock: Any
) -> None:
    from meshtop.rollout import Gates

    seen: list[list[int]] = []
    with interposed(kube) as proxy:
        plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url), bookinfo)
        outcome, said = _rollout(
            plane, sim, clock, bookinfo, "v2", Gates(max_error_rate=0.01, max_p99_ms=500),
            between=lambda: seen.append(_weights(kube, VS, bookinfo)),
        )  # fmt: skip
    assert outcome.promoted, said
    assert [s.weight for s in outcome.steps] == [35, 60, 85, 100]
    assert seen == [[65, 35], [40, 60], [15, 85], [0, 100]]  # each step on the server
    assert _weights(kube, VS, bookinfo) == [0, 100]
    patches = [r for r in proxy.requests if r["verb"] == "PATCH"]
    writes = [p for p in patches if not p["query"].get("dryRun")]
    assert len(writes) == 4 and all(p["body"][0]["path"] == "/metadata/resourceVersion"
                                    for p in patches)  # fmt: skip
    assert len(patches) == 8  # each step checked by the server first


def test_a_rollout_leaves_a_route_flagger_steers_unless_forced(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any, clock: Any
) -> None:
    """As `shift` does: a rollout would fight Flagger's own."""
    from meshtop.rollout import Gates

    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "reviews",
              "uid": "0b0c6f3e-2a8e-4a51-9d0f-3c1a5e7d9b21", "controller": True}  # fmt: skip
    kube.patch(VS, bookinfo, "reviews",
               [{"op": "add", "path": "/metadata/ownerReferences", "value": [canary]}])  # fmt: skip
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    with pytest.raises(UsageError, match=r"is steered by Flagger \(Canary reviews\)"):
        _rollout(plane, sim, clock, bookinfo, "v2", Gates(max_error_rate=0.01))
    assert _weights(kube, VS, bookinfo) == [90, 10]


def test_a_malformed_owner_reference_is_no_crash(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """What the server keeps of an owner reference is what another writer sent; whatever
    it is, reading the route is no bug (exit 70)."""
    from meshtop.sources.routing import owner

    assert owner({"metadata": {"ownerReferences": ["x", 3], "managedFields": "y"}}) is None
    assert owner({"metadata": "nonsense"}) is None
    config = kube.kubeconfig(tmp_path / "kubeconfig")
    result = _shift(config, tmp_path / "state", f"{bookinfo}/reviews", "--set", "v1=50,v2=50",
                    "--dry-run")  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_bad_canary_is_aborted_back_to_stable_on_the_server(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any, clock: Any
) -> None:
    from meshtop.rollout import Gates

    v3 = {"destination": {"host": "reviews", "subset": "v3"}, "weight": 0}
    kube.patch(VS, bookinfo, "reviews", [{"op": "add", "path": "/spec/http/0/route/-",
                                          "value": v3}])  # fmt: skip
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    outcome, said = _rollout(plane, sim, clock, bookinfo, "v3", Gates(max_error_rate=0.01))
    assert not outcome.promoted and outcome.reason.startswith("aborted: errors"), said
    assert len(outcome.steps) == 1
    assert _weights(kube, VS, bookinfo) == [90, 10, 0]  # as before the rollout: v2 keeps 10


def test_a_rollout_stops_where_a_real_second_writer_changed_the_route(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any, clock: Any
) -> None:
    """After step 1, someone else changes the weights between the rollout's read and its
    write of step 2: the server refuses the patch, the rollout stops there, and the other
    writer's weights stand."""
    from meshtop.rollout import Gates

    with interposed(kube) as proxy:

        def someone_else() -> None:
            proxy.before_next_write = lambda: _set_weights(kube, VS, bookinfo, [50, 50])

        plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url), bookinfo)
        outcome, said = _rollout(
            plane, sim, clock, bookinfo, "v2", Gates(max_error_rate=0.01, max_p99_ms=500),
            between=someone_else,
        )  # fmt: skip
    assert not outcome.promoted, said
    assert [s.weight for s in outcome.steps] == [35]
    assert outcome.reason.startswith("stopped: ") and "changed since it was read" in outcome.reason
    assert _weights(kube, VS, bookinfo) == [50, 50]


@pytest.mark.parametrize("when", ["before the undo", "between its read and its write"])
async def test_the_console_undo_leaves_a_route_someone_else_changed_since(
    kube: KubeServer, bookinfo: str, tmp_path: Path, sim: Any, when: str
) -> None:
    """A real second writer changes the route after meshtop's change: before `:undo` reads
    it (meshtop sees it), or between the undo's read and its write (the server's `test`
    refuses it). Either way the other writer's weights stand and it is said."""
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.shift import ShiftScreen

    from ..tui.test_console import _first_snapshot, keys, settled, undo, until

    with interposed(kube) as proxy:
        plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", server=proxy.url), bookinfo)
        app = MeshtopApp(
            Sources(ClusterSources.one(sim.metrics, plane, None, plane), False, sim.clock)
        )
        async with app.run_test(size=(120, 34)) as pilot:
            await _first_snapshot(app)
            await keys(pilot, "3")
            await settled(pilot)
            _select_reviews(app)
            await keys(pilot, "w")
            await until(pilot, lambda: isinstance(app.screen, ShiftScreen), "the shift dialog")
            await keys(pilot, "4", "enter", "y")
            await until(pilot, lambda: ":undo takes it back" in _notice(app), "the write said")
            assert _weights(kube, VS, bookinfo) == [100, 0]
            if when == "before the undo":
                _set_weights(kube, VS, bookinfo, [70, 30])
                says = "changed since meshtop's change"
            else:
                proxy.before_next_write = lambda: _set_weights(kube, VS, bookinfo, [70, 30])
                says = "changed since it was read"
            if when == "before the undo":  # seen at the undo's read: nothing to confirm
                await keys(pilot, "colon", *"undo", "enter")
            else:
                await undo(pilot)
            await until(pilot, lambda: "cannot undo" in _notice(app), "the undo refused")
            assert says in _notice(app)
    assert proxy.before_next_write is None
    assert _weights(kube, VS, bookinfo) == [70, 30]


def test_an_httproutes_rule_without_matches_is_its_default_rule_as_the_server_serves_it(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """The Gateway API's CRD defaults a rule's `matches` to `[{path: {type: PathPrefix,
    value: /}}]`, and each match's `path` to the same: the server serves the catch-all
    rule written without matches with that match, and the header match with that path.
    A path prefix of / is every path: the catch-all is still the route's default rule (the
    one `shift` changes without --rule, the console's "everything else"), and the header
    rule matches on the header alone."""
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "reviews-jason"},
        "spec": {
            "parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
            "rules": [
                {"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
                 "backendRefs": [{"name": "reviews-v2", "port": 9080}]},
                {"backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 50},
                                 {"name": "reviews-v3", "port": 9080, "weight": 50}]},
            ],
        },
    }  # fmt: skip
    kube.create(route, bookinfo)
    served = kube.get(HR, bookinfo, "reviews-jason")["spec"]["rules"]
    catch_all = {"path": {"type": "PathPrefix", "value": "/"}}
    assert served[1]["matches"] == [catch_all]  # defaulted, and so is each match's path:
    assert served[0]["matches"] == [{**catch_all, "headers": [
        {"name": "end-user", "type": "Exact", "value": "jason"}]}]  # fmt: skip
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig"), bookinfo)
    read, _ = asyncio.run(plane.read(HR, bookinfo, "reviews-jason"))
    assert read.rules[0].matches == ("header end-user = jason",)
    assert read.rules[1].matches == ()  # every request: the default rule
    done = _shift(
        kube.kubeconfig(tmp_path / "admin"), tmp_path / "state", f"{bookinfo}/reviews-jason",
        "--kind", HR, "--set", "reviews-v1=80,reviews-v3=20", "--yes",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rules = kube.get(HR, bookinfo, "reviews-jason")["spec"]["rules"]
    assert [b.get("weight") for b in rules[1]["backendRefs"]] == [80, 20]


def test_istios_schema_bounds_no_weight_so_meshtop_says_a_negative_one(
    kube: KubeServer, bookinfo: str, tmp_path: Path
) -> None:
    """Istio's CRD types a weight as an int32 and nothing more (istiod's validating webhook,
    not the API server, refuses a negative weight or a sum other than 100): the server takes
    -5 and 105 from another writer. meshtop leaves that route out, says why, and its shift
    is one line, exit 3; and it never writes such weights itself (its own check)."""
    _set_weights(kube, VS, bookinfo, [-5, 105])
    assert _weights(kube, VS, bookinfo) == [-5, 105]
    plane = _plane(kube.kubeconfig(tmp_path / "kubeconfig", "reader"), bookinfo)
    assert "reviews" not in {r.name for r in asyncio.run(plane.routes()) if r.kind == VS}
    assert f"VirtualService {bookinfo}/reviews: weight -5 is not a whole number" in " ".join(
        plane.malformed
    )
    config = kube.kubeconfig(tmp_path / "admin")
    done = _shift(
        config, tmp_path / "state", f"{bookinfo}/reviews", "--set", "v1=50,v2=50", "--yes"
    )
    assert done.returncode == 3 and "weight -5 is not a whole number" in _one_line(done)
    _set_weights(kube, VS, bookinfo, [60, 60])  # whole numbers, but not 100 in all
    refused = _shift(config, tmp_path / "state", f"{bookinfo}/reviews", "--set", "v1=70", "--yes")
    assert refused.returncode == 2 and "add up to 130, not 100" in _one_line(refused)
    assert _weights(kube, VS, bookinfo) == [60, 60]
