"""Adapters to the systems meshtop reads: control plane, metrics and traces."""
