"""`moma models:tag/untag/register/deprecate/history/check-ref`: a model's lifecycle as GTO
tags, guarded by its quality gates. JSON schemas: docs/registry.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli import views
from moma_cli.cli.context import OPTIONS
from moma_cli.cli.options import Json, Ref, Rev

if TYPE_CHECKING:
    from moma_cli.core.tags import Override
    from moma_cli.services.registry.tagging import TagResult


def register(app: typer.Typer) -> None:
    for name, fn in (("tag", tag), ("untag", untag), ("register", register_),
                     ("deprecate", deprecate), ("history", history), ("check-ref", check_ref)):
        app.command(f"models:{name}")(fn)


def tag(
    ref: Ref,
    stage: Annotated[str, typer.Argument(help="Stage name, e.g. production or staging.")],
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Tag even when a blocking quality gate fails (needs -m).")
    ] = False,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="Why --force overrides the gate; recorded in the tag.")
    ] = None,
    json_out: Json = False,
) -> None:
    """Assign a stage to a committed version (an annotated git tag NAME#STAGE#N).

    The version must pass the model's blocking conditions in .moma.yaml ('models:', as
    'moma check' evaluates them on its own metrics); --force -m 'why' tags anyway and
    records who, why and the failed conditions in the tag. Moving a stage is the same
    command on another version; the old assignment stays in history. With a default
    remote, the version's data is pushed to it. Share stages with 'git push --tags'.

    \b
    Examples:
      moma models:tag credit-risk:4 production
      moma models:tag credit-risk:5 production --force -m "hotfix: v4 leaks PII"
    """
    from moma_cli.services.registry import tagging
    from moma_cli.services.repo import open_repo

    if force and not (message or "").strip():
        raise typer.BadParameter("--force needs a reason: -m 'why'", param_hint="--force")
    if message is not None and not force:
        raise typer.BadParameter("-m is the reason for --force", param_hint="--message")
    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = tagging.tag(repo, ref, stage, force=message)
    _print_tags(result, json_out, f"{result.version.name} {result.version.label} is now in "
                                  f"{stage}")


def untag(
    name: Annotated[str, typer.Argument(help="Model name.")],
    stage: Annotated[str, typer.Argument(help="Stage to remove, e.g. staging.")],
    json_out: Json = False,
) -> None:
    """Remove a stage from a model (GTO's unassign tag NAME#STAGE!#N).

    Example: moma models:untag credit-risk staging
    """
    from moma_cli.services.registry import tagging
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = tagging.untag(repo, name, stage)
    _print_tags(result, json_out, f"{name} is no longer in {stage}")


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
    from moma_cli.services.registry import tagging
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = tagging.register(repo, ref, semver)
    _print_tags(result, json_out, f"{result.version.name} {result.version.label} registered "
                                  f"as {', '.join(result.version.semvers)}")


def deprecate(
    name: Annotated[str, typer.Argument(help="Model name.")],
    json_out: Json = False,
) -> None:
    """Retire a model (GTO's tag NAME@deprecated#N): 'models:list' hides it unless --all.

    Example: moma models:deprecate credit-risk
    """
    from moma_cli.services.registry import tagging
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = tagging.deprecate(repo, name)
    _print_tags(result, json_out, f"{name} is deprecated: 'moma models:list' shows it only "
                                  "with --all")


def _print_tags(result: TagResult, json_out: bool, message: str) -> None:
    """The tags made and, for a new stage or semver, where its data was pushed (exit 1
    when it could not be: the tag stands, but points at data nobody else can download)."""
    from moma_cli.cli import render

    pushed, override = result.pushed, result.override
    if json_out:
        render.print_json({"tags": result.created, "version": result.version.to_json()}
                          | ({} if pushed is None else {"pushed": views.transfer_json(pushed)})
                          | ({} if override is None else {"override": override.to_json()}))
    else:
        if override is not None:
            render.warn(f"forced past {'; '.join(override.failed)}: {override.reason}")
        render.line(message)
        render.line(f"Created tag {', '.join(result.created)}; share it with "
                    "'git push --tags'.")
        if pushed is not None:
            v = result.version
            views.render_transfer(pushed, "pushed",
                                  f"Pushed the data of {v.name} {v.label} to remote "
                                  f"'{pushed.remote}'")
    if pushed is not None and not pushed.ok:
        raise typer.Exit(1)


def history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    rev: Rev = None,
    json_out: Json = False,
) -> None:
    """Every version, semver registration and stage change of a model, with who and when;
    a stage forced past its quality gate shows the reason.

    Example: moma models:history credit-risk
    """
    from moma_cli.cli import render
    from moma_cli.services.registry import resolving
    from moma_cli.services.repo import open_repo

    entries = resolving.history(open_repo(), name, rev=rev)
    if json_out:
        render.print_json({"name": name, "events": [e.to_json() for e in entries]})
        return
    render.table(("Date", "Action", "Version", "Stage/Semver", "Author", "Ref", "Note"),
                 [(views.iso_date(e.date), e.action, "" if e.version is None else f"v{e.version}",
                   e.stage or e.semver or "", e.author, e.tag or (e.commit or "")[:8],
                   _forced(e.override)) for e in entries])


def _forced(override: Override | None) -> str:
    if override is None:
        return ""
    return f"forced by {override.by}: {override.reason} (failed: {'; '.join(override.failed)})"


def check_ref(
    ref: Annotated[str, typer.Argument(help="A tag name (or refs/tags/NAME), e.g. from CI.")],
    json_out: Json = False,
) -> None:
    """What a registry tag means: model, version, action, stage or semver, commit.

    For CI jobs triggered by a pushed tag, as 'gto check-ref'. Exit 1 for a tag that is
    not a registry tag.

    \b
    Examples:
      moma models:check-ref credit-risk#production#3
      moma models:check-ref "$GITHUB_REF" --json
    """
    from moma_cli.cli import render
    from moma_cli.services.registry import resolving
    from moma_cli.services.repo import open_repo

    event = resolving.check_ref(open_repo(), ref)
    if json_out:
        render.print_json(event.to_json())
        return
    pairs: list[tuple[str, object]] = [
        ("Tag", event.tag), ("Model-Name", event.name), ("Action", event.action),
        ("Model-Version", "unknown" if event.version is None else event.version)]
    pairs += [(key, value) for key, value in (("Stage", event.stage), ("Semver", event.semver))
              if value]
    pairs += [("Commit", event.commit), ("Date", views.iso_date(event.date)),
              ("Author", event.author)]
    if event.override is not None:
        pairs += [("Forced-By", event.override.by), ("Reason", event.override.reason)]
    render.block(pairs)
