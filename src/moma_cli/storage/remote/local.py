"""A remote that is a directory: os-level copies, and writes that are temp sibling, one
sync per batch, then `os.replace`, so a half-written object never appears under its name."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from moma_cli.atomic import atomic_write_bytes, flush, is_tmp_name
from moma_cli.core.hashing import Hasher, is_valid_oid
from moma_cli.storage import packs, transfer
from moma_cli.storage.cache import OBJECT_MODE
from moma_cli.storage.fs import Location
from moma_cli.storage.link import Placement, copy_file
from moma_cli.storage.remote.store import PackFile, Store, Uploader, by_prefix


class LocalRemote(Store):
    def __init__(self, location: Location, algo: str, index_dir: Path, jobs: int,
                 reread: bool) -> None:
        super().__init__(location, algo, index_dir, jobs, reread)
        self.objects_dir = Path(location.root) / algo
        self.packs_dir = self.objects_dir / packs.DIR

    def oid_to_path(self, oid: str) -> Path:
        return self.objects_dir / oid[:2] / oid[2:]

    def _existing_loose(self, oids: set[str]) -> set[str]:
        groups = by_prefix(oids)

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
        """A batch: loose objects are staged as temps beside their names, made durable with
        one sync, then renamed (an fsync per 4 KiB object is what made pushing 10k files
        slow)."""
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

    def _loose_to_file(self, oid: str, size: int, dests: Sequence[Path], hasher: Hasher) -> bool:
        try:
            for dest in dests:  # in the kernel: no Python buffers
                copy_file(self.oid_to_path(oid), dest, 0o600)
        except FileNotFoundError:
            raise self._missing(oid) from None
        return False

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

    def _write(self, name: str, data: io.BytesIO) -> None:
        self.packs_dir.mkdir(parents=True, exist_ok=True)
        with data.getbuffer() as view:  # the pack's own buffer: getvalue() would copy it
            atomic_write_bytes(self.packs_dir / name, view, OBJECT_MODE)
        flush([self.packs_dir])  # the rename is durable before anything names this file

    def _remove(self, names: Sequence[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.packs_dir / name)
