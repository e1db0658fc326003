"""`moma models:add/list/log/show/diff/get`: registering and reading model versions (the
tags that move them through their lifecycle: cli/lifecycle.py). JSON schemas:
docs/registry.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli import views
from moma_cli.cli.context import OPTIONS, here_locked
from moma_cli.cli.options import Json, Ref, Reference, Rev, SourceRepo, Target, key_values

if TYPE_CHECKING:
    from moma_cli.services.registry.comparing import DiffResult
    from moma_cli.services.registry.model_version import ModelVersion
    from moma_cli.services.registry.resolving import ModelList


def register(app: typer.Typer) -> None:
    for name, fn in (("add", add), ("list", list_), ("log", log), ("show", show),
                     ("diff", diff), ("get", get)):
        app.command(f"models:{name}")(fn)


def add(
    name: Annotated[str, typer.Argument(help="Model name, e.g. credit-risk.")],
    path: Annotated[str, typer.Argument(help="The model file to track.")],
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", help="A metric as key=value; repeatable.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="A parameter as key=value; repeatable.")] = None,
    metrics_file: Annotated[str | None, typer.Option(
        "--metrics-file", help="A JSON object of metrics, e.g. metrics.json.")] = None,
    description: Annotated[str | None, typer.Option(
        "--description", "-d", help="A one-line description of the model.")] = None,
    froms: Annotated[list[str] | None, typer.Option(
        "--from", help="Record an input it was made from (data or code; repeat) as lineage.")
    ] = None,
    params_files: Annotated[list[str] | None, typer.Option(
        "--params", "-p", help="Record parameters as lineage: params.yaml or params.yaml:key,key.")
    ] = None,
    reference: Reference = None,
    target: Target = None,
    json_out: Json = False,
) -> None:
    """Register a model file: track it like 'moma add' and record its metadata.

    Commit the pointer to make the version; each commit that changes the file's content
    is the next version. --from/-p record lineage (input hashes, code commit, params,
    environment), for models trained outside 'moma run'.

    \b
    Examples:
      moma models:add credit-risk model.joblib --metric accuracy=0.85 --param max_depth=4
      moma models:add credit-risk model.joblib --from data/train.moma --from train.py -p params.yaml
      moma models:add credit-risk model.joblib --reference train.csv --target default
    """
    from moma_cli.services.registry import registering
    from moma_cli.services.repo import open_repo

    metrics = key_values(metric, "--metric") if metric else None
    params = key_values(param, "--param") if param else None
    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        version = registering.add_file(repo, name, path, metrics_file=metrics_file,
                                       metrics=metrics, params=params, froms=froms or (),
                                       params_files=params_files or (),
                                       description=description, reference=reference,
                                       labels=target)
    views.print_version(version, json_out, views.registered(version))


def list_(
    rev: Rev = None,
    all_models: Annotated[bool, typer.Option(
        "--all", help="Include models deprecated with GTO (tag NAME@deprecated).")] = False,
    source: SourceRepo = None,
    json_out: Json = False,
) -> None:
    """List models with their latest version and the version in each stage, as 'gto show'.

    \b
    Examples:
      moma models:list --json
      moma models:list --repo https://github.com/acme/registry --rev v2
    """
    from moma_cli.cli import render
    from moma_cli.services.registry import resolving
    from moma_cli.services.repo import open_repo

    if source is not None:
        # only here: the clone machinery costs ~0.1 s of imports (docs/performance.md)
        from moma_cli.services.crossrepo import registry

        with here_locked() as here:
            listing = registry.list_models(here, source, rev=rev, deprecated=all_models)
    else:
        listing = resolving.list_models(open_repo(), rev=rev, deprecated=all_models)
    found = listing.models
    if json_out:
        render.print_json({"models": [_listed(v, listing) for v in found]})
    elif found:
        render.table(("Name", "Latest", *(f"#{s}" for s in listing.stage_names), "Date", "Path"),
                     [(v.name, v.label, *(_holder(listing, v.name, s) for s in listing.stage_names),
                       _day(v.date), v.pointer.path) for v in found])
    elif listing.hidden:
        render.line(f"No models but {len(listing.hidden)} deprecated; see them with --all.")
    elif not listing.broken:
        render.line("No models yet; register one with 'moma models:add NAME PATH'.")
    for exc in listing.broken:  # a pointer that may be a model: the listing is incomplete
        render.error(exc.message, exc.hint)
    if listing.broken:
        raise typer.Exit(1)


def _listed(v: ModelVersion, listing: ModelList) -> dict[str, object]:
    """The latest version's object, with the model's `latest` number and `stage` map (GTO's
    key: `stages` already lists the stages the latest version itself holds)."""
    return v.to_json() | {"latest": v.number or None, "stage": {
        stage: held.version for stage, held in listing.stages[v.name].items()}}


def _holder(listing: ModelList, name: str, stage: str) -> str:
    held = listing.stages[name].get(stage)
    return held.label if held is not None else ""


def log(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    rev: Rev = None,
    max_count: Annotated[int | None, typer.Option(
        "--max-count", "-n", min=1, metavar="N", help="Only the N newest versions.")] = None,
    json_out: Json = False,
) -> None:
    """Show model versions, newest first, with their commit messages.

    \b
    Examples:
      moma models:log credit-risk
      moma models:log -n 20
    """
    from moma_cli.cli import render
    from moma_cli.services.registry import resolving
    from moma_cli.services.repo import open_repo

    versions = resolving.log(open_repo(), name, rev=rev, limit=max_count)
    if json_out:
        render.print_json({"versions": [v.to_json() for v in versions]})
        return
    render.blocks(([("Model-ID", v.model_id), ("Model-Name", v.name),
                    ("Model-Version", v.label[1:]), ("Date", _git_date(v.date))],
                   v.message or "(uncommitted)") for v in versions)


def show(ref: Ref, rev: Rev = None, source: SourceRepo = None, json_out: Json = False) -> None:
    """Show one model version: id, date, encoding, algorithm, metrics and parameters.

    Metadata is read from the pointer; the model file is never loaded.

    \b
    Examples:
      moma models:show credit-risk:production
      moma models:show credit-risk:production --repo ../registry --json
    """
    from moma_cli.services.registry import resolving
    from moma_cli.services.repo import open_repo

    if source is not None:
        from moma_cli.services.crossrepo import registry  # ~0.1 s of imports: only here

        with here_locked() as here:
            version = registry.resolve(here, source, ref, rev=rev)
    else:
        version = resolving.resolve(open_repo(), ref, rev=rev)
    views.print_version(version, json_out)


def diff(
    ref_a: Annotated[str, typer.Argument(help="First model reference, e.g. credit-risk:3.")],
    ref_b: Annotated[str, typer.Argument(help="Second model reference, e.g. credit-risk:4.")],
    all_rows: Annotated[bool, typer.Option("--all", help="Also show unchanged values.")] = False,
    json_out: Json = False,
) -> None:
    """Compare two model versions: parameters, metrics and lineage, with deltas.

    Example: moma models:diff credit-risk:production credit-risk
    """
    from moma_cli.services.registry import comparing
    from moma_cli.services.repo import open_repo

    _print_diff(comparing.diff(open_repo(), ref_a, ref_b), all_rows, json_out)


_MARKS = {"changed": "~", "added": "+", "removed": "-", "same": " "}


def _print_diff(result: DiffResult, all_rows: bool, json_out: bool) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json({"a": result.a.to_json(), "b": result.b.to_json(),
                           "rows": [vars(r) for r in result.rows]})
        return
    rows = [r for r in result.rows if all_rows or r.change != "same"]
    title = f"{result.a.name} {result.a.label}  ->  {result.b.name} {result.b.label}"
    render.table(("", "Section", "Key", "A", "B", "Delta"),
                 [(_MARKS[r.change], r.section, r.key, r.a, r.b,
                   "" if r.delta is None else f"{r.delta:+g}") for r in rows], title=title)
    if not rows:
        render.line("No differences.")


def get(
    ref: Ref,
    output: Annotated[str, typer.Option("--output", "-o",
                                        help="File (or directory) to write the model to.")],
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Overwrite a file there that is modified and not in the cache.")
    ] = False,
    rev: Rev = None,
    source: SourceRepo = None,
    json_out: Json = False,
) -> None:
    """Write a model version's file, without touching git. A file already there whose bytes
    are not in the cache (unsaved work) is never overwritten without --force. With --repo,
    the bytes come from that repository's default remote, verified.

    \b
    Examples:
      moma models:get credit-risk:production -o /srv/model.joblib
      moma models:get credit-risk:production -o model.joblib --repo git@github.com:acme/registry
    """
    from moma_cli.cli import render
    from moma_cli.services.crossrepo import registry
    from moma_cli.services.registry import model_files
    from moma_cli.services.repo import open_repo

    if source is not None:
        with here_locked() as here:
            result = registry.get(here, source, ref, output, rev=rev, force=force)
    else:
        result = model_files.get(open_repo(), ref, output, rev=rev, force=force)
    if json_out:
        render.print_json({"path": str(result.path), "fetched": result.fetched,
                           "replaced": result.replaced, "version": result.version.to_json()})
        return
    if result.replaced:
        render.warn(f"replaced modified {result.path} (--force)")
    render.line(f"Wrote {result.version.name} {result.version.label} "
                f"({result.version.model_id}) to {result.path}")


def _day(date: str | None) -> str:
    return date[:10] if date else "(uncommitted)"


def _git_date(date: str | None) -> str:
    """`Thu Sep 1 13:16 2026 +0530`, like git log."""
    if not date:
        return "(uncommitted)"
    from datetime import datetime

    when = datetime.fromisoformat(date)
    return f"{when:%a %b} {when.day} {when:%H:%M %Y %z}"
