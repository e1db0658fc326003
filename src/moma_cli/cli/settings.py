"""`moma config`: show, set, unset and list the keys of .moma.yaml / .moma.local.yaml."""

from __future__ import annotations

from typing import Annotated

import typer

from moma_cli.cli.options import Json


def register(app: typer.Typer) -> None:
    app.command("config")(config)


def config(
    key: Annotated[str | None, typer.Argument(
        help="A key of .moma.example.yaml, e.g. core.remote or remotes.NAME.endpointurl.")]
    = None,
    value: Annotated[str | None, typer.Argument(
        help="The new value (lists: [a, b] or a,b). Without it the current value is "
             "printed.")] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="Read or write the git-ignored .moma.local.yaml (this machine's "
                        "settings and S3 credentials).")] = False,
    unset: Annotated[bool, typer.Option("--unset", help="Remove KEY.")] = False,
    list_all: Annotated[bool, typer.Option(
        "--list", "-l", help="List every key set, with the file it comes from.")] = False,
    json_out: Json = False,
) -> None:
    """Show or change one configuration key. Values are checked as every command checks
    them: a bad one is refused and nothing is written. Comments and the order of the file's
    other lines are kept. Credentials go only to --local; listings show them as ****.

    \b
    Examples:
      moma config core.jobs 8
      moma config core.remote
      moma config --local remotes.storage.endpointurl http://127.0.0.1:9000
      moma config registry.stages "[dev, staging, production]"
      moma config --unset alerts.webhook
      moma config --list --json
    """
    from moma_cli.cli import render
    from moma_cli.errors import ConfigError
    from moma_cli.services import settings
    from moma_cli.services.repo import repo_root

    root = repo_root()
    if list_all:
        if key is not None or unset:
            raise ConfigError("--list takes no KEY and no --unset")
        found = settings.listing(root)
        if json_out:
            render.print_json([vars(s) for s in found])
            return
        for s in found:
            render.line(f"{s.key}={s.text}")
        return
    if key is None:
        raise ConfigError("give a KEY, or --list", hint="see 'moma config --help'")
    if unset:
        if value is not None:
            raise ConfigError("--unset takes a KEY only")
        result = settings.unset(root, key, local=local)
        action = "unset"
    elif value is None:
        result = settings.get(root, key, local=local)
        action = "get"
    else:
        result = settings.set_(root, key, value, local=local)
        action = "set"
    if json_out:
        render.print_json(vars(result))
    elif action == "get":
        render.line(result.text)
    else:
        render.line(f"{result.key} {action} in {result.file}")
