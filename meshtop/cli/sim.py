"""`meshtop sim serve`: the simulated mesh's traffic, served as the mesh's proxies expose
it, for a real Prometheus to scrape."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from meshtop import connect
from meshtop.cli.options import ClustersOpt, SeedOpt, ServicesOpt
from meshtop.errors import UsageError


class SimDialect(StrEnum):
    istio = "istio"
    ambient = "ambient"
    linkerd = "linkerd"


def sim_serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0 picks a free one).")
    ] = 15090,
    dialect: Annotated[
        SimDialect,
        typer.Option("--dialect", help="Whose telemetry: Istio sidecars, ambient, Linkerd."),
    ] = SimDialect.istio,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    clusters: ClustersOpt = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="With --clusters: only what this cluster's proxies report, as its own "
            "Prometheus scrapes them.",
        ),
    ] = None,
) -> None:
    """Serve the simulated mesh's traffic as the mesh's proxies would, at /metrics."""
    from meshtop.sim.exposition import MeshExposition
    from meshtop.sim.server import MetricsServer

    sim = connect.simulation(services, seed, clusters=clusters)
    if cluster is not None and cluster not in sim.mesh.clusters:
        raise UsageError(
            f"no cluster {cluster!r} in the simulated mesh; it has {', '.join(sim.mesh.clusters)}"
        )
    exposition = MeshExposition(sim, dialect.value, cluster=cluster)
    try:
        server = MetricsServer(exposition, host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    typer.echo(f"serving simulated {dialect.value} metrics on {server.url}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
