"""`moma push / fetch / pull`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli.context import OPTIONS, guarded
from moma_cli.cli.data import Jobs, Json, render_checkout

if TYPE_CHECKING:
    from moma_cli.services.sync import TransferResult

Targets = Annotated[list[str] | None, typer.Argument(
    help="Limit to these tracked paths (default: every pointer in the workspace).")]
RemoteName = Annotated[str | None, typer.Option(
    "--remote", "-r", help="Remote name (default: core.remote).")]
_SHOWN_FAILURES = 20


def register(app: typer.Typer) -> None:
    app.command("push")(push)
    app.command("fetch")(fetch)
    app.command("pull")(pull)


@guarded
def push(
    targets: Targets = None,
    remote: RemoteName = None,
    jobs: Jobs = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Also re-hash the objects the remote already has and re-upload any "
                         "that are damaged.")] = False,
    all_branches: Annotated[bool, typer.Option(
        "--all-branches", help="Also the data at every branch tip.")] = False,
    all_tags: Annotated[bool, typer.Option(
        "--all-tags", help="Also the data at every tagged commit.")] = False,
    all_commits: Annotated[bool, typer.Option(
        "--all-commits", help="Also the data of every commit of every ref.")] = False,
    revs: Annotated[list[str] | None, typer.Option(
        "--rev", help="Also the data at this git revision; repeatable.")] = None,
    json_out: Json = False,
) -> None:
    """Upload the data the remote does not have yet: of the workspace pointers and of every
    model version holding a stage or a semver, plus the revisions the options name.

    \b
    Examples:
      moma push
      moma push model.pkl -r backup -j 16
      moma push --all-tags --rev v1.0
    """
    from moma_cli.cli import render
    from moma_cli.services import sync
    from moma_cli.services.repo import open_repo
    from moma_cli.services.revisions import Scope

    repo = open_repo()
    scope = Scope(all_branches, all_tags, all_commits, tuple(revs or ()))
    with repo.lock(OPTIONS.wait):
        result = sync.push(repo, targets, remote=remote, jobs=jobs, verify=verify, scope=scope,
                           progress=render.RichProgress())
    report(result, "pushed", json_out)


@guarded
def fetch(targets: Targets = None, remote: RemoteName = None, jobs: Jobs = None,
          json_out: Json = False) -> None:
    """Download the data of the workspace pointers into the cache, without touching the
    workspace. Every object is verified against its hash.

    Example: moma fetch data/ -r storage
    """
    from moma_cli.cli import render
    from moma_cli.services import sync
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = sync.fetch(repo, targets, remote=remote, jobs=jobs,
                            progress=render.RichProgress())
    report(result, "fetched", json_out)


@guarded
def pull(
    targets: Targets = None,
    remote: RemoteName = None,
    jobs: Jobs = None,
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Overwrite data that is modified and not in the cache.")] = False,
    json_out: Json = False,
) -> None:
    """Fetch, then check out: make the workspace match the pointers, downloading as needed.

    Example: git clone URL && cd repo && moma pull
    """
    from moma_cli.cli import render
    from moma_cli.services import sync
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = sync.pull(repo, targets, remote=remote, jobs=jobs, force=force,
                           progress=render.RichProgress())
    checkout = result.checkout
    if json_out:
        render.print_json(as_json(result) | {"checkout": vars(checkout) if checkout else None})
    else:
        render_transfer(result, "fetched")
        if checkout is not None:
            render_checkout(checkout)
    if not result.ok:
        raise typer.Exit(1)


def as_json(r: TransferResult) -> dict[str, object]:
    return {"remote": r.remote, "ok": r.ok, "transferred": r.transferred, "skipped": r.skipped,
            "failed": r.failed, "invalid": r.invalid, "repaired": r.repaired,
            "cleaned": r.cleaned, "warnings": r.warnings}


def report(result: TransferResult, verb: str, json_out: bool) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json(as_json(result))
    else:
        render_transfer(result, verb)
    if not result.ok:
        raise typer.Exit(1)


def render_transfer(r: TransferResult, verb: str, lead: str | None = None) -> None:
    """The summary line (after `lead`, in parentheses, when given), then what failed."""
    from moma_cli.cli import render

    summary = f"{len(r.transferred):,} files {verb}, {r.skipped:,} up to date"
    if r.repaired:
        summary += f", {len(r.repaired):,} damaged remote copies replaced"
    if r.failed:
        summary += f", {len(r.failed):,} failed"
    render.line(f"{lead} ({summary})" if lead else summary)
    for message in r.warnings:  # what such an index claims counts as not on the remote
        render.warn(f"ignored {message}")
    for message in list(r.failed.values())[:_SHOWN_FAILURES]:
        render.error(message)
    if len(r.failed) > _SHOWN_FAILURES:
        render.error(f"... and {len(r.failed) - _SHOWN_FAILURES:,} more")
    for message in r.invalid:
        render.error(message)
    if r.hint and r.failed:
        render.error(f"{len(r.failed):,} object(s) could not be transferred", r.hint)
    if r.cleaned:
        render.line(f"Removed {len(r.cleaned):,} leftovers of interrupted pushes from the "
                    "remote")
    if r.clean_error:
        render.warn(f"could not look for leftovers of interrupted pushes: {r.clean_error}")
