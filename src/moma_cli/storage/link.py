"""Materialise a cache object in the workspace: reflink, hardlink, symlink or copy.

Types are tried in the configured order. Hardlinks and symlinks share the read-only cache
file; reflinks and copies give the workspace its own writable bytes, so editing them can
never change the cache.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from moma_cli.storage.atomic import flush, tmp_sibling

_FICLONE = 0x40049409  # linux/fs.h
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS,
                  errno.EPERM, errno.EMLINK}


def place(cache_path: Path, dest: Path, link_types: Sequence[str]) -> str:
    """Atomically put the object at `dest` with the first link type that works."""
    placement = Placement(link_types)
    try:
        kind = placement.stage(cache_path, dest)
        placement.commit()
    finally:
        placement.discard()
    return kind


class Placement:
    """Files staged as temps beside their destinations, then made durable with one flush and
    renamed into place: checkout of 10k files pays one sync, not 10k fsyncs. Also stages
    uploads to a local-directory remote (`mode` 0444, `durable` renames). `stage` may be
    called from several threads (each call owns its temp; list appends are atomic)."""

    def __init__(self, link_types: Sequence[str], mode: int = 0o644,
                 durable: bool = False) -> None:
        self.link_types = link_types
        self.mode = mode
        self.durable = durable  # also make the renames durable before commit() returns
        self.staged: list[tuple[Path, Path]] = []

    def stage(self, cache_path: Path, dest: Path) -> str:
        """Materialise the object in a temp next to `dest`; return the link type used."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        last: OSError | None = None
        for kind in self.link_types:
            tmp = tmp_sibling(dest)
            try:
                _LINKERS[kind](cache_path, tmp)
                if kind in ("reflink", "copy"):
                    os.chmod(tmp, self.mode)
            except OSError as exc:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                if exc.errno not in _NOT_SUPPORTED:
                    raise
                last = exc
                continue
            self.staged.append((tmp, dest))
            return kind
        raise last or OSError(errno.EOPNOTSUPP, "no link type worked")

    def commit(self) -> None:
        if not self.staged:
            return
        flush([tmp for tmp, _ in self.staged])
        parents = {dest.parent for _, dest in self.staged}
        while self.staged:
            tmp, dest = self.staged[-1]
            os.replace(tmp, dest)
            self.staged.pop()  # only once renamed: discard() removes a temp that failed
        if self.durable:
            flush(sorted(parents))

    def discard(self) -> None:
        while self.staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.staged.pop()[0])


def _reflink(src: Path, dst: Path) -> None:
    with open(src, "rb") as s, open(dst, "xb") as d:
        fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())


def _hardlink(src: Path, dst: Path) -> None:
    os.link(src, dst)


def _symlink(src: Path, dst: Path) -> None:
    os.symlink(src, dst)


def _copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as s, open(dst, "xb") as d:
        try:
            copy_range(s.fileno(), d.fileno(), os.fstat(s.fileno()).st_size)
        except OSError as exc:  # copy_file_range is refused across some filesystems
            if exc.errno not in COPY_RANGE_REFUSED:
                raise
            s.seek(0)
            d.seek(0)
            d.truncate()
            shutil.copyfileobj(s, d, 1 << 20)


COPY_RANGE_REFUSED = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


def copy_range(src_fd: int, dst_fd: int, size: int) -> int:
    """Copy up to `size` bytes in the kernel (no user-space buffers); return bytes copied."""
    copied = 0
    while copied < size:
        n = os.copy_file_range(src_fd, dst_fd, size - copied)
        if n == 0:
            break
        copied += n
    return copied


_LINKERS = {"reflink": _reflink, "hardlink": _hardlink, "symlink": _symlink, "copy": _copy}
