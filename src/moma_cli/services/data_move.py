"""`moma move`: rename tracked data and its pointer together (every section of the pointer
kept), move its .gitignore line along, and stage the change; never over anything."""

from __future__ import annotations

import errno
import os
import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path

from moma_cli.core import pointer as pointer_mod
from moma_cli.core.paths import check_repo_relpath, is_within
from moma_cli.errors import PathError
from moma_cli.services.data_remove import check_not_stage_output, tracked_path
from moma_cli.services.repo import (
    Repo,
    add_gitignore_entries,
    gitignore_path,
    remove_gitignore_entries,
)
from moma_cli.storage.state import StatKey


@dataclass
class MoveResult:
    src: str
    dst: str
    moved_data: bool  # False when the data was not in the workspace (only the pointer moved)
    staged: list[str] = field(default_factory=list)


def move(repo: Repo, src: str, dst: str, *, cwd: Path | None = None) -> MoveResult:
    src_rel = tracked_path(repo, src, cwd, "move")
    ptr = repo.load_pointer(pointer_mod.pointer_path_of(src_rel))
    dst_rel = _destination(repo, src_rel, dst, cwd)
    check_not_stage_output(repo, [src_rel, dst_rel], "move")
    src_abs, dst_abs = repo.abspath(src_rel), repo.abspath(dst_rel)
    src_parent, src_name = posixpath.split(src_rel)
    dst_parent, dst_name = posixpath.split(dst_rel)
    gitignore_path(repo.root, src_parent)  # refused before anything moves
    dst_abs.parent.mkdir(parents=True, exist_ok=True)
    # .gitignore first: if it cannot be written, nothing has moved and git never sees data.
    add_gitignore_entries(repo.root, dst_parent, ["/" + dst_name])
    moved = os.path.lexists(src_abs)
    if moved:
        try:
            os.rename(src_abs, dst_abs)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            raise PathError(f"{dst_rel}: is on another filesystem than {src_rel}",
                            hint=f"move it with 'mv', then 'moma add {dst_rel}' and "
                            f"'moma remove {src_rel}'") from None
        _carry_stat_cache(repo, str(src_abs), str(dst_abs), ptr.is_dir)
    repo.write_pointer(replace(ptr, path=dst_rel))
    os.unlink(repo.abspath(ptr.pointer_path))
    remove_gitignore_entries(repo.root, src_parent, ["/" + src_name])
    staged = [ptr.pointer_path, posixpath.join(src_parent, ".gitignore"),
              pointer_mod.pointer_path_of(dst_rel), posixpath.join(dst_parent, ".gitignore")]
    repo.git.stage(staged)
    return MoveResult(src_rel, dst_rel, moved, list(dict.fromkeys(staged)))


def _destination(repo: Repo, src_rel: str, dst: str, cwd: Path | None) -> str:
    """The new data path (inside DST when DST is a directory), once nothing is there, it
    is no name of moma's or git's, and it overlaps no other tracked data."""
    name = posixpath.basename(src_rel)
    if os.path.abspath(Path(cwd or os.getcwd()) / dst) == os.path.abspath(repo.root):
        rel = name  # `moma move data/x.csv .` from the top
    else:
        rel = repo.relpath(dst, cwd)
        into = dst.endswith(("/", os.sep)) or (repo.abspath(rel).is_dir()
                                               and not repo.abspath(rel).is_symlink())
        if into:  # `moma move model.pkl models/` creates models/ if need be
            rel = check_repo_relpath(posixpath.join(rel, name))
    repo.check_no_escape(rel)
    path = repo.abspath(rel)
    if pointer_mod.is_pointer_path(rel):
        raise PathError(f"{dst}: names a pointer file; give the data's new path",
                        hint=f"e.g. 'moma move {src_rel} {pointer_mod.data_path_of(rel)}'")
    for taken in (rel, pointer_mod.pointer_path_of(rel)):
        if os.path.lexists(repo.abspath(taken)):
            raise PathError(f"{taken}: already exists; moma move never overwrites",
                            hint="move or remove it first, or pick another destination")
    parent = posixpath.dirname(rel)
    while parent:
        if os.path.lexists(repo.abspath(parent)) and not repo.abspath(parent).is_dir():
            raise PathError(f"{parent}: is a file, not a directory; cannot move into it")
        parent = posixpath.dirname(parent)
    if is_within(rel, src_rel):
        raise PathError(f"{rel}: is inside {src_rel}, the data being moved")
    cache = os.path.abspath(repo.config.cache_dir)
    if is_within(os.path.abspath(path), cache):
        raise PathError(f"{rel}: is inside moma's cache directory")
    for other in (pointer_mod.data_path_of(p) for p in repo.git.pointer_files()):
        if other != src_rel and (is_within(rel, other) or is_within(other, rel)):
            raise PathError(f"{rel}: overlaps {other}, which moma tracks",
                            hint="pick a destination outside other tracked data")
    if repo.git.tracked([":(literal)" + rel]):
        raise PathError(f"{rel}: is tracked by git", hint="pick another destination")
    return rel


def _carry_stat_cache(repo: Repo, src: str, dst: str, is_dir: bool) -> None:
    """A rename keeps every file's inode, size and mtime: what the stat cache knew of the
    old paths holds for the new ones, so the next `status` of moved gigabytes hashes
    nothing."""
    algo = repo.cache.algo
    if not is_dir:
        oid = repo.state.get(src, key := StatKey.of(os.lstat(dst)), algo)
        rows = [(dst, key, algo, oid)] if oid else []
    else:
        rows = [(dst + path[len(src):], StatKey(*row[:3]), algo, row[3])
                for path, row in repo.state.get_tree(src, algo).items()]
        listing = repo.state.get_listing(src)
        if listing is not None:
            repo.state.put_listing(dst, listing)
    repo.state.put_many(rows)
