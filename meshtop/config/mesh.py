"""What the config file says of the mesh itself: `[mesh] root_namespace`, the namespace
whose PeerAuthentications and AuthorizationPolicies without a selector are mesh-wide
(Istio's `rootNamespace` in its MeshConfig; `istio-system` unless the mesh says
otherwise)."""

from __future__ import annotations

from typing import Any

from meshtop.config import values
from meshtop.errors import UsageError
from meshtop.posture.config import ROOT_NAMESPACE

MESH_KEYS = ("root_namespace",)


def root_namespace(file: Any, where: str) -> str:
    """[mesh] `root_namespace`, a Kubernetes namespace; Istio's default without it."""
    if not isinstance(file, dict):
        raise UsageError(f"{where}: mesh must be a table ([mesh])")
    unknown = set(file) - set(MESH_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown mesh setting {sorted(unknown)[0]!r}; known: {', '.join(MESH_KEYS)}"
        )
    try:
        return values.namespace(file.get("root_namespace", ROOT_NAMESPACE))
    except UsageError as exc:
        raise UsageError(f"{where}: mesh root_namespace: {exc}") from None
