"""`moma checkout`: the data each pointer names, from the cache into the workspace, never
over bytes that are not in the cache (unless --force) nor over git's files."""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from moma_cli.core import hashing, manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import short_oid
from moma_cli.core.paths import is_within
from moma_cli.errors import (
    HashMismatchError,
    MomaError,
    ObjectMissingError,
    PathError,
    PointerError,
)
from moma_cli.services import walkstamp, workspace
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo
from moma_cli.storage import link
from moma_cli.storage.state import StatKey


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
    # Every file the pointers name, written or found up to date: a directory's count is its
    # pointer's (checked against its listing before any of its files is looked at).
    progress.start("checking out", sum((p.nfiles or 0) if p.is_dir else 1 for p in pointers))
    for ptr in pointers:
        if ptr.path in owned:
            result.invalid.append(f"{ptr.pointer_path}: would overwrite {owned[ptr.path]}, "
                                  "which git tracks; moma never writes over git's files")
            continue
        _Checkout(repo, result, force, progress).pointer(ptr)
    progress.finish()
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


# Files per window: looked at, verified (one stat-cache query) and staged together, then
# renamed into place with one sync; memory stays bounded however large the directory.
_WINDOW = 4096
# Files per progress update: one update per file would cost a checkout of a million
# unchanged files more than looking at them.
_PROGRESS_EVERY = 256


class _Wanted(NamedTuple):
    """One file a pointer names. String paths: pathlib was a fifth of a 10k-file checkout."""

    rel: str  # repo-relative
    dest: str  # absolute
    oid: str
    size: int


class _Checkout:
    def __init__(self, repo: Repo, result: CheckoutResult, force: bool,
                 progress: Progress) -> None:
        self.repo = repo
        self.result = result
        self.force = force
        self.progress = progress
        self.seen = 0  # files looked at since the last progress update
        self.placement = link.Placement(repo.config.link_types, spare=repo.cache.take_spare)
        self.placed: list[tuple[str, str, str]] = []  # (rel, dest, oid) staged, not renamed
        # This window's files known to hold their object, by the stat key the stat cache
        # has for them (dest -> key), and the unchanged ones still to be looked up so.
        self.vouched: dict[str, StatKey] = {}
        self.same: list[_Wanted] = []

    def pointer(self, ptr: pointer_mod.Pointer) -> None:
        try:
            if ptr.is_dir:
                self._dir(ptr)
            else:
                self._window([_Wanted(ptr.path, str(self.repo.abspath(ptr.path)), ptr.oid,
                                      ptr.size)])
        except PathError as exc:  # e.g. a parent symlinked outside: refuse this one only
            self.result.invalid.append(exc.message)
        finally:
            self.progress.advance(self.seen)
            self.seen = 0
            self.placement.discard()
            self.placed.clear()
            self.vouched.clear()
            self.same.clear()

    def _flush(self) -> None:
        """Rename the staged files into place (one sync for all) and remember their oids."""
        self.placement.commit()
        algo = self.repo.cache.algo
        rows = []
        for rel, dest, oid in self.placed:
            st = os.lstat(dest)
            if stat.S_ISREG(st.st_mode):
                self.vouched[dest] = key = StatKey.of(st)
            else:  # moma's symlink: the row is the object's (no walk takes a symlink)
                key = StatKey.of(os.stat(dest))
            rows.append((dest, key, algo, oid))
            self.result.restored.append(rel)
        self.placed.clear()
        if rows:
            self.repo.state.put_many(rows)
        self._vouch_same()

    def _vouch_same(self) -> None:
        """The unchanged files whose stat key the stat cache maps to their object (their
        check just put it there, or found it), and whose object the cache holds."""
        same, cache = self.same, self.repo.cache
        known = self.repo.state.get_many([w.dest for w in same], cache.algo)
        for w in same:
            st = os.lstat(w.dest)
            if stat.S_ISREG(st.st_mode) and cache.exists(w.oid) and \
                    known.get(w.dest) == (st.st_ino, st.st_size, st.st_mtime_ns, w.oid):
                self.vouched[w.dest] = StatKey.of(st)
        same.clear()

    def _dir(self, ptr: pointer_mod.Pointer) -> None:
        # Two streaming passes over the listing instead of one list: the first validates
        # every entry and the totals before any path is built or written, the second
        # materialises a window at a time (and `_remember` reads its raw lines once more).
        # A million-entry manifest then costs time, not memory.
        algo = self.repo.cache.algo
        totals = workspace.Totals()
        try:
            # Re-encoded as `add` writes listings: only such a listing can be remembered
            # as the walk's (a crafted one, same entries, other bytes, is "modified").
            canonical = ptr.oid == hashing.hash_chunks(manifest.encode_lines(
                totals.count(self.repo.cache.iter_manifest(ptr.oid)), algo), algo)
        except ObjectMissingError:
            self.result.missing.append(ptr.path)
            return
        except HashMismatchError:
            self.result.corrupt.append(ptr.path)
            return
        except PointerError as exc:
            self.result.invalid.append(f"{ptr.pointer_path}: {exc.message}")
            return
        if (totals.nfiles, totals.size) != (ptr.nfiles, ptr.size):
            self.result.invalid.append(pointer_mod.totals_mismatch(ptr, totals.nfiles,
                                                                   totals.size))
            return
        top = self.repo.abspath(ptr.path)
        # The directory itself inside the repository too: with an empty listing no file's
        # parent is checked, and the stale-file pass would delete through a symlink.
        self.repo.check_no_escape(posixpath.join(ptr.path, "."))
        if os.path.lexists(top) and not top.is_dir():
            self._conflict_or_clear(ptr.path, top)
        # Listing paths are checked relative paths (manifest.iter_decode): joined by hand.
        rel_top, abs_top = ptr.path, str(top)
        # The walk `status` will make, taken from the files as they are placed or found.
        walk: walkstamp.WalkStamp | None = walkstamp.WalkStamp() if canonical else None
        window: list[_Wanted] = []
        for entry in self.repo.cache.iter_manifest(ptr.oid):
            window.append(_Wanted(f"{rel_top}/{entry.relpath}", f"{abs_top}/{entry.relpath}",
                                  entry.oid, entry.size))
            if len(window) >= _WINDOW:
                walk = self._walked(walk, self._window(window), len(rel_top) + 1)
                window = []
        # Before looking for stale files, which must not see our temps.
        walk = self._walked(walk, self._window(window), len(rel_top) + 1)
        if top.is_dir():
            self.result.stale_tmp += workspace.remove_tmps(self.repo, ptr.path)
            self._remove_stale(ptr, top)
            self.repo.state.put_listing(abs_top, ptr.oid)
            if walk is not None:
                self._remember(ptr, abs_top, walk)

    def _walked(self, walk: walkstamp.WalkStamp | None, window: list[_Wanted], cut: int
                ) -> walkstamp.WalkStamp | None:
        """`walk` with this window's files taken in; None once a file is not known to hold
        its object (not written, in conflict, ...): nothing is remembered then."""
        vouched, self.vouched = self.vouched, {}
        if walk is None:
            return None
        files = []
        for w in window:
            key = vouched.get(w.dest)
            if key is None:
                return None
            files.append(workspace.FileInfo(w.rel[cut:], w.dest, key))
        walk.consume(files, last=False)
        return walk

    def _remember(self, ptr: pointer_mod.Pointer, top: str, walk: walkstamp.WalkStamp
                  ) -> None:
        """Leave what `add` leaves: the next `status` answers from the walk, or from the
        parts that changed since, instead of a second walk and the whole listing."""
        walk.consume((), last=True)
        cached = self.repo.cache.stamp()
        with open(self.repo.cache.object_path(ptr.oid), "rb") as fh:  # canonical: the
            for _ in walk.track(fh):  # lines `add` would write, byte for byte
                pass
        walk.remember(self.repo.state, top, ptr, walk.hexdigest(), cached)

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

    def _window(self, wanted: list[_Wanted]) -> list[_Wanted]:
        """Check out these files: each destination is looked at, the objects of those to
        write are verified together, then staged and renamed into place together.
        Returns `wanted`, whose files holding their object are now in `vouched`."""
        todo: list[tuple[_Wanted, bool]] = []  # (file, whether a directory is in the way)
        for w in wanted:
            self.seen += 1
            if self.seen >= _PROGRESS_EVERY:
                self.progress.advance(self.seen)
                self.seen = 0
            self.repo.check_no_escape(w.rel)
            try:
                is_dir = stat.S_ISDIR(os.lstat(w.dest).st_mode)  # one lstat: most are absent
            except FileNotFoundError:
                todo.append((w, False))
                continue
            if self._may_replace(w):
                todo.append((w, is_dir))
        sources = self.repo.cache.checked_paths({w.oid for w, _ in todo})
        for w, is_dir in todo:
            source = sources[w.oid]
            if isinstance(source, ObjectMissingError):
                self.result.missing.append(w.rel)
            elif isinstance(source, HashMismatchError):
                self.result.corrupt.append(w.rel)
            elif self._check_size(w.rel, w.oid, w.size, source[1]):
                if is_dir:
                    self.result.conflicts.append(w.rel)
                    continue
                self.placement.stage(source[0], w.dest)
                self.placed.append((w.rel, w.dest, w.oid))
        self._flush()
        return wanted

    def _may_replace(self, w: _Wanted) -> bool:
        """Whether the file in the way at `w.dest` may be replaced: not when it is already
        the object (unchanged), nor when it holds bytes the cache lacks (unless --force)."""
        dest = Path(w.dest)
        current = workspace.current_oid(self.repo, dest)
        if current == w.oid:
            if self._check_size(w.rel, w.oid, w.size, os.stat(dest).st_size):
                self.result.unchanged += 1
                self.same.append(w)
            return False
        if current is None or not self.repo.cache.exists(current):
            if not self.force:
                self.result.conflicts.append(w.rel)
                return False
            self.result.replaced.append(w.rel)
        return True

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
