"""What a run is set to: `Settings`, and the mesh as `ClusterConfig`s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meshtop.config.links import NO_LINKS, Links
from meshtop.health import DEFAULT_THRESHOLDS, Thresholds
from meshtop.posture.config import ROOT_NAMESPACE
from meshtop.sources.bounded import DEFAULT_MAX_RESPONSE_MB
from meshtop.sources.prometheus_config import PrometheusConfig
from meshtop.sources.tracing import TracingConfig


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """One cluster of the mesh: `name` as the mesh names it (Istio's cluster ID, the
    `source_cluster` of its metrics; "" for the one cluster of a mesh of one, whose
    workloads carry no cluster), the kubeconfig context its control plane is reached
    through (none: no control plane is read), and its metrics and trace backends: its
    own, or the one every cluster shares."""

    name: str = ""
    context: str | None = None
    kubeconfig: Path | None = None
    prometheus: PrometheusConfig | None = None
    tracing: TracingConfig | None = None

    @property
    def reaches_kubernetes(self) -> bool:
        """Whether a control plane is named for it (a context or a kubeconfig)."""
        return bool(self.context or self.kubeconfig)


@dataclass(frozen=True, slots=True)
class Settings:
    refresh_s: float = 2.0  # how often the TUI asks the sources again
    window_s: float = 60.0  # the window rates and latencies are computed over
    timeout_s: float = 10.0  # how long one source may take to answer
    theme: str = "meshtop"
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    config_path: Path | None = None  # the file these came from, if any
    read_only: bool = False  # no write path at all: `meshtop shift` refuses
    kube_max_response_mb: float = DEFAULT_MAX_RESPONSE_MB  # [kubernetes] a page's size cap
    # the mesh, a cluster at a time: one ("" named) unless [[clusters]] or --context twice
    clusters: tuple[ClusterConfig, ...] = (ClusterConfig(),)
    warnings: tuple[str, ...] = ()  # said once, on stderr and in the console's notice
    clipboard: bool = True  # [console] `y` copies to the terminal's clipboard (OSC 52)
    links: Links = NO_LINKS  # [links] where `:open` points (Grafana, Jaeger, Zipkin)
    # [mesh] where mesh-wide PeerAuthentications and AuthorizationPolicies are (issue 22)
    root_namespace: str = ROOT_NAMESPACE

    @property
    def several(self) -> bool:
        """Whether the mesh spans several clusters (its workloads named `cluster/ns/name`)."""
        return len(self.clusters) > 1

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces the metrics are scoped to (-n), none for all."""
        return next((c.prometheus.namespaces for c in self.clusters if c.prometheus), ())
