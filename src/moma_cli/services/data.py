"""Tracking data: `add`, `status` and `checkout`."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli.core import manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import hash_bytes
from moma_cli.core.paths import is_within
from moma_cli.errors import HashMismatchError, MomaError, ObjectMissingError, PathError
from moma_cli.services import workspace
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo, add_gitignore_entries
from moma_cli.storage import link

# -- add -------------------------------------------------------------------------------------


@dataclass
class AddedItem:
    path: str
    kind: str
    oid: str
    size: int
    nfiles: int | None
    changed: bool  # False when the pointer already said exactly this


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
    lineage: dict[str, Any] | None = None,
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
    lineage: dict[str, Any] | None = None,
    progress: Progress = SILENT,
) -> AddResult:
    """Cache repo-relative paths, write their pointers (with `lineage` when given) and
    git-ignore the data; `moma add` and pipeline outputs both go through here."""
    check_addable(repo, list(rels))
    result = AddResult()
    to_stage: list[str] = []
    for rel in rels:
        ptr = track(repo, rel, jobs=jobs, progress=progress)
        if lineage is not None:
            ptr = ptr.with_extra(lineage=lineage)
        changed = repo.write_pointer(ptr)
        parent, name = posixpath.split(rel)
        add_gitignore_entries(repo.root, parent, ["/" + name])
        to_stage += [ptr.pointer_path, posixpath.join(parent, ".gitignore")]
        result.items.append(AddedItem(rel, ptr.kind, ptr.oid, ptr.size, ptr.nfiles, changed))
    if stage:
        repo.git.add(to_stage)
        result.staged = to_stage
    return result


def track(
    repo: Repo, rel: str, *, store: bool = True, jobs: int | None = None,
    progress: Progress = SILENT,
) -> pointer_mod.Pointer:
    """Store the data at `rel` in the cache and return its pointer (not yet written).

    Sections of an existing pointer (model, lineage, meta, unknown keys) are kept. Without
    `store` the data is only hashed (through the stat cache), e.g. a pipeline dependency.
    """
    path = repo.abspath(rel)
    extra = _existing_extra(repo, rel)
    algo = repo.cache.algo
    if path.is_dir() and not path.is_symlink():
        entries = workspace.dir_entries(repo, str(path), store=store, jobs=jobs,
                                        progress=progress)
        listing = manifest.encode(entries, algo)
        oid = repo.cache.add_bytes(listing) if store else hash_bytes(listing, algo)
        size = sum(e.size for e in entries)
        return pointer_mod.Pointer(rel, algo, oid, size, "dir", len(entries), extra)
    info = workspace.file_info(str(path))
    oid = workspace.oids_of(repo, [info], store=store, progress=progress)[info.path]
    return pointer_mod.Pointer(rel, algo, oid, info.key.size, "file", None, extra)


def _existing_extra(repo: Repo, rel: str) -> dict[str, object]:
    if not (repo.root / pointer_mod.pointer_path_of(rel)).exists():
        return {}
    return dict(repo.load_pointer(pointer_mod.pointer_path_of(rel)).extra)


def check_addable(repo: Repo, rels: list[str], *, must_exist: bool = True) -> None:
    """Refuse pointers, symlinks, git-tracked paths and paths overlapping other pointers."""
    for rel in rels:
        path = repo.abspath(rel)
        if pointer_mod.is_pointer_path(rel):
            raise PathError(f"{rel}: is a moma pointer; add the data it points to instead")
        if path.is_symlink():
            raise PathError(f"{rel}: is a symlink; moma tracks regular files and directories")
        if must_exist and not path.exists():
            raise PathError(f"{rel}: no such file or directory")
    tracked = repo.git.tracked(rels)
    if tracked:
        first = tracked[0]
        raise PathError(
            f"{first}: is already tracked by git",
            hint=f"stop tracking it with 'git rm -r --cached {first}' and commit, then add it",
        )
    existing = [pointer_mod.data_path_of(p) for p in repo.git.pointer_files()]
    for rel in rels:
        for other in existing:
            if other != rel and is_within(rel, other):
                raise PathError(f"{rel}: is inside {other}, which moma tracks as a whole",
                                hint=f"run 'moma add {other}' to record the change")
            if other != rel and is_within(other, rel):
                raise PathError(f"{rel}: contains {other}, which has its own pointer",
                                hint=f"remove {other}.moma first, or add a different path")


# -- status ----------------------------------------------------------------------------------


@dataclass
class StatusEntry:
    path: str
    state: str  # ok | modified | missing | not-in-cache | invalid | not-pushed (status --remote)
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
    return StatusEntry(ptr.path, "ok" if repo.cache.exists(ptr.oid) else "not-in-cache")


def _dir_status(repo: Repo, ptr: pointer_mod.Pointer, jobs: int | None) -> StatusEntry:
    top = str(repo.abspath(ptr.path))
    entries = workspace.dir_entries(repo, top, store=False, jobs=jobs)
    current = {e.relpath: e.oid for e in entries}
    if hash_bytes(manifest.encode(entries, ptr.algo), ptr.algo) == ptr.oid:
        complete = repo.cache.exists(ptr.oid) and all(
            repo.cache.exists(oid) for oid in current.values())
        return StatusEntry(ptr.path, "ok" if complete else "not-in-cache")
    if not repo.cache.exists(ptr.oid):
        return StatusEntry(ptr.path, "modified", message="recorded listing not in cache")
    recorded = {e.relpath: e.oid for e in repo.cache.iter_manifest(ptr.oid)}
    changes = [("deleted", rel) for rel in recorded if rel not in current]
    for rel, oid in current.items():
        if rel not in recorded:
            changes.append(("added", rel))
        elif recorded[rel] != oid:
            changes.append(("modified", rel))
    changes.sort(key=lambda c: c[1])
    return StatusEntry(ptr.path, "modified", changes)


# -- checkout --------------------------------------------------------------------------------


@dataclass
class CheckoutResult:
    restored: list[str] = field(default_factory=list)
    unchanged: int = 0
    replaced: list[str] = field(default_factory=list)  # modified data overwritten by --force
    removed: list[str] = field(default_factory=list)  # files gone from a dir, safe in cache
    conflicts: list[str] = field(default_factory=list)  # modified, not cached: left alone
    missing: list[str] = field(default_factory=list)  # object not in cache
    corrupt: list[str] = field(default_factory=list)  # object failed verification
    invalid: list[str] = field(default_factory=list)  # pointers that did not parse

    @property
    def ok(self) -> bool:
        return not (self.conflicts or self.missing or self.corrupt or self.invalid)


def checkout(
    repo: Repo,
    targets: Sequence[str] | None = None,
    *,
    force: bool = False,
    cwd: Path | None = None,
    progress: Progress = SILENT,
) -> CheckoutResult:
    pointers, errors = repo.pointers(targets, cwd)
    result = CheckoutResult(invalid=[e.message for e in errors])
    for ptr in pointers:
        _Checkout(repo, result, force).pointer(ptr)
    return result


class _Checkout:
    def __init__(self, repo: Repo, result: CheckoutResult, force: bool) -> None:
        self.repo = repo
        self.result = result
        self.force = force
        self.state_rows: list[tuple[str, workspace.StatKey, str, str]] = []
        self.safe_parents: set[str] = set()

    def pointer(self, ptr: pointer_mod.Pointer) -> None:
        try:
            if ptr.is_dir:
                self._dir(ptr)
            else:
                self._file(ptr.path, ptr.oid)
        finally:
            self.repo.state.put_many(self.state_rows)
            self.state_rows.clear()

    def _dir(self, ptr: pointer_mod.Pointer) -> None:
        try:
            entries = list(self.repo.cache.iter_manifest(ptr.oid))
        except ObjectMissingError:
            self.result.missing.append(ptr.path)
            return
        except HashMismatchError:
            self.result.corrupt.append(ptr.path)
            return
        top = self.repo.abspath(ptr.path)
        if os.path.lexists(top) and not top.is_dir():
            self._conflict_or_clear(ptr.path, top)
        wanted = {posixpath.join(ptr.path, e.relpath) for e in entries}
        for entry in entries:
            self._file(posixpath.join(ptr.path, entry.relpath), entry.oid)
        if top.is_dir():
            self._remove_stale(ptr.path, top, wanted)

    def _remove_stale(self, rel_top: str, top: Path, wanted: set[str]) -> None:
        """Delete files no longer in the directory, but only those whose bytes are cached;
        anything else is the user's and stays."""
        files = workspace.walk_dir(str(top))
        stale = [f for f in files if posixpath.join(rel_top, f.relpath) not in wanted]
        if not stale:
            return
        oids = workspace.oids_of(self.repo, stale, store=False)
        for info in stale:
            if self.repo.cache.exists(oids[info.path]):
                os.unlink(info.path)
                self.result.removed.append(posixpath.join(rel_top, info.relpath))

    def _file(self, rel: str, oid: str) -> None:
        dest = self.repo.abspath(rel)
        parent = posixpath.dirname(rel)
        if parent not in self.safe_parents:  # one realpath per directory, not per file
            self.repo.check_no_escape(rel)
            self.safe_parents.add(parent)
        if os.path.lexists(dest):
            current = self._current_oid(dest)
            if current == oid:
                self.result.unchanged += 1
                return
            if current is None or not self.repo.cache.exists(current):
                if not self.force:
                    self.result.conflicts.append(rel)
                    return
                self.result.replaced.append(rel)
        try:
            source = self.repo.cache.checked_path(oid)
        except ObjectMissingError:
            self.result.missing.append(rel)
            return
        except HashMismatchError:
            self.result.corrupt.append(rel)
            return
        if dest.is_dir() and not dest.is_symlink():
            self.result.conflicts.append(rel)
            return
        link.place(source, dest, self.repo.config.link_types)
        st = os.stat(dest)
        self.state_rows.append((str(dest), workspace.StatKey.of(st), self.repo.cache.algo, oid))
        self.result.restored.append(rel)

    def _current_oid(self, dest: Path) -> str | None:
        """The oid of what is at `dest` now; None for anything that is not plain data."""
        if dest.is_symlink():
            target = Path(os.readlink(dest))
            if target.parent.parent == self.repo.cache.objects_dir:  # our own symlink
                return target.parent.name + target.name
            return None
        if not dest.is_file():
            return None
        info = workspace.file_info(str(dest))
        return workspace.oids_of(self.repo, [info], store=False)[info.path]

    def _conflict_or_clear(self, rel: str, path: Path) -> None:
        current = self._current_oid(path)
        if current is not None and self.repo.cache.exists(current):
            os.unlink(path)
        elif self.force:
            os.unlink(path)
            self.result.replaced.append(rel)
        else:
            self.result.conflicts.append(rel)
