"""`moma import-lfs`: bring a project from another tool into moma."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli.context import OPTIONS
from moma_cli.cli.options import Json

if TYPE_CHECKING:
    from moma_cli.services.lfs_import import ImportResult


def register(app: typer.Typer) -> None:
    app.command("import-lfs")(import_lfs)


def import_lfs(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Limit to the LFS files at or under these paths.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan (path, size, where the bytes come from); change "
        "nothing.")] = False,
    json_out: Json = False,
) -> None:
    """Convert the files git-lfs tracks into moma pointers.

    The bytes come from the working copy, or from .git/lfs/objects when only the pointer
    text is checked out, and must match the LFS sha256. Each file is cached, gets PATH.moma
    and a .gitignore line and leaves git's index; a filter=lfs pattern no file uses any
    more leaves .gitattributes. Everything is staged. Files whose LFS object is nowhere
    are skipped (exit 1): run 'git lfs fetch' first.

    \b
    Examples:
      moma import-lfs --dry-run
      moma import-lfs && git commit -m "Move from git-lfs to moma" && moma push
    """
    from moma_cli.cli import render
    from moma_cli.services import lfs_import
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = lfs_import.import_lfs(repo, targets or (), dry_run=dry_run)
    if json_out:
        render.print_json({"files": [vars(f) for f in result.files], "dry_run": dry_run,
                           "converted": result.converted, "skipped": result.skipped,
                           "refused": [vars(r) for r in result.refused],
                           "patterns_removed": result.patterns_removed,
                           "staged": result.staged, "ok": result.ok})
    else:
        _render_import(result)
    if not result.ok:
        raise typer.Exit(1)


def _render_import(result: ImportResult) -> None:
    from moma_cli.cli import render
    from moma_cli.services.lfs_import import FETCH_HINT

    if result.dry_run:
        if result.files:
            render.table(["path", "size", "source"],
                         [(f.path, render.human_size(f.size), f.source) for f in result.files])
        else:
            render.line("No git-lfs files to import.")
    else:
        for path in result.converted:
            render.line(f"Imported {path}")
        for pattern in result.patterns_removed:
            render.line(f"Removed {pattern}")
        if result.converted:
            render.line("Pointers staged in git; commit them with 'git commit', then "
                        "'moma push'.")
        elif result.ok:
            render.line("No git-lfs files to import.")
        for path in result.skipped:
            render.warn(f"skipped {path}: its LFS object is neither in the working copy nor "
                        "in .git/lfs/objects")
        if result.skipped:
            render.error(f"{len(result.skipped)} file(s) skipped: their LFS objects are missing",
                         FETCH_HINT)
    for refusal in result.refused:
        render.error(refusal.message, refusal.hint)
