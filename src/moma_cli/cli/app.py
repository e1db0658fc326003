"""The `moma` command: global options, then the command groups registered below.

Command modules import their services inside the command functions, so `moma --help`
loads Typer and nothing heavy. Help is plain text (`rich_markup_mode=None`): Typer's rich
help formatter alone cost 0.08 s of the 0.16 s `moma --help` took (docs/performance.md).
Multi-line examples in a docstring need a line holding only `\b` before them, which
keeps their line breaks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from moma_cli import __version__
from moma_cli.cli import (
    checks,
    compare,
    crossrepo,
    data,
    doctor,
    experiments,
    fsck,
    gc,
    hooks,
    lifecycle,
    migrate,
    models,
    pipeline,
    plots,
    remote,
    serve,
    settings,
    sync,
)
from moma_cli.cli.context import OPTIONS, ErrorFunnel
from moma_cli.cli.options import command_index

SETTINGS: dict[str, Any] = dict(
    name="moma",
    help="Git as the system of record for ML models and data.\n\n"
    "Track data with 'moma add', share it with 'moma push' / 'moma pull', and keep the "
    "small pointer files in git.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=ErrorFunnel,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moma {__version__}")
        raise typer.Exit()


def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show tracebacks for errors.")] = False,
    wait: Annotated[float, typer.Option(
        "--wait", metavar="SECONDS",
        help="Wait up to SECONDS for another moma command to release the repository lock.",
    )] = 0.0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    OPTIONS.verbose = verbose
    OPTIONS.wait = wait
    from moma_cli.cli import render
    from moma_cli.services.progress import NOTICES

    NOTICES.show = render.warn


MODULES = (data, migrate, sync, crossrepo, remote, settings, models, lifecycle, pipeline, compare,
           experiments, plots, checks, hooks, serve, gc, fsck, doctor)


def build(app: typer.Typer) -> typer.Typer:
    app.callback()(main_options)
    for module in MODULES:
        module.register(app)
    return app


app = build(typer.Typer(**SETTINGS))


class OneCommand(typer.Typer):
    """`moma` with only the invoked command registered: Typer turns every registered
    command into a click command on each run (0.02 s for all of moma's), though one runs."""

    def __init__(self, only: str, **settings: Any) -> None:
        super().__init__(**settings)
        self.only, self.kept = only, 0

    def command(self, name: str | None = None, *args: Any,
                **kwargs: Any) -> Callable[[Any], Any]:
        if name != self.only:
            return lambda fn: fn
        self.kept += 1
        return super().command(name, *args, **kwargs)

    def add_typer(self, typer_instance: typer.Typer, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("name") == self.only:
            self.kept += 1
            super().add_typer(typer_instance, *args, **kwargs)


def main() -> None:
    """Unknown names get the whole app, so click's "No such command" and its suggestions
    stay intact."""
    at = command_index(sys.argv[1:])
    name = None if at is None else sys.argv[1:][at]
    if name is None:
        app()
        return
    one = OneCommand(name, **SETTINGS)
    build(one)
    (one if one.kept else app)()
