"""`moma doctor`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from moma_cli.cli.options import Json

if TYPE_CHECKING:
    from moma_cli.services.doctor import DoctorResult


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(json_out: Json = False) -> None:
    """Report what moma runs with: versions, platform, repository, cache (free space, link
    types that work), each remote and whether it answers, shallow clone, git hooks.

    Remotes get a few seconds to answer; one that does not is reported, not waited for.
    Paste the output into a bug report.

    \\b
    Examples:
      moma doctor
      moma doctor --json
    """
    from dataclasses import asdict

    from moma_cli.cli import render
    from moma_cli.services import doctor as doctor_service

    result = doctor_service.doctor()
    if json_out:
        render.print_json(asdict(result))
        return
    render.table(("check", "result"), _rows(result))
    for warning in result.warnings:
        render.warn(warning)


def _rows(r: DoctorResult) -> list[tuple[str, str]]:
    from moma_cli.cli import render

    rows = [("moma", r.moma), ("python", r.python), ("git", r.git or "not found"),
            ("platform", r.platform)]
    if r.root is None:
        return [*rows, ("repository", r.repo_error or "none")]
    rows.append(("repository", r.root))
    free = "" if r.cache_free is None else f" ({render.human_size(r.cache_free)} free)"
    rows.append(("cache", f"{r.cache_dir}{free}"))
    if r.link_types:
        works = ", ".join(f"{kind} {'yes' if ok else 'no'}" for kind, ok in r.link_types.items())
        rows.append(("link types", f"{works}; configured: {', '.join(r.configured_links)}"))
    for remote in r.remotes:
        mark = " (default)" if remote.default else ""
        state = remote.status + (f": {remote.message}" if remote.message else "")
        rows.append((f"remote {remote.name}{mark}", f"{remote.url}: {state} "
                                                    f"({remote.seconds:.1f} s)"))
    rows.append(("shallow clone", "yes" if r.shallow else "no"))
    hooks = ", ".join(f"{hook} {'yes' if ok else 'no'}" for hook, ok in r.hooks.items())
    rows.append(("git hooks", hooks + ("" if any(r.hooks.values()) else " ('moma install')")))
    return rows
