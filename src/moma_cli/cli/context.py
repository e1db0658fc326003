"""Global options and the error funnel shared by every command (no Typer: the fast path
imports this too)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def failure_code(exc: BaseException, wants_json: bool) -> int | None:
    """What every command's failure means: MomaError -> 1 with one clear line, an OSError
    -> 1 naming its file, Ctrl-C -> 130, anything else -> 3 ('a bug'), with a traceback
    only under --verbose; None for an exit on purpose (SystemExit), which stays as raised.
    Shared by Typer's root command (ErrorFunnel) and the fast path (cli/fastpath.py)."""
    from moma_cli.cli import render

    if isinstance(exc, MomaError):
        if OPTIONS.verbose:
            _print_traceback()
        render.error(exc.message, exc.hint)
        if wants_json:
            render.json_error(exc.message, exc.hint)
        return ExitCode.FAILURE
    if isinstance(exc, KeyboardInterrupt):
        render.error("interrupted")
        return ExitCode.INTERRUPTED
    if not isinstance(exc, Exception):  # SystemExit: an exit on purpose
        return None
    if OPTIONS.verbose:
        _print_traceback()
    if isinstance(exc, OSError):
        # os.replace(tmp, dest) names the temp first: the destination is what to show.
        where = exc.filename2 or exc.filename or ""
        render.error(f"{exc.strerror or exc}: {where}".rstrip(": "))
        return ExitCode.FAILURE
    render.error(f"internal error: {type(exc).__name__}: {exc}",
                 "run with --verbose and report it at the moma issue tracker")
    return ExitCode.BUG


def _print_traceback() -> None:
    import traceback  # --verbose only

    traceback.print_exc()


def apply_global_options(verbose: bool, wait: float) -> None:
    """`moma -v` and `moma --wait S`, before any command (both paths)."""
    from moma_cli.cli import render
    from moma_cli.services.progress import NOTICES

    OPTIONS.verbose = verbose
    OPTIONS.wait = wait
    NOTICES.show = render.warn
