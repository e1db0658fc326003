"""Reading tracked data by path at any git revision: the logic behind `moma_cli.api`.

The pointer comes from git (`git cat-file`) for a revision, or from the work tree; the
bytes come from the cache, fetched from a remote first when missing,
and are verified against their oid before anyone reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moma_cli.core import hashing
from moma_cli.core import pointer as pointer_mod
from moma_cli.errors import ObjectMissingError, PathError
from moma_cli.services import revisions
from moma_cli.services.repo import Repo


@dataclass(frozen=True)
class Located:
    path: str  # the requested repo-relative path
    oid: str
    size: int
    pointer: pointer_mod.Pointer  # the pointer tracking it (its directory's, for a file inside)


def locate(repo: Repo, path: str, rev: str | None = None, *,
           remote: str | None = None) -> Located:
    """Find the object holding `path` (repo-relative) at `rev` (None: the work tree).

    `path` may be a tracked file or a file inside a tracked directory.
    """
    rel = repo.relpath(path, cwd=repo.root)
    commit = repo.git.rev_parse(rev) if rev else None
    where = f"revision {rev}" if rev else "the work tree"
    parts = rel.split("/")
    for depth in range(len(parts), 0, -1):
        tracked = "/".join(parts[:depth])
        ptr = revisions.pointer_at(repo, tracked, commit)
        if ptr is None:
            continue
        inner = "/".join(parts[depth:])
        if not inner:
            if ptr.is_dir:
                raise PathError(f"{rel}: is a tracked directory at {where}",
                                hint=f"open a file inside it, e.g. {rel}/<name>")
            return Located(rel, ptr.oid, ptr.size, ptr)
        if not ptr.is_dir:
            break
        object_path(repo, ptr.oid, remote=remote)
        for entry in repo.cache.iter_manifest(ptr.oid):
            if entry.relpath == inner:
                return Located(rel, entry.oid, entry.size, ptr)
        raise PathError(f"{rel}: not in the tracked directory {tracked} at {where}")
    raise PathError(f"{rel}: not tracked by moma at {where}",
                    hint="see 'git ls-files \"*.moma\"' for tracked paths")


def object_path(repo: Repo, oid: str, *, remote: str | None = None) -> Path:
    """The verified cache path of `oid`, fetched from the remote first if it is missing."""
    if not repo.cache.exists(oid):
        _fetch(repo, oid, remote)
    return repo.cache.checked_path(oid)


def _fetch(repo: Repo, oid: str, remote: str | None) -> None:
    from moma_cli.services.sync.fetching import fetch_oids

    if remote is None and repo.config.default_remote is None:
        raise ObjectMissingError(
            f"object {hashing.short_oid(oid)} is not in the cache and no remote is configured",
            hint="add one with 'moma remote add NAME URL --default', then run the command again",
        )
    result = fetch_oids(repo, [oid], remote=remote)
    if oid in result.failed:
        raise ObjectMissingError(
            f"object {hashing.short_oid(oid)} could not be fetched: {result.failed[oid]}",
            hint="run 'moma push' on the machine that added it",
        )
