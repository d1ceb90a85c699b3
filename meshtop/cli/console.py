"""`meshtop` and `meshtop demo`: the console, on the configured mesh or the simulated one.
The options before any command are read here too, for every command to merge its own into."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from meshtop import __version__, connect
from meshtop.cli import options
from meshtop.cli.options import (
    CaOpt,
    ClustersOpt,
    ConfigOpt,
    ContextsOpt,
    DialectOpt,
    HeaderOpt,
    InsecureOpt,
    KubeconfigOpt,
    NamespaceOpt,
    PasswordFileOpt,
    PrometheusOpt,
    RefreshOpt,
    SeedOpt,
    ServicesOpt,
    TenantOpt,
    ThemeOpt,
    TimeoutOpt,
    TokenFileOpt,
    TracingOpt,
    UserOpt,
    WindowOpt,
)
from meshtop.errors import EXIT_BUG, MeshtopError, UsageError

if TYPE_CHECKING:
    from meshtop.config import Settings


# How long a lone ESC byte is waited on before it is the esc key rather than the start of
# a key's escape sequence: Textual's default is 100 ms, ncurses's 1 s, which every esc
# (close, clear, cancel) pays before anything happens. htop waits 25 ms
# (`set_escdelay(25)`): a terminal writes a key's sequence at once, and even over SSH
# its bytes arrive together. `ESCDELAY` set by the user (milliseconds, as ncurses reads
# it) is kept.
ESCAPE_DELAY_MS = "25"


def terminal_environment() -> None:
    """What the console's terminal handling reads from the environment, set before
    Textual is imported (it reads its settings once, then)."""
    os.environ.setdefault("ESCDELAY", ESCAPE_DELAY_MS)
    # No animation: the tab bar's underline slid for 0.3 s after each tab switch, a frame
    # every few milliseconds, each a write to the terminal (over SSH too) and 10-17 ms of
    # the screen's thread per switch at 2,000 services, while the switched-to table's own
    # frame was made (issue 17). `TEXTUAL_ANIMATIONS` set by the user is kept.
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    if os.environ.get("NO_COLOR") == "":  # https://no-color.org: only a value means it
        del os.environ["NO_COLOR"]  # (Textual would turn every colour grey for any)


def _run_console(sources: connect.Sources, settings: Settings) -> None:
    terminal_environment()
    from meshtop.tui.theme import load_themes, theme_names

    themes = load_themes()
    if settings.theme not in theme_names(themes):
        raise UsageError(
            f"unknown theme {settings.theme!r}; choose one of {', '.join(theme_names(themes))}"
        )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the console needs a terminal; for scripts use `meshtop export`")
    from textual.worker import WorkerFailed

    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.terminal import EXIT_TERMINAL_LOST, TerminalWatch

    console = MeshtopApp(sources, settings=settings, themes=themes)
    # A terminal that goes away ends the console, even with SIGHUP ignored (terminal.py).
    watch = TerminalWatch(sys.stdin.fileno(), lambda: console.exit(return_code=EXIT_TERMINAL_LOST))
    try:
        with watch:
            console.run()
    except Exception:
        if not watch.lost:
            raise  # a bug: main() says it in one line
    if watch.lost:  # nobody is there to read a word
        raise typer.Exit(EXIT_TERMINAL_LOST)
    if console.return_code == EXIT_BUG:
        # An exception the console did not handle: MeshtopApp kept Textual's traceback off
        # the screen; main() says it in one line and keeps the traceback in a file.
        error = getattr(console, "_exception", None)  # Textual's record of the first
        if isinstance(error, WorkerFailed):
            error = error.error
        if isinstance(error, MeshtopError):  # ours, but the console should have said it in
            # place and gone on: out here it is a bug all the same, not the user's (exit 2)
            raise RuntimeError(f"{type(error).__name__}: {error}") from error
        raise error if isinstance(error, Exception) else RuntimeError("the console failed")
    if not console.return_code:
        # The terminal is restored. A large mesh's objects would take seconds to be freed
        # one by one at the interpreter's end: q ends the process at once (issue 17)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meshtop {__version__}")
        raise typer.Exit()


def console(
    ctx: typer.Context,
    config: ConfigOpt = None,
    refresh: RefreshOpt = None,
    window: WindowOpt = None,
    prometheus: PrometheusOpt = None,
    dialect: DialectOpt = None,
    namespace: NamespaceOpt = None,
    prometheus_token_file: TokenFileOpt = None,
    prometheus_user: UserOpt = None,
    prometheus_password_file: PasswordFileOpt = None,
    prometheus_header: HeaderOpt = None,
    prometheus_ca: CaOpt = None,
    insecure: InsecureOpt = False,
    timeout: TimeoutOpt = None,
    theme: ThemeOpt = None,
    tracing: TracingOpt = None,
    tracing_tenant: TenantOpt = None,
    context: ContextsOpt = None,
    kubeconfig: KubeconfigOpt = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Write nothing: no write key, no write command.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Open the console on the configured mesh (--prometheus, or the config file); with
    no backend configured, on the simulated Bookinfo mesh, marked SIMULATED."""
    flags = options.backend(
        prometheus, dialect, namespace, prometheus_token_file, prometheus_user,
        prometheus_password_file, prometheus_header, prometheus_ca, insecure, timeout,
    )  # fmt: skip
    ctx.obj = options.Given(
        config,
        {"refresh": refresh, "window": window, "theme": theme, **flags,
         "tracing.url": tracing, "tracing.tenant": tracing_tenant,
         "read_only": read_only or None, **options.kubernetes(context, kubeconfig)},
    )  # fmt: skip
    if ctx.invoked_subcommand is None:
        settings = options.settings(ctx)
        configured = any(c.prometheus for c in settings.clusters)
        sim = None if configured else connect.simulation(None, 1)
        sources = connect.connect(settings, sim, routes=True, latency_later=True)
        _run_console(sources, settings)


def demo(
    ctx: typer.Context,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    clusters: ClustersOpt = None,
    refresh: RefreshOpt = None,
    window: WindowOpt = None,
    theme: ThemeOpt = None,
) -> None:
    """Open the console on the simulated mesh (Bookinfo, or --services N; on several
    clusters with --clusters N)."""
    settings = options.settings(ctx, refresh=refresh, window=window, theme=theme)
    sim = connect.simulation(services, seed, clusters=clusters)
    _run_console(connect.connect(settings, sim), settings)
