"""`moma fsck`: re-hash the whole cache, quarantine what is corrupt, report what is missing."""

from __future__ import annotations

import os
import posixpath
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from moma_cli.errors import MomaError
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo

STALE_TMP_SECONDS = 3600


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
    stale_tmp: list[str] = field(default_factory=list)  # removed temp files

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
    """Temp files left by killed writers; an hour old is long past any live write.

    The caller holds the repository lock, so no moma writer is running anyway.
    """
    removed: list[str] = []
    tmp_dir = repo.cache.tmp_dir
    if not tmp_dir.is_dir():
        return removed
    for entry in os.scandir(tmp_dir):
        if entry.is_file(follow_symlinks=False) and \
                now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS:
            os.unlink(entry.path)
            removed.append(entry.name)
    return sorted(removed)


def _verify_objects(repo: Repo, result: FsckResult, jobs: int | None,
                    progress: Progress) -> None:
    oids = list(repo.cache.iter_oids())

    def check(oid: str) -> tuple[str, str | None]:
        try:
            actual = repo.cache.hash_file(repo.cache.oid_to_path(oid))
        except OSError as exc:
            return oid, f"unreadable: {exc.strerror}"
        return oid, None if actual == oid else f"content hashes to {actual[:8]}"

    progress.start("verifying cache", len(oids))
    bad: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=repo.jobs(jobs)) as pool:
        for oid, reason in pool.map(check, oids):
            if reason:
                bad.append((oid, reason))
            progress.advance()
    progress.finish()
    result.checked = len(oids)
    for oid, reason in sorted(bad):
        result.corrupt.append(Corrupt(oid, str(repo.cache.quarantine(oid)), reason))


def _find_missing(repo: Repo, result: FsckResult) -> None:
    pointers, errors = repo.pointers()
    result.invalid = [e.message for e in errors]
    cache = repo.cache
    for ptr in pointers:
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
