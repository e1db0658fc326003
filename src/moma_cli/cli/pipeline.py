"""`moma run / repro / dag / lineage`: pipelines and what produced what."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli.context import OPTIONS
from moma_cli.cli.options import Executor, Json

if TYPE_CHECKING:
    from moma_cli.services.pipeline.lineage_query import LineageResult
    from moma_cli.services.pipeline.reproducing import ReproResult
    from moma_cli.services.pipeline.running import StageOutcome



def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
    app.command("repro")(repro)
    app.command("dag")(dag)
    app.command("lineage")(lineage)


def run(
    name: Annotated[str, typer.Option("--name", "-n", help="Stage name.")],
    command: Annotated[list[str] | None, typer.Argument(
        help="The command, after '--' (not with --notebook).")] = None,
    notebook: Annotated[str | None, typer.Option(
        "--notebook", help="Run this Jupyter notebook with papermill instead of a command; "
        "its -p params override the 'parameters' cell, and the one -o ending in .ipynb "
        "receives the executed notebook.")] = None,
    deps: Annotated[list[str] | None, typer.Option(
        "--deps", "-d", help="A file or directory the command reads (repeat).")] = None,
    outs: Annotated[list[str] | None, typer.Option(
        "--outs", "-o", help="A file or directory it writes, cached like 'moma add' (repeat).")
    ] = None,
    params: Annotated[list[str] | None, typer.Option(
        "--params", "-p", help="Parameters it uses: params.yaml:key,key (repeat).")] = None,
    metrics: Annotated[list[str] | None, typer.Option(
        "--metrics", "-M", help="A JSON/YAML metrics file it writes, kept in git (repeat).")
    ] = None,
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Replace an existing stage of that name.")] = False,
    json_out: Json = False,
) -> None:
    """Record a pipeline stage in .moma.yaml, run it, cache its outputs, write moma.lock.

    \b
    Examples:
      moma run -n train -d data.csv -d train.py -p params.yaml:seed -o model.pkl -- python train.py
      moma run -n explore --notebook analysis.ipynb -p params.yaml:train -o report.ipynb
    """
    from moma_cli.core.params import parse_spec
    from moma_cli.core.stages import parse_stage, to_mapping
    from moma_cli.services.pipeline import running
    from moma_cli.services.repo import open_repo

    body = {"deps": deps or [], "outs": outs or [],
            "params": [str(parse_spec(p)) for p in params or []], "metrics": metrics or []}
    draft = parse_stage(name, body | _runs(notebook, command or [], outs or []))
    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        outcome = running.run(repo, draft, force=force)
    if json_out:
        from moma_cli.cli import render

        render.print_json(vars(outcome) | {"stage": to_mapping(draft)})
        return
    _render_repro_lines([outcome])


def _runs(notebook: str | None, command: list[str], outs: list[str]) -> dict[str, str]:
    """The stage's `cmd`, or its `notebook` and `output` (the one -o ending in .ipynb)."""
    import shlex

    from moma_cli.core.stages import PipelineError

    if notebook is None:
        if not command:
            raise PipelineError("moma run needs a command after '--', or --notebook",
                                hint="moma run -n NAME ... -- python train.py")
        return {"cmd": command[0] if len(command) == 1 else shlex.join(command)}
    if command:
        raise PipelineError(f"moma run --notebook {notebook} takes no command",
                            hint="drop the command after '--'; the notebook is what runs")
    executed = [o for o in outs if o.endswith(".ipynb")]
    if len(executed) != 1:
        raise PipelineError(f"moma run --notebook {notebook} needs exactly one -o ending in "
                            f".ipynb for the executed notebook (got {len(executed)})",
                            hint="e.g. -o report.ipynb")
    return {"notebook": notebook, "output": executed[0]}


def repro(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Stages to bring up to date, with what they depend on (default: all).")] = None,
    dry: Annotated[bool, typer.Option("--dry", help="Show what would run and why.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Re-run even if unchanged.")
                     ] = False,
    verify: Annotated[str | None, typer.Option(
        "--verify", metavar="STAGE",
        help="Re-run STAGE in a scratch copy and compare its outputs with moma.lock.")] = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1,
        help="Run up to N independent stages at once (default: 1; with a Dask executor, "
             "as many as its workers take).")] = None,
    executor: Executor = None,
    json_out: Json = False,
) -> None:
    """Re-run the stages whose dependencies, params or command changed (by hash).

    Unchanged stages with missing outputs get them back from the cache instead.

    \b
    Examples:
      moma repro --dry
      moma repro train
      moma repro -j 4
      moma repro --executor dask://scheduler:8786
      moma repro --verify train
    """
    from moma_cli.cli import render
    from moma_cli.services.pipeline import reproducing, verifying
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    if verify is not None:
        checked = verifying.verify(repo, verify)
        if json_out:
            render.print_json({"stage": checked.stage, "ok": checked.ok,
                               "outputs": [vars(o) for o in checked.outputs],
                               "env_changes": checked.env_changes})
        else:
            render.table(["Output", "Locked", "Re-run", "Match"],
                         [(o.path, o.expected[:12], (o.actual or "(missing)")[:12],
                           _verdict(o.match, o.rule)) for o in checked.outputs])
            for key, (then, now) in checked.env_changes.items():
                render.line(f"Environment differs from the lock: {key} {then} -> {now}")
            render.line(f"Stage {checked.stage}: " + ("reproducible." if checked.ok
                                                      else "outputs differ from moma.lock."))
        if not checked.ok:
            raise typer.Exit(1)
        return
    if dry:
        result = reproducing.repro(repo, targets, force=force, dry=True)
    else:
        with repo.lock(OPTIONS.wait):
            result = reproducing.repro(repo, targets, force=force, jobs=jobs,
                                       executor=executor)
    if json_out:
        render.print_json({"stages": [vars(s) for s in result.stages],
                           "failed": [vars(f) for f in result.failed],
                           "not_run": result.not_run})
    else:
        _render_repro(result)
    if result.failed:
        raise typer.Exit(1)


def _verdict(match: bool, rule: str) -> str:
    """`yes`, `NO`, or for an executed notebook `yes (notebook)`: equal once its run
    timings, ids and execution counts are left out (docs/pipelines.md)."""
    return ("yes" if match else "NO") + ("" if rule == "hash" else f" ({rule})")


def _render_repro(result: ReproResult) -> None:
    from moma_cli.cli import render

    if not result.stages and not result.failed:
        render.line("No stages in .moma.yaml; add one with 'moma run'.")
        return
    _render_repro_lines(result.stages)
    for failure in result.failed:
        render.error(failure.message, failure.hint, failure.stderr_tail)
    if result.not_run:
        render.warn(f"not run after the failure: {', '.join(result.not_run)}")
    if not result.failed and not result.ran \
            and all(s.action == "unchanged" for s in result.stages):
        render.line("Pipeline is up to date.")


def _render_repro_lines(outcomes: list[StageOutcome]) -> None:
    from moma_cli.cli import render

    labels = {"ran": "Ran", "would-run": "Would run", "restored": "Restored",
              "would-restore": "Would restore", "unchanged": "Unchanged"}
    for s in outcomes:
        detail = "; ".join(s.reasons) or ", ".join(s.restored)
        render.line(f"{labels[s.action]} stage {s.name}" + (f": {detail}" if detail else ""))


def dag(
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart.")
                       ] = False,
    json_out: Json = False,
) -> None:
    """Show the pipeline's stages and how their outputs feed each other.

    Example: moma dag --mermaid >> docs/pipeline.md
    """
    from moma_cli.cli import render
    from moma_cli.core.stages import mermaid as to_mermaid
    from moma_cli.services.pipeline import loading
    from moma_cli.services.repo import open_repo

    graph = loading.dag(open_repo())
    if json_out:
        render.print_json({"stages": graph.order, "edges": [vars(e) for e in graph.edges]})
    elif mermaid:
        render.line(to_mermaid(graph).rstrip("\n"))
    else:
        width = max((len(n) for n in graph.order), default=0)
        for name in graph.order:
            ups = [f"{e.upstream} ({e.path})" for e in graph.edges if e.downstream == name]
            render.line(f"{name:<{width}}  <- {', '.join(ups)}" if ups else name)


def lineage(
    target: Annotated[str, typer.Argument(help="A tracked path, or a model reference.")],
    json_out: Json = False,
) -> None:
    """Trace a result back to its inputs, stages, params, code commit and environment.

    Upstream data is listed with its hash and the commit that introduced it.

    Example: moma lineage model.pkl
    """
    from moma_cli.cli import render
    from moma_cli.services.pipeline import lineage_query
    from moma_cli.services.repo import open_repo

    result = lineage_query.lineage(open_repo(), target)
    if json_out:
        render.print_json(vars(result) | {"upstream": [vars(n) for n in result.upstream],
                                          "stages": [vars(s) for s in result.stages]})
    else:
        _render_lineage(result)


def _render_lineage(r: LineageResult) -> None:
    from moma_cli.cli import render

    render.block([("Path", r.path), ("Oid", r.oid), ("Commit", r.commit or "(uncommitted)")]
                 + ([("Model", r.model)] if r.model else []))
    for s in r.stages:
        render.line()
        render.block([("Stage", s.name), ("Command", s.cmd or "(recorded by moma add --from)"),
                      ("Code", s.code or "(no commit)"),
                      ("Params", ", ".join(f"{k}={v}" for k, v in s.params.items()) or "-"),
                      ("Environment", f"python {s.env.get('python')}, {s.env.get('platform')}, "
                                      f"packages {str(s.env.get('packages'))[:19]}")])
    if r.upstream:
        render.line()
        render.table(["Upstream", "Kind", "Oid", "Commit", "Produced by"],
                     [(n.path, n.kind, n.oid[:12], (n.commit or "(uncommitted)")[:10],
                       n.stage or "-") for n in r.upstream])
    if not r.stages:
        render.line("No lineage recorded (not a stage output, no 'moma add --from').")
