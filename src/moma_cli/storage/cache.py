"""The local content-addressed cache: `<root>/<algo>/<oid[:2]>/<oid[2:]>`, read-only objects.

The cache never holds bytes that do not match their name: objects are hashed while they
are written (one read of the source), renamed into place only when complete, and an object
that fails verification later is moved to `quarantine/corrupt/`, never used or deleted.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from moma_cli.core import hashing, manifest
from moma_cli.errors import HashMismatchError, ObjectMissingError
from moma_cli.storage.atomic import is_tmp_name, tmp_sibling
from moma_cli.storage.state import StateDB, StatKey

OBJECT_MODE = 0o444
_SMALL = 1 << 20
_CHUNK = 4 << 20


class ObjectCache:
    def __init__(self, root: Path, algo: str, state: StateDB | None = None) -> None:
        self.root = root
        self.algo = algo
        self.state = state
        self.objects_dir = root / algo
        self.tmp_dir = root / "tmp"
        self.quarantine_dir = root / "quarantine"

    # -- naming ---------------------------------------------------------------------------
    def oid_to_path(self, oid: str) -> Path:
        return self.objects_dir / oid[:2] / oid[2:]

    def exists(self, oid: str) -> bool:
        return os.path.exists(self.oid_to_path(oid))

    def iter_oids(self) -> Iterator[str]:
        if not self.objects_dir.is_dir():
            return
        for prefix in os.scandir(self.objects_dir):
            if not prefix.is_dir() or len(prefix.name) != 2:
                continue
            for entry in os.scandir(prefix.path):
                if not is_tmp_name(entry.name):
                    yield prefix.name + entry.name

    # -- writing --------------------------------------------------------------------------
    def _new_tmp(self) -> tuple[Path, BinaryIO]:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_sibling(self.tmp_dir / "object")
        return tmp, open(tmp, "xb")  # noqa: SIM115 - closed by the caller

    def _commit(self, tmp: Path, oid: str) -> None:
        """Move a complete temp object under its name (or drop it if already present)."""
        dest = self.oid_to_path(oid)
        if dest.exists():
            os.unlink(tmp)
            return
        os.chmod(tmp, OBJECT_MODE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)

    def add_file(self, src: str | Path) -> tuple[str, int]:
        """Hash `src` while copying it into the cache; return (oid, size)."""
        tmp, out = self._new_tmp()
        try:
            with out, open(src, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                hasher = hashing.new_hasher(self.algo, size)
                if size <= _SMALL:
                    data = fh.read()
                    hasher.update(data)
                    out.write(data)
                    size = len(data)
                else:
                    size = _hash_copy(fh, out, hasher)
                out.flush()
                os.fsync(out.fileno())
            oid = hasher.hexdigest()
            self._commit(tmp, oid)
            return oid, size
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def add_bytes(self, data: bytes) -> str:
        oid = hashing.hash_bytes(data, self.algo)
        if not self.exists(oid):
            tmp, out = self._new_tmp()
            try:
                with out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                self._commit(tmp, oid)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return oid

    def add_stream(self, oid: str, chunks: Iterable[bytes], source: str) -> int:
        """Store downloaded bytes under `oid` only if they hash to it.

        On a mismatch the bytes are kept in quarantine for inspection and nothing enters
        the cache.
        """
        tmp, out = self._new_tmp()
        hasher = hashing.new_hasher(self.algo)
        size = 0
        try:
            with out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        actual = hasher.hexdigest()
        if actual != oid:
            moved = self._move_to_quarantine(tmp, oid)
            raise HashMismatchError(
                f"object {hashing.short_oid(oid)} from {source} is corrupt "
                f"(content hashes to {hashing.short_oid(actual)}); kept aside in {moved}",
                hint="the copy on the remote is damaged: re-push it from a machine that has "
                "the good data ('moma push --verify')",
            )
        try:
            self._commit(tmp, oid)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return size

    # -- reading and verifying ------------------------------------------------------------
    def hash_file(self, path: str | Path, size: int | None = None) -> str:
        """Hash a file without copying it."""
        with open(path, "rb") as fh:
            if size is None:
                size = os.fstat(fh.fileno()).st_size
            hasher = hashing.new_hasher(self.algo, size)
            if size <= _SMALL:
                hasher.update(fh.read())
            else:
                buf = bytearray(_CHUNK)
                view = memoryview(buf)
                while n := fh.readinto(buf):
                    hasher.update(view[:n])
        return hasher.hexdigest()

    def checked_path(self, oid: str) -> Path:
        """The object's path after making sure it is present and intact.

        Intact is remembered in the stat cache, so a second checkout does not re-hash.
        A damaged object is quarantined and reported.
        """
        path = self.oid_to_path(oid)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ObjectMissingError(
                f"object {hashing.short_oid(oid)} is not in the cache",
                hint="run 'moma fetch' to download it from the remote",
            ) from None
        key = StatKey.of(st)
        if self.state is not None and self.state.get(str(path), key, self.algo) == oid:
            return path
        actual = self.hash_file(path, st.st_size)
        if actual != oid:
            moved = self.quarantine(oid)
            raise HashMismatchError(
                f"cache object {hashing.short_oid(oid)} is corrupt; moved aside to {moved}",
                hint="run 'moma fetch' to download a good copy, or 'moma fsck' to check all",
            )
        if self.state is not None:
            self.state.put_many([(str(path), key, self.algo, oid)])
        return path

    def verify(self, oid: str) -> bool:
        """Re-hash the object from disk, ignoring the stat cache."""
        return self.hash_file(self.oid_to_path(oid)) == oid

    def read_bytes(self, oid: str) -> bytes:
        return self.checked_path(oid).read_bytes()

    def iter_manifest(self, oid: str) -> Iterator[manifest.Entry]:
        path = self.checked_path(oid)
        with open(path, "rb") as fh:
            yield from manifest.iter_decode(fh, hashing.short_oid(oid))

    # -- quarantine -----------------------------------------------------------------------
    def quarantine(self, oid: str) -> Path:
        return self._move_to_quarantine(self.oid_to_path(oid), oid)

    def _move_to_quarantine(self, path: Path, oid: str) -> Path:
        target_dir = self.quarantine_dir / "corrupt"
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{oid}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}"
        os.replace(path, target)
        return target


def _hash_copy(src: BinaryIO, out: BinaryIO, hasher: hashing.Hasher) -> int:
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    size = 0
    while n := src.readinto(buf):  # type: ignore[attr-defined]
        chunk = view[:n]
        hasher.update(chunk)
        out.write(chunk)
        size += n
    return size
