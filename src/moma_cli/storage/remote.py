"""Objects on a remote, laid out like the cache: `<root>/<algo>/<oid[:2]>/<oid[2:]>`.

Two stores with one interface: `LocalRemote` (a directory: os-level copies, temp sibling +
one sync per batch + `os.replace`, so a half-written object never appears under its name) and
`FsspecRemote` (S3 and other fsspec stores: a single PUT is atomic, and s3fs aborts a
multipart upload that fails). Existence is asked in batches by listing prefix
directories, never one request per object when the store can list.

Every store answers `existing`, `uploads`, `chunks`; a later "pack small objects" store
can slot in behind the same three calls. `uploads()` is a batch: a local directory stages
temps beside their names and makes them durable with one sync, then renames them (an
fsync per 4 KiB object is what made pushing 10k files slow); S3 uploads right away.
Maintenance (`moma gc --remote`, `fsck --remote`, `remote clean`) adds `listing`,
`delete` and `clean_stale`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from moma_cli.core.hashing import is_valid_oid
from moma_cli.errors import ObjectMissingError
from moma_cli.storage.atomic import is_tmp_name
from moma_cli.storage.cache import OBJECT_MODE, Batch
from moma_cli.storage.fs import Location
from moma_cli.storage.link import Placement

CHUNK = 8 << 20
_SINGLE_GET = 16 << 20  # objects up to this size are fetched with one GET
_LIST_PAGE = 1000  # keys per S3 list request
Mapper = Callable[[Callable[[str], set[str]], list[str]], Iterable[set[str]]]
# Upload one cache file under an oid; thread-safe. Objects uploaded in an `uploads()` block
# are on the remote, under their names, once the block has exited without an exception.
Uploader = Callable[[Path, str], object]


class Store(Protocol):
    location: Location

    def existing(self, oids: Iterable[str], map_: Mapper) -> set[str]: ...

    def uploads(self) -> contextlib.AbstractContextManager[Uploader]: ...

    def chunks(self, oid: str, size: int | None = None) -> Iterator[bytes]: ...

    def listing(self) -> dict[str, int]: ...

    def delete(self, oids: Sequence[str]) -> None: ...

    def clean_stale(self, older_than: float, now: float) -> list[str]: ...


def open_store(location: Location, algo: str) -> Store:
    if location.is_local:
        return LocalRemote(location, algo)
    return FsspecRemote(location, algo)


def download(store: Store, batch: Batch, oid: str, size: int | None = None) -> int:
    """Stream an object into a cache batch, which verifies the hash and quarantines a bad
    one; the object is in the cache once the batch commits."""
    return batch.add_stream(oid, store.chunks(oid, size), store.location.describe())


def _missing(store: Store, oid: str) -> ObjectMissingError:
    return ObjectMissingError(f"no object {oid[:8]} on {store.location.describe()}")


def _by_prefix(oids: Iterable[str]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for oid in oids:
        groups.setdefault(oid[:2], set()).add(oid)
    return groups


class LocalRemote:
    def __init__(self, location: Location, algo: str) -> None:
        self.location = location
        self.objects_dir = Path(location.root) / algo

    def oid_to_path(self, oid: str) -> Path:
        return self.objects_dir / oid[:2] / oid[2:]

    def existing(self, oids: Iterable[str], map_: Mapper) -> set[str]:
        groups = _by_prefix(oids)

        def scan(prefix: str) -> set[str]:
            try:
                with os.scandir(self.objects_dir / prefix) as it:
                    names = {e.name for e in it if not is_tmp_name(e.name)}
            except FileNotFoundError:
                return set()
            return {oid for oid in groups[prefix] if oid[2:] in names}

        found: set[str] = set()
        for part in map_(scan, list(groups)):
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

    def chunks(self, oid: str, size: int | None = None) -> Iterator[bytes]:
        try:
            fh = open(self.oid_to_path(oid), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise _missing(self, oid) from None
        with fh:
            while chunk := fh.read(CHUNK):
                yield chunk

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

    def listing(self) -> dict[str, int]:
        """Every object on the remote with its size."""
        return {prefix + e.name: e.stat(follow_symlinks=False).st_size
                for prefix, e in self._files() if is_valid_oid(prefix + e.name)}

    def delete(self, oids: Sequence[str]) -> None:
        for oid in oids:
            try:
                os.unlink(self.oid_to_path(oid))
            except FileNotFoundError:
                continue

    def clean_stale(self, older_than: float, now: float) -> list[str]:
        """Remove temps (`.moma-tmp-*`) of uploads killed before their rename. Only old ones:
        a younger temp may belong to a push running on another machine right now."""
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


class FsspecRemote:
    def __init__(self, location: Location, algo: str) -> None:
        self.location = location
        self.fs = location.fs
        self.objects_dir = f"{location.root}/{algo}"

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

    def existing(self, oids: Iterable[str], map_: Mapper) -> set[str]:
        """List prefix directories, or the whole object directory when that is fewer requests.

        Listing one prefix first gives an estimate of the remote's size: with N objects,
        one recursive listing costs N/1000 requests, against one per prefix we need.
        """
        groups = _by_prefix(oids)
        if not groups:
            return set()

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
        for part in map_(names_in, rest):
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

    def chunks(self, oid: str, size: int | None = None) -> Iterator[bytes]:
        path = self.oid_to_path(oid)
        with self.location.translate():
            try:
                if size is None:
                    size = int(self.fs.info(path)["size"])
                if size <= _SINGLE_GET:
                    yield self.fs.cat_file(path)
                    return
                for start in range(0, size, CHUNK):
                    yield self.fs.cat_file(path, start=start, end=min(start + CHUNK, size))
            except FileNotFoundError:
                raise _missing(self, oid) from None


    def listing(self) -> dict[str, int]:
        """Every object on the remote with its size (one recursive listing)."""
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

    def delete(self, oids: Sequence[str]) -> None:
        if not oids:
            return
        with self.location.translate():
            # s3fs turns a list into DeleteObjects requests of up to 1000 keys.
            self.fs.rm([self.oid_to_path(oid) for oid in oids])

    def clean_stale(self, older_than: float, now: float) -> list[str]:
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
