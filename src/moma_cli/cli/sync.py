"""`moma push / fetch / pull`."""

from __future__ import annotations

from typing import Annotated

import typer

from moma_cli.cli import views
from moma_cli.cli.context import OPTIONS
from moma_cli.cli.options import Jobs, Json, RemoteName, Targets


def register(app: typer.Typer) -> None:
    app.command("push")(push)
    app.command("fetch")(fetch)
    app.command("pull")(pull)


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
    from moma_cli.services.repo import open_repo
    from moma_cli.services.revisions import Scope
    from moma_cli.services.sync import pushing

    repo = open_repo()
    scope = Scope(all_branches, all_tags, all_commits, tuple(revs or ()))
    with repo.lock(OPTIONS.wait):
        result = pushing.push(repo, targets, remote=remote, jobs=jobs, verify=verify,
                              scope=scope, progress=render.RichProgress())
    views.report_transfer(result, "pushed", json_out)


def fetch(targets: Targets = None, remote: RemoteName = None, jobs: Jobs = None,
          json_out: Json = False) -> None:
    """Download the data of the workspace pointers into the cache, without touching the
    workspace. Every object is verified against its hash.

    Example: moma fetch data/ -r storage
    """
    from moma_cli.cli import render
    from moma_cli.services.repo import open_repo
    from moma_cli.services.sync import fetching

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = fetching.fetch(repo, targets, remote=remote, jobs=jobs,
                                progress=render.RichProgress())
    views.report_transfer(result, "fetched", json_out)


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
    from moma_cli.services.repo import open_repo
    from moma_cli.services.sync import fetching

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = fetching.pull(repo, targets, remote=remote, jobs=jobs, force=force,
                               progress=render.RichProgress())
    checkout = result.checkout
    if json_out:
        render.print_json(views.transfer_json(result)
                          | {"checkout": vars(checkout) if checkout else None})
    else:
        views.render_transfer(result, "fetched")
        if checkout is not None:
            views.render_checkout(checkout)
    if not result.ok:
        raise typer.Exit(1)


