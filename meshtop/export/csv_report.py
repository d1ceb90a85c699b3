"""`--format csv`: one row per edge, worst first, numbers as numbers (no units) and empty
where there is none, for spreadsheets and `awk`; where the security configuration was
read, the destination's effective mTLS mode in a last column. Before it, what the routes
and DestinationRules set on the calls into the destination (issue 21): its injected
fault (with `EXPIRED` past the end meshtop set), timeout (seconds), retries and circuit
breaker, in words, empty where nothing is set. Names are outside text:
shown, and never read as a formula (`csv_cell`); our own numbers are left as they are."""

from __future__ import annotations

import csv
import io
import math

from meshtop import policy_view
from meshtop.export import security
from meshtop.model import Protocol
from meshtop.report import Report
from meshtop.sanitize import csv_cell

COLUMNS = ("source", "destination", "service", "protocol", "rps", "error_rate", "p50_ms",
           "p95_ms", "p99_ms", "mtls", "health", "tcp_request_bytes_per_s",
           "tcp_response_bytes_per_s", "tcp_connections_per_s", "destination_fault",
           "destination_timeout_s", "destination_retries",
           "destination_circuit_breaker")  # fmt: skip


def number(value: float | None, digits: int = 6) -> str:
    return "" if value is None or not math.isfinite(value) else str(round(value, digits))


def render(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    modes = report.posture is not None  # the configuration was read: a column more
    writer.writerow((*COLUMNS, "destination_mtls_mode") if modes else COLUMNS)
    set_on = policy_view.by_destination(report.snapshot)
    now = report.snapshot.generated_at
    for e in report.edges:
        found = set_on.get(e.destination, policy_view.Protection())
        s = e.stats
        tcp = s.protocol is Protocol.TCP
        mode = [security.mode_of(report, e.destination)] if modes else []
        writer.writerow(
            [
                csv_cell(e.source), csv_cell(e.destination), csv_cell(e.service), s.protocol.value,
                number(None if tcp else s.rps), number(None if tcp else s.error_rate),
                number(s.p50_ms, 3), number(s.p95_ms, 3), number(s.p99_ms, 3),
                number(s.mtls, 4), report.grades.edges[e.key].value,
                number(s.tcp_request_bps if tcp else None, 2),
                number(s.tcp_response_bps if tcp else None, 2),
                number(s.tcp_connections_per_s if tcp else None, 4),
                csv_cell("; ".join(f.words(now) for f in found.faults)),
                number(found.timeout_s, 3),
                csv_cell(found.retries.words() if found.retries else ""),
                csv_cell("; ".join(f"{b.target}: {w}" for b in found.breakers for w in b.words())),
                *mode,
            ]
        )  # fmt: skip
    return out.getvalue()
