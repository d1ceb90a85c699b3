"""The posture in every export format (where the configuration was read), and the gates
on it: `plaintext>0 ns=NS` on the calls into a namespace, `mtls-mode!=STRICT ns=NS` on
its workloads' effective modes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from importlib import resources

import jsonschema
import pytest

from meshtop.errors import UsageError
from meshtop.export import FORMATS, renderer
from meshtop.gates import check, check_modes, parse_gate
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.posture import MtlsMode, PeerAuthentication, SecurityConfig
from meshtop.report import Report
from meshtop.sim.sources import Simulation

PERMISSIVE = SecurityConfig(
    peer_authentications=(PeerAuthentication("bookinfo", "default", MtlsMode.PERMISSIVE),)
)
STRICT_REVIEWS = SecurityConfig(
    peer_authentications=(
        PeerAuthentication("istio-system", "default", MtlsMode.STRICT),
        PeerAuthentication("bookinfo", "page", MtlsMode.PERMISSIVE, {"app": "productpage"}),
    )
)


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=60, clock=sim.clock))


def _report(sim: Simulation, config: SecurityConfig | None = PERMISSIVE) -> Report:
    return Report(_snap(sim), security=None if config is None else {"": config})


def test_the_json_report_carries_the_modes_and_its_schema_holds(sim: Simulation) -> None:
    doc = json.loads(renderer("json")(_report(sim)))
    schema = json.loads(
        resources.files("meshtop.export").joinpath("snapshot.schema.json").read_text()
    )
    jsonschema.validate(doc, schema)
    modes = doc["security"]["modes"]
    bookinfo = next(n for n in modes["namespaces"] if n["namespace"] == "bookinfo")
    assert (bookinfo["mode"], bookinfo["set_by"]) == (
        "PERMISSIVE",
        "namespace-wide PeerAuthentication bookinfo/default",
    )
    (refused,) = bookinfo["strict_would_refuse"]
    assert (refused["id"], refused["label"]) == ("unknown/unknown/unknown", "unknown")
    assert refused["plaintext_rps"] == pytest.approx(1.0, rel=0.1)
    page = next(w for w in bookinfo["workloads"] if w["id"].endswith("/productpage-v1"))
    assert page["mode"] == "PERMISSIVE" and page["plaintext_callers"][0]["label"] == "unknown"
    gateway = next(n for n in modes["namespaces"] if n["namespace"] == "istio-system")
    assert gateway["mode"] == "PERMISSIVE" and gateway["set_by"] is None


def test_without_the_configuration_no_format_changes(sim: Simulation) -> None:
    without = _report(sim, None)
    assert "modes" not in json.loads(renderer("json")(without))["security"]
    assert "mTLS modes" not in renderer("markdown")(without)
    assert "destination_mtls_mode" not in renderer("csv")(without)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_shows_the_modes(fmt: str, sim: Simulation) -> None:
    text = renderer(fmt)(_report(sim, STRICT_REVIEWS))
    shown = {
        "json": '"mode": "STRICT"',
        "markdown": "| bookinfo | STRICT (some workloads PERMISSIVE) | mesh-wide "
        "PeerAuthentication istio-system/default |",
        "html": '<table class="sortable" id="modes">',
        "csv": "destination_mtls_mode",
        "dot": '"bookinfo · mTLS STRICT"',
        "mermaid": '["bookinfo · mTLS STRICT"]',
        "svg": "bookinfo · mTLS STRICT</text>",
    }[fmt]
    assert shown in text


def test_the_csv_column_is_the_destinations_mode(sim: Simulation) -> None:
    rows = list(csv.DictReader(io.StringIO(renderer("csv")(_report(sim, STRICT_REVIEWS)))))
    by_destination = {r["destination"]: r["destination_mtls_mode"] for r in rows}
    assert by_destination["Kubernetes/bookinfo/productpage-v1"] == "PERMISSIVE"
    assert by_destination["Kubernetes/bookinfo/reviews-v2"] == "STRICT"
    assert by_destination["external/external/www.googleapis.com"] == ""


def test_the_markdown_says_what_strict_would_refuse_and_escapes_names(sim: Simulation) -> None:
    hostile = SecurityConfig(
        peer_authentications=(PeerAuthentication("bookinfo", "x|`\x1b[31m", MtlsMode.PERMISSIVE),)
    )
    text = renderer("markdown")(_report(sim, hostile))
    assert "\x1b" not in text
    assert "PeerAuthentication bookinfo/x\\|\\`␛\\[31m" in text
    assert "| unknown 1." in text  # STRICT would refuse the unmeshed client


@pytest.mark.parametrize(
    ("text", "metric", "op", "namespace", "mode"),
    [
        ("plaintext>0 ns=prod", "plaintext", ">", "prod", None),
        ("plaintext>0.5", "plaintext", ">", "", None),
        ("mtls-mode!=STRICT ns=prod", "mtls-mode", "!=", "prod", MtlsMode.STRICT),
        ("mtls-mode=disable", "mtls-mode", "=", "", MtlsMode.DISABLE),
        ("shop/*:mtls-mode!=STRICT", "mtls-mode", "!=", "", MtlsMode.STRICT),
    ],
)
def test_posture_gates_read_as_written(
    text: str, metric: str, op: str, namespace: str, mode: MtlsMode | None
) -> None:
    g = parse_gate(text)
    assert (g.metric, g.op, g.namespace, g.mode) == (metric, op, namespace, mode)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("mtls-mode>STRICT", "compare mtls-mode with = or !="),
        ("mtls-mode!=LOOSE", "'LOOSE' is not a mode; choose DISABLE, PERMISSIVE, STRICT"),
        ("error_rate!=1%", "!= compares mtls-mode only"),
        ("plaintext>0 namespace=prod", "write METRIC OP VALUE"),
    ],
)
def test_bad_posture_gates_say_how_to_write_one(text: str, why: str) -> None:
    with pytest.raises(UsageError, match="--fail-on") as said:
        parse_gate(text)
    assert why in str(said.value)


def test_plaintext_into_a_namespace_breaks_its_gate(sim: Simulation) -> None:
    snapshot = _snap(sim)
    broken = check(snapshot, [parse_gate("plaintext>0 ns=bookinfo")])
    assert [v.edge.key for v in broken] == [
        ("unknown/unknown/unknown", "Kubernetes/bookinfo/productpage-v1")
    ]
    assert broken[0].value == pytest.approx(1.0, rel=0.1)
    assert "plaintext>0 ns=bookinfo: unknown → bookinfo/productpage-v1 has plaintext 1." in (
        broken[0].describe(snapshot)
    )
    # details' call to Google is plain text too, but into the external host, not bookinfo
    anywhere = check(snapshot, [parse_gate("plaintext>0")])
    assert len(anywhere) == 2
    assert not check(snapshot, [parse_gate("plaintext>0 ns=istio-system")])


def test_a_mode_gate_breaks_on_each_workload_not_in_the_mode(sim: Simulation) -> None:
    found = _report(sim, STRICT_REVIEWS).posture
    assert found is not None
    broken = check_modes(found, [parse_gate("mtls-mode!=STRICT ns=bookinfo")])
    assert [v.describe() for v in broken] == [
        "mtls-mode!=STRICT ns=bookinfo: bookinfo/productpage-v1 is PERMISSIVE (workload "
        "PeerAuthentication bookinfo/page)"
    ]
    assert not check_modes(found, [parse_gate("mtls-mode!=STRICT ns=istio-system")])
    # the rest: bookinfo's five others, the gateway and the VM (bookinfo/legacy-batch)
    assert len(check_modes(found, [parse_gate("mtls-mode=STRICT")])) == 7
    assert not check(_snap(sim), [parse_gate("mtls-mode!=STRICT")])  # no edge judged
