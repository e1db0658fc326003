"""Fuzzing the pack index parser: an index is whatever a writer to the remote put there, so
every input gives either slots that lie within the pack, or PackIndexError naming the file;
never another exception, and never slow."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from moma_cli.core.hashing import hash_bytes, is_valid_oid
from moma_cli.errors import PackIndexError
from moma_cli.storage import packs

ALGO = "blake3"
HEADER = f"{packs.FORMAT} {ALGO}\n".encode()
# A generous bound for one parse: the inputs are at most a few KiB.
SECONDS = 1.0

oids = st.binary(min_size=0, max_size=8).map(lambda b: hash_bytes(b, ALGO))
sizes = st.one_of(st.integers(0, 64), st.integers(0, packs.OBJECT_MAX + 2))
numbers = st.one_of(st.integers(-(2**70), 2**70).map(str),
                    st.text(alphabet="0123456789+-_ ", max_size=25))
fields = st.one_of(oids, oids.map(str.upper), st.text(max_size=70))
junk_lines = st.tuples(fields, st.sampled_from([" ", "  ", "\t", ""]), numbers,
                       st.sampled_from([" ", "", "\r"]), numbers).map("".join)


def _check(data: bytes, packid: str, pack_size: int) -> None:
    """The property: a parse within bounds, or the module's own error naming the file."""
    started = time.perf_counter()
    try:
        slots = packs.decode_index(data, packid, ALGO, pack_size, "remote 'fuzz'")
    except PackIndexError as exc:
        assert exc.message.startswith(f"pack index packs/{packid}.idx on remote 'fuzz': ")
    else:
        end = 0
        for oid, slot in slots.items():  # back to back, in order, exactly the pack
            assert is_valid_oid(oid) and slot.packid == packid
            assert slot.offset == end and 0 <= slot.size <= packs.OBJECT_MAX
            end += slot.size
        assert end == pack_size
    assert time.perf_counter() - started < SECONDS


@given(st.binary(max_size=4096), st.integers(-1, 1 << 24))
def test_arbitrary_bytes(data: bytes, pack_size: int) -> None:
    _check(data, hash_bytes(data, ALGO), pack_size)
    _check(HEADER + data, hash_bytes(HEADER + data, ALGO), pack_size)


@given(st.lists(junk_lines, max_size=20), st.integers(0, 1 << 24), st.booleans())
def test_lines_of_almost_the_right_form(lines: list[str], pack_size: int, newline: bool) -> None:
    data = HEADER + "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" * newline
    _check(data, hash_bytes(data, ALGO), pack_size)


@given(st.lists(st.tuples(oids, sizes), max_size=30, unique_by=lambda o: o[0]),
       st.data())
def test_mutated_valid_indexes(objects: list[tuple[str, int]], draw: st.DataObject) -> None:
    valid = packs.encode_index(objects, ALGO)
    total = sum(size for _, size in objects)
    at = draw.draw(st.integers(0, len(valid)))
    cut = draw.draw(st.integers(0, 8))
    insert = draw.draw(st.binary(max_size=8) | st.sampled_from(
        [b"\n", b" ", b"-", b"0", b"9", b"\xff", valid[:at][-80:]]))
    data = valid[:at] + insert + valid[at + cut:]
    pack_size = draw.draw(st.sampled_from([total, total - 1, total + 1, 0]))
    _check(data, hash_bytes(data, ALGO), pack_size)
    _check(data, hash_bytes(valid, ALGO), pack_size)  # not the index its name promises
    if data == valid and pack_size == total and all(s <= packs.OBJECT_MAX for _, s in objects):
        assert len(packs.decode_index(data, hash_bytes(data, ALGO), ALGO, total)) == len(objects)
