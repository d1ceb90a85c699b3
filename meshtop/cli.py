"""The `meshtop` command: the console, the demo, exports and the simulator's server.
Every error a user can cause ends here as one line on stderr and a documented exit code.
Heavy modules (Textual, networkx, the simulator) load inside the commands that need them,
so `meshtop --help` stays quick."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshtop import __version__
from meshtop.errors import EXIT_BACKEND, MeshtopError, UsageError

if TYPE_CHECKING:
    from meshtop.config import Settings
    from meshtop.sim.sources import Simulation

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


class Format(StrEnum):
    json = "json"
    markdown = "markdown"


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default: config.toml in your config directory)."),
]
RefreshOpt = Annotated[
    str | None, typer.Option("--refresh", help="How often to refresh, e.g. 2s (default 2s).")
]
WindowOpt = Annotated[
    str | None,
    typer.Option("--window", help="Window for rates and latencies, e.g. 1m (default 1m)."),
]
ServicesOpt = Annotated[
    int | None,
    typer.Option(
        "--services",
        min=1,
        max=20000,
        help="Simulate a generated mesh of N services instead of Bookinfo.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the generated mesh.")]


def _settings(config: Path | None, **flags: str | None) -> Settings:
    from meshtop.config import load

    return load(flags, config_file=config)


def _simulation(services: int | None, seed: int) -> Simulation:
    from meshtop.sim.sources import Simulation
    from meshtop.sim.topology import bookinfo, generated

    return Simulation(generated(services, seed) if services else bookinfo())


def _run_console(sim: Simulation, settings: Settings) -> None:
    from meshtop.tui.theme import load_themes, theme_names

    themes = load_themes()
    if settings.theme not in theme_names(themes):
        raise UsageError(
            f"unknown theme {settings.theme!r}; choose one of {', '.join(theme_names(themes))}"
        )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the console needs a terminal; for scripts use `meshtop export`")
    from meshtop.tui.app import MeshtopApp

    MeshtopApp(
        metrics=sim.metrics,
        control_plane=sim.control_plane,
        settings=settings,
        simulated=True,
        clock=sim.clock,
        themes=themes,
    ).run()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meshtop {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def console(
    ctx: typer.Context,
    config: ConfigOpt = None,
    refresh: RefreshOpt = None,
    window: WindowOpt = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Open the console on the configured mesh (the simulated Bookinfo mesh, marked
    SIMULATED, while no backend is configured)."""
    ctx.obj = config
    if ctx.invoked_subcommand is None:
        _run_console(_simulation(None, 1), _settings(config, refresh=refresh, window=window))


@app.command()
def demo(
    ctx: typer.Context,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    refresh: RefreshOpt = None,
    window: WindowOpt = None,
) -> None:
    """Open the console on the simulated mesh (Bookinfo, or --services N)."""
    settings = _settings(ctx.obj, refresh=refresh, window=window)
    _run_console(_simulation(services, seed), settings)


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.json,
    demo: Annotated[bool, typer.Option("--demo", help="Export the simulated mesh.")] = False,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
    window: WindowOpt = None,
) -> None:
    """Print one snapshot of the mesh as JSON or Markdown."""
    import asyncio

    from meshtop.export import renderer
    from meshtop.mesh import refresh
    from meshtop.model import SourceState

    settings = _settings(ctx.obj, window=window)
    if not demo:
        raise UsageError(
            "no metrics backend is configured; use --demo to export the simulated mesh"
        )
    render = renderer(fmt.value)
    sim = _simulation(services, seed)
    snapshot = asyncio.run(
        refresh(
            sim.metrics,
            sim.control_plane,
            window_s=settings.window_s,
            timeout_s=settings.timeout_s,
        )
    )
    failed = [h for h in snapshot.sources.values() if h.state is SourceState.FAILED]
    if failed:
        typer.echo(f"meshtop: {failed[0].reason}", err=True)
        raise typer.Exit(EXIT_BACKEND)
    sys.stdout.write(render(snapshot))


@sim_app.command("serve")
def sim_serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0 picks a free one).")
    ] = 15090,
    services: ServicesOpt = None,
    seed: SeedOpt = 1,
) -> None:
    """Serve the simulated mesh's traffic as Istio metrics at /metrics, for Prometheus."""
    from meshtop.sim.exposition import MeshExposition
    from meshtop.sim.server import MetricsServer

    exposition = MeshExposition(_simulation(services, seed))
    try:
        server = MetricsServer(exposition, host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    typer.echo(f"serving simulated Istio metrics on {server.url}", err=False)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every user error into one line and an exit code."""
    try:
        code = app(args=argv, prog_name="meshtop", standalone_mode=False)
    except typer.TyperException as exc:  # bad flags and values, as the parser words them
        message = exc.format_message().replace("Value error, ", "")
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"meshtop: {message}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except MeshtopError as exc:
        print(f"meshtop: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
