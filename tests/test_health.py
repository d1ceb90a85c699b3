from __future__ import annotations

import pytest

from meshtop.health import Thresholds, edge_health, worst
from meshtop.model import EdgeStats, Health, Protocol


def _http(rps: float, errors: float = 0.0, client_errors: float = 0.0) -> EdgeStats:
    codes = {"200": rps * (1 - errors - client_errors)}
    if errors:
        codes["503"] = rps * errors
    if client_errors:
        codes["404"] = rps * client_errors
    return EdgeStats(protocol=Protocol.HTTP, rps=rps, error_rate=errors, response_codes=codes)


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (0.0, Health.HEALTHY),
        (0.0001, Health.DEGRADED),  # Kiali: any 5xx degrades
        (0.0999, Health.DEGRADED),
        (0.10, Health.FAILING),  # from 10% it fails
        (0.5, Health.FAILING),
    ],
)
def test_server_errors_follow_kiali_defaults(errors: float, expected: Health) -> None:
    assert edge_health(_http(10, errors)) is expected


@pytest.mark.parametrize(
    ("client_errors", "expected"),
    [
        (0.05, Health.HEALTHY),
        (0.10, Health.DEGRADED),
        (0.19, Health.DEGRADED),
        (0.20, Health.FAILING),
    ],
)
def test_client_errors_follow_kiali_defaults(client_errors: float, expected: Health) -> None:
    assert edge_health(_http(10, client_errors=client_errors)) is expected


def test_no_traffic_is_idle_not_healthy() -> None:
    assert edge_health(EdgeStats(rps=0.0)) is Health.IDLE
    assert edge_health(EdgeStats(protocol=Protocol.TCP)) is Health.IDLE
    assert (
        edge_health(EdgeStats(protocol=Protocol.TCP, tcp_connections_per_s=1.0)) is Health.HEALTHY
    )


def test_thresholds_are_configurable() -> None:
    lenient = Thresholds(errors_degraded=0.01, errors_failing=0.5)
    assert edge_health(_http(10, 0.005), lenient) is Health.HEALTHY
    assert edge_health(_http(10, 0.2), lenient) is Health.DEGRADED


def test_worst_orders_failing_over_degraded_over_healthy_over_idle() -> None:
    assert worst([Health.IDLE, Health.HEALTHY, Health.DEGRADED]) is Health.DEGRADED
    assert worst([Health.FAILING, Health.HEALTHY]) is Health.FAILING
    assert worst([]) is Health.IDLE


def test_health_says_why_with_the_thresholds_as_configured() -> None:
    from meshtop.health import explain

    t = Thresholds(errors_degraded=0.001, errors_failing=0.005)
    s = EdgeStats(rps=10.0, error_rate=0.003, response_codes={"200": 9.97, "500": 0.03})
    assert explain(s, t) == "degraded: errors 0.30% > 0.1%"
    assert explain(EdgeStats(rps=10.0, error_rate=0.2)) == "failing: errors 20.00% ≥ 10%"
    assert explain(EdgeStats()) == "idle: no traffic in the window"
