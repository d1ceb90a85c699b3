"""The audit log is the user's alone: made 0600 in a 0700 directory."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from meshtop import audit


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_the_log_is_made_0600_in_a_0700_directory(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    old = os.umask(0o022)  # the common default, which would give 0644 and 0755
    try:
        where = audit.record({"what": "test"})
    finally:
        os.umask(old)
    assert _mode(where) == 0o600
    assert _mode(where.parent) == 0o700
    assert '"what": "test"' in where.read_text()


def test_a_log_left_readable_by_others_is_narrowed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    where = audit.path()
    where.parent.mkdir(parents=True)
    where.write_text('{"what": "before"}\n')
    where.chmod(0o644)
    audit.record({"what": "after"})
    assert _mode(where) == 0o600
    assert where.read_text().splitlines()[0] == '{"what": "before"}'  # nothing lost


def test_changes_reads_the_weight_shifts_applied_and_nothing_else(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert audit.changes() == []  # no log yet: no change
    shift = {"resource": "VirtualService bookinfo/reviews", "context": "sim", "by": "console",
             "before": {"v1": 90, "v2": 10}, "after": {"v1": 50, "v2": 50}}  # fmt: skip
    audit.record({**shift, "outcome": "about to apply"})
    audit.record({**shift, "outcome": "applied"})
    audit.record({**shift, "outcome": "conflict: changed since read"})
    audit.record({"resource": "PeerAuthentication bookinfo/default", "outcome": "applied"})
    with audit.path().open("a") as log:
        log.write('{"time": "2024-01-01T10:0\n')  # a line cut short
    (found,) = audit.changes()
    assert found.resource == "VirtualService bookinfo/reviews" and found.by == "console"
    assert found.before == (("v1", 90), ("v2", 10)) and found.after == (("v1", 50), ("v2", 50))
    assert abs(found.time - time.time()) < 60
