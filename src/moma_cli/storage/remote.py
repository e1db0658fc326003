"""Objects on a remote, laid out like the cache: `<root>/<algo>/<oid[:2]>/<oid[2:]>`, with
many small objects grouped into packs under `<root>/<algo>/packs/` (storage/packs.py).

Two stores share one interface and the pack logic: `LocalRemote` (a directory: os-level
copies, temp sibling + one sync per batch + `os.replace`, so a half-written object never
appears under its name) and `FsspecRemote` (S3 and other fsspec stores: a single PUT is
atomic, and s3fs aborts a multipart upload that fails). Each backend supplies a few
primitives on the packs directory (`_pack_files`, `_read`, `_write`, `_remove`); the
shared `Store` turns them into pack reads and writes. Existence is asked in batches by
listing prefix directories, never one request per object when the store can list.

`uploads()` is a batch: a local directory stages loose objects as temps beside their names
and makes them durable with one sync, then renames them (an fsync per 4 KiB object is what
made pushing 10k files slow); S3 uploads right away. Maintenance (`moma gc --remote`,
`fsck --remote`, `remote clean`) adds `listing`, `delete`, `replace` and `clean_stale`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from moma_cli.core import hashing
from moma_cli.core.hashing import is_valid_oid
from moma_cli.errors import ObjectMissingError, PackIndexError
from moma_cli.storage import packs, transfer
from moma_cli.storage.atomic import atomic_write_bytes, flush, is_tmp_name, tmp_sibling
from moma_cli.storage.cache import OBJECT_MODE, Batch
from moma_cli.storage.fs import Location
from moma_cli.storage.link import Placement, copy_file
from moma_cli.storage.packs import Slot

# Loose objects up to this size are read whole into memory (one GET); larger ones are
# written straight to a local file (a kernel copy from a local remote, a streamed download).
_IN_MEMORY = 16 << 20
# s3fs downloads a large object as one streamed GET (64 KiB reads, resumed with a Range
# after a dropped connection), not in parallel ranged parts: s3fs holds each part whole in
# memory, twice over (pulling 1 GiB in 256 MiB parts peaked at 1.35 GiB of RSS; DVC, with
# s3fs's 50 MiB x 10, at 0.9 GiB), and moto copies the whole object for every ranged GET
# (1 GiB from moto: 22 s in 50 MiB parts, 6 s in 256 MiB parts, 2 s in one stream). On S3
# proper one object moves at one connection's speed; many objects still move in parallel.
_STREAMED = {"max_concurrency": 1}
_LIST_PAGE = 1000  # keys per S3 list request
# Packs built and sent at once: each is held in memory while it is sent.
_PACKS_IN_FLIGHT = 4
# Upload one cache file under an oid; thread-safe. Objects uploaded in an `uploads()` block
# are on the remote, under their names, once the block has exited without an exception.
Uploader = Callable[[Path, str], object]
# Writes one object's bytes to a new local file at the path given.
Writer = Callable[[Path], object]


class PackFile(NamedTuple):
    """A file in the packs directory, as its listing gives it."""

    mtime: float  # epoch seconds
    size: int


class Sink(Protocol):
    """Where objects read from a remote go: a cache batch, or a checker that only hashes."""

    def stream(self, oid: str, chunks: Iterable[bytes | memoryview]) -> object:
        """Take an object as chunks (small objects, objects out of packs)."""

    def fill(self, oid: str, write: Writer) -> object:
        """Take a large object, which `write(path)` writes to a new local file."""


def open_store(location: Location, algo: str, index_dir: Path, jobs: int, *,
               reread: bool = False) -> Store:
    """`index_dir`: where pack indexes read from remotes are kept (they never change);
    `reread`: read every index from the remote again, to check it (fsck, push --verify)."""
    store_type = LocalRemote if location.is_local else FsspecRemote
    return store_type(location, algo, index_dir, jobs, reread)


class Download:
    """A sink that puts objects into a cache batch, which verifies each hash and quarantines
    a bad one; the objects are in the cache once the batch commits."""

    def __init__(self, store: Store, batch: Batch) -> None:
        self.batch = batch
        self.source = store.location.describe()

    def stream(self, oid: str, chunks: Iterable[bytes | memoryview]) -> object:
        return self.batch.add_stream(oid, chunks, self.source)

    def fill(self, oid: str, write: Writer) -> object:
        return self.batch.add_written(oid, write, self.source)


class Digests:
    """A sink that only hashes: oid -> (digest, bytes read) of each object read, and the
    objects that were gone by the time they were read (fsck --remote, push --verify).
    Large objects pass through a temp file in `tmp_dir`."""

    def __init__(self, algo: str, tmp_dir: Path) -> None:
        self.algo = algo
        self.tmp_dir = tmp_dir
        self.found: dict[str, tuple[str, int]] = {}
        self.vanished: list[str] = []

    def stream(self, oid: str, chunks: Iterable[bytes | memoryview]) -> object:
        hasher = hashing.new_hasher(self.algo)
        nbytes = 0
        try:
            for chunk in chunks:
                hasher.update(chunk)
                nbytes += len(chunk)
        except ObjectMissingError:
            self.vanished.append(oid)
            return None
        self.found[oid] = (hasher.hexdigest(), nbytes)
        return None

    def fill(self, oid: str, write: Writer) -> object:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_sibling(self.tmp_dir / "verify")
        try:
            write(tmp)
            nbytes = os.stat(tmp).st_size
            self.found[oid] = (hashing.hash_path(tmp, self.algo, nbytes), nbytes)
        except ObjectMissingError:
            self.vanished.append(oid)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return None


def _by_prefix(oids: Iterable[str]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for oid in oids:
        groups.setdefault(oid[:2], set()).add(oid)
    return groups


class Store:
    """What every remote offers; subclasses supply the loose-object and packs-dir primitives."""

    location: Location

    def __init__(self, location: Location, algo: str, index_dir: Path, jobs: int,
                 reread: bool) -> None:
        self.location = location
        self.algo = algo
        self.index_dir = index_dir
        self.jobs = jobs
        self.reread = reread
        self._packs: dict[str, dict[str, Slot]] | None = None  # packid -> its objects
        # packid -> why its index is not trusted (its pack is ignored): the message names it
        self.damaged: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- what backends provide ------------------------------------------------------------
    def _existing_loose(self, oids: set[str]) -> set[str]:
        raise NotImplementedError

    def _loose_listing(self) -> dict[str, int]:
        raise NotImplementedError

    def _delete_loose(self, oids: Sequence[str]) -> None:
        raise NotImplementedError

    def _clean_stale_loose(self, older_than: float, now: float) -> list[str]:
        raise NotImplementedError

    def uploads(self) -> contextlib.AbstractContextManager[Uploader]:
        raise NotImplementedError

    def _loose_size(self, oid: str) -> int:
        """A loose object's size; ObjectMissingError when it is not there."""
        raise NotImplementedError

    def _loose_bytes(self, oid: str) -> bytes:
        """A small loose object's content; ObjectMissingError when it is not there."""
        raise NotImplementedError

    def _loose_to_file(self, oid: str, dest: Path) -> None:
        """Write a loose object to a new local file; ObjectMissingError when not there."""
        raise NotImplementedError

    def _pack_files(self) -> dict[str, PackFile]:
        """File name -> mtime and size of everything in the packs dir (one listing)."""
        raise NotImplementedError

    def _read(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        raise NotImplementedError

    def _write(self, name: str, data: bytes) -> None:
        """Write a file in the packs dir atomically and durably."""
        raise NotImplementedError

    def _remove(self, names: Sequence[str]) -> None:
        raise NotImplementedError

    # -- packs ----------------------------------------------------------------------------
    def packs(self) -> dict[str, dict[str, Slot]]:
        """Every complete pack on the remote whose index can be trusted (one listing,
        indexes cached locally); the others are noted in `damaged`."""
        if self._packs is None:
            files = self._pack_files()
            ids = sorted(name.removesuffix(packs.INDEX_SUFFIX) for name in files
                         if name.endswith(packs.INDEX_SUFFIX))
            ids = [i for i in ids if is_valid_oid(i) and i + packs.PACK_SUFFIX in files]
            loaded = transfer.parallel_map(partial(self._load_index, files=files), ids,
                                           self.jobs)
            self._packs = {packid: slots for packid, slots in zip(ids, loaded, strict=True)
                           if slots is not None}
        return self._packs

    def _packed(self) -> dict[str, Slot]:
        return {oid: slot for slots in self.packs().values() for oid, slot in slots.items()}

    def _load_index(self, packid: str, files: dict[str, PackFile]) -> dict[str, Slot] | None:
        """A pack's index, from the local copy or the remote, checked against the pack's
        size in the listing `files` (a local copy too: the pack may have been replaced).
        None when the pack is gone, or its index not trusted (noted in `damaged`)."""
        pack_size = files[packid + packs.PACK_SUFFIX].size
        where = self.location.describe()
        local = self.index_dir / (packid + packs.INDEX_SUFFIX)
        if not self.reread:
            with contextlib.suppress(OSError, PackIndexError):
                return packs.decode_index(local.read_bytes(), packid, self.algo, pack_size,
                                          where)
        try:
            packs.check_index_size(packid, files[packid + packs.INDEX_SUFFIX].size, where)
            data = self._read(packid + packs.INDEX_SUFFIX)
            slots = packs.decode_index(data, packid, self.algo, pack_size, where)
        except FileNotFoundError:  # removed since the listing
            return None
        except PackIndexError as exc:
            self.damaged[packid] = exc.message
            return None
        self._keep_index(packid, data)
        return slots

    def _keep_index(self, packid: str, data: bytes) -> None:
        local = self.index_dir / (packid + packs.INDEX_SUFFIX)
        local.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(local, data)

    def write_pack(self, objects: Sequence[tuple[str, bytes | memoryview]]) -> str:
        """Store these objects as one pack: the pack first, then its index."""
        index = packs.encode_index([(oid, len(data)) for oid, data in objects], self.algo)
        packid = hashing.hash_bytes(index, self.algo)
        pack = b"".join(data for _, data in objects)
        self._write(packid + packs.PACK_SUFFIX, pack)
        self._write(packid + packs.INDEX_SUFFIX, index)
        self._keep_index(packid, index)
        if self._packs is not None:
            slots = packs.decode_index(index, packid, self.algo, len(pack))
            with self._lock:
                self._packs[packid] = slots
                self.damaged.pop(packid, None)  # a crafted pack of that name is replaced
        return packid

    def _drop_pack(self, packid: str) -> None:
        # The index goes first: a pack without an index is never read.
        self._remove([packid + packs.INDEX_SUFFIX])
        self._remove([packid + packs.PACK_SUFFIX])
        if self._packs is not None:
            self._packs.pop(packid, None)

    def _repack(self, packid: str, keep: Sequence[str],
                fresh: dict[str, bytes] | None = None) -> None:
        """Replace a pack by one holding only `keep`, with `fresh` bytes where given."""
        slots = self.packs()[packid]
        data = memoryview(self._read(packid + packs.PACK_SUFFIX))
        fresh = fresh or {}
        objects = [(oid, fresh[oid] if oid in fresh else
                    data[slots[oid].offset:slots[oid].offset + slots[oid].size])
                   for oid in keep]
        # The same objects give the same index, hence the same name: the pack is then
        # replaced in place (atomically), and must not be dropped after.
        if (self.write_pack(objects) if objects else None) != packid:
            self._drop_pack(packid)

    # -- the interface the services use ---------------------------------------------------
    def existing(self, oids: Iterable[str]) -> set[str]:
        """Which of these objects the remote holds, loose or packed."""
        wanted = set(oids)
        if not wanted:
            return set()
        packed = wanted & self._packed().keys()
        rest = wanted - packed
        return packed | (self._existing_loose(rest) if rest else set())

    def upload_tasks(self, objects: Sequence[tuple[str, Path, int]],
                     upload: Uploader) -> list[transfer.Task]:
        """Tasks that send these (oid, cache path, size) objects: many small ones in packs,
        the rest loose through `upload`."""
        small = [(oid, size) for oid, _, size in objects if size <= packs.OBJECT_MAX]
        if len(small) < packs.MIN_OBJECTS:
            small = []
        packed = {oid for oid, _ in small}
        paths = {oid: path for oid, path, _ in objects}
        gate = threading.BoundedSemaphore(_PACKS_IN_FLIGHT)

        def send(oids: list[str]) -> None:
            with gate:
                self.write_pack([(oid, paths[oid].read_bytes()) for oid in oids])

        tasks = [transfer.whole(send, group) for group in packs.group(small)]
        loose = [oid for oid, _, _ in objects if oid not in packed]
        return tasks + transfer.tasks(lambda oid: upload(paths[oid], oid), loose, self.jobs)

    def read_tasks(self, oids: Iterable[str], sizes: dict[str, int],
                   sink: Sink) -> list[transfer.Task]:
        """Tasks that read these objects into `sink`; a packed object comes out of a ranged
        read shared with its neighbours. `sizes` are known sizes (saves a request each)."""
        wanted = list(oids)
        index = self._packed() if wanted else {}
        located = {oid: index[oid] for oid in wanted if oid in index}

        def read(span: packs.Span) -> list[tuple[str, str | None]]:
            try:
                data = self._read(span.packid + packs.PACK_SUFFIX, span.start, span.end)
            except FileNotFoundError:  # removed since the index was read
                return [(oid, transfer.attempt(sink.stream, oid, self._gone(oid)))
                        for oid in span.oids]
            return [(oid, transfer.attempt(lambda o, v: sink.stream(o, [v]), oid, view))
                    for oid, view in span.objects(data)]

        def read_loose(oid: str) -> None:
            size = sizes.get(oid)
            if size is None:
                try:
                    size = self._loose_size(oid)
                except ObjectMissingError as exc:
                    sink.stream(oid, self._gone(oid, exc))
                    return
            if size > _IN_MEMORY:
                sink.fill(oid, partial(self._loose_to_file, oid))
            else:
                sink.stream(oid, self._loose_chunks(oid))

        tasks: list[transfer.Task] = [partial(read, span) for span in packs.spans(located)]
        loose = [oid for oid in wanted if oid not in located]
        return tasks + transfer.tasks(read_loose, loose, self.jobs)

    def _loose_chunks(self, oid: str) -> Iterator[bytes]:
        yield self._loose_bytes(oid)

    def listing(self) -> dict[str, int]:
        """Every object on the remote with its size."""
        objects = self._loose_listing()
        objects.update((oid, slot.size) for oid, slot in self._packed().items())
        return objects

    def delete(self, oids: Sequence[str]) -> None:
        """Delete these objects: loose ones directly; a pack goes when all its objects do,
        and is rewritten without them when only some do."""
        doomed = set(oids)
        self._delete_loose(sorted(doomed))
        for packid, slots in list(self.packs().items()):
            if doomed.isdisjoint(slots):
                continue
            self._repack(packid, [oid for oid in slots if oid not in doomed])

    def replace(self, good: dict[str, Path]) -> None:
        """Overwrite the remote's copies of these objects with the cache files given
        (`push --verify` repairing damaged copies)."""
        index = self._packed()
        loose = [oid for oid in good if oid not in index]
        with self.uploads() as upload:
            for oid in loose:
                upload(good[oid], oid)
        for packid, slots in list(self.packs().items()):
            fresh = {oid: good[oid].read_bytes() for oid in slots if oid in good}
            if fresh:
                self._repack(packid, list(slots), fresh)

    def clean_stale(self, older_than: float, now: float) -> list[str]:
        """Remove what interrupted pushes left behind, if older than `older_than` seconds
        (a younger leftover may belong to a push running elsewhere right now): temps and
        incomplete uploads of loose objects, and packs whose index never arrived."""
        removed = self._clean_stale_loose(older_than, now)
        files = self._pack_files()
        stale = [name for name, file in sorted(files.items())
                 if now - file.mtime >= older_than and (is_tmp_name(name) or (
                     name.endswith(packs.PACK_SUFFIX) and
                     name.removesuffix(packs.PACK_SUFFIX) + packs.INDEX_SUFFIX not in files))]
        self._remove(stale)
        return removed + [f"{packs.DIR}/{name}" for name in stale]

    def _missing(self, oid: str) -> ObjectMissingError:
        return ObjectMissingError(f"no object {oid[:8]} on {self.location.describe()}")

    def _gone(self, oid: str, error: ObjectMissingError | None = None) -> Iterator[bytes]:
        """The chunks of an object that is not there: reading them raises, as for any
        other object, so sinks see one kind of failure."""
        raise error or self._missing(oid)
        yield b""  # unreachable: makes this a generator


class LocalRemote(Store):
    def __init__(self, location: Location, algo: str, index_dir: Path, jobs: int,
                 reread: bool) -> None:
        super().__init__(location, algo, index_dir, jobs, reread)
        self.objects_dir = Path(location.root) / algo
        self.packs_dir = self.objects_dir / packs.DIR

    def oid_to_path(self, oid: str) -> Path:
        return self.objects_dir / oid[:2] / oid[2:]

    def _existing_loose(self, oids: set[str]) -> set[str]:
        groups = _by_prefix(oids)

        def scan(prefix: str) -> set[str]:
            try:
                with os.scandir(self.objects_dir / prefix) as it:
                    names = {e.name for e in it if not is_tmp_name(e.name)}
            except FileNotFoundError:
                return set()
            return {oid for oid in groups[prefix] if oid[2:] in names}

        found: set[str] = set()
        for part in transfer.parallel_map(scan, list(groups), self.jobs):
            found |= part
        return found

    @contextlib.contextmanager
    def uploads(self) -> Iterator[Uploader]:
        placement = Placement(("reflink", "copy"), mode=OBJECT_MODE, durable=True)
        try:
            yield lambda src, oid: placement.stage(src, self.oid_to_path(oid))
            placement.commit()
        finally:
            placement.discard()

    def _loose_size(self, oid: str) -> int:
        try:
            return os.stat(self.oid_to_path(oid)).st_size
        except FileNotFoundError:
            raise self._missing(oid) from None

    def _loose_bytes(self, oid: str) -> bytes:
        try:
            return self.oid_to_path(oid).read_bytes()
        except FileNotFoundError:
            raise self._missing(oid) from None

    def _loose_to_file(self, oid: str, dest: Path) -> None:
        try:
            copy_file(self.oid_to_path(oid), dest, 0o600)  # in the kernel: no Python buffers
        except FileNotFoundError:
            raise self._missing(oid) from None

    def _files(self) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """(prefix, entry) for every file in the prefix directories: objects, and the temps
        of uploads that were interrupted."""
        try:
            with os.scandir(self.objects_dir) as it:
                prefixes = [e.name for e in it if len(e.name) == 2 and e.is_dir()]
        except FileNotFoundError:
            return
        for prefix in sorted(prefixes):
            with os.scandir(self.objects_dir / prefix) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        yield prefix, entry

    def _loose_listing(self) -> dict[str, int]:
        return {prefix + e.name: e.stat(follow_symlinks=False).st_size
                for prefix, e in self._files() if is_valid_oid(prefix + e.name)}

    def _delete_loose(self, oids: Sequence[str]) -> None:
        for oid in oids:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.oid_to_path(oid))

    def _clean_stale_loose(self, older_than: float, now: float) -> list[str]:
        removed = []
        for prefix, entry in self._files():
            if is_tmp_name(entry.name) and \
                    now - entry.stat(follow_symlinks=False).st_mtime >= older_than:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                removed.append(f"{prefix}/{entry.name}")
        return removed

    def _pack_files(self) -> dict[str, PackFile]:
        try:
            with os.scandir(self.packs_dir) as it:
                stats = {e.name: e.stat(follow_symlinks=False) for e in it
                         if e.is_file(follow_symlinks=False)}
        except FileNotFoundError:
            return {}
        return {name: PackFile(st.st_mtime, st.st_size) for name, st in stats.items()}

    def _read(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        with open(self.packs_dir / name, "rb") as fh:
            if start is None:
                return fh.read()
            return os.pread(fh.fileno(), (end or 0) - start, start)

    def _write(self, name: str, data: bytes) -> None:
        self.packs_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.packs_dir / name, data, OBJECT_MODE)
        flush([self.packs_dir])  # the rename is durable before anything names this file

    def _remove(self, names: Sequence[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.packs_dir / name)


class FsspecRemote(Store):
    def __init__(self, location: Location, algo: str, index_dir: Path, jobs: int,
                 reread: bool) -> None:
        super().__init__(location, algo, index_dir, jobs, reread)
        self.fs = location.fs
        self.objects_dir = f"{location.root}/{algo}"
        self.packs_dir = f"{self.objects_dir}/{packs.DIR}"

    def oid_to_path(self, oid: str) -> str:
        return f"{self.objects_dir}/{oid[:2]}/{oid[2:]}"

    def _list(self, path: str, *, recursive: bool = False) -> list[str]:
        with self.location.translate():
            try:
                if recursive:
                    return list(self.fs.find(path))
                return list(self.fs.ls(path, detail=False))
            except FileNotFoundError:
                return []

    def _existing_loose(self, oids: set[str]) -> set[str]:
        """List prefix directories, or the whole object directory when that is fewer requests.

        Listing one prefix first gives an estimate of the remote's size: with N objects,
        one recursive listing costs N/1000 requests, against one per prefix we need.
        """
        groups = _by_prefix(oids)

        def names_in(prefix: str) -> set[str]:
            keys = self._list(f"{self.objects_dir}/{prefix}")
            names = {k.rsplit("/", 1)[-1] for k in keys}
            return {oid for oid in groups[prefix] if oid[2:] in names}

        prefixes = sorted(groups)
        first = prefixes[0]
        keys = self._list(f"{self.objects_dir}/{first}")
        found = {oid for oid in groups[first] if oid[2:] in {k.rsplit("/", 1)[-1] for k in keys}}
        rest = prefixes[1:]
        estimated_pages = len(keys) * 256 // _LIST_PAGE + 1
        if len(rest) > estimated_pages:
            wanted = {oid for p in rest for oid in groups[p]}
            for key in self._list(self.objects_dir, recursive=True):
                parts = key.rsplit("/", 2)
                if len(parts) == 3 and (oid := parts[1] + parts[2]) in wanted:
                    found.add(oid)
            return found
        for part in transfer.parallel_map(names_in, rest, self.jobs):
            found |= part
        return found

    @contextlib.contextmanager
    def uploads(self) -> Iterator[Uploader]:
        yield self._upload

    def _upload(self, src: Path, oid: str) -> None:
        with self.location.translate():
            # One PUT for small objects (atomic); s3fs switches to a multipart upload for
            # large ones and aborts it if any part fails.
            self.fs.put_file(str(src), self.oid_to_path(oid))

    @contextlib.contextmanager
    def _object(self, oid: str) -> Iterator[str]:
        """The object's path, with a missing object reported as ObjectMissingError."""
        with self.location.translate():
            try:
                yield self.oid_to_path(oid)
            except FileNotFoundError:
                raise self._missing(oid) from None

    def _loose_size(self, oid: str) -> int:
        with self._object(oid) as path:
            return int(self.fs.info(path)["size"])

    def _loose_bytes(self, oid: str) -> bytes:
        with self._object(oid) as path:
            return bytes(self.fs.cat_file(path))

    def _loose_to_file(self, oid: str, dest: Path) -> None:
        options = _STREAMED if self.location.protocol in ("s3", "s3a") else {}
        with self._object(oid) as path:
            self.fs.get_file(path, str(dest), **options)

    def _loose_listing(self) -> dict[str, int]:
        with self.location.translate():
            try:
                found = self.fs.find(self.objects_dir, detail=True)
            except FileNotFoundError:
                return {}
        objects = {}
        for key, info in found.items():
            parts = key.rsplit("/", 2)
            if len(parts) == 3 and is_valid_oid(oid := parts[1] + parts[2]):
                objects[oid] = int(info["size"])
        return objects

    def _delete_loose(self, oids: Sequence[str]) -> None:
        if not oids:
            return
        with self.location.translate():
            # s3fs turns a list into DeleteObjects requests of up to 1000 keys; keys that
            # are not there (packed objects) are no error.
            self.fs.rm([self.oid_to_path(oid) for oid in oids])

    def _clean_stale_loose(self, older_than: float, now: float) -> list[str]:
        """Abort the incomplete multipart uploads (S3) of pushes killed mid-upload: invisible
        as objects, but their parts are stored and billed until aborted. Only old ones, and
        only under this remote's object directory: the bucket may hold other uploads."""
        if self.location.protocol not in ("s3", "s3a"):
            return []
        bucket, _, key_prefix = self.objects_dir.partition("/")
        aborted = []
        with self.location.translate():
            for upload in self._multipart_uploads(bucket, f"{key_prefix}/"):
                initiated = upload.get("Initiated")  # a datetime; absent on odd S3 clones
                if initiated is not None and now - initiated.timestamp() >= older_than:
                    self.fs.call_s3("abort_multipart_upload", Bucket=bucket,
                                    Key=upload["Key"], UploadId=upload["UploadId"])
                    aborted.append(f"{upload['Key']} (incomplete multipart upload)")
        return aborted

    def _multipart_uploads(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = []
        marker: dict[str, str] = {}
        while True:
            page = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix,
                                   **marker)
            uploads += page.get("Uploads", [])
            if not page.get("IsTruncated"):
                return uploads
            marker = {"KeyMarker": page["NextKeyMarker"],
                      "UploadIdMarker": page["NextUploadIdMarker"]}

    def _pack_files(self) -> dict[str, PackFile]:
        with self.location.translate():
            try:
                found = self.fs.ls(self.packs_dir, detail=True)
            except FileNotFoundError:
                return {}
        return {info["name"].rsplit("/", 1)[-1]: PackFile(_mtime(info), int(info["size"]))
                for info in found if info.get("type") != "directory"}

    def _read(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        with self.location.translate():
            return bytes(self.fs.cat_file(f"{self.packs_dir}/{name}", start=start, end=end))

    def _write(self, name: str, data: bytes) -> None:
        with self.location.translate():
            self.fs.pipe_file(f"{self.packs_dir}/{name}", data)

    def _remove(self, names: Sequence[str]) -> None:
        if names:
            with self.location.translate():
                self.fs.rm([f"{self.packs_dir}/{name}" for name in names])


def _mtime(info: dict[str, Any]) -> float:
    """A listing entry's modification time: S3 says LastModified, other stores mtime. A
    store that says neither gets infinity: its leftovers never count as old."""
    value = info.get("LastModified", info.get("mtime", info.get("created")))
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return float("inf") if value is None else float(value)
