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

An index comes from whoever can write to the remote, and its name proves only that it was
not damaged on the way: anyone can name a crafted index after its hash. So it is read
strictly, in the one form `encode_index` writes, and must describe exactly the bytes of the
pack file beside it (the listing of `packs/` gives the size at no extra request): a claim
the pack cannot back is refused with the whole index, before anything believes it.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

from moma_cli.core import hashing
from moma_cli.errors import PackIndexError

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
# ... and holds at most this many objects, so that its index (at most ~81 bytes a line)
# stays well under INDEX_MAX whatever the objects' sizes.
OBJECTS_MAX = 100_000
# An index larger than this is refused unread: it cannot be one moma wrote (twice the
# largest OBJECTS_MAX allows), and reading it would cost whatever memory it asks for.
INDEX_MAX = 16 << 20
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


# One line as encode_index writes it: an oid, then offset and size in decimal with no sign
# or leading zero, at most 19 digits (an int() of thousands of digits is slow, then refused).
_LINE = rf"{hashing.OID_PATTERN} (?:0|[1-9][0-9]{{0,18}}) (?:0|[1-9][0-9]{{0,18}})"
# Every line at once, in one pass in C: a Python loop over the lines took about twice as long.
_LINES = re.compile(rf"(?:{_LINE}\n)*")
_ONE_LINE = re.compile(_LINE)


def index_error(packid: str, reason: str, where: str = "") -> PackIndexError:
    """The error for index `packid`, named as the file it is (`where`: on which remote)."""
    name = f"{DIR}/{packid}{INDEX_SUFFIX}" + (f" on {where}" if where else "")
    return PackIndexError(f"pack index {name}: {reason}")


def check_index_size(packid: str, nbytes: int, where: str = "") -> None:
    if nbytes > INDEX_MAX:
        raise index_error(packid, f"{nbytes} bytes, more than an index can be ({INDEX_MAX})",
                          where)


def decode_index(data: bytes, packid: str, algo: str, pack_size: int,
                 where: str = "") -> dict[str, Slot]:
    """oid -> Slot for every object of pack `packid`, whose file is `pack_size` bytes long.

    The index must be the one its name promises, in the exact form `encode_index` writes
    (objects back to back from offset 0, each at most OBJECT_MAX bytes, none twice), and
    cover exactly the pack's `pack_size` bytes; anything else raises PackIndexError naming
    the file (`where`: on which remote). What passes holds no slot outside the pack and no
    read larger than OBJECT_MAX.
    """
    check_index_size(packid, len(data), where)
    if hashing.hash_bytes(data, algo) != packid:
        raise index_error(packid, "content does not match its name", where)
    if not data.isascii():
        raise index_error(packid, "not ASCII text", where)
    header = f"{FORMAT} {algo}\n"
    text = data.decode("ascii")
    if not text.startswith(header):
        raise index_error(packid, f"unknown format (not '{header.strip()}')", where)
    body = text[len(header):]
    if _LINES.fullmatch(body) is None:
        lines = body.split("\n")[:-1]  # what follows the last newline is never a line
        number = next((i for i, line in enumerate(lines, 2) if not _ONE_LINE.fullmatch(line)),
                      None)
        raise index_error(packid, "last line is cut short" if number is None else
                          f"line {number} is not '<oid> <offset> <size>'", where)
    fields = body.split()
    oids = fields[0::3]
    offsets = list(map(int, fields[1::3]))
    sizes = list(map(int, fields[2::3]))
    starts = [0, *accumulate(sizes)]
    if max(sizes, default=0) > OBJECT_MAX:
        number, size = next((i, n) for i, n in enumerate(sizes, 2) if n > OBJECT_MAX)
        raise index_error(packid, f"line {number}: object of {size} bytes, more than a pack "
                                  f"holds ({OBJECT_MAX})", where)
    if offsets != starts[:-1]:
        number, at, start = next((i, at, start) for i, (at, start) in
                                 enumerate(zip(offsets, starts[:-1], strict=True), 2)
                                 if at != start)
        raise index_error(packid, f"line {number}: object at offset {at}, not {start} "
                                  "(objects lie back to back)", where)
    slots = {oid: Slot(packid, at, size)
             for oid, at, size in zip(oids, offsets, sizes, strict=True)}
    if len(slots) != len(oids):
        oid = next(oid for oid, count in Counter(oids).items() if count > 1)
        number = oids.index(oid, oids.index(oid) + 1) + 2
        raise index_error(packid, f"line {number}: object {hashing.short_oid(oid)} is "
                                  "listed twice", where)
    if starts[-1] != pack_size:
        raise index_error(packid, f"describes {starts[-1]} bytes, the pack has {pack_size}",
                          where)
    return slots


_WIDTH = hashing.OID_BYTES


class Index:
    """oid -> Slot for every object of the packs added: what a remote's packs hold, asked
    for every object a push or pull moves.

    Flat arrays, not a Python object per object: a dict of Slots cost ~300 bytes an object
    (300 MB for a million packed files, more than the rest of a push). Here the digests lie
    in one bytearray, pack numbers, offsets and sizes in arrays, and an open-addressing
    table of record numbers is keyed by the digest's first 8 bytes (oids are uniform
    hashes): ~60 bytes an object. A dropped pack's records stay until the next lookup
    rebuilds the table without them (gc drops many packs in a row).
    """

    _EMPTY = -1

    def __init__(self) -> None:
        self._packids: list[str] = []  # pack number -> packid
        self._ranges: dict[str, range] = {}  # live packid -> its record numbers
        self._digests = bytearray()
        self._pack = array("I")
        self._offset = array("Q")
        self._size = array("Q")
        self._table = array("i", [self._EMPTY]) * 64
        self._used = 0
        self._stale = False  # a pack was dropped: the table needs a rebuild
        self._marked = bytearray()  # per record: 1 when a fetch wants it (`mark`)

    def __len__(self) -> int:
        return sum(len(records) for records in self._ranges.values())

    def pack_ids(self) -> list[str]:
        return list(self._ranges)

    def add(self, packid: str, slots: dict[str, Slot]) -> None:
        """Add a pack's objects (a pack of that name already here holds the same ones:
        its name is the hash of its index)."""
        if packid in self._ranges:
            return
        number = len(self._packids)
        self._packids.append(packid)
        first = len(self._pack)
        for oid, slot in slots.items():
            self._digests += bytes.fromhex(oid)
            self._pack.append(number)
            self._offset.append(slot.offset)
            self._size.append(slot.size)
        self._ranges[packid] = range(first, len(self._pack))
        if not self._stale:
            for record in self._ranges[packid]:
                self._insert(record)

    def drop(self, packid: str) -> None:
        if self._ranges.pop(packid, None) is not None:
            self._stale = True

    def slots(self, packid: str) -> dict[str, Slot]:
        """The objects of one pack, in pack order."""
        return {self._digest(r).hex(): Slot(packid, self._offset[r], self._size[r])
                for r in self._ranges[packid]}

    def _digest(self, record: int) -> bytes:
        return bytes(self._digests[record * _WIDTH:(record + 1) * _WIDTH])

    def get(self, oid: str) -> Slot | None:
        if self._stale:
            self._rebuild()
        key = bytes.fromhex(oid)
        if len(key) != _WIDTH:
            return None
        record = self._table[self._find(key)]
        if record == self._EMPTY:
            return None
        return Slot(self._packids[self._pack[record]], self._offset[record], self._size[record])

    def mark(self, oid: str) -> bool:
        """Note that a fetch wants this object (`take_marked` hands it out); False when it
        is in no pack."""
        if self._stale:
            self._rebuild()
        key = bytes.fromhex(oid)
        record = self._table[self._find(key)] if len(key) == _WIDTH else self._EMPTY
        if record == self._EMPTY:
            return False
        self._marked.extend(bytes(len(self._pack) - len(self._marked)))
        self._marked[record] = 1
        return True

    def take_marked(self, limit: int) -> Iterator[dict[str, Slot]]:
        """The marked objects in pack order, up to `limit` at a time; their marks are
        cleared as they are handed out."""
        marked = self._marked
        located: dict[str, Slot] = {}
        for packid, records in list(self._ranges.items()):
            record = marked.find(1, records.start, records.stop)
            while record >= 0:
                marked[record] = 0
                located[self._digest(record).hex()] = Slot(packid, self._offset[record],
                                                           self._size[record])
                if len(located) >= limit:
                    yield located
                    located = {}
                record = marked.find(1, record + 1, records.stop)
        if located:
            yield located

    def __contains__(self, oid: object) -> bool:
        return isinstance(oid, str) and self.get(oid) is not None

    def _find(self, key: bytes) -> int:
        """The table position holding `key`'s record, or the empty one where it would go."""
        table, digests = self._table, self._digests
        mask = len(table) - 1
        at = int.from_bytes(key[:8], "little") & mask
        while (record := table[at]) != self._EMPTY and \
                digests[record * _WIDTH:(record + 1) * _WIDTH] != key:
            at = (at + 1) & mask
        return at

    def _insert(self, record: int) -> None:
        if 2 * (self._used + 1) > len(self._table):
            self._grow(2 * len(self._table))
        at = self._find(self._digest(record))
        if self._table[at] == self._EMPTY:
            self._used += 1
        self._table[at] = record  # an object in two packs: the later one is read

    def _grow(self, size: int) -> None:
        # From the old table as it is read, not from a list of its records: at a million
        # objects that list was ~20 MB of Python ints on top of both tables.
        old = self._table
        self._table = array("i", [self._EMPTY]) * size
        self._used = 0
        for record in old:
            if record != self._EMPTY:
                self._insert(record)

    def _rebuild(self) -> None:
        """Keep only the live packs' records, in a fresh table."""
        fresh = Index()
        for packid in self._ranges:
            fresh.add(packid, self.slots(packid))
        self._packids, self._ranges, self._digests = fresh._packids, fresh._ranges, fresh._digests
        self._pack, self._offset, self._size = fresh._pack, fresh._offset, fresh._size
        self._table, self._used, self._stale = fresh._table, fresh._used, False
        self._marked = bytearray()  # marks are for one fetch, which drops no pack

    def items(self) -> Iterator[tuple[str, Slot]]:
        for packid in list(self._ranges):
            yield from self.slots(packid).items()


def group(objects: Iterable[tuple[str, int]], target: int = TARGET_BYTES) -> list[list[str]]:
    """Split (oid, size) pairs, in order, into packs of about `target` bytes (and at most
    OBJECTS_MAX objects) each."""
    packs: list[list[str]] = []
    current: list[str] = []
    filled = 0
    for oid, size in objects:
        if current and (filled + size > target or len(current) >= OBJECTS_MAX):
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
