"""`moma status`: each pointer against its data in the workspace and the cache."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.core import manifest
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import Hasher, new_hasher, short_oid
from moma_cli.errors import MomaError
from moma_cli.services import walkstamp, workspace
from moma_cli.services.repo import Repo


@dataclass
class StatusEntry:
    path: str
    state: str  # ok | modified | missing | not-in-cache | invalid | not-pushed (status -r)
    changes: list[tuple[str, str]] = field(default_factory=list)  # (added|modified|deleted, rel)
    message: str | None = None


@dataclass
class StatusResult:
    entries: list[StatusEntry] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(e.state == "ok" for e in self.entries)


def status(
    repo: Repo, targets: Sequence[str] | None = None, *, cwd: Path | None = None,
    jobs: int | None = None,
) -> StatusResult:
    pointers, errors = repo.pointers(targets, cwd)
    result = StatusResult()
    for err in errors:
        result.entries.append(StatusEntry(err.message.split(":", 1)[0], "invalid",
                                          message=err.message))
    for ptr in pointers:
        result.entries.append(_status_of(repo, ptr, jobs))
    result.entries.sort(key=lambda e: e.path)
    return result


def _status_of(repo: Repo, ptr: pointer_mod.Pointer, jobs: int | None) -> StatusEntry:
    path = repo.abspath(ptr.path)
    if not os.path.lexists(path):
        state = "missing" if repo.cache.exists(ptr.oid) else "not-in-cache"
        return StatusEntry(ptr.path, state)
    try:
        if ptr.is_dir:
            return _dir_status(repo, ptr, jobs)
        info = workspace.file_info(str(path))
        oid = workspace.oids_of(repo, [info], store=False)[info.path]
    except MomaError as exc:
        return StatusEntry(ptr.path, "invalid", message=exc.message)
    if oid != ptr.oid:
        return StatusEntry(ptr.path, "modified")
    if info.key.size != ptr.size:
        return StatusEntry(ptr.path, "invalid", message=_size_message(
            ptr.pointer_path, ptr.size, info.key.size))
    return StatusEntry(ptr.path, "ok" if repo.cache.exists(ptr.oid) else "not-in-cache")


def _size_message(pointer_file: str, expected: int, actual: int) -> str:
    return f"{pointer_file}: records size {expected} but the data is {actual} bytes"


def _dir_status(repo: Repo, ptr: pointer_mod.Pointer, jobs: int | None) -> StatusEntry:
    top = str(repo.abspath(ptr.path))
    skipped = workspace.Skipped()
    record = walkstamp.PartsRecord.load(repo.state, top, walkstamp.described(ptr))
    walk = walkstamp.WalkStamp(record)
    walk.consume(workspace.iter_walk(top, skipped))
    workspace.remove_tmps(repo, ptr.path, skipped.tmps)  # a killed checkout's, never data
    # Same pointer, same walk, same cache objects as when last found up to date: still so.
    # Taken before the comparison, so anything changing meanwhile only misses next time.
    cached = repo.cache.stamp()
    stamp = walkstamp.clean_stamp(ptr, walk.hexdigest(), cached)
    if repo.state.is_clean(top, stamp):
        return StatusEntry(ptr.path, "ok")
    if record is not None and walk.changed is not None and repo.cache.exists(ptr.oid):
        listing = str(repo.cache.checked_path(ptr.oid))
        if os.path.getsize(listing) == record.size:  # the listing the spans point into
            return _parts_status(repo, ptr, top, listing, record, walk, (stamp, cached), jobs)
    return _walked_status(repo, ptr, top, (stamp, cached), jobs)


def _parts_status(
    repo: Repo, ptr: pointer_mod.Pointer, top: str, listing: str,
    record: walkstamp.PartsRecord, walk: walkstamp.WalkStamp, stamps: tuple[str, str],
    jobs: int | None,
) -> StatusEntry:
    """Only the parts whose digest changed: their files hashed (through the stat cache)
    against the recorded lines of the parts no current part matches. The other parts are
    the same files with the same stat keys as in the listing, so the listings differ
    exactly where these do."""
    assert walk.changed is not None
    header, before = record.read_unmatched(listing, {p.digest for p in walk.parts})
    entries = workspace.iter_entries(repo, top, walk.changed, store=False, jobs=jobs)
    lines = list(manifest.encode_lines(entries, ptr.algo))  # at most _KEEP_MAX lines
    if b"".join(lines[1:]) != before:
        return StatusEntry(ptr.path, "modified", manifest.changes(
            io.BytesIO(header + before), lines, short_oid(ptr.oid)))
    # Touched, not changed: the listing is the recorded one, line for line.
    stamp, cached = stamps
    if cached != record.cached and not _complete(repo, ptr):
        return StatusEntry(ptr.path, "not-in-cache")
    repo.state.put_clean(top, stamp)
    record.with_digests(walk.parts, cached).save(repo.state, top)
    return StatusEntry(ptr.path, "ok")


def _walked_status(repo: Repo, ptr: pointer_mod.Pointer, top: str, stamps: tuple[str, str],
                   jobs: int | None) -> StatusEntry:
    """A second walk, streamed through the hashing (a million files are never held at
    once), its listing hashed and compared with the recorded one side by side."""
    totals = workspace.Totals()
    hasher = new_hasher(ptr.algo)
    walk = walkstamp.WalkStamp()
    entries = totals.count(workspace.iter_entries(
        repo, top, walk.feed(workspace.iter_walk(top)), store=False, jobs=jobs))
    lines = walk.track(_hashed(manifest.encode_lines(entries, ptr.algo), hasher))
    recorded = repo.cache.checked_path(ptr.oid) if repo.cache.exists(ptr.oid) else None
    if recorded is None:
        for _ in lines:
            pass
    else:
        with open(recorded, "rb") as fh:
            changes = manifest.changes(fh, lines, short_oid(ptr.oid))
    if hasher.hexdigest() == ptr.oid:
        if (totals.nfiles, totals.size) != (ptr.nfiles, ptr.size):
            return StatusEntry(ptr.path, "invalid", message=pointer_mod.totals_mismatch(
                ptr, totals.nfiles, totals.size))
        if recorded is None or not _complete(repo, ptr):
            return StatusEntry(ptr.path, "not-in-cache")
        stamp, cached = stamps
        repo.state.put_clean(top, stamp)
        walk.record(walkstamp.described(ptr), cached).save(repo.state, top)
        return StatusEntry(ptr.path, "ok")
    if recorded is None:
        return StatusEntry(ptr.path, "modified", message="recorded listing not in cache")
    return StatusEntry(ptr.path, "modified", changes)


def _complete(repo: Repo, ptr: pointer_mod.Pointer) -> bool:
    """Every object of the directory's listing is in the cache."""
    return all(repo.cache.exists(e.oid) for e in repo.cache.iter_manifest(ptr.oid))


def _hashed(lines: Iterator[bytes], hasher: Hasher) -> Iterator[bytes]:
    """The lines, each also fed to `hasher` (a MiB at a time) as it passes."""
    pending: list[bytes] = []
    for line in lines:
        pending.append(line)
        if len(pending) >= 8192:
            hasher.update(b"".join(pending))
            pending.clear()
        yield line
    hasher.update(b"".join(pending))
