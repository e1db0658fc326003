"""`moma diff [A [B]]`: tracked data added, modified or deleted between two revisions.

Pointers are read from git in one `cat-file --batch`; the files inside a tracked directory
come from its manifest in the cache. The workspace side is what its pointers record.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from moma_cli.core import pointer as pointer_mod
from moma_cli.errors import MomaError
from moma_cli.services.repo import Repo


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


def pointers_at(repo: Repo, rev: str | None) -> dict[str, pointer_mod.Pointer]:
    """data path -> pointer, in the workspace (rev None) or at a git revision."""
    if rev is None:
        good, _ = repo.pointers()
        return {p.path: p for p in good}
    blobs = repo.git.tree_blobs(repo.git.rev_parse(rev))
    texts = repo.git.cat_blobs(blobs.values())
    found = {}
    for rel, sha in blobs.items():
        if pointer_mod.is_pointer_path(rel) and sha in texts:
            ptr = pointer_mod.parse(texts[sha].decode("utf-8", "replace"), rel)
            found[ptr.path] = ptr
    return found


def diff(repo: Repo, a: str | None = None, b: str | None = None) -> DiffResult:
    a = a or "HEAD"
    old, new = pointers_at(repo, a), pointers_at(repo, b)
    result = DiffResult(a, b or "workspace")
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before is not None and after is not None and before.oid == after.oid:
            continue
        if (before is None or before.is_dir) and (after is None or after.is_dir):
            files_before = _listing(repo, before, result)
            files_after = _listing(repo, after, result)
            if files_before is not None and files_after is not None:
                _compare(result, path, files_before, files_after)
                continue
        result.entries.append(_entry(path, before, after))
    return result


def _listing(repo: Repo, ptr: pointer_mod.Pointer | None,
             result: DiffResult) -> dict[str, tuple[str, int]] | None:
    if ptr is None:
        return {}
    try:
        return {e.relpath: (e.oid, e.size) for e in repo.cache.iter_manifest(ptr.oid)}
    except MomaError:
        result.unlisted.append(ptr.path)
        return None


def _compare(result: DiffResult, top: str, old: dict[str, tuple[str, int]],
             new: dict[str, tuple[str, int]]) -> None:
    for rel in sorted(set(old) | set(new)):
        before, after = old.get(rel), new.get(rel)
        if before == after:
            continue
        change = "added" if before is None else "deleted" if after is None else "modified"
        result.entries.append(DiffEntry(
            posixpath.join(top, rel), change, before[0] if before else None,
            after[0] if after else None, before[1] if before else None,
            after[1] if after else None))


def _entry(path: str, before: pointer_mod.Pointer | None,
           after: pointer_mod.Pointer | None) -> DiffEntry:
    change = "added" if before is None else "deleted" if after is None else "modified"
    return DiffEntry(path, change, before.oid if before else None,
                     after.oid if after else None, before.size if before else None,
                     after.size if after else None)
