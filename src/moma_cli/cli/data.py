"""`moma init / add / status / checkout / remove / move`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

from moma_cli.cli import views
from moma_cli.cli.context import OPTIONS
from moma_cli.errors import ExitCode

if TYPE_CHECKING:
    import typer

    from moma_cli.cli.options import Jobs, Json, Reference, Target
    from moma_cli.services.data_status import StatusResult
    from moma_cli.services.sync.remote_status import RegistryGap


def register(app: typer.Typer) -> None:
    from moma_cli.cli.options import bind_annotations

    bind_annotations(globals())
    app.command("init")(init)
    app.command("add")(add)
    app.command("status")(status)
    app.command("checkout")(checkout)
    app.command("remove")(remove)
    app.command("move")(move)


def init(
    no_stage: Annotated[bool, typer.Option(
        "--no-stage", help="Do not 'git add' the files init creates.")] = False,
) -> None:
    """Make the current git work tree a moma repository.

    Creates .moma.yaml (committed) and the git-ignored .moma/ directory.

    Example: git init && moma init
    """
    from moma_cli.cli import render
    from moma_cli.services import repo

    result = repo.init(stage=not no_stage)
    render.line(f"Initialized moma repository in {result.root}")
    if result.created:
        render.line(f"Created: {', '.join(result.created)}")


def add(
    targets: Annotated[list[str], typer.Argument(help="Files or directories to track.")],
    no_stage: Annotated[bool, typer.Option(
        "--no-stage", help="Do not 'git add' pointers and .gitignore.")] = False,
    froms: Annotated[list[str] | None, typer.Option(
        "--from", help="Record an input it was made from (data or code; repeat) as lineage.")
    ] = None,
    params: Annotated[list[str] | None, typer.Option(
        "--params", "-p", help="Record parameters: params.yaml or params.yaml:key,key.")
    ] = None,
    jobs: Jobs = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Also register the file as this model (see 'moma models:add').")] = None,
    reference: Reference = None,
    target: Target = None,
    json_out: Json = False,
) -> None:
    """Track files or directories: hash them into the cache and write PATH.moma pointers.

    The data itself is git-ignored; commit the pointer. Re-adding unchanged data is a no-op.
    --from/-p record lineage (input hashes, code commit, params, environment) in the pointer.

    \b
    Examples:
      moma add model.pkl data/
      moma add model.pkl --from data/train.csv --from train.py -p params.yaml
      moma add model.joblib --model credit-risk
      moma add model.joblib --model credit-risk --from data/train.csv --target default
      git commit -m "Train on August data"
    """
    from moma_cli.cli import render
    from moma_cli.services import lineage
    from moma_cli.services.registry import registering
    from moma_cli.services.repo import open_repo

    if model is not None and (len(targets) != 1 or no_stage):
        raise typer.BadParameter("--model registers exactly one file and stages it")
    if model is None and (reference is not None or target is not None):
        raise typer.BadParameter("--reference and --target describe a model: add --model NAME")
    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        if model is not None:
            version = registering.add_file(repo, model, targets[0], froms=froms or (),
                                           params_files=params or (), reference=reference,
                                           labels=target)
        else:
            result = lineage.add_traced(repo, targets, froms or (), params or (),
                                        stage=not no_stage, jobs=jobs,
                                        progress=render.RichProgress())
    if model is not None:
        views.print_version(version, json_out, views.registered(version))
        return
    if json_out:
        render.print_json({"added": [vars(i) for i in result.items], "staged": result.staged})
        return
    for item in result.items:
        what = f"{item.nfiles} files, " if item.kind == "dir" else ""
        verb = "Added" if item.changed else "Unchanged"
        render.line(f"{verb} {item.path} ({what}{render.human_size(item.size)}) "
                    f"{item.oid[:8]}")
        for path in item.skipped:
            render.warn(f"skipped {path}: git's and moma's own files are never tracked")
    if result.staged:
        render.line("Pointers staged in git; commit them with 'git commit'.")


def status(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Limit to these tracked paths.")] = None,
    jobs: Jobs = None,
    remote: Annotated[str | None, typer.Option(
        "--remote", "-r", metavar="NAME",
        help="Also report data this remote lacks (not-pushed).")] = None,
    cloud: Annotated[bool, typer.Option(
        "--cloud", "-c", help="Also report data the default remote lacks (not-pushed), as "
                              "'dvc status -c'.")] = False,
    json_out: Json = False,
) -> None:
    """Show tracked data that differs from its pointer, or is missing from the cache.

    Exit code 1 when anything is not up to date, so scripts can test it.

    \b
    Examples:
      moma status --json
      moma status -c
      moma status -r backup
    """
    from moma_cli.cli import render
    from moma_cli.services import data_status
    from moma_cli.services.repo import open_repo

    result: StatusResult
    gaps: list[RegistryGap] | None = None  # with a remote: stages whose data it lacks
    repo = open_repo()
    if remote is not None and remote not in repo.config.remotes and (
            os.path.lexists(remote) or os.path.lexists(remote + ".moma")):
        # `status --remote data.csv`, the flag of before -r/--remote NAME: for one release
        render.warn(f"'--remote {remote}' is read as a path this once; '--remote' takes a "
                    f"remote name now (deprecated): use 'moma status -c {remote}'")
        targets, remote, cloud = [remote, *(targets or [])], None, True
    if remote or cloud:
        from moma_cli.services.sync import remote_status

        result = remote_status.status(repo, targets, remote=remote, jobs=jobs)
        gaps = result.registry
    else:
        result = data_status.status(repo, targets, jobs=jobs)
    if json_out:
        render.print_json({"clean": result.clean, "entries": [vars(e) for e in result.entries]}
                          | ({} if gaps is None else {"registry": [vars(g) for g in gaps]}))
    elif result.clean:
        render.line("Data and pointers are up to date.")
    else:
        for entry in result.entries:
            if entry.state in ("ok", "invalid"):
                continue
            render.line(f"{entry.state + ':':<14}{entry.path}"
                        + (f"  ({entry.message})" if entry.message else ""))
            for change, rel in entry.changes[:50]:
                render.line(f"    {change}: {rel}")
            if len(entry.changes) > 50:
                render.line(f"    ... and {len(entry.changes) - 50} more")
        # an error, not a state of the data: said on stderr
        views.render_invalid([e.message or f"{e.path}: invalid" for e in result.entries
                              if e.state == "invalid"])
        for gap in gaps or []:
            render.warn(f"{gap.ref} (v{gap.version}) points at data remote '{gap.remote}' "
                        f"lacks ({gap.lacking} object(s) of {gap.path}); run 'moma push'")
    if not result.clean:
        raise SystemExit(ExitCode.FAILURE)


def checkout(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Limit to these tracked paths.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Overwrite data that is modified and not in the cache.")] = False,
    json_out: Json = False,
) -> None:
    """Make the workspace match the pointers, e.g. after 'git checkout'.

    Modified data that is not in the cache is never overwritten without --force.

    Example: git checkout v1 && moma checkout
    """
    from moma_cli.cli import render
    from moma_cli.services import data_checkout
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = data_checkout.checkout(repo, targets, force=force, progress=render.RichProgress())
    if json_out:
        render.print_json(vars(result) | {"ok": result.ok})
    else:
        views.render_checkout(result)
    if not result.ok:
        raise SystemExit(ExitCode.FAILURE)




def remove(
    targets: Annotated[list[str], typer.Argument(
        help="Tracked paths: the data or its .moma pointer.")],
    keep_data: Annotated[bool, typer.Option(
        "--keep-data/--delete-data",
        help="Keep the data in the workspace (the default), or delete it: only done when "
             "every byte of it is in the cache.")] = True,
    json_out: Json = False,
) -> None:
    """Stop tracking data: delete its pointer and moma's line in .gitignore, and stage both.

    The data stays in the workspace, now visible to git, unless --delete-data. A registered
    model's pointer leaves the registry with the commit; its stage and version tags stay
    in git. Nothing changes unless every path is tracked.

    \b
    Examples:
      moma remove data/raw.csv
      moma remove model.pkl.moma --delete-data
      git commit -m "Stop tracking the raw data"
    """
    from moma_cli.cli import render
    from moma_cli.services import data_remove
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = data_remove.remove(repo, targets, delete_data=not keep_data)
    if json_out:
        render.print_json({"removed": [vars(i) for i in result.items], "staged": result.staged})
        return
    for item in result.items:
        data = {"kept": "data kept in the workspace", "absent": "no data in the workspace",
                "deleted": "data deleted; it stays in the cache until 'moma gc'"}[item.data]
        render.line(f"Removed {item.pointer} ({data})")
        for path in item.left:
            render.warn(f"kept {path}: moma never deletes files it does not track")
        if item.model is not None:
            render.line(f"Model '{item.model}' leaves the registry with this commit; its stage "
                        "and version tags stay in git ('git tag -l' lists them)")
    render.line("Changes staged in git; commit them with 'git commit'.")


def move(
    src: Annotated[str, typer.Argument(help="Tracked data (or its .moma pointer) to move.")],
    dst: Annotated[str, typer.Argument(
        help="Its new path, or an existing directory to move it into.")],
    json_out: Json = False,
) -> None:
    """Move tracked data and its pointer together, and stage the change.

    The pointer keeps its other sections (model, lineage, meta); the .gitignore lines
    follow the data. Nothing is ever overwritten, and the data stays inside the repository.

    \b
    Examples:
      moma move data/raw.csv data/archive/
      moma move model.pkl models/credit-risk.pkl
      git commit -m "Move the model"
    """
    from moma_cli.cli import render
    from moma_cli.services import data_move
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = data_move.move(repo, src, dst)
    if json_out:
        render.print_json(vars(result))
        return
    render.line(f"Moved {result.src} -> {result.dst}"
                + ("" if result.moved_data else " (the pointer only: no data in the workspace)"))
    render.line("Changes staged in git; commit them with 'git commit'.")
