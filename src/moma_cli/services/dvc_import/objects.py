"""The bytes of DVC outs, each checked against DVC's md5 before moma trusts it: the workspace
verified in place, DVC's cache copied into the workspace, or a DVC remote copied straight
into a moma remote (hashed on the way, stored under moma's oid)."""

from __future__ import annotations

import hashlib
import posixpath
import shutil
from pathlib import Path

from moma_cli.atomic import atomic_open
from moma_cli.core import dvc, manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import new_hasher
from moma_cli.errors import HashMismatchError, ObjectMissingError, PathError
from moma_cli.services import workspace
from moma_cli.services.dvc_import.planning import Planner
from moma_cli.services.repo import Repo
from moma_cli.storage.dvc_objects import DvcObjects
from moma_cli.storage.remote.store import Store

_CHUNK = 1 << 20
_CHANGED_HINT = "restore it with 'dvc checkout {path}' (or record the change with DVC), " \
                "then import again"


def md5_of(path: str | Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - DVC's own digest, checked, never trusted alone
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_workspace(repo: Repo, out: dvc.Out) -> None:
    """The workspace holds exactly the bytes DVC recorded for `out` (for a directory: the
    files moma would track hash to DVC's listing md5)."""
    path = repo.abspath(out.path)
    if path.is_symlink() or not (path.is_dir() or path.is_file()):
        raise PathError(f"{out.path}: is a symlink or not a regular file (DVC's cache.type "
                        "symlink?); moma tracks regular files",
                        hint="run 'dvc config cache.type copy && dvc checkout --relink' first")
    if out.is_dir:
        files = workspace.walk_dir(str(path))
        actual = dvc.listing_md5([(f.relpath, md5_of(f.path)) for f in files])
    else:
        actual = md5_of(path)
    if actual != out.md5:
        raise HashMismatchError(
            f"{out.path}: the workspace does not match md5 {out.md5[:12]} that {out.origin} "
            "records (changed since DVC saved it?)", hint=_CHANGED_HINT.format(path=out.path))


def materialise(repo: Repo, planner: Planner, out: dvc.Out) -> None:
    """Copy an out absent from the workspace there from DVC's cache, verifying every file;
    on a failure nothing is left in the workspace."""
    cache = planner.dvc_cache
    path = repo.abspath(out.path)
    if not out.is_dir:
        _copy_verified(cache, out.md5, path, out.path)
        return
    entries = planner.listing(cache, out)
    try:
        for rel, md5 in entries:
            dest = posixpath.join(out.path, rel)
            repo.check_no_escape(dest)
            _copy_verified(cache, md5, repo.abspath(dest), dest)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # it did not exist: all of it is ours
        raise


def _copy_verified(objects: DvcObjects, md5: str, dest: Path, rel: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with objects.local(md5) as src, open(src, "rb") as fh, atomic_open(dest) as out:
        digest = hashlib.md5()  # noqa: S324
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != md5:  # raised inside the block: dest is not written
            raise HashMismatchError(f"{rel}: DVC's cache object {md5[:12]} does not hash to "
                                    "its name (corrupt)", hint="run 'dvc fetch' to get it again")


class RemoteCopy:
    """Objects from a DVC remote into a moma remote, without the workspace: each is hashed
    once for both digests; one whose md5 differs from its name is refused."""

    def __init__(self, repo: Repo, planner: Planner, store: Store) -> None:
        self.repo, self.planner, self.store = repo, planner, store
        self.algo = repo.cache.algo
        self.copied = 0

    def pointer(self, out: dvc.Out) -> pointer_mod.Pointer:
        source = self.planner.dvc_remote(out.remote)
        if not out.is_dir:
            oid, size = self._copy(source, out.md5, out.path)
            return pointer_mod.Pointer(out.path, self.algo, oid, size, "file")
        entries = [manifest.Entry(rel, *self._copy(source, md5, posixpath.join(out.path, rel)))
                   for rel, md5 in self.planner.listing(source, out)]
        listing = manifest.encode(entries, self.algo)
        oid = self.repo.cache.add_bytes(listing)  # small; status and checkout read it here
        self._upload([(oid, self.repo.cache.oid_to_path(oid))])  # after all its files
        return pointer_mod.Pointer(out.path, self.algo, oid, sum(e.size for e in entries),
                                   "dir", len(entries))

    def _copy(self, source: DvcObjects, md5: str, rel: str) -> tuple[str, int]:
        try:
            with source.local(md5) as path:
                digest, hasher, size = hashlib.md5(), new_hasher(self.algo), 0  # noqa: S324
                with open(path, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        hasher.update(chunk)
                        size += len(chunk)
                if digest.hexdigest() != md5:
                    raise HashMismatchError(
                        f"{rel}: object {md5[:12]} on {source.location.describe()} does not "
                        "hash to its name (corrupt)", hint="push it again with 'dvc push'")
                oid = hasher.hexdigest()
                self._upload([(oid, path)])
                return oid, size
        except FileNotFoundError:
            raise ObjectMissingError(
                f"{rel}: object {md5[:12]} is not on {source.location.describe()}",
                hint="run 'dvc push' where the data is, then import again") from None

    def _upload(self, objects: list[tuple[str, Path]]) -> None:
        present = self.store.existing(oid for oid, _ in objects)
        todo = [(oid, path) for oid, path in objects if oid not in present]
        with self.store.location.translate(), self.store.uploads() as upload:
            for oid, path in todo:
                upload(path, oid)
        self.copied += len(todo)

