"""`moma gc`: reclaim cache space, with a quarantine that `--undo` restores."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli.context import OPTIONS
from moma_cli.errors import GcError

if TYPE_CHECKING:
    from moma_cli.services.gc import GcPlan
    from moma_cli.services.repo import Repo


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)


def gc(
    batch: Annotated[str | None, typer.Argument(
        metavar="[ID]", help="With --undo: the quarantine batch to restore.")] = None,
    workspace: Annotated[bool, typer.Option(
        "--workspace", help="Keep objects the work tree's pointers use "
                            "(kept with any scope).")] = False,
    all_branches: Annotated[bool, typer.Option(
        "--all-branches", help="Keep objects used at the tip of every branch.")] = False,
    all_tags: Annotated[bool, typer.Option(
        "--all-tags", help="Keep objects used by every tag.")] = False,
    all_commits: Annotated[bool, typer.Option(
        "--all-commits", help="Keep objects used by any commit of any ref.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Remove without asking.")] = False,
    undo: Annotated[bool, typer.Option(
        "--undo", help="Put the most recent gc batch (or batch ID) back into the cache.")] = False,
    purge_quarantine: Annotated[bool, typer.Option(
        "--purge-quarantine", help="Delete what earlier gc runs quarantined, for good.")] = False,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", metavar="NAME",
        help="Delete the remote's unused objects instead of the cache's (no undo: "
             "lists only, unless --force).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Remove cache objects that no pointer in the chosen scope uses.

    Always kept as well: the work tree, the git index (staged pointers), every stash entry,
    commits not yet pushed to a git remote, and the files of their directories. Removed
    objects go to .moma/cache/quarantine/gc/ID for 14 days; 'moma gc --undo' restores them.
    Without --force, lists what it would remove and asks (on a terminal) or stops.
    With --remote NAME, deletes from that remote instead: there is no quarantine on a
    remote, so without --force it only lists.

    \b
    Examples:
      moma gc --workspace
      moma gc --all-branches --all-tags --force
      moma gc --undo
      moma gc --all-commits --remote storage --force
    """
    from moma_cli.services.repo import open_repo

    if batch and not undo:
        raise GcError(f"unexpected argument {batch!r}", hint="a batch ID goes with --undo")
    if remote and (undo or purge_quarantine):
        raise GcError("--undo and --purge-quarantine work on the cache's quarantine only",
                      hint="a remote has no quarantine: drop --remote")
    scope = {"workspace": workspace, "all_branches": all_branches,
             "all_tags": all_tags, "all_commits": all_commits}
    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        if undo:
            _undo(repo, batch, json_out)
        elif purge_quarantine:
            _purge(repo, json_out)
        elif remote:
            _remote_gc(repo, remote, scope, force, json_out)
        else:
            _cache_gc(repo, scope, force, json_out)


def _undo(repo: Repo, batch: str | None, json_out: bool) -> None:
    from moma_cli.services import gc as gc_service

    restored = gc_service.undo(repo, batch)
    _report(json_out, vars(restored),
            f"Restored {restored.restored} objects from gc batch {restored.batch}")


def _purge(repo: Repo, json_out: bool) -> None:
    from moma_cli.services import gc as gc_service

    purged = gc_service.purge_quarantine(repo)
    _report(json_out, {"purged": purged}, f"Purged {len(purged)} gc quarantine batches")


def _cache_gc(repo: Repo, scope: dict[str, bool], force: bool, json_out: bool) -> None:
    """Plan, ask (unless --force), then quarantine: the one mode with a question between
    two service calls, as `git clean -i` has."""
    from moma_cli.cli import render
    from moma_cli.services import gc as gc_service

    plan = gc_service.plan(repo, **scope)
    if not (force or _confirmed(plan, json_out)):
        return
    result = gc_service.collect(repo, plan)
    _report(json_out, vars(result) | {"kept": plan.kept},
            f"Removed {result.removed} objects ({render.human_size(result.size)}), "
            f"kept {plan.kept}")
    if result.batch and not json_out:
        render.line(f"Quarantined as batch {result.batch}; undo with 'moma gc --undo'")


def _remote_gc(repo: Repo, remote: str, scope: dict[str, bool], force: bool,
               json_out: bool) -> None:
    from moma_cli.cli import render
    from moma_cli.services import remoteops

    plan = remoteops.gc_plan(repo, remote, **scope)
    where = f"remote '{plan.remote}'"
    if not force:
        _report(json_out, {"remote": plan.remote, "would_remove": len(plan.remove),
                           "size": plan.size, "kept": plan.kept, "oids": sorted(plan.remove)},
                f"Would delete {len(plan.remove)} objects "
                f"({render.human_size(plan.size)}) from {where}, keep {plan.kept}")
        if plan.remove:
            render.warn("nothing deleted: a remote has no gc quarantine, so this cannot be "
                        "undone; pass --force to delete them")
        return
    result = remoteops.gc_collect(repo, plan)
    _report(json_out, {"remote": plan.remote, "removed": result.removed, "size": result.size,
                       "kept": plan.kept},
            f"Deleted {result.removed} objects ({render.human_size(result.size)}) from "
            f"{where} for good (no undo on a remote), kept {plan.kept}")


def _report(json_out: bool, data: dict[str, object], text: str) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json(data)
    else:
        render.line(text)


def _confirmed(plan: GcPlan, json_out: bool) -> bool:
    """Show the plan; True only when a user at a terminal says yes."""
    from moma_cli.cli import render

    if json_out:
        render.print_json({"would_remove": len(plan.remove), "size": plan.size,
                           "kept": plan.kept, "oids": sorted(plan.remove),
                           "unknown_manifests": plan.unknown_manifests})
    else:
        render.line(f"Would remove {len(plan.remove)} objects "
                    f"({render.human_size(plan.size)}), keep {plan.kept} "
                    f"(pointers read from the work tree, the index and {plan.commits} commits)")
    for oid in plan.unknown_manifests:
        render.warn(f"directory manifest {oid[:8]} is not in the cache; files only it lists "
                    "cannot be recognised")
    if not plan.remove:
        return False
    if json_out or not sys.stdin.isatty():
        render.warn("nothing removed: pass --force to remove them")
        return False
    return bool(typer.confirm("Move them to the gc quarantine?", default=False))
