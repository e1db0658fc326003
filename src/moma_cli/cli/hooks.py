"""`moma install / uninstall` (git hooks) and `moma hook ...` (what the hooks run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from moma_cli.errors import ExitCode

if TYPE_CHECKING:
    import typer

    from moma_cli.cli.options import Files, Json
    from moma_cli.services.hooks import HooksResult, Problem


def register(app: typer.Typer) -> None:
    from moma_cli.cli.options import bind_annotations

    bind_annotations(globals())
    app.command("install")(install)
    app.command("uninstall")(uninstall)
    hook_app = typer.Typer(help="Checks run from git hooks and the pre-commit framework.",
                           no_args_is_help=True)
    hook_app.command("pre-push")(pre_push)
    hook_app.command("pointers")(pointers)
    hook_app.command("large-files")(large_files)
    app.add_typer(hook_app, name="hook")


def install(json_out: Json = False) -> None:
    """Install git hooks: pre-push uploads the data pushed commits need; post-checkout and
    post-merge run 'moma checkout'.

    Existing hooks are kept and still run. Respects core.hooksPath.

    Example: moma install
    """
    from moma_cli.services import hooks
    from moma_cli.services.repo import open_repo

    _render(hooks.install(open_repo()), json_out)


def uninstall(json_out: Json = False) -> None:
    """Remove moma's part of the git hooks, leaving any other hook as it was.

    Example: moma uninstall
    """
    from moma_cli.services import hooks
    from moma_cli.services.repo import open_repo

    _render(hooks.uninstall(open_repo()), json_out)


def _render(result: HooksResult, json_out: bool) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json([vars(c) for c in result.changes])
        return
    if not result.changes:
        render.line("No moma hooks installed.")
    for change in result.changes:
        render.line(f"{change.hook}: {change.action} ({change.path})")


def pre_push(
    remote: Annotated[str, typer.Argument(help="The git remote being pushed to.")],
    url: Annotated[str, typer.Argument(help="Its URL (given by git; unused).")] = "",
) -> None:
    """Upload the data that the commits being pushed reference (git's pre-push hook).

    Reads git's '<local ref> <local sha> <remote ref> <remote sha>' lines on stdin.

    Example (what the installed hook runs): moma hook pre-push origin git@host:repo.git
    """
    import sys

    from moma_cli.cli import views
    from moma_cli.services import hooks
    from moma_cli.services.repo import open_repo

    views.report_transfer(hooks.pre_push(open_repo(), remote, sys.stdin), "uploaded",
                          json_out=False)


def pointers(files: Files) -> None:
    """Fail when a pointer does not parse or its object is not in the cache.

    Example (pre-commit hook moma-pointers): moma hook pointers model.pkl.moma
    """
    from moma_cli.services import hooks
    from moma_cli.services.repo import open_repo

    _problems(hooks.check_pointers(open_repo(), files))


def large_files(
    files: Files,
    max_kb: Annotated[int, typer.Option("--max-kb", min=1,
                                        help="Largest file git may hold, in KiB.")] = 500,
) -> None:
    """Fail on files over --max-kb that should be tracked with 'moma add' instead of git.

    Example (pre-commit hook moma-no-large-files): moma hook large-files --max-kb 1024 data.csv
    """
    from moma_cli.services import hooks
    from moma_cli.services.repo import open_repo

    _problems(hooks.large_files(open_repo(), files, max_kb))


def _problems(problems: list[Problem]) -> None:
    from moma_cli.cli import render

    for problem in problems:
        render.error(problem.message, problem.hint)
    if problems:
        raise SystemExit(ExitCode.FAILURE)
