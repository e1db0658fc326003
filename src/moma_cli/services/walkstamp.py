"""The stamp of a directory's walk, a part at a time: which stretches of a million-file
walk changed since its listing was last found up to date.

The sorted walk is cut into parts of ~1,024 files; a part ends after a file whose path's
CRC-32 has its low 10 bits zero, so the cut points depend on names only: adding, deleting or
editing a file changes the part it is in (and at most its neighbour, when the file is a cut
point), never the others. Each part's digest covers its files' names and stat keys; the
directory's stamp is the digest of the parts' digests. Beside the clean stamp, moma's state
keeps a `PartsRecord`: per part, its digest and where its lines are in the listing the
pointer names. `status` with one file changed then re-examines one part's files and decodes
one part of the recorded listing, instead of a second walk and the whole 95 MB listing.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from moma_cli.core.hashing import new_hasher
from moma_cli.core.pointer import Pointer
from moma_cli.services.workspace import FileInfo
from moma_cli.storage.state import StateDB

_CUT_MASK = 1023  # ~1,024 files a part: ~1,000 parts for a million files
# Files of changed parts `status` keeps from its walk (~400 B each) before it gives up on
# the parts and walks a second time instead: memory stays bounded whatever changed.
_KEEP_MAX = 65536
_RECORD_VERSION = 1


def described(ptr: Pointer) -> str:
    """What a parts record is kept for: the listing and the totals the pointer claims. A
    record found for the same listing under edited totals would vouch for a pointer that
    only the full comparison can refuse ("records 3 files")."""
    return f"{ptr.oid}:{ptr.nfiles}:{ptr.size}"


def clean_stamp(ptr: Pointer, walked: str, cached: str) -> str:
    """What a directory's state is remembered by once found up to date: its pointer (as
    `described`), the stamp of its walk and the cache's stamp. Equal stamps later: still
    up to date."""
    return f"{described(ptr)}:{walked}:{cached}"


def walk_stamp(files: Iterable[FileInfo]) -> str:
    """A digest of a walk's names and stat keys: equal stamps, same files unchanged (to the
    stat cache's standard)."""
    stamp = WalkStamp()
    stamp.consume(files)
    return stamp.hexdigest()


class Part(NamedTuple):
    digest: str  # of the part's names and stat keys
    nfiles: int


@dataclass(frozen=True)
class PartsRecord:
    """Where each part of a walk found up to date is in the listing of the pointer
    `listing` describes (`described`): `spans[i]` is (digest, first byte, end byte) of part
    i's lines."""

    listing: str
    cached: str  # the cache's stamp then: unchanged, every object of the listing is there
    size: int  # of the listing, in bytes
    spans: tuple[tuple[str, int, int], ...]

    def save(self, state: StateDB, top: str) -> None:
        state.put_parts(top, json.dumps([_RECORD_VERSION, self.listing, self.cached,
                                         self.size, self.spans]).encode())

    @classmethod
    def load(cls, state: StateDB, top: str, listing: str) -> PartsRecord | None:
        """The record of `top` if it describes the listing `listing`; None otherwise (none
        kept, another listing, or anything unreadable: it is only a cache)."""
        raw = state.get_parts(top)
        try:
            version, oid, cached, size, spans = json.loads(raw) if raw else (0, "", "", 0, [])
            record = cls(oid, cached, size, tuple((d, s, e) for d, s, e in spans))
        except (ValueError, TypeError):
            return None
        return record if version == _RECORD_VERSION and oid == listing else None

    def read_unmatched(self, listing_path: str, matched: set[str]) -> tuple[bytes, bytes]:
        """The listing's header and the lines of the parts whose digest is not in
        `matched`, in listing order."""
        chunks: list[bytes] = []
        with open(listing_path, "rb") as fh:
            header = fh.readline()
            for digest, start, end in self.spans:
                if digest not in matched:
                    fh.seek(start)
                    chunks.append(fh.read(end - start))
        return header, b"".join(chunks)

    def with_digests(self, parts: list[Part], cached: str) -> PartsRecord:
        """This record for a walk of the same files with new stat keys (touched, not
        changed): the same cut points, so the same spans."""
        spans = tuple((p.digest, s, e) for p, (_, s, e) in zip(parts, self.spans, strict=True))
        return PartsRecord(self.listing, cached, self.size, spans)


class WalkStamp:
    """The walk's parts, taken while the walk passes through `feed` (so `add` walks once).

    Given the `recorded` digests, the files of each part not among them are kept in
    `changed` (up to _KEEP_MAX files; past that `changed` is None), for `status` to
    re-examine.
    """

    def __init__(self, recorded: PartsRecord | None = None) -> None:
        self.parts: list[Part] = []
        self._recorded = {d for d, _, _ in recorded.spans} if recorded else None
        self.changed: list[FileInfo] | None = [] if recorded else None
        self._ends: list[int] = []  # files walked at the end of each part
        self.spans: list[tuple[str, int, int]] = []
        self._size = 0  # of the listing `track` saw
        self._lines: list[str] = []  # of the part being walked
        self._part: list[FileInfo] = []

    def feed(self, files: Iterable[FileInfo], *, last: bool = True) -> Iterator[FileInfo]:
        """The files, each taken into its part as it passes. With `last=False` more of the
        same walk follow in later calls (checkout hands its windows on one by one)."""
        lines, part = self._lines, self._part
        keep = self._recorded is not None
        crc = zlib.crc32
        for f in files:
            rel = f.relpath
            lines.append(f"{rel}\0{f.key.ino}\0{f.key.size}\0{f.key.mtime_ns}\n")
            if keep:
                part.append(f)
            # The part is ended before its last file is handed on: `track` can then count
            # its lines as soon as they come.
            if not crc(rel.encode(errors="surrogateescape")) & _CUT_MASK:
                self._end(lines, part)
            yield f
        if last and lines:
            self._end(lines, part)

    def consume(self, files: Iterable[FileInfo], *, last: bool = True) -> None:
        for _ in self.feed(files, last=last):
            pass

    def _end(self, lines: list[str], part: list[FileInfo]) -> None:
        digest = new_hasher("blake3")
        digest.update("".join(lines).encode(errors="surrogateescape"))
        self.parts.append(Part(digest.hexdigest(), len(lines)))
        self._ends.append(len(lines) + (self._ends[-1] if self._ends else 0))
        if self._recorded is not None and self.changed is not None and \
                self.parts[-1].digest not in self._recorded:
            self.changed.extend(part)
            if len(self.changed) > _KEEP_MAX:
                self.changed = None
        lines.clear()
        part.clear()

    def hexdigest(self) -> str:
        hasher = new_hasher("blake3")
        hasher.update("".join(f"{p.digest}:{p.nfiles}\n" for p in self.parts).encode())
        return hasher.hexdigest()

    def track(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        """The listing's lines (as `manifest.encode_lines` gives them for this walk's
        entries), noting where each part's lines start and end, for `record`."""
        it = iter(lines)
        header = next(it, b"")
        yield header
        offset = start = len(header)
        for count, line in enumerate(it, 1):
            offset += len(line)
            k = len(self.spans)  # the part this line is in: ended once its last file passed
            if k < len(self._ends) and count == self._ends[k]:
                self.spans.append((self.parts[k].digest, start, offset))
                start = offset
            yield line
        if len(self.spans) < len(self.parts):  # the last part ends with the walk, which
            # may be known only after its last window of lines was handed on
            self.spans.append((self.parts[-1].digest, start, offset))
        self._size = offset

    def record(self, listing: str, cached: str) -> PartsRecord:
        """The parts record of this walk's listing, for the pointer `listing` describes
        (`described`), once `track` has seen the listing."""
        assert len(self.spans) == len(self.parts), "the listing did not follow the walk"
        return PartsRecord(listing, cached, self._size, tuple(self.spans))

    def remember(self, state: StateDB, top: str, ptr: Pointer, walked: str, cached: str
                 ) -> None:
        """What `add` and checkout leave once the directory at `top` holds `ptr`'s listing
        (seen by `track`) and the cache every object of it: the clean stamp of the walk
        `walked` and this walk's parts record, so that the next `status` is answered from
        the walk alone, or from the parts that changed."""
        state.put_clean(top, clean_stamp(ptr, walked, cached))
        self.record(described(ptr), cached).save(state, top)
