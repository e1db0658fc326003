"""Objects on a remote, laid out like the cache: `<root>/<algo>/<oid[:2]>/<oid[2:]>`, with
many small objects grouped into packs under `<root>/<algo>/packs/` (storage/packs.py).

`open_store` picks the backend. Two stores share one interface and the pack logic
(`store.Store`): `local.LocalRemote` (a directory: os-level copies, temp sibling + one sync
per batch + `os.replace`, so a half-written object never appears under its name) and
`objectstore.FsspecRemote` (S3 and other fsspec stores: a single PUT is atomic, and a
multipart upload that fails is aborted). Each backend supplies a few primitives on the packs
directory (`_pack_files`, `_read`, `_write`, `_remove`); the shared `Store` turns them into
pack reads and writes. Existence is asked in batches by listing prefix directories, never
one request per object when the store can list. `uploads()` is a batch too: a directory
makes it durable with one sync (an fsync per object made pushing 10k files slow); S3
uploads right away. What is read goes to a sink (`sinks`): a cache batch, or a hasher.
"""

from __future__ import annotations

from pathlib import Path

from moma_cli.storage import heap
from moma_cli.storage.fs import Location
from moma_cli.storage.remote.local import LocalRemote
from moma_cli.storage.remote.objectstore import FsspecRemote
from moma_cli.storage.remote.store import Store


def open_store(location: Location, algo: str, index_dir: Path, jobs: int, *,
               reread: bool = False) -> Store:
    """`index_dir`: where pack indexes read from remotes are kept (they never change);
    `reread`: read every index from the remote again, to check it (fsck, push --verify)."""
    heap.keep_large_buffers_mapped()  # packs and bodies are freed back, not kept in heaps
    store_type = LocalRemote if location.is_local else FsspecRemote
    return store_type(location, algo, index_dir, jobs, reread)
