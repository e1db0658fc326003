"""A remote on S3 or another fsspec store: a single PUT is atomic, and a multipart upload
is aborted when it fails (fs.put_in_parts), so objects are uploaded right away, without
temps. Large S3 objects move in parallel parts both ways (fs.get_in_parts)."""

from __future__ import annotations

import contextlib
import datetime
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from moma_cli.core.hashing import Hasher, is_valid_oid
from moma_cli.storage import fs, packs, transfer
from moma_cli.storage.fs import Location
from moma_cli.storage.remote.store import PackFile, Store, Uploader, by_prefix

# A large S3 object is downloaded by fs.get_in_parts (parallel ranged GETs streamed to
# disk), not by s3fs's get_file: s3fs holds each part whole in memory, twice over (pulling
# 1 GiB in 256 MiB parts peaked at 1.35 GiB of RSS; DVC, with s3fs's 50 MiB x 10, at
# 0.9 GiB). Other fsspec stores stream it through get_file. From S3, objects over 1 MiB
# are streamed too: 32 transfer threads reading 10 MiB objects whole would hold 320 MiB.
_S3_IN_MEMORY = 1 << 20
# Uploads read what they send into memory (a PUT's body, the parts in flight): the bytes
# held at once by all threads are bounded by this budget (one upload may exceed it alone).
# Pushing 100 x 10 MiB through bench/shaped_s3.py peaked at 455 MiB of RSS with a budget
# of 192 MiB and 307-315 MiB with 64; the rest was not uploads but the cache objects that
# push checks first, mapped for hashing by 32 threads at once (core/hashing.py now maps
# two windows at a time): 211 MiB with 64 since.
_UPLOAD_BUDGET = 64 << 20
_LIST_PAGE = 1000  # keys per S3 list request


class FsspecRemote(Store):
    def __init__(self, location: Location, algo: str, index_dir: Path, jobs: int,
                 reread: bool) -> None:
        super().__init__(location, algo, index_dir, jobs, reread)
        self.fs = location.fs
        self.objects_dir = f"{location.root}/{algo}"
        self.packs_dir = f"{self.objects_dir}/{packs.DIR}"
        self.is_s3 = location.protocol in ("s3", "s3a")
        if self.is_s3:
            self.in_memory_max = _S3_IN_MEMORY
        self._budget = transfer.Budget(_UPLOAD_BUDGET)

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
        groups = by_prefix(oids)

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
            # One PUT for an object up to two parts (atomic); a multipart upload, aborted
            # if any part fails, for larger ones.
            size = os.stat(src).st_size
            if self.is_s3 and size > 2 * fs.UPLOAD_PART_SIZE:
                with self._budget.held(fs.UPLOAD_PARTS_IN_FLIGHT * fs.UPLOAD_PART_SIZE):
                    fs.put_in_parts(self.location, src, self.oid_to_path(oid), size)
            else:
                with self._budget.held(size):
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

    def _loose_to_file(self, oid: str, size: int, dests: Sequence[Path], hasher: Hasher) -> bool:
        with self._object(oid) as path:
            if self.is_s3:
                fs.get_in_parts(self.location, path, dests, size,
                                min(fs.PARTS_IN_FLIGHT, self.jobs), hasher)
                return True
            for dest in dests:
                self.fs.get_file(path, str(dest))
            return False

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

    def _write(self, name: str, data: io.BytesIO) -> None:
        with self.location.translate():
            if self.is_s3:  # streamed from the buffer, not copied (fs.upload_body)
                fs.put_body(self.location, f"{self.packs_dir}/{name}", data)
            else:
                self.fs.pipe_file(f"{self.packs_dir}/{name}", data.getvalue())

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
