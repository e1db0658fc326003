"""Directory manifests: stable bytes (oids must never change) and strict decoding."""

from __future__ import annotations

import io
import json

import pytest

from moma_cli.core import manifest
from moma_cli.errors import PointerError

OID = "a" * 64
NAMES = ["plain.txt", "dir/sub/file", "ünïcode-名前", 'quote"d', "back\\slash", "tab\there",
         "del\x7fchar", "line\u2028sep", "a\"],[\"b"]


def reference_encode(entries: list[manifest.Entry], algo: str) -> bytes:
    """The format as first specified: one json.dumps per line."""
    header = json.dumps({"moma-manifest": 1, "hash": algo}, sort_keys=True)
    lines = [header] + [
        json.dumps([e.relpath, e.oid, e.size], ensure_ascii=False, separators=(",", ":"))
        for e in sorted(entries, key=lambda e: e.relpath)]
    return ("\n".join(lines) + "\n").encode()


def test_fast_encoding_is_byte_identical_to_json_dumps() -> None:
    entries = [manifest.Entry(name, OID, i) for i, name in enumerate(NAMES)]
    assert manifest.encode(entries, "blake3") == reference_encode(entries, "blake3")


def test_decode_round_trips_more_than_one_batch() -> None:
    entries = [manifest.Entry(f"d{i // 100}/f{i:06d}", OID, i) for i in range(20_000)]
    entries += [manifest.Entry(name, OID, 1) for name in NAMES if "\\" not in name]
    data = manifest.encode(entries, "blake3")
    decoded = list(manifest.iter_decode(io.BytesIO(data), "m"))
    assert decoded == sorted(entries, key=lambda e: e.relpath)


@pytest.mark.parametrize("line, message", [
    (b'["a","' + OID.encode() + b'",1],["b","' + OID.encode() + b'",2]', "line 3 is malformed"),
    (b"not json", "line 3 is malformed"),
    (b'["../x","' + OID.encode() + b'",1]', "line 3"),
    (b'["z","nothex",1]', "invalid oid"),
])
def test_decode_names_the_bad_line(line: bytes, message: str) -> None:
    good = b'["a","' + OID.encode() + b'",1]'
    data = b'{"hash": "blake3", "moma-manifest": 1}\n' + good + b"\n" + line + b"\n"
    with pytest.raises(PointerError, match="manifest m: .*" + message.replace("[", r"\[")):
        list(manifest.iter_decode(io.BytesIO(data), "m"))


def test_changes_decode_only_the_lines_that_differ() -> None:
    oid = "ab" * 32
    Entry = manifest.Entry
    old = [Entry("a", oid, 1), Entry('quo"te\n', oid, 2), Entry("same", oid, 3),
           Entry("gone", oid, 4)]
    new = [Entry("a", "cd" * 32, 1), Entry('quo"te\n', oid, 2), Entry("same", oid, 3),
           Entry("zz-new", oid, 5), Entry("é", oid, 6)]
    found = manifest.changes(io.BytesIO(manifest.encode(old, "blake3")),
                             manifest.encode_lines(new, "blake3"), "test")
    assert found == [("modified", "a"), ("deleted", "gone"), ("added", "zz-new"),
                     ("added", "é")]
    assert manifest.changes(io.BytesIO(manifest.encode(new, "blake3")),
                            manifest.encode_lines(new, "blake3"), "test") == []
    damaged = manifest.encode(old, "blake3").replace(b'["gone"', b'["../gone"')
    with pytest.raises(PointerError, match="manifest test: line"):
        manifest.changes(io.BytesIO(damaged), manifest.encode_lines(new, "blake3"), "test")


def test_changes_walks_both_listings_side_by_side() -> None:
    # Insertions and deletions shift every later line: the side-by-side walk must
    # resynchronise by path, as a comparison by dictionaries would.
    Entry = manifest.Entry
    old = [Entry(f"f{i:03d}", f"{i:064x}", i) for i in range(0, 200, 2)]
    new = [Entry(f"f{i:03d}", f"{i + (i % 10 == 0):064x}", i) for i in range(0, 200, 3)]
    found = manifest.changes(io.BytesIO(manifest.encode(old, "blake3")),
                             manifest.encode_lines(new, "blake3"), "test")
    before = {e.relpath: e.oid for e in old}
    after = {e.relpath: e.oid for e in new}
    expected = sorted([("deleted", r) for r in before if r not in after]
                      + [("added", r) for r in after if r not in before]
                      + [("modified", r) for r in after if r in before and after[r] != before[r]],
                      key=lambda change: change[1])
    assert found == expected and len(found) > 50
