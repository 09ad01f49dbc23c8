"""The `hadis` command."""

from __future__ import annotations

import typer

from hadis import __version__
from hadis.cli import (
    discriminator_cmd,
    plan_cmd,
    profile_cmd,
    route_cmd,
    router_cmd,
    serve_cmd,
    simulate_cmd,
    trace_cmd,
)

app = typer.Typer(
    help="hadis: hybrid adaptive serving of text-to-image diffusion models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(profile_cmd.app, name="profile")
app.add_typer(trace_cmd.app, name="trace")
app.add_typer(discriminator_cmd.app, name="discriminator")
app.add_typer(router_cmd.app, name="router")
app.command("plan")(plan_cmd.plan_command)
app.command("simulate")(simulate_cmd.simulate_command)
app.command("serve")(serve_cmd.serve_command)
app.command("load")(serve_cmd.load_command)
app.command("route")(route_cmd.route_command)


@app.command("version")
def version() -> None:
    """Print the hadis version."""
    typer.echo(__version__)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hadis {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the hadis version and exit.",
    ),
) -> None:
    """hadis: hybrid adaptive serving of text-to-image diffusion models."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
