"""`moma fsck`: check that every cache object still matches its hash."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli.context import OPTIONS, guarded

if TYPE_CHECKING:
    from moma_cli.services.fsck import FsckResult


def register(app: typer.Typer) -> None:
    app.command("fsck")(fsck)


@guarded
def fsck(
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1, help="Parallel hashing workers.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Re-hash every cache object and check the work tree's pointers have their objects.

    Corrupt objects are moved to .moma/cache/quarantine/corrupt/ (never used, never
    deleted); temp files over an hour old are removed. Exit code 1 when anything is wrong.

    Example: moma fsck --json
    """
    from dataclasses import asdict

    from moma_cli.cli import render
    from moma_cli.services import fsck as fsck_service
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = fsck_service.fsck(repo, jobs=jobs, progress=render.RichProgress())
    if json_out:
        render.print_json(asdict(result) | {"ok": result.ok})
    else:
        _render(result)
    if not result.ok:
        raise typer.Exit(1)


def _render(r: FsckResult) -> None:
    from moma_cli.cli import render

    render.line(f"{r.checked} objects checked, {len(r.corrupt)} corrupt, "
                f"{len(r.missing)} missing" + (f", {len(r.stale_tmp)} stale temp files removed"
                                               if r.stale_tmp else ""))
    for bad in r.corrupt:
        render.error(f"object {bad.oid[:8]} is corrupt ({bad.reason}); moved to {bad.moved_to}",
                     "run 'moma pull' to download a good copy")
    for gone in r.missing:
        render.error(f"{gone.path}: object {gone.oid[:8]} is not in the cache",
                     "run 'moma pull' to download it, or 'moma add' it again")
    for message in r.invalid:
        render.error(message)
