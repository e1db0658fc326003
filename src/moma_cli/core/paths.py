"""Repository-relative path rules shared by pointers, manifests and user input."""

from __future__ import annotations

import posixpath

from moma_cli.errors import PathError

RESERVED_TOP = (".git", ".moma")


def check_relpath(path: object, what: str = "path") -> str:
    """Validate a relative, normalised POSIX path that stays inside its root.

    Anything that could resolve outside the root (absolute, `..`, backslashes, NUL) is
    refused before a filesystem path is ever built from it.
    """
    if not isinstance(path, str) or not path:
        raise PathError(f"{what} must be a non-empty string")
    if "\0" in path or "\\" in path:
        raise PathError(f"{what} {path!r} contains a forbidden character")
    if path.startswith("/"):
        raise PathError(f"{what} {path!r} is absolute; paths must be relative to the repository")
    if posixpath.normpath(path) != path or path in (".", ".."):
        raise PathError(f"{what} {path!r} is not a normalised relative path")
    if path.split("/")[0] == "..":
        raise PathError(f"{what} {path!r} escapes the repository")
    return path


def check_repo_relpath(path: object, what: str = "path") -> str:
    """Like check_relpath, and refuse moma's and git's own directories."""
    rel = check_relpath(path, what)
    if rel.split("/")[0] in RESERVED_TOP:
        raise PathError(f"{what} {rel!r} is inside {rel.split('/')[0]}/, which moma never tracks")
    return rel


def is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")
