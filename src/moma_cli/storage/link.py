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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from moma_cli.atomic import flush, tmp_sibling

_FICLONE = 0x40049409  # linux/fs.h
_NO_REFLINKS = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS}
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS,
                  errno.EPERM, errno.EMLINK}
_Path = str | Path


class Placement:
    """Files staged as temps beside their destinations, then made durable with one flush and
    renamed into place: checkout of 10k files pays one sync, not 10k fsyncs. Also stages
    uploads to a local-directory remote (`mode` 0444, `durable` renames). `stage` may be
    called from several threads (each call owns its temp; list appends are atomic)."""

    def __init__(self, link_types: Sequence[str], mode: int = 0o644,
                 durable: bool = False, spare: Callable[[str], str | None] | None = None,
                 ) -> None:
        self.link_types = link_types
        self.mode = mode
        self.durable = durable  # also make the renames durable before commit() returns
        # cache path -> a copy of that object to rename instead of copying it (the cache's
        # `take_spare`): a pull's large downloads were written twice as they arrived.
        self.spare = spare
        self.staged: list[tuple[str, str]] = []  # (temp, destination)
        self._refused: set[str] = set()  # link types this filesystem does not support
        self._made: set[str] = set()  # parent directories known to exist

    def stage(self, cache_path: str | Path, dest: str | Path) -> str:
        """Materialise the object in a temp next to `dest`; return the link type used.

        Per-file system calls are what checkout and local pushes of many small files cost:
        parents are created once, and a link type refused for lack of support (reflink
        on ext4) is not tried again for every file, which created and unlinked a temp each.
        Paths are handled as strings: pathlib cost a 10k-file checkout more than its stats.
        """
        dest = os.fspath(dest)
        parent = os.path.dirname(dest)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        last: OSError | None = None
        for kind in self.link_types:
            if kind in self._refused:
                continue
            tmp = tmp_sibling(dest)
            if kind == "copy" and self._take_spare(os.fspath(cache_path), tmp):
                self.staged.append((tmp, dest))
                return kind
            try:
                _LINKERS[kind](cache_path, tmp, self.mode)
            except OSError as exc:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                if exc.errno not in _NOT_SUPPORTED:
                    raise
                if kind == "reflink" and exc.errno in _NO_REFLINKS:
                    self._refused.add(kind)  # copying is always correct, only slower
                last = exc
                continue
            self.staged.append((tmp, dest))
            return kind
        raise last or OSError(errno.EOPNOTSUPP, "no link type worked")

    def _take_spare(self, cache_path: str, tmp: str) -> bool:
        """Rename a spare copy of the object to `tmp`, with the mode a copy gets; False
        when there is none, or it is on another filesystem (it is dropped: copy instead)."""
        spare = self.spare(cache_path) if self.spare is not None else None
        if spare is None:
            return False
        try:
            os.chmod(spare, self.mode)
            os.rename(spare, tmp)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spare)
            return False
        return True

    def commit(self) -> None:
        if not self.staged:
            return
        flush([tmp for tmp, _ in self.staged])
        parents = {os.path.dirname(dest) for _, dest in self.staged}
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


def _reflink(src: _Path, dst: _Path, mode: int) -> None:
    with _opened(src, dst, mode) as (s, d):
        fcntl.ioctl(d, _FICLONE, s)


def _hardlink(src: _Path, dst: _Path, mode: int) -> None:
    os.link(src, dst)


def _symlink(src: _Path, dst: _Path, mode: int) -> None:
    os.symlink(src, dst)


def copy_file(src: _Path, dst: _Path, mode: int) -> None:
    """Copy `src` to a new file `dst` with exactly `mode`."""
    # Bare descriptors: open() adds an fstat, an ioctl and an lseek per file.
    with _opened(src, dst, mode) as (s, d):
        size = os.fstat(s).st_size
        if size > SMALL_COPY:
            try:
                copy_range(s, d, size)
                return
            except OSError as exc:  # copy_file_range is refused across some filesystems
                if exc.errno not in COPY_RANGE_REFUSED:
                    raise
            os.lseek(s, 0, os.SEEK_SET)
            os.ftruncate(d, 0)
            os.lseek(d, 0, os.SEEK_SET)
        while chunk := os.read(s, 1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(d, view):]


# copy_file_range has a fixed cost that dominates small files: on ext4 here, 10,000 x 4 KiB
# took 5.6 s through it against 0.74 s with read + write (docs/performance.md).
SMALL_COPY = 64 << 10


@contextlib.contextmanager
def _opened(src: _Path, dst: _Path, mode: int) -> Iterator[tuple[int, int]]:
    """`src` for reading and a new `dst` with exactly `mode` (whatever the umask)."""
    s = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        d = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(d, mode)
            yield s, d
        finally:
            os.close(d)
    finally:
        os.close(s)


COPY_RANGE_REFUSED = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


# Copies this large go in windows this big, written to disk behind the copy.
_WINDOW = 64 << 20


def copy_range(src_fd: int, dst_fd: int, size: int) -> int:
    """Copy up to `size` bytes in the kernel (no user-space buffers); return bytes copied.

    A large copy goes in windows while a helper thread keeps writing what has been copied
    to disk (fdatasync in a loop), so the disk works while the kernel copies and whoever
    makes the file durable afterwards finds little left to write: 1 GiB copied and synced
    took 0.42-1.06 s this way against 0.64-1.89 s copying first, in alternating runs here.
    """
    if size <= _WINDOW:
        return _copy_windows(src_fd, dst_fd, size)
    from concurrent.futures import ThreadPoolExecutor  # not on the status path

    copying = threading.Event()
    copying.set()

    def write_behind() -> None:
        while copying.is_set():
            os.fdatasync(dst_fd)
            time.sleep(0.01)  # nothing dirty yet: do not spin

    with ThreadPoolExecutor(max_workers=1) as pool:
        behind = pool.submit(write_behind)
        try:
            return _copy_windows(src_fd, dst_fd, size)
        finally:
            copying.clear()
            behind.result()


def _copy_windows(src_fd: int, dst_fd: int, size: int) -> int:
    copied = 0
    while copied < size:
        n = os.copy_file_range(src_fd, dst_fd, min(_WINDOW, size - copied))
        if n == 0:
            break
        copied += n
    return copied


_LINKERS = {"reflink": _reflink, "hardlink": _hardlink, "symlink": _symlink, "copy": copy_file}


def copies(link_types: Sequence[str], src_dir: Path, dst_dir: Path) -> bool:
    """Whether objects in `src_dir`'s filesystem reach `dst_dir` as copies: the first of
    `link_types` that works between them is a copy (reflinks refused, as on ext4)."""
    works = working_types(src_dir, dst_dir, link_types, first=True)
    return next((kind for kind in link_types if works.get(kind)), None) == "copy"


def working_types(src_dir: Path, dst_dir: Path, kinds: Sequence[str] = tuple(_LINKERS),
                  *, first: bool = False) -> dict[str, bool]:
    """Which link types work from a file in `src_dir` (the cache's tmp/) to one in `dst_dir`
    (`moma doctor`): hardlinks and reflinks stop at a filesystem's edge. Probed with moma's
    temps, removed afterwards (a killed probe leaves only names fsck cleans). With `first`,
    the probing stops at the first of `kinds` that works."""
    src_dir.mkdir(parents=True, exist_ok=True)
    src = tmp_sibling(src_dir / "link-probe")
    found: dict[str, bool] = {}
    try:
        fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            os.write(fd, b"moma link probe\n")
        finally:
            os.close(fd)
        for kind in kinds:
            dst = tmp_sibling(dst_dir / "link-probe")
            try:
                _LINKERS[kind](src, dst, 0o644)
                found[kind] = True
            except OSError:
                found[kind] = False
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dst)
            if first and found[kind]:
                break
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(src)
    return found
