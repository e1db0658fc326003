"""`moma diff`, `moma params diff`, `moma metrics show / diff`: tracked data, parameters and
metrics compared between two revisions (or a revision and the workspace)."""

from __future__ import annotations

from typing import Annotated

import typer

from moma_cli.cli.options import Json

RevA = Annotated[str | None, typer.Argument(
    help="Old git revision (default: HEAD).")]
RevB = Annotated[str | None, typer.Argument(
    help="New git revision (default: the workspace).")]

params_app = typer.Typer(help="Compare parameters between revisions.", no_args_is_help=True)
metrics_app = typer.Typer(help="Show and compare metrics.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
    params_app.command("diff")(params_diff)
    metrics_app.command("show")(metrics_show)
    metrics_app.command("diff")(metrics_diff)
    app.add_typer(params_app, name="params")
    app.add_typer(metrics_app, name="metrics")


def diff(a: RevA = None, b: RevB = None, json_out: Json = False) -> None:
    """Show tracked data added, modified or deleted between revisions (or the workspace).

    Files inside tracked directories are listed one by one, with their sizes.

    \b
    Examples:
      moma diff              # HEAD vs the workspace
      moma diff v1 v2 --json
    """
    from moma_cli.cli import render
    from moma_cli.services import diff as diff_mod
    from moma_cli.services.repo import open_repo

    result = diff_mod.diff(open_repo(), a, b)
    if json_out:
        render.print_json({"a": result.a, "b": result.b, "unlisted": result.unlisted,
                           "entries": [vars(e) for e in result.entries]})
        return

    def size(n: int | None) -> str:
        return "-" if n is None else render.human_size(n)

    if result.entries:
        render.table(["Change", "Path", "Old size", "New size"],
                     [(e.change, e.path, size(e.old_size), size(e.new_size))
                      for e in result.entries])
    else:
        render.line(f"No changes to tracked data between {result.a} and {result.b}.")
    for path in result.unlisted:
        render.warn(f"{path}: directory listing not in the cache; run 'moma fetch' for details")


def params_diff(a: RevA = None, b: RevB = None,
                all_keys: Annotated[bool, typer.Option("--all", help="Show unchanged too.")
                                    ] = False,
                json_out: Json = False) -> None:
    """Parameters that differ between two revisions (default: HEAD and the workspace).

    Example: moma params diff HEAD~1 HEAD
    """
    from moma_cli.cli import render
    from moma_cli.services import params
    from moma_cli.services.repo import open_repo

    rows = params.diff(open_repo(), a, b, all_keys=all_keys)
    if json_out:
        render.print_json([vars(r) for r in rows])
    elif rows:
        render.table(["File", "Param", "Old", "New"], [(r.file, r.key, r.old, r.new)
                                                      for r in rows])
    else:
        render.line("No parameter changes.")


def metrics_show(
    rev: Annotated[str | None, typer.Argument(
        help="Git revision (default: the workspace).")] = None,
    json_out: Json = False,
) -> None:
    """The values in the pipeline's metrics files.

    Example: moma metrics show HEAD~3
    """
    from moma_cli.cli import render
    from moma_cli.services import metrics
    from moma_cli.services.repo import open_repo

    rows = metrics.show(open_repo(), rev)
    if json_out:
        render.print_json([vars(r) for r in rows])
    elif rows:
        render.table(["File", "Metric", "Value"], [(r.file, r.key, r.value) for r in rows])
    else:
        render.line("No metrics (add a stage with 'moma run -M metrics.json ...').")


def metrics_diff(a: RevA = None, b: RevB = None,
                 all_keys: Annotated[bool, typer.Option("--all", help="Show unchanged too.")
                                     ] = False,
                 json_out: Json = False) -> None:
    """Metrics that differ between two revisions (default: HEAD and the workspace).

    Example: moma metrics diff main experiment
    """
    from moma_cli.cli import render
    from moma_cli.services import metrics
    from moma_cli.services.repo import open_repo

    rows = metrics.diff(open_repo(), a, b, all_keys=all_keys)
    if json_out:
        render.print_json([vars(r) | {"change": metrics.delta(r)} for r in rows])
    elif rows:
        render.table(["File", "Metric", "Old", "New", "Change"],
                     [(r.file, r.key, r.old, r.new, _signed(metrics.delta(r))) for r in rows])
    else:
        render.line("No metric changes.")


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4g}"
