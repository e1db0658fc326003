"""`moma status`: each pointer against its data in the workspace and the cache."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.core import manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import hash_bytes, short_oid
from moma_cli.errors import MomaError
from moma_cli.services import workspace
from moma_cli.services.repo import Repo


@dataclass
class StatusEntry:
    path: str
    state: str  # ok | modified | missing | not-in-cache | invalid | not-pushed (status -r)
    changes: list[tuple[str, str]] = field(default_factory=list)  # (added|modified|deleted, rel)
    message: str | None = None


@dataclass
class StatusResult:
    entries: list[StatusEntry] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(e.state == "ok" for e in self.entries)


def status(
    repo: Repo, targets: Sequence[str] | None = None, *, cwd: Path | None = None,
    jobs: int | None = None,
) -> StatusResult:
    pointers, errors = repo.pointers(targets, cwd)
    result = StatusResult()
    for err in errors:
        result.entries.append(StatusEntry(err.message.split(":", 1)[0], "invalid",
                                          message=err.message))
    for ptr in pointers:
        result.entries.append(_status_of(repo, ptr, jobs))
    result.entries.sort(key=lambda e: e.path)
    return result


def _status_of(repo: Repo, ptr: pointer_mod.Pointer, jobs: int | None) -> StatusEntry:
    path = repo.abspath(ptr.path)
    if not os.path.lexists(path):
        state = "missing" if repo.cache.exists(ptr.oid) else "not-in-cache"
        return StatusEntry(ptr.path, state)
    try:
        if ptr.is_dir:
            return _dir_status(repo, ptr, jobs)
        info = workspace.file_info(str(path))
        oid = workspace.oids_of(repo, [info], store=False)[info.path]
    except MomaError as exc:
        return StatusEntry(ptr.path, "invalid", message=exc.message)
    if oid != ptr.oid:
        return StatusEntry(ptr.path, "modified")
    if info.key.size != ptr.size:
        return StatusEntry(ptr.path, "invalid", message=_size_message(
            ptr.pointer_path, ptr.size, info.key.size))
    return StatusEntry(ptr.path, "ok" if repo.cache.exists(ptr.oid) else "not-in-cache")


def _size_message(pointer_file: str, expected: int, actual: int) -> str:
    return f"{pointer_file}: records size {expected} but the data is {actual} bytes"


def _dir_status(repo: Repo, ptr: pointer_mod.Pointer, jobs: int | None) -> StatusEntry:
    top = str(repo.abspath(ptr.path))
    skipped = workspace.Skipped()
    files = workspace.walk_dir(top, skipped)
    workspace.remove_tmps(repo, ptr.path, skipped.tmps)  # a killed checkout's, never data
    # Same pointer, same walk, same cache objects as when last found up to date: still so.
    # Taken before the comparison, so anything changing meanwhile only misses next time.
    stamp = workspace.clean_stamp(ptr, workspace.walk_stamp(files), repo.cache.stamp())
    if repo.state.is_clean(top, stamp):
        return StatusEntry(ptr.path, "ok")
    entries = workspace.dir_entries(repo, top, store=False, jobs=jobs, files=files)
    listing = manifest.encode(entries, ptr.algo)
    if hash_bytes(listing, ptr.algo) == ptr.oid:
        total = sum(e.size for e in entries)
        if (len(entries), total) != (ptr.nfiles, ptr.size):
            return StatusEntry(ptr.path, "invalid",
                               message=pointer_mod.totals_mismatch(ptr, len(entries), total))
        complete = repo.cache.exists(ptr.oid) and all(
            repo.cache.exists(oid) for oid in {e.oid for e in entries})
        if not complete:
            return StatusEntry(ptr.path, "not-in-cache")
        repo.state.put_clean(top, stamp)
        return StatusEntry(ptr.path, "ok")
    if not repo.cache.exists(ptr.oid):
        return StatusEntry(ptr.path, "modified", message="recorded listing not in cache")
    with open(repo.cache.checked_path(ptr.oid), "rb") as recorded:
        changes = manifest.changes(recorded, listing, short_oid(ptr.oid))
    return StatusEntry(ptr.path, "modified", changes)
