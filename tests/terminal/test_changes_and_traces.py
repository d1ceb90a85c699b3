"""Issue 19 in a real terminal: a weight shift meshtop made five minutes ago (its audit
log) is marked on the detail's charts; `e` filters the trace list's sample instead of
fetching another, and the trace id stays whole at 80 columns."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from .term import Terminal

TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")


def _worst_edge(t: Terminal) -> None:
    t.ready()
    t.press("2")
    t.wait_for("SOURCE", "DESTINATION")
    t.press("enter")
    t.wait_for("productpage v1 → reviews v3", "Requests", "Latency")


def test_a_weight_shift_five_minutes_ago_is_marked_on_the_detail_chart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "meshtop").mkdir(parents=True)
    moment = time.time() - 300
    at = datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
    line = {"time": at, "user": "ops", "context": "simulated", "by": "console",
            "resource": "VirtualService bookinfo/reviews", "rule": 0, "outcome": "applied",
            "before": {"v1": 90, "v2": 10}, "after": {"v1": 50, "v2": 50}}  # fmt: skip
    (state / "meshtop" / "audit.jsonl").write_text(json.dumps(line) + "\n")
    with Terminal(["demo"], cols=120, rows=40, env={"XDG_STATE_HOME": str(state)}) as t:
        _worst_edge(t)
        legend = f"▲ {datetime.fromtimestamp(moment).strftime('%H:%M')} reviews 90/10 → 50/50"
        t.wait_for(f"{legend} (console)")
        lines = t.lines()
        mark = next(y for y, text in enumerate(lines) if "│" in text and "▲" in text)
        ruler = lines[mark + 1]  # the plot's time ruler, under the marks
        assert "-6m" in ruler and "-4m" in ruler, ruler
        assert ruler.index("-6m") < lines[mark].index("▲") < ruler.index("-4m") + 2, (
            f"{lines[mark]}\n{ruler}"
        )


def _ids(t: Terminal) -> list[str]:
    return [m.group(0) for line in t.lines() for m in TRACE_ID.finditer(line)]


def test_e_keeps_the_sample_and_the_id_is_whole_at_80_columns() -> None:
    with Terminal(["demo"], cols=80, rows=40) as t:  # rows for the whole sample
        _worst_edge(t)
        t.press("t")
        t.wait_for("20 traces, slowest first", "trace id")
        # every id whole, at 80 columns
        t.wait("twenty whole trace ids", lambda: len(set(_ids(t))) == 20)
        sample = set(_ids(t))
        t.press("e")
        t.wait_for("errors only", "traces fetched")

        def failed_only() -> bool:
            listed = [line for line in t.lines() if TRACE_ID.search(line)]
            return all(line.startswith(" !") for line in listed)

        t.wait("only the traces with an error listed", failed_only)
        assert set(_ids(t)) <= sample, t.text()  # filtered, not fetched again
        t.press("e")
        t.wait("the whole sample again", lambda: set(_ids(t)) == sample)
