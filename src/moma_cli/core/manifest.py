"""Directory manifests: the sorted list of (relative path, oid, size) stored as an object.

Encoded as JSON lines (a header, then one `[path, oid, size]` per file) so that a huge
manifest can be read as a stream, and so any file name survives the round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from moma_cli.core import hashing
from moma_cli.core.paths import check_relpath
from moma_cli.errors import MomaError, PointerError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Entry:
    relpath: str
    oid: str
    size: int


def encode(entries: Iterable[Entry], algo: str) -> bytes:
    header = json.dumps({"moma-manifest": FORMAT_VERSION, "hash": algo}, sort_keys=True)
    lines = [header]
    lines.extend(
        json.dumps([e.relpath, e.oid, e.size], ensure_ascii=False, separators=(",", ":"))
        for e in sorted(entries, key=lambda e: e.relpath)
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def iter_decode(stream: IO[bytes], source: str) -> Iterator[Entry]:
    """Yield entries one at a time, validating each before any path is built from it."""

    def bad(msg: str) -> MomaError:
        return PointerError(f"manifest {source}: {msg}", hint="run 'moma fsck' to check the cache")

    try:
        header = json.loads(stream.readline())
    except ValueError:
        raise bad("unreadable header") from None
    if not isinstance(header, dict) or header.get("moma-manifest") != FORMAT_VERSION:
        raise bad("not a moma directory manifest")
    previous = ""
    for lineno, raw in enumerate(stream, start=2):
        try:
            relpath, oid, size = json.loads(raw)
        except (ValueError, TypeError):
            raise bad(f"line {lineno} is malformed") from None
        try:
            check_relpath(relpath, "manifest entry")
        except MomaError as exc:
            raise bad(f"line {lineno}: {exc.message}") from None
        if not hashing.is_valid_oid(oid) or not isinstance(size, int) or size < 0:
            raise bad(f"line {lineno} has an invalid oid or size")
        if relpath <= previous:
            raise bad(f"line {lineno} is out of order or duplicated")
        previous = relpath
        yield Entry(relpath, oid, size)
