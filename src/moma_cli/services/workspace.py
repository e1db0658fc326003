"""Walking tracked data in the workspace and hashing it through the stat cache."""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from moma_cli.atomic import is_tmp_name, is_tmp_sibling
from moma_cli.core import manifest
from moma_cli.core.hashing import hash_bytes
from moma_cli.core.paths import is_reserved_name
from moma_cli.core.pointer import Pointer
from moma_cli.errors import PathError
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo
from moma_cli.storage.state import StatKey

_CHUNK_BYTES = 16 << 20
_CHUNK_FILES = 256


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
    """Every regular file below `top`, in one scandir pass; symlinks and devices refused.

    Symlinks are refused rather than followed: following could pull in files from outside
    the repository, and a checkout could then write through them. moma's temps and names
    that are git's or moma's own (`sub/.git`) are left out, and listed in `skipped`.
    """
    found: list[FileInfo] = []
    is_reg = stat_mod.S_ISREG
    skipped = skipped or Skipped()
    stack = [("", top)]
    while stack:
        prefix, directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                if is_tmp_name(entry.name):  # a write cut short by a crash, never user data
                    skipped.tmps.append(entry.path)
                    continue
                rel = prefix + entry.name
                if is_reserved_name(entry.name):  # a nested clone's .git: never data
                    skipped.reserved.append(rel)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                    continue
                st = entry.stat(follow_symlinks=False)
                if not is_reg(st.st_mode):
                    what = "a symlink" if stat_mod.S_ISLNK(st.st_mode) else "not a regular file"
                    raise PathError(
                        f"{entry.path}: is {what}; moma tracks regular files only",
                        hint="replace it with the file it points to, or move it out",
                    )
                found.append(FileInfo(rel, entry.path,
                                      StatKey(st.st_ino, st.st_size, st.st_mtime_ns)))
    found.sort()  # by relpath: it comes first and is unique
    return found


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


def clean_stamp(ptr: Pointer, walked: str, cached: str) -> str:
    """What a directory's state is remembered by once found up to date: its pointer, the
    stamp of its walk and the cache's stamp. Equal stamps later: still up to date."""
    return f"{ptr.oid}:{ptr.nfiles}:{ptr.size}:{walked}:{cached}"


def walk_stamp(files: list[FileInfo]) -> str:
    """A digest of a walk's names and stat keys: equal stamps, same files unchanged (to the
    stat cache's standard)."""
    text = "\n".join([f"{f.relpath}\0{f.key.ino}\0{f.key.size}\0{f.key.mtime_ns}"
                      for f in files])
    return hash_bytes(text.encode(errors="surrogateescape"), "blake3")


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
    algo = repo.cache.algo
    known = repo.state.get_tree(tree, algo) if tree else {}
    result: dict[str, str] = {}
    todo: list[FileInfo] = []
    for info in files:
        hit = known.get(info.path)
        oid = hit[3] if hit and hit[:3] == info.key else (
            None if tree else repo.state.get(info.path, info.key, algo))
        if oid and (not store or repo.cache.exists(oid)):
            result[info.path] = oid
        else:
            todo.append(info)
    if not todo:
        return result

    from concurrent.futures import ThreadPoolExecutor  # status of unchanged data never hashes

    progress.start("hashing", len(todo))
    rows = []
    with contextlib.ExitStack() as stack:
        batch = stack.enter_context(repo.cache.batch()) if store else None

        # Hardlink into the cache only when the user prefers hardlinks for the workspace:
        # the file then becomes read-only (docs/performance.md).
        link = repo.config.link_types[0] == "hardlink"

        def work(chunk: list[FileInfo]) -> list[tuple[FileInfo, str, bool]]:
            done = []
            for info in chunk:
                if batch is not None and link:
                    linked = batch.link_file(info.path, info.key)
                    if linked is not None:  # verified unchanged by link_file
                        done.append((info, linked[0], True))
                        continue
                if batch is not None:
                    oid = batch.add_file(info.path)[0]
                else:
                    oid = repo.cache.hash_file(info.path, info.key.size)
                # Only remember the hash if the file did not change while we read it.
                done.append((info, oid, StatKey.of(os.stat(info.path)) == info.key))
            return done

        chunks = _chunks(todo)
        with ThreadPoolExecutor(max_workers=min(len(chunks), repo.jobs(jobs))) as pool:
            for done in pool.map(work, chunks):
                for info, oid, unchanged in done:
                    result[info.path] = oid
                    if unchanged:
                        rows.append((info.path, info.key, algo, oid))
                progress.advance(len(done))
    progress.finish()
    repo.state.put_many(rows)
    return result


def dir_entries(
    repo: Repo, top: str, *, store: bool, jobs: int | None = None, progress: Progress = SILENT,
    files: list[FileInfo] | None = None,
) -> list[manifest.Entry]:
    """A directory's files as manifest entries, hashed through the stat cache; `files` is
    the directory's walk when the caller has it already."""
    if files is None:
        files = walk_dir(top)
    oids = oids_of(repo, files, store=store, tree=top, jobs=jobs, progress=progress)
    return [manifest.Entry(f.relpath, oids[f.path], f.key.size) for f in files]


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
