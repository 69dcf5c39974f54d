"""The `aftershock` command line: run the operator, trigger and inspect experiments."""

from __future__ import annotations

import typer

from aftershock import __version__

app = typer.Typer(help="aftershock: continuous chaos engineering for Kubernetes.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """aftershock: continuous chaos engineering for Kubernetes."""


@app.command()
def version() -> None:
    """Print the aftershock version."""
    typer.echo(__version__)


def main() -> None:
    app()
