"""Tracking data: `moma add` (cache the bytes, write the pointer, git-ignore the data);
`status` and `checkout` live in data_status.py and data_checkout.py."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from moma_cli.core import hashing, manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.lineage import Lineage
from moma_cli.core.paths import is_within
from moma_cli.errors import PathError
from moma_cli.services import walkstamp, workspace
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo, add_gitignore_entries


@dataclass
class AddedItem:
    path: str
    kind: str
    oid: str
    size: int
    nfiles: int | None
    changed: bool  # False when the pointer already said exactly this
    skipped: list[str] = field(default_factory=list)  # git's or moma's own, never tracked


@dataclass
class AddResult:
    items: list[AddedItem] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)


def add(
    repo: Repo,
    targets: Sequence[str],
    *,
    stage: bool = True,
    jobs: int | None = None,
    cwd: Path | None = None,
    lineage: Lineage | None = None,
    progress: Progress = SILENT,
) -> AddResult:
    rels = [repo.relpath(t, cwd) for t in targets]
    return save(repo, rels, stage=stage, jobs=jobs, lineage=lineage, progress=progress)


def save(
    repo: Repo,
    rels: Sequence[str],
    *,
    stage: bool = True,
    jobs: int | None = None,
    lineage: Lineage | None = None,
    progress: Progress = SILENT,
) -> AddResult:
    """Cache repo-relative paths, write their pointers (with `lineage` when given) and
    git-ignore the data; `moma add` and pipeline outputs both go through here."""
    check_addable(repo, list(rels))
    result = AddResult()
    to_stage: list[str] = []
    for rel in rels:
        skipped = workspace.Skipped()
        ptr = track(repo, rel, jobs=jobs, progress=progress, skipped=skipped)
        if lineage is not None:
            ptr = replace(ptr, lineage=lineage)
        parent, name = posixpath.split(rel)
        # .gitignore first: if it cannot be written, no pointer is left behind.
        add_gitignore_entries(repo.root, parent, ["/" + name])
        changed = repo.write_pointer(ptr)
        to_stage += [ptr.pointer_path, posixpath.join(parent, ".gitignore")]
        result.items.append(AddedItem(rel, ptr.kind, ptr.oid, ptr.size, ptr.nfiles, changed,
                                      [posixpath.join(rel, r) for r in skipped.reserved]))
    if stage:
        repo.git.add(to_stage)
        result.staged = to_stage
    return result


def track(
    repo: Repo, rel: str, *, store: bool = True, jobs: int | None = None,
    progress: Progress = SILENT, skipped: workspace.Skipped | None = None,
) -> pointer_mod.Pointer:
    """Store the data at `rel` in the cache and return its pointer (not yet written).

    Sections of an existing pointer (model, lineage, meta, unknown keys) are kept, except
    the model's metrics when the bytes changed. Without `store` the data is only hashed
    (through the stat cache), e.g. a pipeline dependency. What a directory's walk left out
    is added to `skipped`; with `store`, moma's temps left there by a killed command are
    removed.
    """
    path = repo.abspath(rel)
    existing = _existing_pointer(repo, rel)
    algo = repo.cache.algo
    if path.is_dir() and not path.is_symlink():
        return _track_dir(repo, rel, str(path), existing, store=store, jobs=jobs,
                          progress=progress, skipped=skipped or workspace.Skipped())
    info = workspace.file_info(str(path))
    oid = workspace.oids_of(repo, [info], store=store, progress=progress)[info.path]
    return pointer_mod.Pointer(rel, algo, oid, info.key.size, "file", None,
                               **_kept(existing, oid))


def _track_dir(
    repo: Repo, rel: str, top: str, existing: pointer_mod.Pointer | None, *, store: bool,
    jobs: int | None, progress: Progress, skipped: workspace.Skipped,
) -> pointer_mod.Pointer:
    algo = repo.cache.algo
    walked: str | None = None
    if store and existing is not None and existing.is_dir and existing.algo == algo:
        # A first walk for the stamp: unchanged since its listing was made, nothing to hash
        # or store. Otherwise a second walk feeds the hashing (a million files are never
        # held at once).
        walked = walkstamp.walk_stamp(workspace.iter_walk(top, skipped))
        workspace.remove_tmps(repo, rel, skipped.tmps)
        stamp = walkstamp.clean_stamp(existing, walked, repo.cache.stamp())
        if repo.state.is_clean(top, stamp):
            return existing
    stamper = walkstamp.WalkStamp()
    files = stamper.feed(workspace.iter_walk(top, skipped if walked is None else None))
    totals = workspace.Totals()
    entries = totals.count(workspace.iter_entries(repo, top, files, store=store, jobs=jobs,
                                                  progress=progress))
    lines = manifest.encode_lines(entries, algo)
    if not store:
        oid = hashing.hash_chunks(lines, algo)
        return pointer_mod.Pointer(rel, algo, oid, totals.size, "dir", totals.nfiles,
                                   **_kept(existing, oid))
    oid = repo.cache.add_chunks(stamper.track(lines))
    if walked is None:  # one walk: its temps are known now
        walked = stamper.hexdigest()
        workspace.remove_tmps(repo, rel, skipped.tmps)
    repo.state.put_listing(top, oid)
    ptr = pointer_mod.Pointer(rel, algo, oid, totals.size, "dir", totals.nfiles,
                              **_kept(existing, oid))
    # Every file is in the cache now: `status` and the next `add` of the same walk can
    # answer from the stamp (the cache's is taken after the objects were stored), and a
    # `status` with a few files changed from the parts.
    stamper.remember(repo.state, top, ptr, walked, repo.cache.stamp())
    return ptr


def _kept(existing: pointer_mod.Pointer | None, oid: str) -> dict[str, Any]:
    """The sections a re-add keeps. Metrics describe the bytes they were measured on, so
    new bytes drop them (a retrained model must not pass its gates on the old numbers)."""
    if existing is None:
        return {}
    model = existing.model
    if model is not None and existing.oid != oid:
        model = model.without_metrics()
    return {"extra": dict(existing.extra), "model": model, "lineage": existing.lineage}


def _existing_pointer(repo: Repo, rel: str) -> pointer_mod.Pointer | None:
    if not (repo.root / pointer_mod.pointer_path_of(rel)).exists():
        return None
    return repo.load_pointer(pointer_mod.pointer_path_of(rel))


def check_addable(repo: Repo, rels: list[str], *, must_exist: bool = True) -> None:
    """Refuse pointers, symlinks, git-tracked paths and paths overlapping other pointers."""
    for rel in rels:
        path = repo.abspath(rel)
        if pointer_mod.is_pointer_path(rel):
            raise PathError(f"{rel}: is a moma pointer; add the data it points to instead")
        if path.is_symlink():
            raise PathError(f"{rel}: is a symlink; moma tracks regular files and directories",
                            hint="add what it points to, or replace the link with a copy of "
                                 "its target")
        if must_exist and not path.exists():
            raise PathError(f"{rel}: no such file or directory",
                            hint="check the path (it is relative to where you run moma)")
    # Overlaps first: a committed pointer inside the target is also "tracked by git", and
    # naming both pointers is the clearer message.
    existing = [pointer_mod.data_path_of(p) for p in repo.git.pointer_files()]
    for rel in rels:
        for other in existing:
            if other != rel and is_within(rel, other):
                raise PathError(f"{rel}: is inside {other}, which moma tracks as a whole",
                                hint=f"run 'moma add {other}' to record the change")
            if other != rel and is_within(other, rel):
                raise PathError(f"{rel}: contains {other}, which has its own pointer",
                                hint=f"remove {other}.moma first, or add a different path")
    tracked = repo.git.tracked(rels)
    if tracked:
        first = tracked[0]
        raise PathError(
            f"{first}: is already tracked by git",
            hint=f"stop tracking it with 'git rm -r --cached {first}' and commit, then add it",
        )
