"""Walking tracked data in the workspace and hashing it through the stat cache.

Past the house's ~350 lines on purpose: the sorted walk and the windowed hashing (a window
of files: one stat-cache range query, one thread pool, one cache batch) are one pipeline that
`add`, `status`, `fsck` and checkout stream a million files through; split, each part would
have to know the others' window and ordering rules.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat as stat_mod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from moma_cli.atomic import is_tmp_name, is_tmp_sibling
from moma_cli.core import manifest
from moma_cli.core.paths import is_reserved_name
from moma_cli.errors import PathError
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo
from moma_cli.storage.state import StatKey

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from moma_cli.storage.cache import Batch

_CHUNK_BYTES = 16 << 20
_CHUNK_FILES = 256
# Files per window of a directory's walk: one stat-cache range query and one cache sync
# each (a million files: 31 syncs, ~13 MB of FileInfos at a time).
_WINDOW = 32768


class FileInfo(NamedTuple):
    """One file of a walk. A NamedTuple: a frozen dataclass cost 3x more to build, per file."""

    relpath: str  # relative to the tracked directory (or the file's own name)
    path: str  # absolute
    key: StatKey


@dataclass
class Skipped:
    """What a walk left out."""

    reserved: list[str] = field(default_factory=list)  # git's or moma's own, never tracked
    tmps: list[str] = field(default_factory=list)  # absolute paths of moma's temps


def walk_dir(top: str, skipped: Skipped | None = None) -> list[FileInfo]:
    """Every regular file below `top`, sorted by relative path (see `iter_walk`)."""
    return list(iter_walk(top, skipped))


def iter_walk(top: str, skipped: Skipped | None = None) -> Iterator[FileInfo]:
    """Every regular file below `top`, in relative-path order, one directory listed at a
    time (a million FileInfos held at once were ~400 MB); symlinks and devices refused.

    Each directory's entries are sorted with a '/' after directory names, which gives the
    order of the full relative paths ('a-b' < 'a/c'), so no global sort is needed.
    Symlinks are refused rather than followed: following could pull in files from outside
    the repository, and a checkout could then write through them. moma's temps and names
    that are git's or moma's own (`sub/.git`) are left out, and listed in `skipped`.
    """
    skipped = skipped or Skipped()
    stack = [iter(_scan(top, "", skipped))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif type(item) is str:  # a sub-directory's relative path
            stack.append(iter(_scan(os.path.join(top, item), item + "/", skipped)))
        else:
            yield item  # type: ignore[misc]


def _scan(directory: str, prefix: str, skipped: Skipped) -> list[FileInfo | str]:
    """One directory's files (as FileInfo) and sub-directories (as their relative
    paths), in walk order."""
    found: list[tuple[str, FileInfo | str]] = []
    is_reg = stat_mod.S_ISREG
    with os.scandir(directory) as it:
        for entry in it:
            name = entry.name
            if is_tmp_name(name):  # a write cut short by a crash, never user data
                skipped.tmps.append(entry.path)
                continue
            rel = prefix + name
            if is_reserved_name(name):  # a nested clone's .git: never data
                skipped.reserved.append(rel)
                continue
            if entry.is_dir(follow_symlinks=False):
                found.append((name + "/", rel))
                continue
            st = entry.stat(follow_symlinks=False)
            if not is_reg(st.st_mode):
                what = "a symlink" if stat_mod.S_ISLNK(st.st_mode) else "not a regular file"
                raise PathError(
                    f"{entry.path}: is {what}; moma tracks regular files only",
                    hint="replace it with the file it points to, or move it out",
                )
            found.append((name, FileInfo(rel, entry.path,
                                         StatKey(st.st_ino, st.st_size, st.st_mtime_ns))))
    found.sort(key=lambda pair: pair[0])  # names are unique in a directory
    return [item for _, item in found]


def _find_tmps(top: str) -> list[str]:
    """moma's temps anywhere below `top` (symlinks not followed): a checkout killed between
    writing its temps and renaming them leaves them beside their destinations."""
    found: list[str] = []
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if is_tmp_name(entry.name):
                        found.append(entry.path)
                    elif entry.is_dir(follow_symlinks=False) and \
                            not is_reserved_name(entry.name):
                        stack.append(entry.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return found


def remove_tmps(repo: Repo, rel: str, found: list[str] | None = None) -> list[str]:
    """Delete moma's temps in the tracked directory `rel` (those a walk of it `found`, or
    all below it); return those removed, repo-relative.

    Only names `tmp_sibling` gives, only in a directory whose every component is a real
    directory inside the repository, and only while no other moma works here (the lock),
    so no temp in flight is ever touched.
    """
    if found is not None and not found:
        return []
    top = repo.abspath(rel)
    if os.path.realpath(top) != os.path.join(repo.real_root, rel):
        return []
    found = _find_tmps(str(top)) if found is None else found
    paths = [p for p in found if is_tmp_sibling(os.path.basename(p))]
    if not paths:
        return []
    removed: list[str] = []
    with repo.exclusive() as alone:
        if not alone:
            return []
        for path in paths:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(path)
                removed.append(os.path.relpath(path, repo.root))
    return sorted(removed)


def file_info(path: str) -> FileInfo:
    st = os.lstat(path)
    if not stat_mod.S_ISREG(st.st_mode):
        raise PathError(f"{path}: is not a regular file")
    return FileInfo(os.path.basename(path), path, StatKey.of(st))


def current_oid(repo: Repo, path: Path) -> str | None:
    """The oid of what is at `path` now: moma's own symlink names it, a regular file is
    hashed (through the stat cache); None for anything else, which is never plain data."""
    if path.is_symlink():
        target = Path(os.readlink(path))
        if target.parent.parent == repo.cache.objects_dir:  # our own symlink
            return target.parent.name + target.name
        return None
    if not path.is_file():
        return None
    info = file_info(str(path))
    return oids_of(repo, [info], store=False)[info.path]


def oids_of(
    repo: Repo,
    files: Iterable[FileInfo],
    *,
    store: bool,
    tree: str | None = None,
    jobs: int | None = None,
    progress: Progress = SILENT,
) -> dict[str, str]:
    """path -> oid for each file, hashing only what the stat cache does not know.

    With `store`, hashed files are also copied into the cache in the same read, and a file
    the stat cache knows is re-stored if its object went missing from the cache.
    `tree` names a directory whose stat-cache rows are loaded in one query.
    """
    files = list(files)
    known = repo.state.get_tree(tree, repo.cache.algo) if tree else None
    with _Resolver(repo, store=store, jobs=jobs, progress=progress, total=len(files)) as res:
        return res.resolve(files, known)


def iter_entries(
    repo: Repo, top: str, files: Iterable[FileInfo], *, store: bool, jobs: int | None = None,
    progress: Progress = SILENT,
) -> Iterator[manifest.Entry]:
    """The manifest entries of a directory's walk `files` (in walk order), hashed through
    the stat cache a window of _WINDOW files at a time: one range query per window, one
    thread pool, and (with `store`) a window's objects synced and renamed into the cache
    while the next window is hashed, so memory does not grow with the number of files.
    Every object is in the cache, durably, once the iterator is exhausted."""
    algo = repo.cache.algo
    with _Resolver(repo, store=store, jobs=jobs, progress=progress) as res:
        window: list[FileInfo] = []
        for info in itertools.chain(files, [None]):
            if info is not None:
                window.append(info)
                if len(window) < _WINDOW:
                    continue
            if not window:
                break
            known = repo.state.get_between(window[0].path, window[-1].path, algo)
            oids = res.resolve(window, known)
            res.commit_behind()
            for f in window:
                yield manifest.Entry(f.relpath, oids[f.path], f.key.size)
            window = []


class Totals:
    """Count and size of the entries passing through `count`."""

    def __init__(self) -> None:
        self.nfiles = 0
        self.size = 0

    def count(self, entries: Iterable[manifest.Entry]) -> Iterator[manifest.Entry]:
        for e in entries:
            self.nfiles += 1
            self.size += e.size
            yield e


class _Resolver:
    """Files -> oids: the stat cache first, then hashing (with `store`, copying into the
    cache in the same read) on one lazily made thread pool and cache batch."""

    def __init__(self, repo: Repo, *, store: bool, jobs: int | None, progress: Progress,
                 total: int | None = None) -> None:
        self.repo = repo
        self.store = store
        self.jobs = jobs
        self.progress = progress
        self.total = total
        self.stack = contextlib.ExitStack()
        self.pool: ThreadPoolExecutor | None = None
        self.batch: Batch | None = None
        # Hardlink into the cache only when the user prefers hardlinks for the workspace:
        # the file then becomes read-only (docs/performance.md).
        self.link = store and repo.config.link_types[0] == "hardlink"

    def __enter__(self) -> _Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an exception the batch renames nothing and removes its temps.
        self.stack.__exit__(*exc)  # type: ignore[arg-type]
        if self.pool is not None:
            self.progress.finish()

    def commit_behind(self) -> None:
        """Sync and rename what the batch holds so far (bounds its memory) on a thread,
        while the next window is hashed; the batch's exit waits for it."""
        if self.batch is not None:
            self.batch.commit_behind()

    def resolve(self, files: list[FileInfo],
                known: dict[str, tuple[int, int, int, str]] | None) -> dict[str, str]:
        repo, store, algo = self.repo, self.store, self.repo.cache.algo
        result: dict[str, str] = {}
        todo: list[FileInfo] = []
        for info in files:
            if known is not None:
                hit = known.get(info.path)
                oid = hit[3] if hit and hit[:3] == info.key else None
            else:
                oid = repo.state.get(info.path, info.key, algo)
            if oid and (not store or repo.cache.exists(oid)):
                result[info.path] = oid
            else:
                todo.append(info)
        if todo:
            rows = []
            for info, oid, unchanged in self._hash(todo):
                result[info.path] = oid
                if unchanged:
                    rows.append((info.path, info.key, algo, oid))
            repo.state.put_many(rows)
        return result

    def _hash(self, todo: list[FileInfo]) -> Iterator[tuple[FileInfo, str, bool]]:
        if self.pool is None:
            # Imported here: status of unchanged data never hashes.
            from concurrent.futures import ThreadPoolExecutor

            self.pool = self.stack.enter_context(
                ThreadPoolExecutor(max_workers=self.repo.jobs(self.jobs)))
            if self.store:
                self.batch = self.stack.enter_context(self.repo.cache.batch())
            self.progress.start("hashing", self.total)
        for done in self.pool.map(self._work, _chunks(todo)):
            yield from done
            self.progress.advance(len(done))

    def _work(self, chunk: list[FileInfo]) -> list[tuple[FileInfo, str, bool]]:
        batch, cache = self.batch, self.repo.cache
        done = []
        for info in chunk:
            if batch is not None and self.link:
                linked = batch.link_file(info.path, info.key)
                if linked is not None:  # verified unchanged by link_file
                    done.append((info, linked[0], True))
                    continue
            if batch is not None:
                oid, _, after = batch.add_file(info.path, info.key.size)
            else:
                oid = cache.hash_file(info.path, info.key.size)
                after = StatKey.of(os.stat(info.path))
            # Only remember the hash if the file did not change while we read it.
            done.append((info, oid, after == info.key))
        return done


def dir_entries(
    repo: Repo, top: str, *, store: bool, jobs: int | None = None, progress: Progress = SILENT,
    files: list[FileInfo] | None = None,
) -> list[manifest.Entry]:
    """A directory's files as manifest entries, hashed through the stat cache; `files` is
    the directory's walk when the caller has it already."""
    return list(iter_entries(repo, top, iter_walk(top) if files is None else files,
                             store=store, jobs=jobs, progress=progress))


def _chunks(files: list[FileInfo]) -> list[list[FileInfo]]:
    """Group files into tasks of about _CHUNK_BYTES (at most _CHUNK_FILES files), so that
    thousands of small files do not each pay for a future and a thread hand-off."""
    chunks: list[list[FileInfo]] = []
    current: list[FileInfo] = []
    size = 0
    for info in files:
        current.append(info)
        size += info.key.size
        if size >= _CHUNK_BYTES or len(current) >= _CHUNK_FILES:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks
