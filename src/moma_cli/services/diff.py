"""`moma diff [A [B]]`: tracked data added, modified or deleted between two revisions, or a
revision and the workspace.

Pointers are read from git in one `cat-file --batch`; the files inside a tracked directory
come from its manifest in the cache. The workspace side is the data as it is on disk,
hashed through the stat cache (its pointer's record when the data is not checked out).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field

from moma_cli.core import hashing, manifest
from moma_cli.errors import MomaError
from moma_cli.services import revisions, workspace
from moma_cli.services.repo import Repo

Listing = dict[str, tuple[str, int]]  # relpath -> (oid, size)


@dataclass
class DiffEntry:
    path: str
    change: str  # added | modified | deleted
    old_oid: str | None
    new_oid: str | None
    old_size: int | None
    new_size: int | None


@dataclass
class DiffResult:
    a: str
    b: str
    entries: list[DiffEntry] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)  # dirs whose manifest is not cached


@dataclass
class _Version:
    oid: str
    size: int
    is_dir: bool
    files: Listing | None = None  # a directory's files, when already known


def diff(repo: Repo, a: str | None = None, b: str | None = None) -> DiffResult:
    a = a or "HEAD"
    old = _at_rev(repo, a)
    new = _at_rev(repo, b) if b is not None else _in_workspace(repo)
    result = DiffResult(a, b or "workspace")
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before is not None and after is not None and before.oid == after.oid:
            continue
        if all(v is None or v.is_dir for v in (before, after)):
            listings = [_listing(repo, path, v, result) for v in (before, after)]
            if listings[0] is not None and listings[1] is not None:
                _compare(result, path, listings[0], listings[1])
                continue
        result.entries.append(_entry(path, before, after))
    return result


def _at_rev(repo: Repo, rev: str) -> dict[str, _Version]:
    read = revisions.pointers_at(repo, repo.git.rev_parse(rev))
    if read.errors:
        raise read.errors[0][1]
    return {ptr.path: _Version(ptr.oid, ptr.size, ptr.is_dir) for _, ptr in read.pointers}


def _in_workspace(repo: Repo) -> dict[str, _Version]:
    pointers, _ = repo.pointers()
    found = {}
    for ptr in pointers:
        path = repo.abspath(ptr.path)
        if ptr.is_dir and path.is_dir():
            entries = workspace.dir_entries(repo, str(path), store=False)
            oid = hashing.hash_bytes(manifest.encode(entries, ptr.algo), ptr.algo)
            found[ptr.path] = _Version(oid, sum(e.size for e in entries), True,
                                       {e.relpath: (e.oid, e.size) for e in entries})
        elif not ptr.is_dir and path.is_file():
            info = workspace.file_info(str(path))
            oid = workspace.oids_of(repo, [info], store=False)[info.path]
            found[ptr.path] = _Version(oid, info.key.size, False)
        elif not os.path.lexists(path):  # not checked out: what the pointer records
            found[ptr.path] = _Version(ptr.oid, ptr.size, ptr.is_dir)
    return found


def _listing(repo: Repo, path: str, version: _Version | None,
             result: DiffResult) -> Listing | None:
    if version is None:
        return {}
    if version.files is not None:
        return version.files
    try:
        return {e.relpath: (e.oid, e.size) for e in repo.cache.iter_manifest(version.oid)}
    except MomaError:
        result.unlisted.append(path)
        return None


def _compare(result: DiffResult, top: str, old: Listing, new: Listing) -> None:
    for rel in sorted(set(old) | set(new)):
        before, after = old.get(rel), new.get(rel)
        if before == after:
            continue
        change = "added" if before is None else "deleted" if after is None else "modified"
        result.entries.append(DiffEntry(
            posixpath.join(top, rel), change, before[0] if before else None,
            after[0] if after else None, before[1] if before else None,
            after[1] if after else None))


def _entry(path: str, before: _Version | None, after: _Version | None) -> DiffEntry:
    change = "added" if before is None else "deleted" if after is None else "modified"
    return DiffEntry(path, change, before.oid if before else None,
                     after.oid if after else None, before.size if before else None,
                     after.size if after else None)
