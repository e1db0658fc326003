"""Global options and the error funnel shared by every command."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from moma_cli.errors import ExitCode, MomaError

if TYPE_CHECKING:
    from moma_cli.services.repo import Repo


@dataclass
class Options:
    verbose: bool = False
    wait: float = 0.0


OPTIONS = Options()


@contextlib.contextmanager
def here_locked() -> Iterator[Repo | None]:
    """The repository around the current directory, locked (reading another repository
    writes its `.moma/repos` clone and cache), or None: those commands work outside one."""
    from moma_cli.services.crossrepo.clones import current_repo

    repo = current_repo()
    if repo is None:
        yield None
        return
    with repo.lock(OPTIONS.wait):
        yield repo


class ErrorFunnel(TyperGroup):
    """The root command: maps every outcome of any command to an exit code. MomaError -> 1
    with one clear line, an OSError -> 1 naming its file, Ctrl-C -> 130, anything else -> 3
    ('a bug'), with a traceback only under --verbose. Usage errors stay click's (exit 2)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from moma_cli.cli.options import upgrade_legacy_options

        upgraded, warnings = upgrade_legacy_options(args)
        if warnings:
            from moma_cli.cli import render

            for warning in warnings:
                render.warn(warning)
        return list(super().parse_args(ctx, upgraded))

    def invoke(self, ctx: Any) -> Any:
        from moma_cli.cli import render

        # --json anywhere after the command: a script reads stdout, so errors go there too
        wants_json = "--json" in [*getattr(ctx, "protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except MomaError as exc:
            if OPTIONS.verbose:
                traceback.print_exc()
            render.error(exc.message, exc.hint)
            if wants_json:
                render.json_error(exc.message, exc.hint)
            raise typer.Exit(ExitCode.FAILURE) from None
        except KeyboardInterrupt:
            render.error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except (typer.Exit, typer.Abort, SystemExit, typer.TyperException):
            raise  # a usage error (exit 2) is click's to report
        except OSError as exc:
            if OPTIONS.verbose:
                traceback.print_exc()
            # os.replace(tmp, dest) names the temp first: the destination is what to show.
            where = exc.filename2 or exc.filename or ""
            render.error(f"{exc.strerror or exc}: {where}".rstrip(": "))
            raise typer.Exit(ExitCode.FAILURE) from None
        except Exception as exc:  # noqa: BLE001 - the funnel for bugs
            if OPTIONS.verbose:
                traceback.print_exc()
            render.error(f"internal error: {type(exc).__name__}: {exc}",
                         "run with --verbose and report it at the moma issue tracker")
            raise typer.Exit(ExitCode.BUG) from None
