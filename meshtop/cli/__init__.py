"""The `meshtop` command: the console, the demo, exports, one edge, traces, weight changes,
rollouts, content-based steering and its route test, faults, timeouts and retries,
circuit breakers, the security posture, mTLS modes and the simulator's server, one module
each (resilience and breaker share one); the options
they share in `options.py`; the sources they read come from `meshtop.connect`. Every
error a user can cause ends here as one line on stderr and a documented exit code. Heavy
modules (Textual, networkx, the simulator) load inside the commands that need them, so
`meshtop --help` stays quick."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import typer

from meshtop import __version__, sanitize
from meshtop.cli import (
    console,
    edge,
    export,
    fault,
    mtls,
    posture,
    resilience,
    rollout,
    route_test,
    shift,
    sim,
    steer,
    traces,
)
from meshtop.errors import EXIT_BUG, MeshtopError

__all__ = ["app", "main", "sim_app", "tune_gc"]

app = typer.Typer(
    name="meshtop",
    help="A terminal console for service meshes: live topology, errors, latency, traces "
    "and canary weights. With no command, opens the console.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
sim_app = typer.Typer(help="The simulated mesh meshtop embeds for demos and tests.")
app.add_typer(sim_app, name="sim")

app.callback(invoke_without_command=True)(console.console)
app.command()(console.demo)
app.command()(export.export)
app.command()(edge.edge)
app.command()(traces.trace)
app.command()(traces.traces)
app.command()(shift.shift)
app.command()(rollout.rollout)
app.command()(posture.posture)
app.command()(mtls.mtls)
app.command()(steer.steer)
app.command("route-test")(route_test.route_test)
app.command()(fault.fault)
app.command()(resilience.resilience)
app.command()(resilience.breaker)
sim_app.command("serve")(sim.sim_serve)


def tune_gc() -> None:
    """A refresh decodes tens of thousands of small dicts that die together. With the
    default threshold (700 allocations) the collector runs hundreds of times per refresh
    and walks everything loaded at start-up each time; freeze that, and collect less often
    (benchmarks/RESULTS.md has the effect)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    few_malloc_arenas()


M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def few_malloc_arenas() -> None:
    """Two of glibc's malloc arenas rather than one per thread, up to eight per core:
    each keeps the peak of the answers decoded on its threads (a refresh's latency answer
    at 2,000 services is 36 MiB of text and more of dicts), so memory grew with the
    threads a refresh ran on (the refreshes of bench_console's Prometheus asked in a
    loop on pooled threads: 207 MiB, 137 with two arenas). Set before any thread
    starts; elsewhere than glibc, nothing."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl)
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, ARENAS)


def _crash_report(error: BaseException) -> Path | None:
    """The traceback of a bug, for its report, in a file of its own in the user's state
    directory (`$XDG_STATE_HOME/meshtop` on Linux); None if it cannot be written."""
    import traceback
    from datetime import UTC, datetime

    from platformdirs import user_state_path

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    where = user_state_path("meshtop") / f"crash-{stamp}-{os.getpid()}.txt"
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(
            # not the command line: a header flag may carry a token
            f"meshtop {__version__}\n\n" + "".join(traceback.format_exception(error)),
            encoding="utf-8",
        )
    except OSError:
        return None
    return where


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every user error into one line and an exit code."""
    tune_gc()
    try:
        code = app(args=argv, prog_name="meshtop", standalone_mode=False)
    except typer.TyperException as exc:  # bad flags and values, as the parser words them
        message = exc.format_message().replace("Value error, ", "")
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(sanitize.said(f"meshtop: {message}{hint}"), file=sys.stderr)
        sys.exit(exc.exit_code)
    except MeshtopError as exc:
        print(sanitize.said(f"meshtop: {exc}"), file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except Exception as exc:  # a bug: said in one line, and never exit 1 (a failed gate)
        said = sanitize.said(" ".join(f"{type(exc).__name__}: {exc}".split()))
        report = _crash_report(exc)
        kept = f"the traceback is in {report}; " if report is not None else ""
        print(f"meshtop: unexpected error, a bug in meshtop: {said} ({kept}please report it)",
              file=sys.stderr)  # fmt: skip
        sys.exit(EXIT_BUG)
    sys.exit(code if isinstance(code, int) else 0)
