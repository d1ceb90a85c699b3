"""Tests against a real Prometheus server on loopback."""
