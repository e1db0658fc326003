"""git-lfs's formats, read strictly since a clone writes them: pointer files (git-lfs
docs/spec.md) and the `filter=lfs` lines of .gitattributes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from moma_cli.errors import PointerError

VERSION_LINE = b"version https://git-lfs.github.com/spec/v1\n"
MAX_POINTER = 1024  # the spec: a pointer file is smaller than this
# The one form moma converts: version, sha256 oid, decimal size, each line ending in "\n",
# nothing else. Extensions (`ext-0-name ...`) transform the bytes, so their oid is not the
# hash of the file and cannot be checked; other keys are not in the spec.
_POINTER = re.compile(rb"version https://git-lfs\.github\.com/spec/v1\n"
                      rb"oid sha256:([0-9a-f]{64})\nsize (0|[1-9][0-9]{0,18})\n")


@dataclass(frozen=True)
class LfsPointer:
    oid: str  # sha256 hex digest of the file's bytes
    size: int


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The pointer `data` holds; None when it is not an LFS pointer at all. Data that starts
    as one but breaks the spec raises PointerError."""
    if not data.startswith(VERSION_LINE):
        return None
    if len(data) >= MAX_POINTER:
        raise PointerError(f"git-lfs pointer of {len(data)} bytes (the spec allows "
                           f"{MAX_POINTER - 1})")
    found = _POINTER.fullmatch(data)
    if found is None:
        raise PointerError("not a git-lfs pointer moma can read (the lines 'version', "
                           "'oid sha256:<hex>', 'size <bytes>' and nothing else)")
    return LfsPointer(found[1].decode(), int(found[2]))


def lfs_pattern(line: str) -> str | None:
    """The pattern of a .gitattributes line that sets `filter=lfs`; None for any other line
    (comments, other attributes, and quoted patterns, which are left alone)."""
    fields = line.split()
    if not fields or fields[0].startswith(("#", '"')):
        return None
    return fields[0] if "filter=lfs" in fields[1:] else None


def pattern_pathspec(directory: str, pattern: str) -> str | None:
    """The git pathspec for the files a pattern of `<directory>/.gitattributes` applies to,
    by gitignore's rules: a slash before the end anchors it to the directory, without one it
    matches at any depth; one ending in a slash names directories, never a file (None)."""
    if pattern.endswith("/"):
        return None
    prefix = directory + "/" if directory else ""
    body = pattern.lstrip("/") if "/" in pattern else "**/" + pattern
    return ":(glob)" + prefix + body
