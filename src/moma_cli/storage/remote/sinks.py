"""Where objects read from a remote go (`Store.read_tasks`): into a cache batch (`Download`),
or only through a hasher (`Digests`, for fsck -r and push --verify)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from moma_cli.atomic import tmp_sibling
from moma_cli.core import hashing
from moma_cli.errors import ObjectMissingError
from moma_cli.storage.cache import Batch
from moma_cli.storage.remote.store import Store, Writer


class Download:
    """A sink that puts objects into a cache batch, which verifies each hash and quarantines
    a bad one; the objects are in the cache once the batch commits."""

    def __init__(self, store: Store, batch: Batch) -> None:
        self.batch = batch
        self.source = store.location.describe()

    def stream(self, oid: str, chunks: Iterable[bytes | memoryview]) -> object:
        return self.batch.add_stream(oid, chunks, self.source)

    def fill(self, oid: str, size: int, write: Writer) -> object:
        return self.batch.add_written(oid, size, write, self.source)


class Digests:
    """A sink that only hashes: oid -> (digest, bytes read) of each object read, and the
    objects that were gone by the time they were read (fsck -r, push --verify).
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

    def fill(self, oid: str, size: int, write: Writer) -> object:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_sibling(self.tmp_dir / "verify")
        hasher = hashing.new_hasher(self.algo, size)
        try:
            hashed = write([tmp], hasher)
            nbytes = os.stat(tmp).st_size
            digest = hasher.hexdigest() if hashed else hashing.hash_path(tmp, self.algo, nbytes)
            self.found[oid] = (digest, nbytes)
        except ObjectMissingError:
            self.vanished.append(oid)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return None
