"""The `moma` command: global options, then the command groups registered below.

Command modules import their services inside the command functions, so `moma --help`
loads Typer and nothing heavy. Help is plain text (`rich_markup_mode=None`): Typer's rich
help formatter alone cost 0.08 s of the 0.16 s `moma --help` took (docs/performance.md).
Multi-line examples in a docstring need a line holding only `\b` before them, which
keeps their line breaks.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.main import get_command_name

from moma_cli import __version__
from moma_cli.cli import checks, data, fsck, gc, hooks, models, pipeline, remote, serve, sync
from moma_cli.cli.context import OPTIONS

app = typer.Typer(
    name="moma",
    help="Git as the system of record for ML models and data.\n\n"
    "Track data with 'moma add', share it with 'moma push' / 'moma pull', and keep the "
    "small pointer files in git.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moma {__version__}")
        raise typer.Exit()


@app.callback()
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


for module in (data, sync, remote, models, pipeline, checks, hooks, serve, gc, fsck):
    module.register(app)


# Global options that take a value: the token after them is not the command name.
_VALUED_OPTIONS = ("--wait",)


def invoked_command(args: list[str]) -> str | None:
    """The command (or group) name in `args`, skipping the global options before it."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUED_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def keep_only(name: str) -> None:
    """Build only the invoked command: Typer turns every registered command into a click
    command on each run (0.02 s for all of moma's), though one runs. Unknown names keep
    everything, so click's "No such command" error and suggestions stay intact."""
    commands = [c for c in app.registered_commands
                if (c.name or get_command_name(getattr(c.callback, "__name__", ""))) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if commands or groups:
        app.registered_commands, app.registered_groups = commands, groups


def main() -> None:
    if (name := invoked_command(sys.argv[1:])) is not None:
        keep_only(name)
    app()
