"""Tracking data: `add`, `status` and `checkout`."""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli.core import manifest, modelmeta
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import hash_bytes, short_oid
from moma_cli.core.paths import is_within
from moma_cli.errors import (
    HashMismatchError,
    MomaError,
    ObjectMissingError,
    PathError,
    PointerError,
)
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
        skipped = workspace.Skipped()
        ptr = track(repo, rel, jobs=jobs, progress=progress, skipped=skipped)
        if lineage is not None:
            ptr = ptr.with_extra(lineage=lineage)
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
        top = str(path)
        skipped = skipped or workspace.Skipped()
        files = workspace.walk_dir(top, skipped)
        if store:
            workspace.remove_tmps(repo, rel, skipped.tmps)
        walked = workspace.walk_stamp(files)
        if store and existing is not None and existing.is_dir and existing.algo == algo and \
                repo.state.is_clean(top, _clean_stamp(existing, walked, repo.cache.stamp())):
            return existing  # unchanged since its listing was made: nothing to hash or store
        entries = workspace.dir_entries(repo, top, store=store, jobs=jobs,
                                        progress=progress, files=files)
        listing = manifest.encode(entries, algo)
        size = sum(e.size for e in entries)
        if not store:
            oid = hash_bytes(listing, algo)
            return pointer_mod.Pointer(rel, algo, oid, size, "dir", len(entries),
                                       _kept_extra(existing, oid))
        oid = repo.cache.add_bytes(listing)
        repo.state.put_listing(top, oid)
        ptr = pointer_mod.Pointer(rel, algo, oid, size, "dir", len(entries),
                                  _kept_extra(existing, oid))
        # Every file is in the cache now: `status` and the next `add` of the same walk can
        # answer from the stamp (the cache's is taken after the objects were stored).
        repo.state.put_clean(top, _clean_stamp(ptr, walked, repo.cache.stamp()))
        return ptr
    info = workspace.file_info(str(path))
    oid = workspace.oids_of(repo, [info], store=store, progress=progress)[info.path]
    return pointer_mod.Pointer(rel, algo, oid, info.key.size, "file", None,
                               _kept_extra(existing, oid))


def _kept_extra(existing: pointer_mod.Pointer | None, oid: str) -> dict[str, Any]:
    """The sections a re-add keeps. Metrics describe the bytes they were measured on, so
    new bytes drop them (a retrained model must not pass its gates on the old numbers)."""
    if existing is None:
        return {}
    extra = dict(existing.extra)
    if existing.model is not None and existing.oid != oid:
        extra["model"] = modelmeta.without_metrics(existing.model)
    return extra


def _existing_pointer(repo: Repo, rel: str) -> pointer_mod.Pointer | None:
    if not (repo.root / pointer_mod.pointer_path_of(rel)).exists():
        return None
    return repo.load_pointer(pointer_mod.pointer_path_of(rel))


def _clean_stamp(ptr: pointer_mod.Pointer, walked: str, cached: str) -> str:
    """What a directory's state is remembered by once found up to date: its pointer, the
    stamp of its walk and the cache's stamp. Equal stamps later: still up to date."""
    return f"{ptr.oid}:{ptr.nfiles}:{ptr.size}:{walked}:{cached}"


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
    stamp = _clean_stamp(ptr, workspace.walk_stamp(files), repo.cache.stamp())
    if repo.state.is_clean(top, stamp):
        return StatusEntry(ptr.path, "ok")
    entries = workspace.dir_entries(repo, top, store=False, jobs=jobs, files=files)
    listing = manifest.encode(entries, ptr.algo)
    if hash_bytes(listing, ptr.algo) == ptr.oid:
        total = sum(e.size for e in entries)
        if (len(entries), total) != (ptr.nfiles, ptr.size):
            return StatusEntry(ptr.path, "invalid", message=_totals_message(ptr, len(entries),
                                                                            total))
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


def _totals_message(ptr: pointer_mod.Pointer, nfiles: int, size: int) -> str:
    return (f"{ptr.pointer_path}: records {ptr.nfiles} files, {ptr.size} bytes but its listing "
            f"has {nfiles} files, {size} bytes")


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
    stale_tmp: list[str] = field(default_factory=list)  # temps of a killed checkout, removed

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
    owned = _owned_by_git(repo, pointers)
    for ptr in pointers:
        if ptr.path in owned:
            result.invalid.append(f"{ptr.pointer_path}: would overwrite {owned[ptr.path]}, "
                                  "which git tracks; moma never writes over git's files")
            continue
        _Checkout(repo, result, force).pointer(ptr)
    return result


def _owned_by_git(repo: Repo, pointers: list[pointer_mod.Pointer]) -> dict[str, str]:
    """Pointers whose data path holds git-tracked files (a crafted `.moma.yaml.moma`, a
    `data.moma` beside a committed `data/README`): data path -> first such file.
    `add` refuses these; a cloned or merged repository can still contain them."""
    if not pointers:
        return {}
    owned: dict[str, str] = {}
    for path in repo.git.tracked([":(literal)" + p.path for p in pointers]):
        for ptr in pointers:
            if is_within(path, ptr.path):
                owned.setdefault(ptr.path, path)
    return owned


# Staged files are renamed into place in batches: one sync per batch instead of one fsync
# per file, with memory bounded however large the directory.
_FLUSH_EVERY = 4096


class _Checkout:
    def __init__(self, repo: Repo, result: CheckoutResult, force: bool) -> None:
        self.repo = repo
        self.result = result
        self.force = force
        self.state_rows: list[tuple[str, workspace.StatKey, str, str]] = []
        self.placement = link.Placement(repo.config.link_types)
        self.placed: list[tuple[str, Path, str]] = []  # (rel, dest, oid) staged, not renamed

    def pointer(self, ptr: pointer_mod.Pointer) -> None:
        try:
            if ptr.is_dir:
                self._dir(ptr)
            else:
                self._file(ptr.path, ptr.oid, ptr.size)
            self._flush()
        except PathError as exc:  # e.g. a parent symlinked outside: refuse this one only
            self.result.invalid.append(exc.message)
        finally:
            self.placement.discard()
            self.placed.clear()
            self.repo.state.put_many(self.state_rows)
            self.state_rows.clear()

    def _flush(self) -> None:
        """Rename the staged files into place (one sync for all) and remember their oids."""
        self.placement.commit()
        for rel, dest, oid in self.placed:
            st = os.stat(dest)
            self.state_rows.append((str(dest), workspace.StatKey.of(st), self.repo.cache.algo,
                                    oid))
            self.result.restored.append(rel)
        self.placed.clear()

    def _dir(self, ptr: pointer_mod.Pointer) -> None:
        # Two streaming passes over the listing instead of one list: the first validates
        # every entry and the totals before any path is built or written, the second
        # materialises. A million-entry manifest then costs time, not memory.
        try:
            nfiles = size = 0
            for entry in self.repo.cache.iter_manifest(ptr.oid):
                nfiles, size = nfiles + 1, size + entry.size
        except ObjectMissingError:
            self.result.missing.append(ptr.path)
            return
        except HashMismatchError:
            self.result.corrupt.append(ptr.path)
            return
        except PointerError as exc:
            self.result.invalid.append(f"{ptr.pointer_path}: {exc.message}")
            return
        if (nfiles, size) != (ptr.nfiles, ptr.size):
            self.result.invalid.append(_totals_message(ptr, nfiles, size))
            return
        top = self.repo.abspath(ptr.path)
        # The directory itself inside the repository too: with an empty listing no file's
        # parent is checked, and the stale-file pass would delete through a symlink.
        self.repo.check_no_escape(posixpath.join(ptr.path, "."))
        if os.path.lexists(top) and not top.is_dir():
            self._conflict_or_clear(ptr.path, top)
        for entry in self.repo.cache.iter_manifest(ptr.oid):
            self._file(posixpath.join(ptr.path, entry.relpath), entry.oid, entry.size)
        self._flush()  # before looking for stale files, which must not see our temps
        if top.is_dir():
            self.result.stale_tmp += workspace.remove_tmps(self.repo, ptr.path)
            self._remove_stale(ptr, top)
            self.repo.state.put_listing(str(top), ptr.oid)

    def _remove_stale(self, ptr: pointer_mod.Pointer, top: Path) -> None:
        """Delete files the previous version of this directory had and this one has not,
        and only while they hold exactly the previous (cached) bytes.

        Files moma did not put there (untracked files) and edited files are the user's:
        never deleted, with or without --force, even when their bytes happen to be cached.
        """
        previous = self.repo.state.get_listing(str(top))
        if previous is None or previous == ptr.oid:
            return
        stale = {f.relpath: f for f in _not_listed(workspace.walk_dir(str(top)),
                                                    self.repo.cache.iter_manifest(ptr.oid))}
        if not stale:
            return
        try:
            expected = {e.relpath: e.oid for e in self.repo.cache.iter_manifest(previous)
                        if e.relpath in stale}
        except MomaError:  # previous listing gone or damaged: keep everything
            return
        candidates = [stale[rel] for rel in expected]
        oids = workspace.oids_of(self.repo, candidates, store=False)
        for info in candidates:
            oid = oids[info.path]
            if oid == expected[info.relpath] and self.repo.cache.exists(oid):
                os.unlink(info.path)
                self.result.removed.append(posixpath.join(ptr.path, info.relpath))

    def _file(self, rel: str, oid: str, size: int) -> None:
        dest = self.repo.abspath(rel)
        self.repo.check_no_escape(rel)
        try:
            is_dir = stat.S_ISDIR(os.lstat(dest).st_mode)  # one lstat: most dests are absent
            exists = True
        except FileNotFoundError:
            is_dir = exists = False
        if exists:
            current = workspace.current_oid(self.repo, dest)
            if current == oid:
                if self._check_size(rel, oid, size, os.stat(dest).st_size):
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
        if not self._check_size(rel, oid, size, os.stat(source).st_size):
            return
        if is_dir:
            self.result.conflicts.append(rel)
            return
        self.placement.stage(source, dest)
        self.placed.append((rel, dest, oid))
        if len(self.placed) >= _FLUSH_EVERY:
            self._flush()

    def _check_size(self, rel: str, oid: str, expected: int, actual: int) -> bool:
        """A size that disagrees with the object means the pointer (or listing) was edited
        or damaged: never materialise an object other than the one it describes."""
        if expected == actual:
            return True
        self.result.invalid.append(
            f"{rel}: recorded size {expected} differs from object {short_oid(oid)} "
            f"({actual} bytes); not checked out")
        return False

    def _conflict_or_clear(self, rel: str, path: Path) -> None:
        current = workspace.current_oid(self.repo, path)
        if current is not None and self.repo.cache.exists(current):
            os.unlink(path)
        elif self.force:
            os.unlink(path)
            self.result.replaced.append(rel)
        else:
            self.result.conflicts.append(rel)


def _not_listed(
    files: list[workspace.FileInfo], entries: Iterator[manifest.Entry]
) -> Iterator[workspace.FileInfo]:
    """Workspace files absent from the listing: a merge of two lists sorted by relpath."""
    entry = next(entries, None)
    for info in files:
        while entry is not None and entry.relpath < info.relpath:
            entry = next(entries, None)
        if entry is None or entry.relpath != info.relpath:
            yield info
