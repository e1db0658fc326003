"""The local content-addressed cache: `<root>/<algo>/<oid[:2]>/<oid[2:]>`, read-only objects.

The cache never holds bytes that do not match their name: objects are hashed while they
are written (one read of the source), renamed into place only when complete, and an object
that fails verification later is moved to `quarantine/corrupt/`, never used or deleted.

One module past the house's ~350 lines on purpose: `ObjectCache` and its `Batch` (many
objects made durable with one sync) share one write path — temp file, hash while copying,
commit by rename — and one failure policy (full disk, refused links); split in two, each
would reach into the other's private steps.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from moma_cli.atomic import flush, is_tmp_name, tmp_sibling
from moma_cli.core import hashing, manifest
from moma_cli.errors import HashMismatchError, NoSpaceError, ObjectMissingError
from moma_cli.storage.link import COPY_RANGE_REFUSED, copy_range
from moma_cli.storage.state import StateDB, StatKey

if TYPE_CHECKING:
    import threading

OBJECT_MODE = 0o444
T = TypeVar("T")
P = TypeVar("P", str, Path)
_SMALL = 1 << 20
_LINK_REFUSED = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOSYS}
_CHUNK = 4 << 20
# A full disk, a quota or a file-size limit: the write failed for lack of room, not a bug.
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class ObjectCache:
    def __init__(self, root: Path, algo: str, state: StateDB | None = None) -> None:
        self.root = root
        self.algo = algo
        self.state = state
        self.objects_dir = root / algo
        self._objects_str = str(self.objects_dir)
        self.tmp_dir = root / "tmp"
        self._tmp_str = str(self.tmp_dir)
        self.quarantine_dir = root / "quarantine"
        # Indexes of remote packs, kept once read (storage/packs.py): named by their hash.
        self.pack_indexes_dir = root / "packs" / algo
        # Within `spare_copies()`: object path -> a second copy of a large object downloaded
        # by this process, which a checkout that copies takes instead of copying again.
        self.spares: dict[str, str] | None = None

    # -- naming ---------------------------------------------------------------------------
    def oid_to_path(self, oid: str) -> Path:
        return self.objects_dir / oid[:2] / oid[2:]

    def object_path(self, oid: str) -> str:
        """`oid_to_path` as a string, for per-file loops (status, checkout): pathlib costs
        more than the stat itself."""
        return f"{self._objects_str}/{oid[:2]}/{oid[2:]}"

    def exists(self, oid: str) -> bool:
        return os.access(self.object_path(oid), os.F_OK)

    def stamp(self) -> str:
        """Inode and mtime of the object directories: adding or removing any object changes
        a prefix directory's mtime, so an unchanged stamp means the same objects are here."""
        try:
            top = os.stat(self._objects_str)
            with os.scandir(self._objects_str) as it:
                dirs = sorted((e.name, e.inode(), e.stat().st_mtime_ns) for e in it)
        except FileNotFoundError:
            return "none"
        digest = hashing.hash_bytes(repr(dirs).encode(), self.algo)
        return f"{top.st_ino}:{top.st_mtime_ns}:{digest}"

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
        tmp, fd = _open_tmp(self.tmp_dir)
        return tmp, os.fdopen(fd, "wb")

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
        with self.batch() as batch:
            oid, size, _ = batch.add_file(src)
            return oid, size

    @contextlib.contextmanager
    def batch(self) -> Iterator[Batch]:
        """Add many files with one flush to disk instead of one fsync per file.

        Files are copied to temps in `tmp/`; on leaving the block the temps are made
        durable together, then renamed under their names (see `Batch.commit`). On an
        exception nothing is renamed and every temp is removed.
        """
        batch = Batch(self)
        try:
            yield batch
            batch.commit()
        except OSError as exc:
            self._check_space(exc, "new objects")
            raise
        finally:
            batch.discard()

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
            except BaseException as exc:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                self._check_space(exc, f"object {hashing.short_oid(oid)}")
                raise
        return oid

    def add_chunks(self, chunks: Iterable[bytes]) -> str:
        """`add_bytes` for data made as it is written (a million-file manifest): hashed
        while written to a temp, made durable, then renamed under its oid."""
        tmp, fd = _open_tmp(self.tmp_dir)
        try:
            hasher = hashing.new_hasher(self.algo)
            try:
                for chunk in hashing.coalesce(chunks):
                    hasher.update(chunk)
                    _write_all(fd, chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            oid = hasher.hexdigest()
            self._commit(tmp, oid)
        except BaseException as exc:
            _unlink_quietly(tmp)
            self._check_space(exc, "a directory listing")
            raise
        return oid

    def _check_space(self, exc: BaseException, what: str) -> None:
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            raise NoSpaceError(
                f"no room to store {what} in the cache {self.root} ({exc.strerror}); "
                "nothing was changed",
                hint="free disk space (e.g. 'moma gc --workspace') or move the cache with "
                     "the cache.dir setting",
            ) from None

    @contextlib.contextmanager
    def spare_copies(self) -> Iterator[None]:
        """Within the block, each large download is written twice as it arrives, to its
        cache temp and to a spare temp, and the spare is kept once the object is verified
        and in the cache (`take_spare`). For a pull that checks out by copying (no reflinks
        here): the second write of every byte overlaps the download instead of following
        it, where copying 1 GiB out of the cache afterwards took 1.3-5 s on this disk
        (docs/performance.md). Spares nobody took are removed when the block ends."""
        self.spares = {}
        try:
            yield
        finally:
            spares, self.spares = self.spares, None
            for spare in spares.values():
                _unlink_quietly(Path(spare))

    def take_spare(self, object_path: str) -> str | None:
        """The spare copy of the object at `object_path` (an `object_path(oid)`), now the
        caller's to rename, or None. Its bytes were written from the same verified chunks
        as the object's; one whose size differs from the object's is dropped."""
        spare = self.spares.pop(object_path, None) if self.spares else None
        if spare is None:
            return None
        try:
            if os.stat(spare).st_size == os.stat(object_path).st_size:
                return spare
        except FileNotFoundError:
            return None
        _unlink_quietly(Path(spare))
        return None

    # -- reading and verifying ------------------------------------------------------------
    def hash_file(self, path: str | Path, size: int | None = None) -> str:
        """Hash a file without copying it."""
        if size is None:
            size = os.stat(path).st_size
        return hashing.hash_path(path, self.algo, size)

    def checked_path(self, oid: str) -> Path:
        """The object's path after making sure it is present and intact.

        Intact is remembered in the stat cache, so a second checkout does not re-hash.
        A damaged object is quarantined and reported.
        """
        path = self.oid_to_path(oid)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise _not_cached(oid) from None
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

    def checked_paths(self, oids: Iterable[str]
                      ) -> dict[str, tuple[str, int] | ObjectMissingError | HashMismatchError]:
        """`checked_path` for many objects (a checkout window): oid -> (path, size), or the
        error of that one object. What the stat cache knows intact costs one query for all,
        where a query each was a tenth of a 10k-file checkout; the rest is hashed (and
        quarantined if damaged) one by one, as `checked_path` does."""
        found: dict[str, tuple[str, int] | ObjectMissingError | HashMismatchError] = {}
        stats: dict[str, tuple[str, os.stat_result]] = {}
        for oid in oids:
            path = self.object_path(oid)
            try:
                stats[oid] = (path, os.stat(path))
            except FileNotFoundError:
                found[oid] = _not_cached(oid)
        known = ({} if self.state is None else
                 self.state.get_many([path for path, _ in stats.values()], self.algo))
        for oid, (path, st) in stats.items():
            row = known.get(path)
            if row is not None and row == (st.st_ino, st.st_size, st.st_mtime_ns, oid):
                found[oid] = (path, st.st_size)
                continue
            try:
                found[oid] = (str(self.checked_path(oid)), st.st_size)
            except (ObjectMissingError, HashMismatchError) as exc:
                found[oid] = exc
        return found

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


class Batch:
    """Temps written by `ObjectCache.batch()`, waiting to be synced and renamed.

    Safe to call `add_file` from several threads: each call owns its temp, and appending
    to a list is atomic.
    """

    def __init__(self, cache: ObjectCache) -> None:
        self.cache = cache
        self.pending: list[tuple[str | Path, str]] = []
        self.spares: list[tuple[Path, str]] = []  # (spare temp, oid) of verified downloads
        # `commit_behind`: the temps its thread syncs and renames, what it raised, and the
        # prefix directories renamed into since the last `commit` flushed them.
        self._behind: list[tuple[str | Path, str]] = []
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._renamed: set[str] = set()

    def add_file(self, src: str | Path, size_hint: int | None = None
                 ) -> tuple[str, int, StatKey]:
        """Hash `src` into a temp copy; return (oid, size, the stat key of `src` once read:
        if it is the key the caller saw before, the file did not change meanwhile). Nothing
        is written for content the cache already has (small files are hashed before any
        write). `size_hint`: the size a walk saw, which spares a small file's probes."""
        if size_hint is not None and size_hint <= _SMALL:
            stored = self._add_small(src, size_hint)
            if stored is not None:
                return stored
        cache = self.cache
        with open(src, "rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= _SMALL:
                data = fh.readall()
                key = StatKey.of(os.fstat(fh.fileno()))
                return self._add_bytes(data), len(data), key
            tmp, out = cache._new_tmp()
            oid, size = self._fill(tmp, out, lambda: _copy_and_hash(fh, out, tmp, cache.algo, size))
            key = StatKey.of(os.fstat(fh.fileno()))
        self.pending.append((tmp, oid))
        return oid, size, key

    def _add_small(self, src: str | Path, size: int) -> tuple[str, int, StatKey] | None:
        """`add_file` of a file a walk saw at `size` bytes, in four system calls (open, one
        read, fstat, close; `open()` + `readall()` made nine, with a stat after): None when
        the file is no longer `size` bytes, for `add_file` to read it the general way."""
        fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, size + 1)  # one byte more: a file that grew is seen
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if len(data) != st.st_size:  # not the whole file, as it is now
            return None
        return self._add_bytes(data), len(data), StatKey.of(st)

    def _add_bytes(self, data: bytes) -> str:
        cache = self.cache
        oid = hashing.hash_bytes(data, cache.algo)
        if not cache.exists(oid):
            self.pending.append((_write_small(cache._tmp_str, data), oid))
        return oid

    def link_file(self, src: str | Path, expected: StatKey) -> tuple[str, int] | None:
        """Hardlink `src` into the cache instead of copying it; return (oid, size).

        For repositories whose `cache.type` starts with hardlink: the workspace file and
        the object become one read-only inode (DVC does the same), which costs a directory
        entry instead of a new file (0.02 ms against 0.4 ms here). None when the link is
        refused (another filesystem, ...) or the file is not, after hashing, the one the
        caller saw (`expected`: inode, size, mtime); the caller then copies.
        """
        cache = self.cache
        tmp = tmp_sibling(cache.tmp_dir / "object")
        try:
            try:
                os.link(src, tmp)
            except FileNotFoundError:  # first write into this cache
                cache.tmp_dir.mkdir(parents=True, exist_ok=True)
                os.link(src, tmp)
        except OSError as exc:
            if exc.errno in _LINK_REFUSED:
                return None
            raise
        mode = 0o644
        try:
            st = os.stat(tmp)
            mode = stat.S_IMODE(st.st_mode)
            # Read-only before hashing: no new writer can open it from here on.
            os.chmod(tmp, OBJECT_MODE)
            oid = hashing.hash_path(tmp, cache.algo, expected.size)
            changed = StatKey.of(st) != expected or StatKey.of(os.stat(tmp)) != expected
        except BaseException:
            _unlink_restoring(tmp, mode)
            raise
        if changed:  # written to while hashed: let the caller copy it
            _unlink_restoring(tmp, mode)
            return None
        if cache.exists(oid):  # already cached: the workspace file stays its own
            _unlink_restoring(tmp, mode)
            return oid, expected.size
        self.pending.append((tmp, oid))
        return oid, expected.size

    def add_stream(self, oid: str, chunks: Iterable[bytes | memoryview], source: str) -> int:
        """Write downloaded bytes to a temp; keep it for the commit only if they hash to
        `oid`. On a mismatch the bytes are kept in quarantine for inspection and nothing
        enters the cache."""
        cache = self.cache
        hasher = hashing.new_hasher(cache.algo)
        size = 0
        tmp, fd = _open_tmp(cache.tmp_dir)  # a bare descriptor: 10k objects out of packs
        try:
            for chunk in chunks:
                hasher.update(chunk)
                _write_all(fd, chunk)
                size += len(chunk)
        except BaseException as exc:
            os.close(fd)
            _unlink_quietly(tmp)
            cache._check_space(exc, source)
            raise
        os.close(fd)
        self._accept(tmp, oid, hasher.hexdigest(), source)
        return size

    def add_written(self, oid: str, size: int,
                    write: Callable[[Sequence[Path], hashing.Hasher], bool], source: str) -> int:
        """`add_stream` for a large download of `size` bytes: `write(paths, hasher)` creates
        the files (kernel copies, a streamed download that hashes as it goes); a file it
        did not hash is hashed from the page cache. The second file, a spare copy, is
        written only within `ObjectCache.spare_copies()`, and kept only with the object."""
        cache = self.cache
        tmp = tmp_sibling(cache.tmp_dir / "object")
        paths = [tmp] if cache.spares is None else [tmp, tmp_sibling(cache.tmp_dir / "spare")]
        cache.tmp_dir.mkdir(parents=True, exist_ok=True)
        hasher = hashing.new_hasher(cache.algo, size)
        try:
            try:
                hashed = write(paths, hasher)
                os.chmod(tmp, OBJECT_MODE)
                written = os.stat(tmp).st_size
                actual = (hasher.hexdigest() if hashed
                          else hashing.hash_path(tmp, cache.algo, written))
            except BaseException as exc:
                _unlink_quietly(tmp)
                cache._check_space(exc, source)
                raise
            self._accept(tmp, oid, actual, source)
        except BaseException:
            for spare in paths[1:]:
                _unlink_quietly(spare)
            raise
        self.spares += [(spare, oid) for spare in paths[1:]]
        return written

    def _accept(self, tmp: Path, oid: str, actual: str, source: str) -> None:
        """Keep a downloaded temp for the commit if its bytes hash to `oid`; otherwise keep
        it in quarantine for inspection, and nothing enters the cache."""
        if actual != oid:
            moved = self.cache._move_to_quarantine(tmp, oid)
            raise HashMismatchError(
                f"object {hashing.short_oid(oid)} from {source} is corrupt "
                f"(content hashes to {hashing.short_oid(actual)}); kept aside in {moved}",
                hint="the copy on the remote is damaged: re-push it from a machine that has "
                "the good data ('moma push --verify')",
            )
        self.pending.append((tmp, oid))

    @staticmethod
    def _fill(tmp: Path, out: BinaryIO, write: Callable[[], T]) -> T:
        try:
            with out:
                return write()
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def commit(self) -> None:
        """Make every temp durable, then rename each under its oid (atomic per object).

        One `os.sync()` for a batch costs about what one fsync does, where an fsync per
        4 KiB file made adding 10,000 files take 7 s instead of 0.6 s (docs/performance.md).
        The second sync makes the renames durable before the caller writes a pointer that
        names these objects.
        """
        self._wait()
        if self.pending:
            self._sync_and_rename(self.pending)
        if self._renamed:
            flush(sorted(self._renamed))
            self._renamed.clear()
        self._keep_spares()  # only now are their objects in the cache, durably

    def commit_behind(self) -> None:
        """`commit` of the temps written so far, on a thread, while the caller writes the
        next ones (add's next window): the sync, which waits for the disk, and the renames
        then overlap the hashing instead of stopping it. The previous hand-off is waited
        for first, so at most two windows of temps exist at once. Each object is still
        renamed only after a sync that began once its temp was complete; the renames are
        made durable by a later sync (the next hand-off's, or `commit`'s, which the caller
        waits for before it writes a pointer)."""
        import threading

        self._wait()
        if not self.pending:
            return
        self._behind, self.pending = self.pending, []
        self._thread = threading.Thread(target=self._commit_behind, name="moma-commit",
                                        daemon=True)
        self._thread.start()

    def _commit_behind(self) -> None:
        try:
            self._sync_and_rename(self._behind)
        except BaseException as exc:  # raised in the caller's thread by `_wait`
            self._failed = exc

    def _wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def _sync_and_rename(self, items: list[tuple[str | Path, str]]) -> None:
        flush([tmp for tmp, _ in items])
        objects, made = self.cache._objects_str, self._renamed
        while items:
            tmp, oid = items[-1]
            parent = f"{objects}/{oid[:2]}"
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            # An object already present is identical (same oid), so replacing it is harmless.
            os.replace(tmp, f"{parent}/{oid[2:]}")
            items.pop()  # only once renamed: discard() removes a temp that failed

    def _keep_spares(self) -> None:
        """Hand the spares of the objects now in the cache to `ObjectCache.spares`."""
        cache = self.cache
        while self.spares:
            spare, oid = self.spares.pop()
            if cache.spares is None or cache.spares.setdefault(cache.object_path(oid),
                                                               str(spare)) != str(spare):
                _unlink_quietly(spare)

    def discard(self) -> None:
        if self._thread is not None:  # never unlink under a thread still renaming
            self._thread.join()
            self._thread = None
        for items in (self.pending, self._behind):
            while items:
                _unlink_quietly(items.pop()[0])
        while self.spares:
            _unlink_quietly(self.spares.pop()[0])


def _not_cached(oid: str) -> ObjectMissingError:
    return ObjectMissingError(f"object {hashing.short_oid(oid)} is not in the cache",
                              hint="run 'moma fetch' to download it from the remote")


def _open_tmp(tmp_dir: P) -> tuple[P, int]:
    """A new temp, created read-only: the mode binds later opens only, so the writer can
    still fill it, and the commit needs no chmod. A string directory gives a string path
    (add's per-file loop: pathlib cost more than the system calls)."""
    tmp = tmp_sibling(tmp_dir / "object" if isinstance(tmp_dir, Path)
                      else f"{tmp_dir}/object")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return tmp, os.open(tmp, flags, OBJECT_MODE)  # type: ignore[return-value]
    except FileNotFoundError:  # first write into this cache
        os.makedirs(tmp_dir, exist_ok=True)
        return tmp, os.open(tmp, flags, OBJECT_MODE)  # type: ignore[return-value]


def _write_small(tmp_dir: str, data: bytes) -> str:
    """Write a temp with bare syscalls: per-file overhead is what adding 10k files costs."""
    tmp, fd = _open_tmp(tmp_dir)
    try:
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unlink_restoring(tmp: Path, mode: int) -> None:
    """Drop a hardlink to a workspace file, giving the workspace file its mode back."""
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)
    _unlink_quietly(tmp)


def _unlink_quietly(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _copy_and_hash(
    src: BinaryIO, out: BinaryIO, dest: Path, algo: str, size: int
) -> tuple[str, int]:
    """Copy a large file in the kernel, then hash the copy from the page cache.

    Hashing the copy rather than the source means the oid always names the bytes that
    were stored, even if the source changes meanwhile. copy_file_range + blake3's
    multithreaded `update_mmap` took 0.74 s for 1 GiB here against 0.96 s for a
    read/hash/write loop (docs/performance.md); the copy is written to disk as it goes
    (`copy_range`), so the batch's flush before the rename has little left to do.
    """
    try:
        copied = copy_range(src.fileno(), out.fileno(), size)
    except OSError as exc:  # refused across some filesystems: copy through user space
        if exc.errno not in COPY_RANGE_REFUSED:
            raise
        src.seek(0)
        out.seek(0)
        out.truncate()
        hasher = hashing.new_hasher(algo, size)
        copied = _hash_copy(src, out, hasher)
        return hasher.hexdigest(), copied
    out.flush()
    return hashing.hash_path(dest, algo, copied), copied


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
