"""Packs: many small objects in one remote file, so that pushing or pulling 10,000 small
files costs a handful of requests instead of 10,000.

Layout on a remote, beside the loose objects (`<algo>/<oid[:2]>/<oid[2:]>`):

    <algo>/packs/<packid>.pack   the objects' bytes, back to back
    <algo>/packs/<packid>.idx    which object lies where: a header line, then one
                                 `<oid> <offset> <size>` line per object, in pack order

`packid` is the hash of the index's bytes, so an index can be checked against its own name
and cached locally for good (packs are never modified, only replaced). The index is written
after its pack is complete: an index on a remote always describes a whole pack, and a pack
without one is what a push cut short left behind (never read; `moma remote clean` removes
it). Every object read out of a pack is still verified against its oid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from moma_cli.core import hashing
from moma_cli.errors import HashMismatchError

FORMAT = "moma-pack 1"
DIR = "packs"
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".idx"
# Objects up to this size go into packs; larger ones stay loose (one request moves them
# at full speed, and a ranged read of one object out of a pack would gain nothing).
OBJECT_MAX = 1 << 20
# Fewer small objects than this are sent loose: a few requests cost less than a pack and
# its index, and a remote with a few files stays plain to look at.
MIN_OBJECTS = 64
# A pack is filled up to about this many bytes: large enough that requests are few, small
# enough that several packs move in parallel and a pack is built in memory.
TARGET_BYTES = 8 << 20
# Reads of neighbouring objects of one pack are merged into one ranged read when the gap
# between them is at most GAP_BYTES, up to SPAN_BYTES per read.
GAP_BYTES = 1 << 20
SPAN_BYTES = 16 << 20


class Slot(NamedTuple):
    """Where one object lies in a pack."""

    packid: str
    offset: int
    size: int


def encode_index(objects: Sequence[tuple[str, int]], algo: str) -> bytes:
    """The index of a pack holding `objects` (oid, size) back to back, in that order."""
    lines = [f"{FORMAT} {algo}"]
    offset = 0
    for oid, size in objects:
        lines.append(f"{oid} {offset} {size}")
        offset += size
    return ("\n".join(lines) + "\n").encode()


def decode_index(data: bytes, packid: str, algo: str) -> dict[str, Slot]:
    """oid -> Slot for every object of pack `packid`, after checking the index is the one
    its name promises (a damaged or foreign index raises HashMismatchError)."""
    if hashing.hash_bytes(data, algo) != packid:
        raise HashMismatchError(f"pack index {hashing.short_oid(packid)} is corrupt",
                                hint="run 'moma fsck --remote' to check the remote")
    lines = data.decode().splitlines()
    if not lines or lines[0] != f"{FORMAT} {algo}":
        raise HashMismatchError(f"pack index {hashing.short_oid(packid)} has an unknown format")
    slots: dict[str, Slot] = {}
    for line in lines[1:]:
        oid, offset, size = line.split(" ")
        slots[oid] = Slot(packid, int(offset), int(size))
    return slots


def group(objects: Iterable[tuple[str, int]], target: int = TARGET_BYTES) -> list[list[str]]:
    """Split (oid, size) pairs, in order, into packs of about `target` bytes each."""
    packs: list[list[str]] = []
    current: list[str] = []
    filled = 0
    for oid, size in objects:
        if current and filled + size > target:
            packs.append(current)
            current, filled = [], 0
        current.append(oid)
        filled += size
    if current:
        packs.append(current)
    return packs


@dataclass
class Span:
    """One ranged read of a pack, covering the objects in `slots`."""

    packid: str
    start: int
    end: int
    oids: list[str] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)

    def objects(self, data: bytes) -> Iterator[tuple[str, memoryview]]:
        """Each object's bytes out of the span's data."""
        view = memoryview(data)
        for oid, slot in zip(self.oids, self.slots, strict=True):
            yield oid, view[slot.offset - self.start:slot.offset - self.start + slot.size]


def spans(located: dict[str, Slot]) -> list[Span]:
    """Group the wanted objects into as few ranged reads as sensible (see GAP_BYTES)."""
    ordered = sorted(located.items(), key=lambda item: (item[1].packid, item[1].offset))
    result: list[Span] = []
    for oid, slot in ordered:
        last = result[-1] if result else None
        end = slot.offset + slot.size
        if last is None or last.packid != slot.packid or slot.offset - last.end > GAP_BYTES \
                or end - last.start > SPAN_BYTES:
            last = Span(slot.packid, slot.offset, end)
            result.append(last)
        last.end = max(last.end, end)
        last.oids.append(oid)
        last.slots.append(slot)
    return result
