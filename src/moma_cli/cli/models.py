"""`moma models:*` — the model registry commands. JSON schemas: docs/registry.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from moma_cli.cli.context import OPTIONS, guarded

if TYPE_CHECKING:
    from moma_cli.services.models import DiffResult, ModelVersion, TagResult
    from moma_cli.services.sync import TransferResult

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Rev = Annotated[str | None, typer.Option(
    "--rev", help="Read history from this git revision instead of the current branch.")]
Ref = Annotated[str, typer.Argument(
    help="Model reference: NAME, NAME:4, NAME:production or NAME@REV.")]


def register(app: typer.Typer) -> None:
    for name, fn in (("add", add), ("list", list_), ("log", log), ("show", show),
                     ("diff", diff), ("tag", tag), ("untag", untag), ("history", history),
                     ("register", register_), ("get", get)):
        app.command(f"models:{name}")(fn)


@guarded
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
    """
    from moma_cli.services import lineage as lineage_mod
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        metrics = models.read_metrics_file(repo, metrics_file) if metrics_file else {}
        metrics.update(models.parse_pairs(metric or [], "metric"))
        lineage = (lineage_mod.capture(repo, froms or [], params_files or [])
                   if froms or params_files else None)
        version = models.add(repo, name, path, metrics=metrics if metrics_file or metric else None,
                             metrics_file=metrics_file,
                             params=models.parse_pairs(param, "param") if param else None,
                             description=description, lineage=lineage)
    _print_version(version, json_out, f"Registered {version.name} {version.label} "
                                      f"({version.model_id}); commit the pointer to keep it.")


@guarded
def list_(
    rev: Rev = None,
    all_models: Annotated[bool, typer.Option(
        "--all", help="Include models deprecated with GTO (tag NAME@deprecated).")] = False,
    json_out: Json = False,
) -> None:
    """List models with their latest version, stages and date.

    Example: moma models:list --json
    """
    from moma_cli.cli import render
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    listing = models.list_models(open_repo(), rev=rev, deprecated=all_models)
    found = listing.models
    if json_out:
        render.print_json({"models": [v.to_json() for v in found]})
    elif found:
        render.table(("Name", "Version", "Stages", "Date", "Path"),
                     [(v.name, v.label, ", ".join(v.stages), _day(v.date), v.pointer.path)
                      for v in found])
    elif not listing.broken:
        render.line("No models yet; register one with 'moma models:add NAME PATH'.")
    for exc in listing.broken:  # a pointer that may be a model: the listing is incomplete
        render.error(exc.message, exc.hint)
    if listing.broken:
        raise typer.Exit(1)


@guarded
def log(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    rev: Rev = None,
    json_out: Json = False,
) -> None:
    """Show model versions, newest first, with their commit messages.

    Example: moma models:log credit-risk
    """
    from moma_cli.cli import render
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    versions = models.log(open_repo(), name, rev=rev)
    if json_out:
        render.print_json({"versions": [v.to_json() for v in versions]})
        return
    render.blocks(([("Model-ID", v.model_id), ("Model-Name", v.name),
                    ("Model-Version", v.label[1:]), ("Date", _git_date(v.date))],
                   v.message or "(uncommitted)") for v in versions)


@guarded
def show(ref: Ref, rev: Rev = None, json_out: Json = False) -> None:
    """Show one model version: id, date, encoding, algorithm, metrics and parameters.

    Metadata is read from the pointer; the model file is never loaded.

    Example: moma models:show credit-risk:production
    """
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    _print_version(models.resolve(open_repo(), ref, rev=rev), json_out)


def _print_version(v: ModelVersion, json_out: bool, footer: str | None = None) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json(v.to_json())
        return
    meta = v.meta
    pairs: list[tuple[str, object]] = [
        ("Model-ID", v.model_id), ("Model-Name", v.name),
        ("Model-Version", v.label[1:] if v.number else "unknown (shallow clone)"),
        ("Date", _iso_date(v.date)), ("Content-Encoding", meta.get("encoding")),
        ("Algo", meta.get("algo"))]
    pairs += [(str(k).replace("_", " ").title().replace(" ", "-"), val)
              for k, val in v.metrics.items()]
    params = meta.get("params") or {}
    pairs.append(("Parameters", ";".join(f"{k}={val}" for k, val in params.items())))
    pairs += _lineage_pairs(v.lineage or {})
    if v.stages:
        pairs.append(("Stages", ", ".join(v.stages)))
    if v.semvers:
        pairs.append(("Registered", ", ".join(v.semvers)))
    pairs += [("Path", v.pointer.path), ("Commit", v.commit or "(uncommitted)")]
    render.block(pairs, meta.get("description"))
    if footer:
        render.line(footer)


def _lineage_pairs(lineage: dict[str, Any]) -> list[tuple[str, object]]:
    """Data (one line per input), Code, Params and Environment, from `lineage:`."""
    from moma_cli.core.hashing import short_oid

    if not lineage:
        return []
    pairs: list[tuple[str, object]] = [
        ("Data", f"{dep.get('path')} {short_oid(str(dep.get('oid', '')))}")
        for dep in lineage.get("deps") or [] if isinstance(dep, dict)]
    code = lineage.get("code")
    pairs.append(("Code", short_oid(code) if isinstance(code, str) else "(no commit)"))
    params = lineage.get("params") or {}
    if params:
        pairs.append(("Params", ";".join(f"{k}={val}" for k, val in params.items())))
    env = lineage.get("env") or {}
    if env:
        packages = str(env.get("packages", "")).split(":")[-1]
        pairs.append(("Environment", f"python {env.get('python')}; {env.get('platform')}; "
                                     f"packages {short_oid(packages)}"))
    return pairs


@guarded
def diff(
    ref_a: Annotated[str, typer.Argument(help="First model reference, e.g. credit-risk:3.")],
    ref_b: Annotated[str, typer.Argument(help="Second model reference, e.g. credit-risk:4.")],
    all_rows: Annotated[bool, typer.Option("--all", help="Also show unchanged values.")] = False,
    json_out: Json = False,
) -> None:
    """Compare two model versions: parameters, metrics and lineage, with deltas.

    Example: moma models:diff credit-risk:production credit-risk
    """
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    _print_diff(models.diff(open_repo(), ref_a, ref_b), all_rows, json_out)


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


@guarded
def tag(
    ref: Ref,
    stage: Annotated[str, typer.Argument(help="Stage name, e.g. production or staging.")],
    json_out: Json = False,
) -> None:
    """Assign a stage to a committed version (an annotated git tag NAME#STAGE#N).

    Moving a stage is the same command on another version; the old assignment stays in
    history. With a default remote, the version's data is pushed to it. Share stages with
    'git push --tags'.

    Example: moma models:tag credit-risk:4 production
    """
    from moma_cli.services import models, sync
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = models.tag(repo, ref, stage)
        pushed = sync.publish(repo, result.version)
    _print_tags(result, json_out, f"{result.version.name} {result.version.label} is now in "
                                  f"{stage}", pushed)


@guarded
def untag(
    name: Annotated[str, typer.Argument(help="Model name.")],
    stage: Annotated[str, typer.Argument(help="Stage to remove, e.g. staging.")],
    json_out: Json = False,
) -> None:
    """Remove a stage from a model (GTO's unassign tag NAME#STAGE!#N).

    Example: moma models:untag credit-risk staging
    """
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = models.untag(repo, name, stage)
    _print_tags(result, json_out, f"{name} is no longer in {stage}")


@guarded
def register_(
    ref: Ref,
    semver: Annotated[str | None, typer.Option(
        "--semver", help="Version to register, e.g. v1.2.0 (default: next patch).")] = None,
    json_out: Json = False,
) -> None:
    """Give a committed version a semantic version (GTO's tag NAME@v1.2.0).

    With a default remote, the version's data is pushed to it.

    Example: moma models:register credit-risk:4 --semver v1.2.0
    """
    from moma_cli.services import models, sync
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = models.register(repo, ref, semver)
        pushed = sync.publish(repo, result.version)
    _print_tags(result, json_out, f"{result.version.name} {result.version.label} registered "
                                  f"as {', '.join(result.version.semvers)}", pushed)


def _print_tags(result: TagResult, json_out: bool, message: str,
                pushed: TransferResult | None = None) -> None:
    """The tags made and, for a new stage or semver, where its data was pushed (exit 1
    when it could not be: the tag stands, but points at data nobody else can download)."""
    from moma_cli.cli import render
    from moma_cli.cli.sync import as_json, render_transfer

    if json_out:
        render.print_json({"tags": result.created, "version": result.version.to_json()}
                          | ({} if pushed is None else {"pushed": as_json(pushed)}))
    else:
        render.line(message)
        render.line(f"Created tag {', '.join(result.created)}; share it with "
                    "'git push --tags'.")
        if pushed is not None:
            v = result.version
            render_transfer(pushed, "pushed",
                            f"Pushed the data of {v.name} {v.label} to remote '{pushed.remote}'")
    if pushed is not None and not pushed.ok:
        raise typer.Exit(1)


@guarded
def history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    rev: Rev = None,
    json_out: Json = False,
) -> None:
    """Every version, semver registration and stage change of a model, with who and when.

    Example: moma models:history credit-risk
    """
    from moma_cli.cli import render
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    entries = models.history(open_repo(), name, rev=rev)
    if json_out:
        render.print_json({"name": name, "events": [vars(e) for e in entries]})
        return
    render.table(("Date", "Action", "Version", "Stage/Semver", "Author", "Ref"),
                 [(_iso_date(e.date), e.action, "" if e.version is None else f"v{e.version}",
                   e.stage or e.semver or "", e.author, e.tag or (e.commit or "")[:8])
                  for e in entries])


@guarded
def get(
    ref: Ref,
    output: Annotated[str, typer.Option("--output", "-o",
                                        help="File (or directory) to write the model to.")],
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Overwrite a file there that is modified and not in the cache.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Write a model version's file, without touching git. A file already there whose bytes
    are not in the cache (unsaved work) is never overwritten without --force.

    Example: moma models:get credit-risk:production -o /srv/model.joblib
    """
    from moma_cli.cli import render
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    result = models.get(open_repo(), ref, output, force=force)
    if json_out:
        render.print_json({"path": str(result.path), "fetched": result.fetched,
                           "replaced": result.replaced, "version": result.version.to_json()})
        return
    if result.replaced:
        render.warn(f"replaced modified {result.path} (--force)")
    render.line(f"Wrote {result.version.name} {result.version.label} "
                f"({result.version.model_id}) to {result.path}")


def _iso_date(date: str | None) -> str:
    return date.replace("T", " ")[:19] if date else ""


def _day(date: str | None) -> str:
    return date[:10] if date else "(uncommitted)"


def _git_date(date: str | None) -> str:
    """`Thu Sep 1 13:16 2026 +0530`, like git log."""
    if not date:
        return "(uncommitted)"
    from datetime import datetime

    when = datetime.fromisoformat(date)
    return f"{when:%a %b} {when.day} {when:%H:%M %Y %z}"
