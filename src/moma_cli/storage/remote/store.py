"""The `Store` base every remote shares: existence asked in batches, pack reads and writes
on top of a few primitives each backend supplies, and what maintenance (`moma gc --remote`,
`fsck -r`, `remote clean`) needs: listing, delete, replace, clean_stale."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple, Protocol

from moma_cli.atomic import atomic_write_bytes, is_tmp_name
from moma_cli.core import hashing
from moma_cli.core.hashing import Hasher, is_valid_oid
from moma_cli.errors import HashMismatchError, ObjectMissingError, PackIndexError
from moma_cli.storage import packs, transfer
from moma_cli.storage.fs import Location, upload_body
from moma_cli.storage.packs import Slot, Span

# Loose objects up to this size are read whole into memory (one GET); larger ones are
# written straight to a local file (a kernel copy from a local remote, a streamed download).
# A store may lower it (`in_memory_max`): S3 streams objects over 1 MiB to disk.
_IN_MEMORY = 16 << 20
# Packs built and sent at once: each is held in memory while it is sent.
_PACKS_IN_FLIGHT = 4
# Upload one cache file under an oid; thread-safe. Objects uploaded in an `uploads()` block
# are on the remote, under their names, once the block has exited without an exception.
Uploader = Callable[[Path, str], object]
# Writes one object's bytes to each of the new local files at the paths given; True when
# it has also fed them, in order, to the hasher given (else the caller hashes the first).
Writer = Callable[[Sequence[Path], Hasher], bool]


class PackFile(NamedTuple):
    """A file in the packs directory, as its listing gives it."""

    mtime: float  # epoch seconds
    size: int


class Sink(Protocol):
    """Where objects read from a remote go: a cache batch, or a checker that only hashes
    (sinks.py); declared here, beside `read_tasks`, which feeds it."""

    def stream(self, oid: str, chunks: Iterable[bytes | memoryview]) -> object:
        """Take an object as chunks (small objects, objects out of packs)."""

    def fill(self, oid: str, size: int, write: Writer) -> object:
        """Take a large object of `size` bytes, which `write(paths, hasher)` writes to new
        local files."""


def by_prefix(oids: Iterable[str]) -> dict[str, set[str]]:
    """Prefix directory (`oid[:2]`) -> the oids it would hold."""
    groups: dict[str, set[str]] = {}
    for oid in oids:
        groups.setdefault(oid[:2], set()).add(oid)
    return groups


class Store:
    """What every remote offers; subclasses supply the loose-object and packs-dir primitives."""

    location: Location
    in_memory_max = _IN_MEMORY

    def __init__(self, location: Location, algo: str, index_dir: Path, jobs: int,
                 reread: bool) -> None:
        self.location = location
        self.algo = algo
        self.index_dir = index_dir
        self.jobs = jobs
        self.reread = reread
        self._packs: packs.Index | None = None  # what the remote's packs hold
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

    def _loose_to_file(self, oid: str, size: int, dests: Sequence[Path], hasher: Hasher) -> bool:
        """Write a loose object of `size` bytes to each of the new local files `dests`
        (a `Writer`); ObjectMissingError when not there."""
        raise NotImplementedError

    def _pack_files(self) -> dict[str, PackFile]:
        """File name -> mtime and size of everything in the packs dir (one listing)."""
        raise NotImplementedError

    def _read(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        raise NotImplementedError

    def _write(self, name: str, data: io.BytesIO) -> None:
        """Write a file in the packs dir atomically and durably."""
        raise NotImplementedError

    def _remove(self, names: Sequence[str]) -> None:
        raise NotImplementedError

    # -- packs ----------------------------------------------------------------------------
    def packs(self) -> packs.Index:
        """Every complete pack on the remote whose index can be trusted (one listing,
        indexes cached locally); the others are noted in `damaged`. Indexes are read in
        parallel and decoded one at a time into the compact `packs.Index`, so a million
        packed objects never exist as Python objects all at once."""
        if self._packs is None:
            files = self._pack_files()
            ids = sorted(name.removesuffix(packs.INDEX_SUFFIX) for name in files
                         if name.endswith(packs.INDEX_SUFFIX))
            ids = [i for i in ids if is_valid_oid(i) and i + packs.PACK_SUFFIX in files]
            index = packs.Index()
            fetched = transfer.parallel_map(partial(self._index_bytes, files=files), ids,
                                            self.jobs)
            for packid, (data, local) in zip(ids, fetched, strict=True):
                slots = self._decoded(packid, data, local, files)
                if slots is not None:
                    index.add(packid, slots)
            self._packs = index
        return self._packs

    def _index_bytes(self, packid: str, files: dict[str, PackFile]) -> tuple[bytes | None, bool]:
        """A pack's index: (bytes, True) from the local copy, else (bytes, False) read from
        the remote; (None, False) when it is gone or its size is refused (`damaged`)."""
        if not self.reread:
            with contextlib.suppress(OSError):
                return (self.index_dir / (packid + packs.INDEX_SUFFIX)).read_bytes(), True
        return self._remote_index(packid, files), False

    def _remote_index(self, packid: str, files: dict[str, PackFile]) -> bytes | None:
        try:
            packs.check_index_size(packid, files[packid + packs.INDEX_SUFFIX].size,
                                   self.location.describe())
            return self._read(packid + packs.INDEX_SUFFIX)
        except FileNotFoundError:  # removed since the listing
            return None
        except PackIndexError as exc:
            self.damaged[packid] = exc.message
            return None

    def _decoded(self, packid: str, data: bytes | None, local: bool,
                 files: dict[str, PackFile]) -> dict[str, Slot] | None:
        """A pack's objects, checked against the pack's size in the listing `files` (a
        local copy too: the pack may have been replaced; then the remote's is read). None
        when the pack is gone, or its index not trusted (noted in `damaged`)."""
        pack_size = files[packid + packs.PACK_SUFFIX].size
        where = self.location.describe()
        if data is not None and local:
            with contextlib.suppress(PackIndexError):
                return packs.decode_index(data, packid, self.algo, pack_size, where)
            data = self._remote_index(packid, files)
        if data is None:
            return None
        try:
            slots = packs.decode_index(data, packid, self.algo, pack_size, where)
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
        return self._store_pack([(oid, len(data)) for oid, data in objects],
                                io.BytesIO(b"".join(data for _, data in objects)))

    def pack_files(self, objects: Sequence[tuple[str, Path, int]]) -> str:
        """Store these (oid, cache path, size) files as one pack. The pack is read straight
        into one buffer of its size, the body it is uploaded from (`upload_body`): a list of
        the files' bytes joined into the pack held it twice (4 packs in flight: 64 MB
        instead of 32). A file whose size is not the one given (changed since it was
        verified) fails the pack."""
        pack = upload_body(sum(size for _, _, size in objects))
        at = 0
        with pack.getbuffer() as view:
            for oid, path, size in objects:
                with open(path, "rb") as fh:
                    if fh.readinto(view[at:at + size]) != size or fh.read(1):
                        raise HashMismatchError(f"cache object {hashing.short_oid(oid)} "
                                                "changed while it was being pushed")
                at += size
        return self._store_pack([(oid, size) for oid, _, size in objects], pack)

    def _store_pack(self, objects: Sequence[tuple[str, int]], pack: io.BytesIO) -> str:
        """Write a pack holding `objects` (oid, size), back to back in `pack`, then its
        index."""
        index = packs.encode_index(objects, self.algo)
        packid = hashing.hash_bytes(index, self.algo)
        self._write(packid + packs.PACK_SUFFIX, pack)
        self._write(packid + packs.INDEX_SUFFIX, io.BytesIO(index))
        self._keep_index(packid, index)
        if self._packs is not None:
            slots = packs.decode_index(index, packid, self.algo,
                                       sum(size for _, size in objects))
            with self._lock:
                self._packs.add(packid, slots)
                self.damaged.pop(packid, None)  # a crafted pack of that name is replaced
        return packid

    def _drop_pack(self, packid: str) -> None:
        # The index goes first: a pack without an index is never read.
        self._remove([packid + packs.INDEX_SUFFIX])
        self._remove([packid + packs.PACK_SUFFIX])
        if self._packs is not None:
            self._packs.drop(packid)

    def _repack(self, packid: str, keep: Sequence[str],
                fresh: dict[str, bytes] | None = None) -> None:
        """Replace a pack by one holding only `keep`, with `fresh` bytes where given."""
        slots = self.packs().slots(packid)
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
        index = self.packs()
        packed = {oid for oid in wanted if oid in index}
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
        sizes = dict(small)
        gate = threading.BoundedSemaphore(_PACKS_IN_FLIGHT)

        def send(oids: list[str]) -> None:
            with gate:
                self.pack_files([(oid, paths[oid], sizes[oid]) for oid in oids])

        tasks = [transfer.whole(send, group) for group in packs.group(small)]
        loose = [oid for oid, _, _ in objects if oid not in packed]
        return tasks + transfer.tasks(lambda oid: upload(paths[oid], oid), loose, self.jobs)

    def read_tasks(self, oids: Iterable[str], sizes: dict[str, int],
                   sink: Sink) -> list[transfer.Task]:
        """Tasks that read these objects into `sink`; a packed object comes out of a ranged
        read shared with its neighbours. `sizes` are known sizes (saves a request each)."""
        wanted = list(oids)
        index = self.packs() if wanted else packs.Index()
        located = {oid: slot for oid in wanted if (slot := index.get(oid)) is not None}

        def read_loose(oid: str) -> None:
            size = sizes.get(oid)
            if size is None:
                try:
                    size = self._loose_size(oid)
                except ObjectMissingError as exc:
                    sink.stream(oid, self._gone(oid, exc))
                    return
            if size > self.in_memory_max:
                sink.fill(oid, size, partial(self._loose_to_file, oid, size))
            else:
                sink.stream(oid, self._loose_chunks(oid))

        loose = [oid for oid in wanted if oid not in located]
        return self.span_tasks(located, sink) + transfer.tasks(read_loose, loose, self.jobs)

    def defer_packed(self, oids: Iterable[str]) -> list[str]:
        """Mark the packed ones of these objects for `deferred_reads`, and return the others.
        A fetch streaming a directory a window at a time reads packs in their own order:
        a window's objects may lie scattered over every pack (packs made by another push
        order), and reading the packs for each window would read them once per window."""
        index = self.packs()
        return [oid for oid in oids if not index.mark(oid)]

    def deferred_reads(self, limit: int) -> Iterator[dict[str, Slot]]:
        """The objects `defer_packed` marked, in pack order, up to `limit` at a time (each
        for `span_tasks`)."""
        return self.packs().take_marked(limit)

    def span_tasks(self, located: dict[str, Slot], sink: Sink) -> list[transfer.Task]:
        """Tasks that read these packed objects into `sink`, neighbours sharing a read."""
        return [partial(self._read_span, span, sink) for span in packs.spans(located)]

    def _read_span(self, span: Span, sink: Sink) -> list[tuple[str, str | None]]:
        try:
            data = self._read(span.packid + packs.PACK_SUFFIX, span.start, span.end)
        except FileNotFoundError:  # removed since the index was read
            return [(oid, transfer.attempt(sink.stream, oid, self._gone(oid)))
                    for oid in span.oids]
        return [(oid, transfer.attempt(lambda o, v: sink.stream(o, [v]), oid, view))
                for oid, view in span.objects(data)]

    def _loose_chunks(self, oid: str) -> Iterator[bytes]:
        yield self._loose_bytes(oid)

    def listing(self) -> dict[str, int]:
        """Every object on the remote with its size."""
        objects = self._loose_listing()
        objects.update((oid, slot.size) for oid, slot in self.packs().items())
        return objects

    def delete(self, oids: Sequence[str]) -> None:
        """Delete these objects: loose ones directly; a pack goes when all its objects do,
        and is rewritten without them when only some do."""
        doomed = set(oids)
        self._delete_loose(sorted(doomed))
        for packid in self.packs().pack_ids():
            slots = self.packs().slots(packid)
            if doomed.isdisjoint(slots):
                continue
            self._repack(packid, [oid for oid in slots if oid not in doomed])

    def replace(self, good: dict[str, Path]) -> None:
        """Overwrite the remote's copies of these objects with the cache files given
        (`push --verify` repairing damaged copies)."""
        index = self.packs()
        loose = [oid for oid in good if oid not in index]
        with self.uploads() as upload:
            for oid in loose:
                upload(good[oid], oid)
        for packid in index.pack_ids():
            slots = index.slots(packid)
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
