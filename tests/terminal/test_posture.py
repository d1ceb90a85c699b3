"""The posture tab and :mtls as the operator sees them in a real terminal (issue 22): on
`meshtop demo`, bookinfo's mode beside its unmeshed caller; `:mtls bookinfo strict`
previews that caller, `y` writes it, and within a refresh the caller's calls fail on the
edge table; `:undo` restores them. `--read-only` says so in place."""

from __future__ import annotations

from .term import Terminal

PERMISSIVE_ROW = r"bookinfo\s+PERMISSIVE\s+1 plaintext caller \(unknown\)\s+unknown \d+\.\d+rps"
CALLER = r"\s+unknown\s+productpage-v1\s+(?:http\s+)?\d+\.\d+rps\s+"  # PROTO when wide


def test_the_tab_shows_the_mode_and_the_unmeshed_caller_at_80x24() -> None:
    with Terminal(["demo"], cols=80, rows=24) as t:
        t.ready()
        t.press("5")
        t.wait_for_re(r"bookinfo\s+PERMISSIVE\s+1 plaintext caller \(unknown\)")
        t.wait_for_re(r"  productpage-v1\s+PERMISSIVE\s+1 plaintext caller \(unknown\)")
        t.wait_for_re(r"  legacy-batch \(VM\)\s+PERMISSIVE")
        t.wait_for(":mtls NAMESPACE[/WORKLOAD] strict|permissive sets a mode")


def test_strict_refuses_the_unmeshed_caller_within_a_refresh_and_undo_restores_it() -> None:
    with Terminal(["demo"], cols=160, rows=48) as t:
        t.ready()
        t.press("5")
        t.wait_for_re(PERMISSIVE_ROW)
        t.command("mtls bookinfo strict")
        t.wait_for(
            "set bookinfo to STRICT",
            "+   mode: STRICT",
            "STRICT would refuse 1 plaintext caller (unknown):",
            "y apply   esc cancel",
        )
        t.wait_for_re(r"unknown: \d+\.\d+rps in plain text")
        t.press("y")
        t.wait_for("bookinfo is STRICT; :undo takes it back")
        t.press("2")
        t.wait_for_re(r"FAIL" + CALLER + r"100\.00")  # every call refused: 503s
        t.press("5")
        t.wait_for_re(r"productpage-v1\s+STRICT\s+1 plaintext caller \(unknown\): 100% refused")
        t.command("undo")
        t.wait_for(
            "undo the last change of PeerAuthentication bookinfo/default",
            "-   mode: STRICT",
            "+   mode: PERMISSIVE",
        )
        t.press("y")
        t.wait_for("undone: bookinfo is back to what it was")
        t.press("2")
        t.wait_for_re(r"ok" + CALLER + r"0\.00%")
        t.press("5")
        t.wait_for_re(PERMISSIVE_ROW)


def test_read_only_says_so_in_place() -> None:
    with Terminal(["--read-only"], cols=120, rows=30) as t:
        t.ready()
        t.press("5")
        t.wait_for("read-only: the modes are shown, not changed")
        t.command("mtls bookinfo strict")
        t.wait_for("read-only: :mtls writes nothing here")
        t.press("5")
        t.wait_for_re(PERMISSIVE_ROW)
