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
    header = json.dumps({"moma-manifest": FORMAT_VERSION, "hash": algo}, sort_keys=True)
    lines = [header]
    lines.extend(
        f'["{e.relpath}","{e.oid}",{e.size}]' if _PLAIN.fullmatch(e.relpath)
        else json.dumps([e.relpath, e.oid, e.size], ensure_ascii=False, separators=(",", ":"))
        for e in sorted(entries, key=lambda e: e.relpath)
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


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


def changes(recorded: IO[bytes], current: bytes, source: str) -> list[tuple[str, str]]:
    """(added|modified|deleted, relpath) for each file that differs between a recorded
    listing (a stream, as stored) and the `current` one (as `encode` gives it), by path.

    Lines byte-identical in both are never decoded: with 1 file changed out of 10,000, two
    lines are (decoding the whole recorded listing was a third of `moma status`). The
    recorded listing is streamed, so memory is bounded by the current one and what differs.
    """
    pending = set(current.splitlines(keepends=True)[1:])
    header = recorded.readline()
    gone = []
    for line in recorded:
        if line in pending:
            pending.remove(line)
        else:
            gone.append(line)
    before = {e.relpath: e.oid for e in iter_decode(io.BytesIO(header + b"".join(gone)), source)}
    after = {relpath: oid for relpath, oid, _ in map(json.loads, pending)}
    found = [("deleted" if rel not in after else "modified", rel) for rel in before
             if after.get(rel) != before[rel]]
    found += [("added", rel) for rel in after if rel not in before]
    return sorted(found, key=lambda change: change[1])


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
