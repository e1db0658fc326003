"""`moma fsck`: re-hash the whole cache, quarantine what is corrupt, report what is missing."""

from __future__ import annotations

import itertools
import os
import posixpath
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from moma_cli.atomic import is_tmp_sibling
from moma_cli.errors import MomaError
from moma_cli.services import workspace
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo

STALE_TMP_SECONDS = 3600
_TASK = 256  # objects per hashing task


@dataclass
class Corrupt:
    oid: str
    moved_to: str
    reason: str


@dataclass
class Missing:
    path: str  # tracked path (or a file inside a tracked directory)
    oid: str


@dataclass
class FsckResult:
    checked: int = 0
    corrupt: list[Corrupt] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # pointers that did not parse
    stale_tmp: list[str] = field(default_factory=list)  # removed temps: cache, then workspace

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.invalid)


def fsck(
    repo: Repo, *, jobs: int | None = None, progress: Progress = SILENT,
    now: float | None = None,
) -> FsckResult:
    result = FsckResult()
    result.stale_tmp = remove_stale_tmp(repo, time.time() if now is None else now)
    _verify_objects(repo, result, jobs, progress)
    _find_missing(repo, result)
    return result


def remove_stale_tmp(repo: Repo, now: float) -> list[str]:
    """Cache temps left by killed writers; an hour old is long past any live write (a
    shared cache has writers from other repositories, which this lock does not stop).

    Only files named as moma names its temps, in a cache `repo.cache` has verified as
    moma's own (inside the repository and holding nothing git tracks, or set on this
    machine): this cleanup once deleted a user's file through a committed symlink. No
    marker file proves a cache is moma's: a clone could commit the marker too.
    """
    removed: list[str] = []
    tmp_dir = repo.cache.tmp_dir
    if not tmp_dir.is_dir():
        return removed
    for entry in os.scandir(tmp_dir):
        if is_tmp_sibling(entry.name) and entry.is_file(follow_symlinks=False) and \
                now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS:
            os.unlink(entry.path)
            removed.append(entry.name)
    return sorted(removed)


def _verify_objects(repo: Repo, result: FsckResult, jobs: int | None,
                    progress: Progress) -> None:
    def check(oids: list[str]) -> list[tuple[str, str]]:
        bad = []
        for oid in oids:
            try:
                actual = repo.cache.hash_file(repo.cache.oid_to_path(oid))
            except OSError as exc:
                bad.append((oid, f"unreadable: {exc.strerror}"))
                continue
            if actual != oid:
                bad.append((oid, f"content hashes to {actual[:8]}"))
        return bad

    # Tasks of _TASK objects, submitted a window at a time: a million futures (one per
    # object, all at once) held more memory than the rest of fsck.
    progress.start("verifying cache", None)
    bad: list[tuple[str, str]] = []
    oids = repo.cache.iter_oids()
    with ThreadPoolExecutor(max_workers=repo.jobs(jobs)) as pool:
        while window := list(itertools.islice(oids, _TASK * 64)):
            tasks = [window[i:i + _TASK] for i in range(0, len(window), _TASK)]
            for found in pool.map(check, tasks):
                bad += found
            result.checked += len(window)
            progress.advance(len(window))
    progress.finish()
    for oid, reason in sorted(bad):
        result.corrupt.append(Corrupt(oid, str(repo.cache.quarantine(oid)), reason))


def _find_missing(repo: Repo, result: FsckResult) -> None:
    pointers, errors = repo.pointers()
    result.invalid = [e.message for e in errors]
    cache = repo.cache
    for ptr in pointers:
        if ptr.is_dir:  # a killed checkout's temps (the caller holds the lock)
            result.stale_tmp += workspace.remove_tmps(repo, ptr.path)
        if not cache.exists(ptr.oid):
            result.missing.append(Missing(ptr.path, ptr.oid))
            continue
        if not ptr.is_dir:
            continue
        try:
            for entry in cache.iter_manifest(ptr.oid):
                if not cache.exists(entry.oid):
                    result.missing.append(Missing(posixpath.join(ptr.path, entry.relpath),
                                                  entry.oid))
        except MomaError as exc:
            result.invalid.append(f"{ptr.pointer_path}: {exc.message}")
