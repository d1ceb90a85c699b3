"""A Kubernetes API that never finishes, answers without end, answers too much, pages for
ever or answers with control bytes: against a crafted server on loopback, `meshtop shift`
and the control plane's reads end within their deadline (`--timeout`, for the whole
request: connect, the headers and every byte of the body; a list's pages share one) plus
a second, with exit 3 and one line that names the cause, and their memory stays bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshtop.errors import BackendError
from meshtop.sources.kubernetes import KubeConfig, KubernetesControlPlane

from .test_hostile_backends import (
    SERVE_FOR_S,
    SLACK_S,
    TIMEOUT_S,
    Hostile,
    Run,
    _assert_bounded,
    _run,
    serving,
)

HOSTILE = "shop\x1b]2;PWNED\x1b\\\x1b]52;c;cHduZWQ=\x1b\\\x9b31m\u202e"

VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "bookinfo", "resourceVersion": "7"},
    "spec": {
        "hosts": ["reviews"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
                ]
            }
        ],
    },
}


class HostileAPI(Hostile):
    """The first path segment is the mode, the rest a Kubernetes API path: `/drip/…` sends
    a valid answer one byte every 0.2 s (`/headers/…`: its headers too), as the hostile
    Prometheus does; `/endless/…` a list that never ends; `/big/…` 100 MB; `/pages/…` a
    list whose every page names another; `/heavy/…` the same with half a MiB a page;
    `/odd/…` a list whose fields are not as promised; `/forbidden/…` a 403 whose message
    carries terminal escapes; `/garbage/…` a 200 that is not JSON. Every handler gives up
    after `SERVE_FOR_S` or when the client goes."""

    def do_GET(self) -> None:
        mode = self.path.strip("/").partition("/")[0]
        handler = {"drip": self._drip, "headers": self._drip_headers}.get(mode)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            (handler or getattr(self, f"_{mode}", self._missing))()

    def _body(self) -> bytes:
        if self.path.rstrip("/").endswith("/reviews"):
            return json.dumps(VIRTUAL_SERVICE).encode()
        return json.dumps({"kind": "List", "metadata": {}, "items": []}).encode()

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b'{"kind":"List","metadata":{},"items":[')
        row = json.dumps(VIRTUAL_SERVICE).encode() + b","
        end = time.monotonic() + SERVE_FOR_S
        while time.monotonic() < end:
            self.wfile.write(row * 100)

    def _big(self) -> None:
        size = 100 * 1024 * 1024
        head = json.dumps(VIRTUAL_SERVICE).encode()[:-1] + b',"pad":"'
        tail = b'"}'
        self._head(200, size)
        self.wfile.write(head)
        left = size - len(head) - len(tail)
        block = b"x" * (1024 * 1024)
        while left > 0:
            self.wfile.write(block[: min(left, len(block))])
            left -= len(block)
        self.wfile.write(tail)

    def _pages(self) -> None:
        """Every page one item and a `continue` to the next, for ever, a little slowly."""
        time.sleep(0.05)
        page = {"kind": "List", "metadata": {"continue": f"c{time.monotonic_ns()}"}, "items": []}
        self._send(200, json.dumps(page).encode())

    def _heavy(self) -> None:
        """A list whose every page is half a MiB and names another, for ever."""
        item = {**VIRTUAL_SERVICE, "pad": "x" * (512 * 1024)}
        page = {"kind": "List", "metadata": {"continue": "more"}, "items": [item]}
        self._send(200, json.dumps(page).encode())

    def _odd(self) -> None:
        """A list whose metadata and items are not what the API promises."""
        page = {"kind": "List", "metadata": "nonsense", "items": ["x", 3, VIRTUAL_SERVICE]}
        self._send(200, json.dumps(page).encode())

    def _forbidden(self) -> None:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": f'virtualservices "reviews" is forbidden: {HOSTILE}',
            "reason": "Forbidden",
            "code": 403,
        }
        self._send(403, json.dumps(status).encode())

    def _garbage(self) -> None:
        self._send(200, b"<html>\x1b]2;PWNED\x07 a proxy's login page</html>")

    def _missing(self) -> None:
        self._send(404, b"404 page not found")


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with serving(HostileAPI) as url:
        yield url


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "hostile",
            "clusters": [{"name": "hostile", "cluster": {"server": server}}],
            "contexts": [{"name": "hostile", "context": {"cluster": "hostile", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
        })
    )  # fmt: skip
    path.chmod(0o600)
    return path


def _shift(tmp_path: Path, server: str) -> Run:
    """`meshtop shift` reads the route first: the request under test."""
    return _run(
        "shift", "bookinfo/reviews", "--kind", "VirtualService", "--set", "v1=50,v2=50",
        "--kubeconfig", str(_kubeconfig(tmp_path, server)), "--timeout", f"{TIMEOUT_S:g}s",
        "--dry-run",
    )  # fmt: skip


def test_a_dripping_api_server_ends_at_the_deadline(api: str, tmp_path: Path) -> None:
    run = _shift(tmp_path, f"{api}/drip")
    _assert_bounded(
        run,
        "cannot read VirtualService bookinfo/reviews: the Kubernetes API (hostile) did not "
        "finish answering within 2s",
    )


def test_dripping_headers_end_at_the_deadline_too(api: str, tmp_path: Path) -> None:
    run = _shift(tmp_path, f"{api}/headers")
    _assert_bounded(run, "the Kubernetes API (hostile) did not finish answering within 2s")


def test_a_huge_answer_is_refused(api: str, tmp_path: Path) -> None:
    run = _shift(tmp_path, f"{api}/big")
    _assert_bounded(
        run,
        "cannot read VirtualService bookinfo/reviews: the Kubernetes API (hostile) answered "
        "more than 64 MiB; raise [kubernetes] max_response_mb if a list really needs it",
    )


def test_the_size_cap_is_a_setting(api: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[kubernetes]\nmax_response_mb = 200\n")
    config.chmod(0o600)
    run = _run(
        "shift", "bookinfo/reviews", "--kind", "VirtualService", "--set", "v1=50,v2=50",
        "--kubeconfig", str(_kubeconfig(tmp_path, f"{api}/big")), "--dry-run",
        env={"MESHTOP_CONFIG": str(config)},
    )  # fmt: skip
    # read whole (the object is 100 MB of padding around a real VirtualService): the
    # dry run's PATCH is what this server does not serve
    assert "more than" not in run.stderr, run.stderr
    assert "cannot check VirtualService bookinfo/reviews" in run.stderr, run.stderr


def test_an_endless_list_is_cut_off(api: str, tmp_path: Path) -> None:
    plane = _plane(tmp_path, f"{api}/endless")
    start = time.monotonic()
    with pytest.raises(BackendError) as caught:
        asyncio.run(plane.routes())
    assert time.monotonic() - start < TIMEOUT_S + SLACK_S
    message = str(caught.value)
    assert message.startswith("cannot list VirtualServices in bookinfo: the Kubernetes API")
    assert "answered more than 64 MiB" in message or "did not finish" in message


def test_a_list_that_pages_for_ever_ends_at_the_deadline(api: str, tmp_path: Path) -> None:
    plane = _plane(tmp_path, f"{api}/pages")
    start = time.monotonic()
    with pytest.raises(BackendError) as caught:
        asyncio.run(plane.services())
    assert time.monotonic() - start < TIMEOUT_S + SLACK_S
    assert str(caught.value) == (
        "cannot list services in bookinfo: the Kubernetes API (hostile) did not finish "
        "answering within 2s"
    )


def test_a_refusal_with_escapes_is_one_safe_line(api: str, tmp_path: Path) -> None:
    run = _shift(tmp_path, f"{api}/forbidden")
    assert run.code == 3, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert "forbidden by RBAC in hostile" in run.stderr
    for raw in ("\x1b", "\x9b", "\u202e", "\x07"):
        assert raw not in run.stderr, repr(run.stderr)
    assert "shop␛]2;PWNED" in run.stderr


def test_an_answer_that_is_not_json_is_one_line(api: str, tmp_path: Path) -> None:
    run = _shift(tmp_path, f"{api}/garbage")
    _assert_bounded(
        run,
        "cannot read VirtualService bookinfo/reviews: the Kubernetes API (hostile) answered "
        "something that is not a JSON object",
    )


def _plane(tmp_path: Path, server: str) -> KubernetesControlPlane:
    return KubernetesControlPlane(
        KubeConfig(
            kubeconfig=_kubeconfig(tmp_path, server),
            namespaces=("bookinfo",),
            timeout_s=TIMEOUT_S,
        )
    )


def test_a_list_that_pages_for_ever_is_capped_in_all_not_only_by_page(
    api: str, tmp_path: Path
) -> None:
    """Every page is under the cap, but a list is held to eight caps in all: memory does
    not grow with a server that never stops paging."""
    plane = KubernetesControlPlane(
        KubeConfig(
            kubeconfig=_kubeconfig(tmp_path, f"{api}/heavy"),
            namespaces=("bookinfo",),
            timeout_s=30,
            max_response_mb=1,
        )
    )
    with pytest.raises(BackendError) as caught:
        asyncio.run(plane.routes())
    assert str(caught.value) == (
        "cannot list VirtualServices in bookinfo: the Kubernetes API (hostile) answered more "
        "than 8 MiB in all; raise [kubernetes] max_response_mb if a list really needs it"
    )


def test_a_list_whose_fields_are_not_as_promised_is_read_for_what_it_holds(
    api: str, tmp_path: Path
) -> None:
    """`metadata` a string, items that are not objects: no crash, the one route kept."""
    plane = _plane(tmp_path, f"{api}/odd")
    routes = asyncio.run(plane.routes())
    assert [r.name for r in routes if r.kind == "VirtualService"] == ["reviews"]
    assert asyncio.run(plane.services()) == {("bookinfo", "reviews")}
