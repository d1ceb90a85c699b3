"""The mesh's security posture: each workload's effective mTLS mode from the control
plane's configuration, beside the traffic that actually flows (issue 22)."""

from __future__ import annotations
