"""The `moma` command: global options, then the command groups registered below.

Only the module that owns the invoked command is imported and registered (COMMANDS), so
`moma status` or a git hook loads Typer, that module and the services it calls; `moma
--help` lists every command without reading its parameters (CommandIndex), and unknown
names build the whole app. Command modules import their services inside the
command functions. Help is plain text (`rich_markup_mode=None`): Typer's rich help
formatter alone cost 0.08 s of the 0.16 s `moma --help` took (docs/performance.md).
Multi-line examples in a docstring need a line holding only `\b` before them, which
keeps their line breaks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import cache
from importlib import import_module
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from moma_cli import __version__
from moma_cli.cli.context import apply_global_options, failure_code
from moma_cli.cli.options import command_index


class ErrorFunnel(TyperGroup):
    """The root command: every outcome of any command becomes an exit code
    (context.failure_code). Usage errors stay click's (exit 2)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from moma_cli.cli.options import upgrade_legacy_options

        upgraded, warnings = upgrade_legacy_options(args)
        if warnings:
            from moma_cli.cli import render

            for warning in warnings:
                render.warn(warning)
        return list(super().parse_args(ctx, upgraded))

    def invoke(self, ctx: Any) -> Any:
        # --json anywhere after the command: a script reads stdout, so errors go there too
        wants_json = "--json" in [*getattr(ctx, "protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # a usage error (exit 2) is click's to report
        except BaseException as exc:  # noqa: BLE001 - the funnel, bugs included
            code = failure_code(exc, wants_json)
            if code is None:
                raise
            raise typer.Exit(code) from None


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
    apply_global_options(verbose, wait)


# Module of moma_cli.cli -> the commands (and command groups) its register() adds, in the
# order `--help` lists them. Importing all the modules costs 0.02-0.04 s, so a command
# imports only its own; tests/cli/test_cli.py checks this table against register().
COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("init", "add", "status", "checkout", "remove", "move"),
    "migrate": ("import-lfs", "import-dvc"),
    "sync": ("push", "fetch", "pull"),
    "crossrepo": ("ls", "get", "import", "update"),
    "remote": ("remote",),
    "settings": ("config",),
    "models": ("models:add", "models:list", "models:log", "models:show", "models:diff",
               "models:get"),
    "lifecycle": ("models:tag", "models:untag", "models:register", "models:deprecate",
                  "models:history", "models:check-ref"),
    "pipeline": ("run", "repro", "dag", "lineage"),
    "compare": ("diff", "params", "metrics"),
    "experiments": ("exp",),
    "plots": ("plots",),
    "checks": ("check", "monitor"),
    "hooks": ("install", "uninstall", "hook"),
    "serve": ("serve",),
    "gc": ("gc",),
    "fsck": ("fsck",),
    "doctor": ("doctor",),
}


def build(app: typer.Typer, modules: tuple[str, ...] = tuple(COMMANDS)) -> typer.Typer:
    app.callback()(main_options)
    for module in modules:
        import_module(f"moma_cli.cli.{module}").register(app)
    return app


@cache
def full_app() -> typer.Typer:
    """`moma` with every command: for `--help`, unknown names and in-process callers."""
    return build(typer.Typer(**SETTINGS))


def module_of(command: str) -> str | None:
    return next((module for module, names in COMMANDS.items() if command in names), None)


class OneCommand(typer.Typer):
    """`moma` with only the invoked command registered: Typer turns every registered
    command into a click command on each run (0.02 s for all of moma's), though one runs."""

    def __init__(self, only: str, **settings: Any) -> None:
        super().__init__(**settings)
        self.only = only

    def command(self, name: str | None = None, *args: Any,
                **kwargs: Any) -> Callable[[Any], Any]:
        if name != self.only:
            return lambda fn: fn
        return super().command(name, *args, **kwargs)

    def add_typer(self, typer_instance: typer.Typer, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("name") == self.only:
            super().add_typer(typer_instance, *args, **kwargs)


class CommandIndex(typer.Typer):
    """`moma` without a command (`--help`, `--version`, no arguments): every command and
    group with its help text and none of its parameters. Typer reads the parameters of
    every registered function (`get_type_hints` of ~140 of them: 0.1 s) though the listing
    shows one line of help each."""

    def command(self, name: str | None = None, *args: Any,
                **kwargs: Any) -> Callable[[Any], Any]:
        register = super().command(name, *args, **kwargs)

        def listed(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(_help_only(fn))
            return fn
        return listed

    def add_typer(self, typer_instance: typer.Typer, *args: Any, **kwargs: Any) -> None:
        super().add_typer(typer.Typer(help=typer_instance.info.help), *args, **kwargs)


def _help_only(fn: Callable[..., Any]) -> Callable[[], None]:
    def listed() -> None:
        raise AssertionError("the command index only lists commands")  # never invoked
    listed.__doc__ = fn.__doc__
    return listed


def main() -> None:
    """Unknown names get the whole app, so click's "No such command" and its suggestions
    stay intact; shell completion (`_MOMA_COMPLETE`) completes options of any command."""
    at = command_index(sys.argv[1:])
    name = sys.argv[1:][at] if at is not None else None
    module = module_of(name) if name is not None else None
    if name is None and "_MOMA_COMPLETE" not in os.environ:
        build(CommandIndex(**SETTINGS))()
        return
    if name is None or module is None:
        full_app()()
        return
    one = OneCommand(name, **SETTINGS)
    build(one, (module,))
    one()
