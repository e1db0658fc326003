"""`moma ls / get / import / update`: data and models of other repositories."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli import views
from moma_cli.cli.context import OPTIONS, here_locked
from moma_cli.cli.options import Json, Targets

if TYPE_CHECKING:
    from moma_cli.services.crossrepo.getting import ImportResult

Url = Annotated[str, typer.Argument(
    help="The source repository: a local path, file://, https://, ssh:// or git@host:path.")]
SourcePath = Annotated[str, typer.Argument(
    help="A tracked file or directory of the source (or a file inside a tracked directory).")]
SourceRev = Annotated[str | None, typer.Option(
    "--rev", help="Branch, tag or commit of the source (default: its default branch).")]
Out = Annotated[str | None, typer.Option(
    "--out", "-o", help="Where to write it (default: its name, in the current directory).")]
Force = Annotated[bool, typer.Option(
    "--force", "-f", help="Overwrite a file there that is modified and not in the cache.")]


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
    app.command("get")(get)
    app.command("import")(import_)
    app.command("update")(update)


def ls(
    url: Url,
    path: Annotated[str | None, typer.Argument(help="Only what is at or under this path.")]
    = None,
    rev: SourceRev = None,
    json_out: Json = False,
) -> None:
    """List the data another repository tracks (path, kind, size, files) and the models it
    registers (name, latest version, stages). Nothing but git objects is downloaded.

    \b
    Examples:
      moma ls https://github.com/acme/datasets
      moma ls ../registry models/ --rev v2 --json
    """
    from moma_cli.cli import render
    from moma_cli.services.crossrepo import listing

    with here_locked() as here:
        result = listing.ls(here, url, path, rev=rev)
    if json_out:
        render.print_json(result.to_json())
        return
    render.table(["path", "kind", "size", "files"],
                 [(d.path, d.kind, render.human_size(d.size), d.nfiles or 1)
                  for d in result.data], title=f"{result.url} at {result.commit[:10]}")
    if result.models:
        render.table(["model", "latest", "stages", "path"],
                     [(m.name, f"v{m.version}" if m.version else "-", ", ".join(m.stages),
                       m.path) for m in result.models])
    views.render_invalid(result.invalid, hint="ask the source's authors to fix those "
                                              "pointers")


def get(url: Url, path: SourcePath, out: Out = None, rev: SourceRev = None,
        force: Force = False, json_out: Json = False) -> None:
    """Download a file or directory another repository tracks, from that repository's
    default remote, verified against its hash; it is not tracked here.

    \b
    Examples:
      moma get https://github.com/acme/datasets data/train.csv
      moma get ../registry models/encoder -o encoder --rev v2
    """
    from moma_cli.cli import render
    from moma_cli.services.crossrepo import getting

    with here_locked() as here:
        result = getting.get(here, url, path, out, rev=rev, force=force)
    if json_out:
        render.print_json({"url": result.url, "commit": result.commit, "path": result.path,
                           "dest": str(result.dest), "kind": result.kind, "oid": result.oid,
                           "files": result.files})
        return
    render.line(f"Wrote {result.path} of {result.url} at {result.commit[:10]} to "
                f"{result.dest} ({result.files} file{'s' if result.files != 1 else ''})")


def import_(url: Url, path: SourcePath, out: Out = None, rev: SourceRev = None,
            force: Force = False, json_out: Json = False) -> None:
    """Download data another repository tracks and track it here: a pointer whose source
    section names the repository, the revision and the commit it resolved to. Commit the
    pointer; 'moma update' moves it to the source's newest commit.

    \b
    Examples:
      moma import https://github.com/acme/datasets data/train.csv -o data/train.csv
      moma import ../registry models/encoder --rev v2
    """
    from moma_cli.services.crossrepo import getting
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = getting.import_(repo, url, path, out, rev=rev, force=force)
    _report([result], json_out)


def update(targets: Targets = None, rev: SourceRev = None, force: Force = False,
           json_out: Json = False) -> None:
    """Move imports to the newest commit of their source revision (or of --rev),
    downloading what changed.

    \b
    Examples:
      moma update
      moma update data/train.csv --rev v3
    """
    from moma_cli.services.crossrepo import getting
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = getting.update(repo, targets, rev=rev, force=force)
    _report(result.imports, json_out)


def _report(imports: list[ImportResult], json_out: bool) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json([{"path": i.path, "url": i.url, "rev": i.rev, "commit": i.commit,
                            "oid": i.oid, "changed": i.changed} for i in imports])
    for i in imports:
        if not json_out:
            state = "imported" if i.changed else "up to date"
            render.line(f"{i.path}: {state} from {i.url} at {i.commit[:10]}")
        if i.checkout is not None and not json_out:
            views.render_checkout(i.checkout)
    if any(i.checkout is not None and not i.checkout.ok for i in imports):
        raise typer.Exit(1)
