"""`moma import-lfs / import-dvc`: moving a repository to moma from git-lfs or DVC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli.context import OPTIONS
from moma_cli.cli.options import Json

if TYPE_CHECKING:
    from moma_cli.services.dvc_import.importing import ImportResult as DvcImportResult
    from moma_cli.services.lfs_import import ImportResult


def register(app: typer.Typer) -> None:
    app.command("import-lfs")(import_lfs)
    app.command("import-dvc")(import_dvc)


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


def import_dvc(
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan (outs and where their bytes come from, stages, "
        "remotes); change nothing.")] = False,
    copy_remote: Annotated[bool, typer.Option(
        "--copy-remote", help="Take every out's bytes from its DVC remote and copy them "
        "straight into a moma remote (the workspace and DVC's cache are not needed).")] = False,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", help="The moma remote --copy-remote writes to (default: the "
        "default remote, which the import takes from DVC's).")] = None,
    json_out: Json = False,
) -> None:
    """Convert a DVC 3 repository: .dvc files, dvc.yaml stages and .dvc/config remotes.

    Each out becomes PATH.moma, its bytes (from the workspace, else DVC's cache) checked
    against DVC's md5 first; a mismatch is refused by name. Stages go into .moma.yaml,
    and those dvc.lock shows ran on today's inputs into moma.lock. Remotes keep their URL
    and the options moma knows; credentials are never copied. The .dvc files are removed
    and everything is staged. Outs whose bytes are nowhere are skipped (exit 1): run
    'dvc pull' first, or use --copy-remote.

    \b
    Examples:
      moma import-dvc --dry-run
      moma import-dvc && git commit -m "Move from DVC to moma" && moma push
      moma import-dvc --copy-remote     # DVC remote -> moma remote, no 'dvc pull' needed
    """
    from moma_cli.cli import render
    from moma_cli.services.dvc_import.importing import import_dvc as run_import
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = run_import(repo, dry_run=dry_run, copy_remote=copy_remote, remote=remote)
    if json_out:
        render.print_json({**{k: v for k, v in vars(result).items()
                              if k not in ("outs", "refused")},
                           "outs": [vars(o) for o in result.outs],
                           "refused": [vars(r) for r in result.refused], "ok": result.ok})
    else:
        _render_dvc_import(result)
    if not result.ok:
        raise typer.Exit(1)


def _render_dvc_import(result: DvcImportResult) -> None:
    from moma_cli.cli import render

    if result.dry_run and result.outs:
        render.table(["path", "kind", "size", "source", "from"],
                     [(o.path, o.kind, "" if o.size is None else render.human_size(o.size),
                       o.source, o.origin) for o in result.outs])
    for path in result.converted:
        render.line(f"Imported {path}")
    for rel in result.removed:
        render.line(f"Removed {rel}")
    verb = "Would add" if result.dry_run else "Added"
    for name in result.stages:
        render.line(f"{verb} stage {name} to .moma.yaml")
    for name in result.locked:
        render.line(f"Recorded stage {name} as run (from dvc.lock)")
    for name, url in result.remotes.items():
        default = " (default)" if name == result.default_remote else ""
        render.line(f"{verb} remote {name}{default}: {url}")
    if result.copied_to is not None:
        render.line(f"Copied {result.copied} object(s) from DVC's remote to remote "
                    f"'{result.copied_to}'")
    for key in result.secrets_left_out:
        render.warn(f"left out {key}: credentials are never copied; set them in the "
                    "environment or an AWS profile")
    for key in result.options_left_out:
        render.warn(f"left out {key}: moma has no such remote option")
    for note in result.notes:
        render.warn(note)
    nothing = not (result.outs or result.stages or result.remotes or result.locked)
    if nothing and result.ok:
        render.line("Nothing to import from DVC.")
    elif result.staged:
        render.line("Staged in git; commit with 'git commit', then 'moma push'.")
    for path in result.skipped:
        render.warn(f"skipped {path}: its bytes are neither in the workspace nor in DVC's "
                    "cache")
    if result.skipped:
        render.error(f"{len(result.skipped)} out(s) skipped: their data is missing",
                     "run 'dvc pull' (or 'dvc fetch'), or 'moma import-dvc --copy-remote'")
    for refusal in result.refused:
        render.error(refusal.message, refusal.hint)
