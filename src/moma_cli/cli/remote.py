"""`moma remote add / list / modify / remove / default`."""

from __future__ import annotations

from typing import Annotated

import typer

from moma_cli.cli.context import OPTIONS

remote_app = typer.Typer(help="Manage remotes: where 'moma push' and 'moma pull' move data.",
                         no_args_is_help=True)
Local = Annotated[bool, typer.Option(
    "--local", help="Write to the git-ignored .moma.local.yaml instead of .moma.yaml.")]


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")


@remote_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Remote name, e.g. storage.")],
    url: Annotated[str, typer.Argument(
        help="s3://bucket/prefix, a local path, or any fsspec URL.")],
    default: Annotated[bool, typer.Option("--default", "-d",
                                          help="Make it the default remote.")] = False,
    local: Local = False,
    force: Annotated[bool, typer.Option("--force", "-f",
                                        help="Replace a remote of that name.")] = False,
) -> None:
    """Add a remote.

    \b
    Examples:
      moma remote add storage s3://my-bucket/moma --default
      moma remote add share /mnt/share/moma
    """
    from moma_cli.cli import render
    from moma_cli.services import remotes
    from moma_cli.services.repo import open_repo

    remotes.add(open_repo(), name, url, default=default, local=local, force=force)
    render.line(f"Added remote {name}" + (" (default)" if default else ""))


@remote_app.command("list")
def list_(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List remotes (credentials in URLs are never shown)."""
    from moma_cli.cli import render
    from moma_cli.services import remotes
    from moma_cli.services.repo import open_repo

    infos = remotes.listing(open_repo())
    if json_out:
        render.print_json([vars(i) for i in infos])
        return
    render.table(["name", "url", "default", "options"],
                 [(i.name, i.url, "*" if i.default else "",
                   " ".join(f"{k}={v}" for k, v in i.options.items())) for i in infos])


@remote_app.command("modify")
def modify(
    name: Annotated[str, typer.Argument(help="Remote name.")],
    key: Annotated[str, typer.Argument(
        help="url, endpointurl, region, profile, jobs, verify_ssl.")],
    value: Annotated[str | None, typer.Argument(help="New value.")] = None,
    unset: Annotated[bool, typer.Option("--unset", help="Remove the option.")] = False,
    local: Local = False,
) -> None:
    """Set or unset an option of a remote.

    Example: moma remote modify storage endpointurl http://127.0.0.1:9000 --local
    """
    from moma_cli.cli import render
    from moma_cli.errors import ConfigError
    from moma_cli.services import remotes
    from moma_cli.services.repo import open_repo

    if value is None and not unset:
        raise ConfigError("give a VALUE, or --unset to remove the option")
    remotes.modify(open_repo(), name, key, None if unset else value, local=local)
    render.line(f"Remote {name}: {key} " + ("unset" if unset else "set"))


@remote_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Remote name.")],
           local: Local = False) -> None:
    """Remove a remote from the configuration (its data is left untouched)."""
    from moma_cli.cli import render
    from moma_cli.services import remotes
    from moma_cli.services.repo import open_repo

    remotes.remove(open_repo(), name, local=local)
    render.line(f"Removed remote {name}")


@remote_app.command("default")
def default(
    name: Annotated[str | None, typer.Argument(help="Remote name.")] = None,
    unset: Annotated[bool, typer.Option("--unset", help="Clear the default.")] = False,
    local: Local = False,
) -> None:
    """Show, set or clear the default remote."""
    from moma_cli.cli import render
    from moma_cli.services import remotes
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    if name is None and not unset:
        render.line(repo.config.default_remote or "(no default remote)")
        return
    remotes.set_default(repo, None if unset else name, local=local)
    render.line(f"Default remote: {name}" if name else "Default remote cleared")


@remote_app.command("clean")
def clean(
    name: Annotated[str | None, typer.Argument(
        help="Remote name (default: core.remote).")] = None,
    older_than: Annotated[float, typer.Option(
        "--older-than", min=0, metavar="SECONDS",
        help="Only leftovers at least this old: a younger one may be a push running "
             "elsewhere.")] = 3600,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Remove what interrupted pushes left on a remote: '.moma-tmp-*' files of a
    local-directory remote, incomplete multipart uploads on S3. 'moma push' does the same
    at its end.

    \b
    Examples:
      moma remote clean
      moma remote clean storage --older-than 600
    """
    from moma_cli.cli import render
    from moma_cli.services import remoteops
    from moma_cli.services.repo import open_repo

    repo = open_repo()
    with repo.lock(OPTIONS.wait):
        result = remoteops.clean(repo, name, older_than=older_than)
    if json_out:
        render.print_json(vars(result))
        return
    render.line(f"Removed {len(result.removed)} leftovers of interrupted pushes from remote "
                f"'{result.remote}'")
    for item in result.removed:
        render.line(f"  {item}")
