"""`moma exp run / show / diff / apply / branch / remove / push / pull`: experiments
without a commit per run (`moma exp queue ...` is in exp_queue.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from moma_cli.cli import exp_queue, views
from moma_cli.cli.context import OPTIONS
from moma_cli.cli.options import Jobs, Json, RemoteName

if TYPE_CHECKING:
    from moma_cli.services.experiments.records import Experiment
    from moma_cli.services.experiments.sharing import ShareResult

exp_app = typer.Typer(help="Run, compare and keep experiments (no commit per run).",
                      no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Experiment name (see 'moma exp show').")]
GitRemote = Annotated[str, typer.Argument(help="The git remote, e.g. origin.")]
Names = Annotated[list[str] | None, typer.Argument(help="Experiments (default: all).")]


def register(app: typer.Typer) -> None:
    exp_app.command("run")(run)
    exp_app.command("show")(show)
    exp_app.command("diff")(diff)
    exp_app.command("apply")(apply)
    exp_app.command("branch")(branch)
    exp_app.command("remove")(remove)
    exp_app.command("push")(push)
    exp_app.command("pull")(pull)
    exp_queue.register(exp_app)
    app.add_typer(exp_app, name="exp")


def run(
    sets: Annotated[list[str] | None, typer.Option(
        "--set-param", "-S",
        help="[FILE:]KEY=VALUE to set (default file params.yaml); VALUE,VALUE sweeps (repeat).")
    ] = None,
    name: Annotated[str | None, typer.Option(
        "--name", "-n", help="Experiment name (a sweep adds -1, -2...; default: exp-<hex>).")
    ] = None,
    queue: Annotated[bool, typer.Option(
        "--queue", help="Only queue the runs, for 'moma exp queue start'.")] = False,
    json_out: Json = False,
) -> None:
    """Run the pipeline with changed params in a temporary work tree; record it on a hidden ref.

    The work tree, index and HEAD stay as they are. Several values span a grid, run one
    after another (or, with --queue, later and N at once by 'moma exp queue start').

    \b
    Examples:
      moma exp run -S train.lr=0.01 -n low-lr
      moma exp run -S train.lr=0.01,0.1 -S params.yaml:train.depth=2,3
      moma exp run -S train.lr=0.01,0.1,1 --queue && moma exp queue start -j 2
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import running
    from moma_cli.services.repo import open_repo

    if queue:
        from moma_cli.services.experiments import queue as queue_mod

        added = queue_mod.add(open_repo(), sets or [], name)
        if json_out:
            render.print_json([vars(e) for e in added])
        for entry in [] if json_out else added:
            render.line(f"Queued experiment {entry.name}"
                        + (f": {views.key_values(entry.params)}" if entry.params else ""))
        return

    def started(exp_name: str, params: dict[str, Any]) -> None:
        if not json_out:
            render.line(f"Running experiment {exp_name}" + (f": {views.key_values(params)}"
                                                            if params else ""))

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = running.run(repo, sets or [], name, on_start=started,
                             on_done=None if json_out else views.render_exp_run)
    if json_out:
        render.print_json({"base": result.base, "runs": [vars(r) for r in result.runs]})
    if not result.ok:
        raise typer.Exit(1)


def show(
    json_out: Json = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """List the experiments with the params they set and the metrics they measured.

    Example: moma exp show --csv > experiments.csv
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import records
    from moma_cli.services.repo import open_repo

    found = records.show(open_repo())
    if json_out:
        render.print_json([vars(e) for e in found])
        return
    params = sorted({k for e in found for k in e.params})
    metrics = sorted({k for e in found for k in e.metrics})
    rows = [_row(e, params, metrics) for e in found]
    if csv_out:
        import csv
        import sys

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerows([["Experiment", "Base", "Created", *params, *metrics], *rows])
    elif found:
        for row in rows:
            row[2] = str(row[2])[:16].replace("T", " ")
        render.table(["Experiment", "Base", "Created", *_headers(params + metrics)], rows)
    else:
        render.line("No experiments; run one with 'moma exp run -S KEY=VALUE'.")


def _row(e: Experiment, params: list[str], metrics: list[str]) -> list[Any]:
    return [e.name, e.base[:10], e.created, *(e.params.get(k) for k in params),
            *(e.metrics.get(k) for k in metrics)]


def _headers(keys: list[str]) -> list[str]:
    """`train.lr` for `params.yaml:train.lr`, unless another file has a key of that name."""
    short = [key.partition(":")[2] or key for key in keys]
    return [s if short.count(s) == 1 else key for s, key in zip(short, keys, strict=True)]


def diff(
    name_a: Annotated[str, typer.Argument(metavar="A", help="An experiment.")],
    name_b: Annotated[str, typer.Argument(metavar="B", help="Another experiment.")],
    all_rows: Annotated[bool, typer.Option("--all", help="Show unchanged values too.")] = False,
    json_out: Json = False,
) -> None:
    """Compare two experiments: the params they set and the metrics they measured.

    Example: moma exp diff lr-1 lr-2
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import records
    from moma_cli.services.repo import open_repo

    a, b, rows = records.diff(open_repo(), name_a, name_b)
    if json_out:
        render.print_json({"a": a.name, "b": b.name,
                           "rows": [vars(r) | {"changed": r.changed} for r in rows]})
        return
    shown = [r for r in rows if all_rows or r.changed]
    if not shown:
        render.line(f"No differences between {a.name} and {b.name}.")
        return
    render.table(["", "Key", a.name, b.name, "Change"],
                 [(r.kind, r.key, "-" if r.a is None else r.a, "-" if r.b is None else r.b,
                   _change(r.a, r.b)) for r in shown])


def _change(a: object, b: object) -> str:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return f"{b - a:+g}"
    return "" if a == b else "changed"


def apply(name: Name, json_out: Json = False) -> None:
    """Bring an experiment's params, lock, metrics and outputs into the work tree.

    Refused over unsaved changes to tracked files. Commit the result as usual.

    Example: moma exp apply low-lr && git commit -am "lower learning rate"
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import records
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = records.apply(repo, name)
    if json_out:
        render.print_json(vars(result))
        return
    render.line(f"Applied experiment {result.name}: {len(result.files)} files, "
                f"{len(result.restored)} outputs checked out.")


def branch(
    name: Name,
    branch_name: Annotated[str, typer.Argument(metavar="BRANCH", help="New branch name.")],
) -> None:
    """Create a git branch at an experiment's commit.

    Example: moma exp branch low-lr exp/low-lr
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import records
    from moma_cli.services.repo import open_repo

    exp = records.branch(open_repo(), name, branch_name)
    render.line(f"Branch {branch_name} at experiment {exp.name} ({exp.commit[:10]}).")


def remove(
    names: Annotated[list[str], typer.Argument(help="Experiments to delete.")],
) -> None:
    """Delete experiments (their refs; cached outputs go with 'moma gc').

    Example: moma exp remove exp-1a2b3c low-lr
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import records
    from moma_cli.services.repo import open_repo

    for exp in records.remove(open_repo(), names):
        render.line(f"Removed experiment {exp.name}.")


def push(git_remote: GitRemote, names: Names = None, remote: RemoteName = None,
         jobs: Jobs = None, json_out: Json = False) -> None:
    """Send experiments: their outputs to the moma remote, then their refs to the git remote.

    Example: moma exp push origin low-lr
    """
    from moma_cli.services.experiments import sharing
    from moma_cli.services.repo import open_repo

    _report(sharing.push(open_repo(), git_remote, names or [], remote, jobs), "pushed",
            json_out)


def pull(git_remote: GitRemote, names: Names = None, remote: RemoteName = None,
         jobs: Jobs = None, json_out: Json = False) -> None:
    """Get experiments: their refs from the git remote, then their outputs into the cache.

    Example: moma exp pull origin && moma exp show
    """
    from moma_cli.services.experiments import sharing
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = sharing.pull(repo, git_remote, names or [], remote, jobs)
    _report(result, "fetched", json_out)


def _report(result: ShareResult, verb: str, json_out: bool) -> None:

    if json_out:
        from moma_cli.cli import render

        render.print_json({"git_remote": result.git_remote, "experiments": result.names,
                           **views.transfer_json(result.transfer)})
        if not result.ok:
            raise typer.Exit(1)
        return
    lead = (f"{len(result.names)} experiments {verb} ({result.git_remote})" if result.names
            else "No experiment refs sent")
    views.render_transfer(result.transfer, verb, lead)
    if not result.ok:
        raise typer.Exit(1)
