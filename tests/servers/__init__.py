"""Real servers the tests talk to, built or fetched once by `make tools` (the scripts
beside this file, one per server) into a cache outside the work tree, and started by the
tests on free loopback ports. Each script is idempotent: it does nothing when the cached
build of its version is there."""

from __future__ import annotations

import os
from pathlib import Path

# Where the scripts put what they build: per server and version, never in the work tree.
CACHE = Path(os.environ.get("MESHTOP_CACHE") or Path.home() / ".cache" / "meshtop") / "servers"
