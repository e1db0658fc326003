"""Directory manifests: the sorted list of (relative path, oid, size) stored as an object.

Encoded as JSON lines (a header, then one `[path, oid, size]` per file) so that a huge
manifest can be read as a stream, and so any file name survives the round trip.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, NamedTuple

from moma_cli.core import hashing
from moma_cli.core.paths import check_repo_relpath
from moma_cli.errors import MomaError, PointerError

FORMAT_VERSION = 1


class Entry(NamedTuple):
    """One file of a directory (a NamedTuple: status builds one per file)."""

    relpath: str
    oid: str
    size: int


def encode(entries: Iterable[Entry], algo: str) -> bytes:
    return b"".join(encode_lines(sorted(entries, key=lambda e: e.relpath), algo))


def encode_lines(entries: Iterable[Entry], algo: str) -> Iterator[bytes]:
    """The listing one line at a time (the header first), for `entries` already sorted by
    path: a million files then never exist as one list, string and bytes at once (three
    copies of ~95 MB)."""
    header = json.dumps({"moma-manifest": FORMAT_VERSION, "hash": algo}, sort_keys=True)
    yield (header + "\n").encode("utf-8")
    previous = None
    for e in entries:
        if previous is not None and e.relpath <= previous:
            raise ValueError(f"manifest entries out of order: {e.relpath!r}")
        previous = e.relpath
        line = (f'["{e.relpath}","{e.oid}",{e.size}]\n' if _PLAIN.fullmatch(e.relpath)
                else json.dumps([e.relpath, e.oid, e.size], ensure_ascii=False,
                                separators=(",", ":")) + "\n")
        yield line.encode("utf-8")


# Names json.dumps(ensure_ascii=False) would print unchanged between quotes: the f-string
# above gives byte-identical output at a fraction of the cost (oids must never change).
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_BATCH = 8192
# json raises RecursionError, not ValueError, on a line nested a few thousand deep
_UNREADABLE = (ValueError, RecursionError)


def iter_decode(stream: IO[bytes], source: str) -> Iterator[Entry]:
    """Yield entries one at a time, validating each before any path is built from it."""

    def bad(msg: str) -> MomaError:
        return PointerError(f"manifest {source}: {msg}", hint="run 'moma fsck' to check the cache")

    try:
        header = json.loads(stream.readline())
    except _UNREADABLE:
        raise bad("unreadable header") from None
    version = header.get("moma-manifest") if isinstance(header, dict) else None
    if type(version) is not int or version != FORMAT_VERSION:  # not 1.0, not true
        raise bad("not a moma directory manifest")
    previous = ""
    for lineno, (relpath, oid, size) in _rows(stream, bad):
        try:
            check_repo_relpath(relpath, "manifest entry")
            relpath.encode("utf-8")  # a "\ud800" escape: no file system takes that name
        except MomaError as exc:
            raise bad(f"line {lineno}: {exc.message}") from None
        except UnicodeEncodeError:
            raise bad(f"line {lineno}: the path is not valid UTF-8") from None
        if not hashing.is_valid_oid(oid) or type(size) is not int or size < 0:
            raise bad(f"line {lineno} has an invalid oid or size")
        if relpath <= previous:
            raise bad(f"line {lineno} is out of order or duplicated")
        previous = relpath
        yield Entry(relpath, oid, size)


def changes(recorded: IO[bytes], current: Iterable[bytes], source: str
            ) -> list[tuple[str, str]]:
    """(added|modified|deleted, relpath) for each file that differs between a recorded
    listing (a stream, as stored) and the `current` one (its lines, as `encode_lines`
    gives them), by path.

    Both are sorted by path, so they are walked side by side: lines byte-identical in both
    are never decoded (with 1 file changed out of a million, two lines are), and memory
    is bounded by what differs, not by the size of the listings.
    """
    header = recorded.readline()
    mine = iter(current)
    next(mine, None)  # the current header
    gone: list[bytes] = []
    pending: list[tuple[str, str]] = []
    old, new = recorded.readline(), next(mine, b"")
    while old or new:
        if old == new:
            old, new = recorded.readline(), next(mine, b"")
            continue
        old_rel = _relpath_of(old) if old else None
        new_rel, new_oid = _row_of(new) if new else (None, "")
        if new_rel is None or (old_rel is not None and old_rel <= new_rel):
            gone.append(old)
            old = recorded.readline()
        if new_rel is not None and (old_rel is None or new_rel <= old_rel):
            pending.append((new_rel, new_oid))
            new = next(mine, b"")
    before = {e.relpath: e.oid for e in iter_decode(io.BytesIO(header + b"".join(gone)), source)}
    after = dict(pending)
    found = [("deleted" if rel not in after else "modified", rel) for rel in before
             if after.get(rel) != before[rel]]
    found += [("added", rel) for rel in after if rel not in before]
    return sorted(found, key=lambda change: change[1])


def _relpath_of(line: bytes) -> str | None:
    """The path of a recorded line, or None when the line does not parse (it is then
    reported by `iter_decode`, which names it)."""
    try:
        row = json.loads(line)
    except _UNREADABLE:
        return None
    return row[0] if type(row) is list and row and type(row[0]) is str else None


def _row_of(line: bytes) -> tuple[str, str]:
    relpath, oid, _ = json.loads(line)
    return relpath, oid


def _rows(stream: IO[bytes], bad: Callable[[str], MomaError]) -> Iterator[tuple[int, list[Any]]]:
    """(line number, [path, oid, size]) per line, parsing a batch of lines per json call.

    A batch whose joined parse does not give exactly one 3-item list per line (a line
    holding '],[' for instance) is re-parsed line by line, which names the bad line.
    """
    lineno = 2
    while batch := list(itertools.islice(stream, _BATCH)):
        try:
            rows = json.loads(b"[" + b",".join(batch) + b"]")
            fast = len(rows) == len(batch) and all(
                type(r) is list and len(r) == 3 for r in rows)
        except _UNREADABLE:
            fast = False
        if not fast:
            rows = []
            for offset, raw in enumerate(batch):
                try:
                    row = json.loads(raw)
                except _UNREADABLE:
                    row = None
                if type(row) is not list or len(row) != 3:
                    raise bad(f"line {lineno + offset} is malformed")
                rows.append(row)
        for offset, row in enumerate(rows):
            yield lineno + offset, row
        lineno += len(batch)
