"""Kubernetes names are checked (DNS-1123) before they become part of a request."""

from __future__ import annotations

import pytest

from meshtop.errors import UsageError
from meshtop.sources.kubernetes import check_names, route_name

from .test_cli import meshtop


@pytest.mark.parametrize(
    "target",
    ["bookinfo/..", "../reviews", "bookinfo/.", "Bookinfo/reviews", "book info/reviews",
     "bookinfo/reviews%2F..", "bookinfo/" + "r" * 254, "b" * 64 + "/reviews",
     "bookinfo/-reviews", "bookinfo/reviews\x1b]2;x"],
)  # fmt: skip
def test_names_that_are_not_kubernetes_names_are_refused(target: str) -> None:
    with pytest.raises(UsageError, match="is not a Kubernetes"):
        route_name(target)


def test_kubernetes_names_pass() -> None:
    assert route_name("bookinfo/reviews") == ("bookinfo", "reviews")
    assert route_name("istio-system/reviews.v2-canary") == ("istio-system", "reviews.v2-canary")
    check_names("a" * 63, "b" * 253)


def test_shift_refuses_a_path_as_a_name_before_any_request() -> None:
    # no cluster at all is configured: the name is refused first, in one line, exit 2
    done = meshtop("shift", "bookinfo/..", "--set", "v1=100", "--yes")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("meshtop: '..' is not a Kubernetes object name"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
