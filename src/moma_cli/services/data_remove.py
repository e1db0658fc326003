"""`moma remove`: stop tracking data (its pointer and its .gitignore line go, the change is
staged); the data stays in the workspace unless asked to delete it, and then only when
every byte of it is safely in the cache."""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.core import manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import hash_bytes
from moma_cli.core.paths import is_within
from moma_cli.errors import MomaError, PathError
from moma_cli.services import workspace
from moma_cli.services.pipeline.loading import load_stages
from moma_cli.services.repo import Repo, gitignore_path, remove_gitignore_entries


@dataclass
class RemovedItem:
    path: str
    pointer: str
    data: str  # kept | deleted | absent (not in the workspace)
    model: str | None = None  # the registered model this pointer held
    left: list[str] = field(default_factory=list)  # git's own files a deleted dir kept


@dataclass
class RemoveResult:
    items: list[RemovedItem] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)


def remove(
    repo: Repo, targets: Sequence[str], *, delete_data: bool = False, cwd: Path | None = None,
) -> RemoveResult:
    """Untrack every target, or none: all are checked (and with `delete_data`, their data
    found safely cached) before anything changes."""
    rels = list(dict.fromkeys(tracked_path(repo, t, cwd, "remove") for t in targets))
    check_not_stage_output(repo, rels, "remove")
    plans = [_plan(repo, rel, delete_data) for rel in rels]
    result = RemoveResult()
    for rel, (ptr, doomed) in zip(rels, plans, strict=True):
        item = RemovedItem(rel, pointer_mod.pointer_path_of(rel),
                           "kept" if os.path.lexists(repo.abspath(rel)) else "absent")
        if ptr is not None and ptr.model is not None:
            item.model = ptr.model.name
        if doomed is not None:
            item.left = _delete(repo, rel, doomed)
            item.data = "deleted"
        parent, name = posixpath.split(rel)
        remove_gitignore_entries(repo.root, parent, ["/" + name])
        os.unlink(repo.abspath(item.pointer))
        result.staged += [item.pointer, posixpath.join(parent, ".gitignore")]
        result.items.append(item)
    repo.git.stage(result.staged)
    return result


def tracked_path(repo: Repo, target: str, cwd: Path | None, verb: str) -> str:
    """The tracked data path `target` names (the data or its pointer), or an error saying
    what it is instead."""
    rel = repo.relpath(target, cwd)
    if pointer_mod.is_pointer_path(rel):
        rel = pointer_mod.data_path_of(rel)
    if os.path.lexists(repo.abspath(pointer_mod.pointer_path_of(rel))):
        return rel
    tracked = [pointer_mod.data_path_of(p) for p in repo.git.pointer_files()]
    outer = [d for d in tracked if is_within(rel, d)]
    inner = [d for d in tracked if is_within(d, rel)]
    if outer:
        hint = f"it is inside {outer[0]}, which moma tracks as a whole: 'moma {verb} {outer[0]}'"
    elif inner:
        hint = f"it holds tracked data: name that, e.g. 'moma {verb} {inner[0]}'"
    else:
        hint = "'moma status' lists what moma tracks"
    raise PathError(f"{target}: not tracked by moma (no {pointer_mod.pointer_path_of(rel)})",
                    hint=hint)


def check_not_stage_output(repo: Repo, rels: Sequence[str], verb: str) -> None:
    """Refuse a pipeline stage's output: `.moma.yaml` would still name it, and the next
    `moma repro` would bring it back where it was."""
    for name, stage in load_stages(repo).items():
        for rel in rels:
            if rel in stage.produces:
                raise PathError(f"{rel}: is an output of stage '{name}' in .moma.yaml; moma "
                                f"will not {verb} it on its own",
                                hint="change the stage's outs in .moma.yaml, then run "
                                "'moma repro'")


def _plan(repo: Repo, rel: str, delete_data: bool
          ) -> tuple[pointer_mod.Pointer | None, list[str] | None]:
    """The pointer (None when it does not parse: keeping the data, it can still go) and,
    when the data is to be deleted, the files to delete."""
    gitignore_path(repo.root, posixpath.dirname(rel))  # one that cannot be edited: refuse now
    try:
        ptr = repo.load_pointer(pointer_mod.pointer_path_of(rel))
    except MomaError as exc:
        if delete_data:
            raise PathError(f"{exc.message}; its data cannot be checked against the cache, "
                            "so moma will not delete it", hint="pass --keep-data") from None
        return None, None
    if not delete_data or not os.path.lexists(repo.abspath(rel)):
        return ptr, None
    return ptr, _cached_files(repo, ptr)


def _cached_files(repo: Repo, ptr: pointer_mod.Pointer) -> list[str]:
    """The absolute paths of the data's files, once each is found to hold exactly what the
    pointer records and its object to be intact in the cache; else an error."""
    refusal = PathError(f"{ptr.path}: differs from its pointer (or is not in the cache); moma "
                        "will not delete data it cannot restore",
                        hint=f"run 'moma add {ptr.path}' first, or pass --keep-data")
    path = repo.abspath(ptr.path)
    repo.check_no_escape(posixpath.join(ptr.path, "."))
    try:
        if not ptr.is_dir:
            if workspace.current_oid(repo, path) != ptr.oid:
                raise refusal
            repo.cache.checked_path(ptr.oid)
            return [str(path)]
        if not path.is_dir() or path.is_symlink():
            raise refusal
        files = workspace.walk_dir(str(path))
        entries = workspace.dir_entries(repo, str(path), store=False, files=files)
        if hash_bytes(manifest.encode(entries, ptr.algo), ptr.algo) != ptr.oid:
            raise refusal  # edited, or files the listing lacks: they are the user's
        for oid in {ptr.oid, *(e.oid for e in entries)}:
            repo.cache.checked_path(oid)
    except PathError:
        raise
    except MomaError:  # missing or corrupt in the cache
        raise refusal from None
    return [f.path for f in files]


def _delete(repo: Repo, rel: str, files: list[str]) -> list[str]:
    """Delete the checked files, then the directories left empty; return what stays (a
    nested `.git`, which no walk lists and moma never deletes)."""
    for path in files:
        os.unlink(path)
    top = repo.abspath(rel)
    if not top.is_dir() or top.is_symlink():
        return []
    workspace.remove_tmps(repo, rel)
    for directory, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty: something moma does not own
            os.rmdir(directory)
    return sorted(posixpath.join(rel, n) for n in os.listdir(top)) if top.exists() else []
