"""`moma fsck`: check that every cache object still matches its hash."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli import views
from moma_cli.cli.context import OPTIONS

if TYPE_CHECKING:
    from moma_cli.services.fsck import FsckResult


def register(app: typer.Typer) -> None:
    app.command("fsck")(fsck)


def fsck(
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1, help="Parallel hashing workers.")] = None,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", metavar="NAME",
        help="Check this remote instead of the cache (download and re-hash; changes "
             "nothing).")] = None,
    cloud: Annotated[bool, typer.Option(
        "--cloud", "-c", help="Check the default remote instead of the cache.")] = False,
    sample: Annotated[int | None, typer.Option(
        "--sample", min=1, metavar="N",
        help="Check N random objects the work tree uses on the remote, not all (implies "
             "--cloud when no --remote is given).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Re-hash every cache object and check the work tree's pointers have their objects.

    Corrupt objects are moved to .moma/cache/quarantine/corrupt/ (never used, never
    deleted); temp files over an hour old are removed. Exit code 1 when anything is wrong.
    With -r NAME (or -c, the default remote): download and re-hash the remote's objects
    (all, or --sample N), report corrupt and missing ones; the remote is not changed
    ('moma push --verify' repairs it).

    \b
    Examples:
      moma fsck --json
      moma fsck -c
      moma fsck -r storage --sample 100
    """
    from dataclasses import asdict

    from moma_cli.cli import render
    from moma_cli.services import fsck as fsck_service
    from moma_cli.services.repo import open_repo

    if remote or cloud or sample:
        _remote_fsck(remote, sample, jobs, json_out)
        return
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
    views.render_invalid(r.invalid)


def _remote_fsck(remote: str | None, sample: int | None, jobs: int | None,
                 json_out: bool) -> None:
    from dataclasses import asdict

    from moma_cli.cli import render
    from moma_cli.services import remoteops
    from moma_cli.services.repo import open_repo

    # Read-only on both sides (the cache is not touched), so no repository lock.
    r = remoteops.fsck(open_repo(), remote=remote, sample=sample, jobs=jobs,
                       progress=render.RichProgress())
    if json_out:
        render.print_json(asdict(r) | {"ok": r.ok})
    else:
        render.line(f"remote '{r.remote}': {r.checked} objects checked"
                    + (" (random sample)" if r.sampled else "")
                    + f", {len(r.corrupt)} corrupt, {len(r.missing)} missing")
        for bad in r.corrupt:
            render.error(f"{bad.path + ': ' if bad.path else ''}remote object "
                         f"{bad.oid[:8]} is corrupt ({bad.reason})")
        for gone in r.missing:
            render.error(f"{gone.path}: no object {gone.oid[:8]} on remote '{r.remote}'")
        views.render_invalid(r.invalid)
        if r.hint:
            render.error("the remote was not changed", r.hint)
    if not r.ok:
        raise typer.Exit(1)
