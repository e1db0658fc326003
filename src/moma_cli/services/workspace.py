"""Walking tracked data in the workspace and hashing it through the stat cache."""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from moma_cli.core import manifest
from moma_cli.errors import PathError
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo
from moma_cli.storage.state import StatKey


@dataclass(frozen=True)
class FileInfo:
    relpath: str  # relative to the tracked directory (or the file's own name)
    path: str  # absolute
    key: StatKey


def walk_dir(top: str) -> list[FileInfo]:
    """Every regular file below `top`, in one scandir pass; symlinks and devices refused.

    Symlinks are refused rather than followed: following could pull in files from outside
    the repository, and a checkout could then write through them.
    """
    found: list[FileInfo] = []
    stack = [("", top)]
    while stack:
        prefix, directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                    continue
                st = entry.stat(follow_symlinks=False)
                if not stat_mod.S_ISREG(st.st_mode):
                    what = "a symlink" if stat_mod.S_ISLNK(st.st_mode) else "not a regular file"
                    raise PathError(
                        f"{entry.path}: is {what}; moma tracks regular files only",
                        hint="replace it with the file it points to, or move it out",
                    )
                found.append(FileInfo(rel, entry.path, StatKey.of(st)))
    found.sort(key=lambda f: f.relpath)
    return found


def file_info(path: str) -> FileInfo:
    st = os.lstat(path)
    if not stat_mod.S_ISREG(st.st_mode):
        raise PathError(f"{path}: is not a regular file")
    return FileInfo(os.path.basename(path), path, StatKey.of(st))


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
        oid = hit[1] if hit and hit[0] == info.key else (
            None if tree else repo.state.get(info.path, info.key, algo))
        if oid and (not store or repo.cache.exists(oid)):
            result[info.path] = oid
        else:
            todo.append(info)
    if not todo:
        return result

    def work(info: FileInfo) -> tuple[FileInfo, str]:
        if store:
            oid, _ = repo.cache.add_file(info.path)
        else:
            oid = repo.cache.hash_file(info.path, info.key.size)
        return info, oid

    progress.start("hashing", len(todo))
    rows = []
    workers = 1 if len(todo) == 1 else repo.jobs(jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for info, oid in pool.map(work, todo):
            result[info.path] = oid
            # Only remember the hash if the file did not change while we read it.
            if StatKey.of(os.stat(info.path)) == info.key:
                rows.append((info.path, info.key, algo, oid))
            progress.advance()
    progress.finish()
    repo.state.put_many(rows)
    return result


def dir_entries(
    repo: Repo, top: str, *, store: bool, jobs: int | None = None, progress: Progress = SILENT
) -> list[manifest.Entry]:
    """A directory's files as manifest entries, hashed through the stat cache."""
    files = walk_dir(top)
    oids = oids_of(repo, files, store=store, tree=top, jobs=jobs, progress=progress)
    return [manifest.Entry(f.relpath, oids[f.path], f.key.size) for f in files]
