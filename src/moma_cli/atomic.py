"""Atomic file writes: a temp sibling, fsync, `os.replace`; the temp never outlives a failure.

A reader therefore sees either the old file or the complete new one, never a prefix,
even after a crash or a full disk (dvc_objects/fs/utils.py does the same).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

TMP_MARK = ".moma-tmp-"
# Up to this many files are fsynced one by one; above, one os.sync() is cheaper
# (docs/performance.md: an fsync per 4 KiB file made adding 10k files take 7 s).
FSYNC_EACH_MAX = 16
P = TypeVar("P", str, Path)


def tmp_sibling(path: P) -> P:
    # 64 random bits: a cache batch or a checkout keeps up to 100k temps in one directory
    # at once, where 32 bits collided more often than not (birthday bound).
    # os.urandom rather than secrets.token_hex (the same bytes): importing secrets costs
    # 5 ms of every command.
    if isinstance(path, Path):
        return path.with_name(f"{TMP_MARK}{path.name}.{os.urandom(8).hex()}")
    # A string stays one (checkout's per-file loop: pathlib cost more than the syscalls).
    head, name = os.path.split(path)
    return os.path.join(head, f"{TMP_MARK}{name}.{os.urandom(8).hex()}")


def is_tmp_name(name: str) -> bool:
    """Marked as moma's temp: never data, skipped by every walk and listing."""
    return name.startswith(TMP_MARK)


_TMP_SIBLING = re.compile(re.escape(TMP_MARK) + r".+\.[0-9a-f]{16}", re.DOTALL)


def is_tmp_sibling(name: str) -> bool:
    """Exactly a name `tmp_sibling` gives: the only files moma deletes as its temps (a
    user's `.moma-tmp-notes`, or any other file in a directory moma cleans, is kept)."""
    return _TMP_SIBLING.fullmatch(name) is not None


def resolves_inside(path: Path, root: Path) -> bool:
    """False when `path` (e.g. a committed symlink) leads outside `root`.

    Files moma edits in place (.gitignore, .moma.yaml) are read, then rewritten: through a
    symlink to ~/.kube/config that would copy a secret into the repository.
    """
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


@contextlib.contextmanager
def atomic_open(path: Path, mode: int = 0o644, fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces `path` only if the block succeeds."""
    tmp = tmp_sibling(path)
    fh = open(tmp, "xb")  # noqa: SIM115 - closed below on every path
    try:
        yield fh
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
        fh.close()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def flush(paths: Sequence[str | Path]) -> None:
    """Make these files (or directories) durable: an fsync each for a few, one `os.sync()`
    for many. Symlinks need no fsync of their own (the directory entry is the link)."""
    if len(paths) > FSYNC_EACH_MAX:
        os.sync()
        return
    for path in paths:
        if os.path.islink(path):
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes | bytearray | memoryview,
                       mode: int = 0o644) -> None:
    with atomic_open(path, mode) as fh:
        fh.write(data)


def write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Atomically write `data` unless the file already holds exactly it."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write_bytes(path, data, mode)
    return True


def atomic_create(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write `data` to `path` only if nothing is there: False, and nothing written, when a
    file exists (or another writer got there first). The complete file appears at once:
    the temp is hard-linked to `path`, which fails rather than replace."""
    tmp = tmp_sibling(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
