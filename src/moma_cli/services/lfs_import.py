"""`moma import-lfs`: turn the files git-lfs tracks into moma pointers.

Which files: those `git lfs ls-files` names when git-lfs is installed, else the index files
whose attributes say `filter=lfs`; either way the index blob must parse as a git-lfs
pointer (strictly: it comes from a clone). The bytes come from the working copy when it
holds them, else from git-lfs's object store, and must hash to the pointer's sha256 before
moma caches them, through `data.save` as `moma add` does. A file whose bytes are nowhere is
skipped, one whose bytes do not match is refused; neither is touched. A `filter=lfs`
pattern goes from .gitattributes once no file git tracks still uses it.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from moma_cli.atomic import atomic_open, resolves_inside, write_if_changed
from moma_cli.core import lfs
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import hash_path, new_hasher
from moma_cli.core.paths import is_within
from moma_cli.errors import HashMismatchError, MomaError, PathError
from moma_cli.services import data
from moma_cli.services.repo import Repo

WORKSPACE, LFS_CACHE, MISSING = "workspace", "lfs-cache", "missing"
FETCH_HINT = "run 'git lfs fetch' (or 'git lfs pull') where the LFS server is reachable, " \
             "then 'moma import-lfs' again"
_BY_HAND = "convert it by hand: 'git lfs checkout PATH', 'git rm --cached PATH', 'moma add PATH'"
_CHUNK = 1 << 20


@dataclass
class LfsFile:
    path: str
    oid: str  # the sha256 the LFS pointer names
    size: int
    source: str  # workspace | lfs-cache | missing


@dataclass
class Refusal:
    path: str
    message: str  # one line, naming the path
    hint: str | None


@dataclass
class ImportResult:
    files: list[LfsFile] = field(default_factory=list)  # the plan
    dry_run: bool = False
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # no bytes anywhere
    refused: list[Refusal] = field(default_factory=list)  # bytes or pointer not trusted
    patterns_removed: list[str] = field(default_factory=list)  # ".gitattributes: *.bin"
    staged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.refused


def import_lfs(repo: Repo, targets: Sequence[str] = (), *, dry_run: bool = False,
               cwd: Path | None = None) -> ImportResult:
    """Convert the LFS files at or under `targets` (all of them when none are given)."""
    importer = _Importer(repo, [repo.relpath(t, cwd) for t in targets])
    result = importer.plan()
    if dry_run:
        result.dry_run = True
        return result
    result.skipped = [f.path for f in result.files if f.source == MISSING]
    importer.attribute_files  # noqa: B018 - refused before any working copy is written
    ready = []
    for item in result.files:
        if item.source == MISSING:
            continue
        try:
            importer.materialise(item)
        except MomaError as exc:
            result.refused.append(Refusal(item.path, exc.message, exc.hint))
            continue
        ready.append(item.path)
    if ready:
        importer.convert(ready, result)
    return result


class _Importer:
    def __init__(self, repo: Repo, wanted: list[str]) -> None:
        self.repo, self.wanted = repo, wanted
        self.entries: dict[str, tuple[str, str]] = {}  # path -> (mode, blob) in the index

    @cached_property
    def objects(self) -> Path:
        return self.repo.git.lfs_objects_dir()

    def lfs_object(self, oid: str) -> Path:
        return self.objects / oid[:2] / oid[2:4] / oid

    # -- the plan -------------------------------------------------------------------------
    def plan(self) -> ImportResult:
        git = self.repo.git
        names = git.lfs_files()
        if names is None:
            names = git.matching(":(attr:filter=lfs)")
        if self.wanted:
            names = [n for n in names if any(is_within(n, w) for w in self.wanted)]
        # The index, not HEAD, says what git tracks now: what a previous import took out of
        # it is not imported again.
        self.entries = git.index_entries(sorted(set(names)))
        sizes = git.blob_sizes(sha for _, sha in self.entries.values())
        small = [sha for sha, size in sizes.items() if size < lfs.MAX_POINTER]
        blobs = git.cat_blobs(small)
        result = ImportResult()
        for path, (_, sha) in sorted(self.entries.items()):
            try:
                ptr = lfs.parse_pointer(blobs.get(sha, b""))
            except MomaError as exc:
                result.refused.append(Refusal(path, f"{path}: {exc.message}", _BY_HAND))
                continue
            try:
                if ptr is not None:
                    result.files.append(LfsFile(path, ptr.oid, ptr.size, self.source(path, ptr)))
            except MomaError as exc:
                result.refused.append(Refusal(path, exc.message, exc.hint))
        self.entries = {f.path: self.entries[f.path] for f in result.files}
        return result

    def source(self, rel: str, ptr: lfs.LfsPointer) -> str:
        self.repo.check_no_escape(rel)
        path = self.repo.abspath(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise PathError(f"{rel}: is not a regular file in the working copy",
                            hint=f"restore it with 'git checkout -- {rel}'")
        if st is not None and not _holds_pointer(path, st.st_size, ptr):
            return WORKSPACE
        return LFS_CACHE if self.lfs_object(ptr.oid).is_file() else MISSING

    # -- the bytes ------------------------------------------------------------------------
    def materialise(self, item: LfsFile) -> None:
        """Check the working copy holds the LFS object's bytes, copying them there from
        git-lfs's store when it holds only the pointer text."""
        path = self.repo.abspath(item.path)
        if item.source == WORKSPACE:
            size = os.lstat(path).st_size
            if size != item.size or hash_path(path, "sha256", size) != item.oid:
                raise HashMismatchError(
                    f"{item.path}: the working copy is not the LFS object sha256:"
                    f"{item.oid[:12]} the index names (changed since it was committed?)",
                    hint=f"commit the change through git-lfs, or restore the file with "
                    f"'git lfs checkout {item.path}', then import again")
            return
        obj = self.lfs_object(item.oid)
        mode = 0o755 if self.entries[item.path][0] == "100755" else 0o644
        hasher, copied = new_hasher("sha256"), 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(obj, "rb") as src, atomic_open(path, mode) as out:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                copied += len(chunk)
            if copied != item.size or hasher.hexdigest() != item.oid:
                raise HashMismatchError(  # raised inside the block: the file is not replaced
                    f"{item.path}: its LFS object {os.path.relpath(obj, self.repo.root)} "
                    f"does not hash to sha256:{item.oid[:12]} (corrupt)",
                    hint="move that object away and run 'git lfs fetch' to get it again")

    # -- the conversion -------------------------------------------------------------------
    @cached_property
    def attribute_files(self) -> list[str]:
        """The tracked .gitattributes files, each checked to be one moma may rewrite."""
        found = self.repo.git.matching(":(glob)**/.gitattributes")
        for rel in found:
            path = self.repo.abspath(rel)
            self.repo.check_no_escape(rel)
            if path.is_symlink() or not resolves_inside(path, self.repo.root):
                raise PathError(f"{rel}: is a symlink; moma will not edit it",
                                hint=f"replace it with a regular file: 'rm {rel}'")
        return found

    def convert(self, ready: list[str], result: ImportResult) -> None:
        attributes = self.attributes_without(ready, result)
        entries = {p: self.entries[p] for p in ready}
        self.repo.git.remove_cached(ready)
        try:
            # .gitattributes first: a pattern left there would hand the pointers staged
            # below to git-lfs's clean filter.
            for rel, (_, new) in attributes.items():
                write_if_changed(self.repo.abspath(rel), new)
            added = data.save(self.repo, ready, stage=True)
        except BaseException:
            for rel, (old, _) in attributes.items():
                write_if_changed(self.repo.abspath(rel), old)
            self.repo.git.restore_index(entries)
            raise
        self.repo.git.add(attributes)
        result.converted = ready
        result.staged = sorted({*added.staged, *attributes})

    def attributes_without(self, ready: list[str],
                           result: ImportResult) -> dict[str, tuple[bytes, bytes]]:
        """.gitattributes path -> (old, new) text, for those losing a `filter=lfs` line:
        the lines whose pattern matched a converted file and no other file git tracks
        (moma's own pointers and ignore files aside)."""
        converted = set(ready)
        changes = {}
        for rel in self.attribute_files:
            old = self.repo.abspath(rel).read_bytes()
            kept = []
            for line in old.splitlines(keepends=True):
                if self.drops(rel, line.decode("utf-8", "replace"), converted):
                    result.patterns_removed.append(
                        f"{rel}: {line.decode('utf-8', 'replace').strip()}")
                else:
                    kept.append(line)
            if len(kept) < len(old.splitlines()):
                changes[rel] = (old, b"".join(kept))
        return changes

    def drops(self, rel: str, line: str, converted: set[str]) -> bool:
        pattern = lfs.lfs_pattern(line)
        spec = pattern and lfs.pattern_pathspec(posixpath.dirname(rel), pattern)
        if not spec:
            return False
        matched = set(self.repo.git.matching(spec))
        others = {p for p in matched - converted if not _moma_own(p)}
        return bool(matched & converted) and not others


def _holds_pointer(path: Path, size: int, ptr: lfs.LfsPointer) -> bool:
    """Whether the working copy holds just the pointer text (git-lfs did not smudge it)."""
    if size >= lfs.MAX_POINTER:
        return False
    with open(path, "rb") as fh:
        text = fh.read(lfs.MAX_POINTER)
    try:
        return lfs.parse_pointer(text) == ptr
    except MomaError:
        return False


def _moma_own(rel: str) -> bool:
    return pointer_mod.is_pointer_path(rel) or posixpath.basename(rel) in (
        ".gitignore", ".gitattributes")
