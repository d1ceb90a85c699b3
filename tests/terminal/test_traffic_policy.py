"""The console's traffic-policy commands as the operator sees them in a real terminal
(issue 21), on `meshtop demo`: `:route-test` answers in place; after `:steer … --to v3`
and `y`, an iPhone's user agent goes to v3 and any other to the default rule, and `:undo`
takes the rule back; a timeout below the p99 shows `UT` beside it in the edge detail
within a refresh; a fault marks the graph's lines into reviews until its end, when the
console removes it (audited); `--read-only` refuses in place."""

from __future__ import annotations

import json

from meshtop import audit

from .term import Terminal

REGEX = "^(.*?;)?(iPhone)(;.*)?$"


def test_steer_then_route_test_says_v3_for_an_iphone_and_undo_takes_it_back() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.command('route-test bookinfo/reviews user-agent="iPhone; CPU iPhone OS 17_0"')
        t.wait_for("route-test bookinfo/reviews: the default rule 0 → reviews")
        t.command(f"steer bookinfo/reviews --match header:user-agent~{REGEX} --to v3")
        t.wait_for(
            f"VirtualService bookinfo/reviews: add rule 0: header user-agent ~ {REGEX} → v3",
            "+      subset: v3",
            "y apply   esc cancel",
        )
        t.press("y")
        t.wait_for("add rule 0: header user-agent ~", "applied; :undo takes it back")
        t.command('route-test bookinfo/reviews user-agent="iPhone; CPU iPhone OS 17_0"')
        t.wait_for(
            f"route-test bookinfo/reviews: rule 0 (header user-agent ~ {REGEX}) → reviews v3"
        )
        t.command('route-test bookinfo/reviews user-agent="Mozilla/5.0 (X11; Linux x86_64)"')
        t.wait_for_re(
            r"route-test bookinfo/reviews: the default rule 1 → reviews v1 \d+%.*; rule 0 did "
            r"not match: header user-agent does not match"
        )
        t.command("undo")
        t.wait_for("undo the last change of VirtualService bookinfo/reviews", "y apply")
        t.press("y")
        t.wait_for("undone: VirtualService bookinfo/reviews is back to what it was")
        t.command('route-test bookinfo/reviews user-agent="iPhone; CPU iPhone OS 17_0"')
        t.wait_for("route-test bookinfo/reviews: the default rule 0 → reviews")


def test_a_timeout_below_the_p99_shows_ut_beside_it_in_the_edge_detail() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.command("timeout bookinfo/reviews 20ms")
        t.wait_for("VirtualService bookinfo/reviews: rule 0: timeout 20ms", "+  timeout: 20ms")
        t.press("y")
        t.wait_for("rule 0: timeout 20ms: applied; :undo takes it back")
        t.press("r")  # a refresh now: the simulated proxies follow the route at once
        t.press("2")  # the edge table: the worst edge first, reviews v3's from productpage
        # refreshed: its p99 (the column before mTLS) held to the timeout, where it was
        # about 200ms (the detail shows the snapshot it was opened on)
        t.wait_for_re(r"FAIL\s+productpage-v1\s+reviews-v3\s.*\s20ms\s+yes")
        t.press("enter")
        t.wait_for("Traffic policy", "VirtualService bookinfo/reviews, rule 0 (default):")
        found = t.wait_for_re(r"timeout 20ms · p99 \S+ · UT (\d+\.\d+)%")
        assert float(found.group(1)) > 0, t.text()


def test_a_fault_is_marked_on_the_graph_until_its_end_and_then_removed() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        assert "↯" not in t.text()
        t.command("fault bookinfo/reviews --abort 503:20% --for 15s")
        t.wait_for("fault abort 503 to 20% on rule 0 until", "+annotation meshtop.io/fault-expires")
        t.press("y")
        t.wait_for("applied; :undo takes it back")
        t.press("r")
        t.wait_for("↯")  # on the lines into reviews (their arrowheads at least)
        t.wait_for("the fault on bookinfo/reviews reached its end: removed (audited)", limit=40)
        t.press("r")
        t.wait_gone("↯")
    entries = [json.loads(line) for line in audit.path().read_text().splitlines()]
    ended = [e for e in entries if e.get("by") == "expiry"]
    assert ended and ended[-1]["outcome"] == "applied", entries[-3:]


def test_read_only_refuses_each_change_in_place_at_80x24() -> None:
    with Terminal(["--read-only"], cols=80, rows=24) as t:
        t.ready()
        t.command("fault bookinfo/reviews --abort 503:10%")
        t.wait_for("read-only: :fault writes nothing here")
        t.command("steer bookinfo/reviews --match uri^=/api --to v3")
        t.wait_for("read-only: :steer writes nothing here")
        t.command("route-test bookinfo/reviews uri=/")
        t.wait_for("route-test bookinfo/reviews: the default rule 0")
