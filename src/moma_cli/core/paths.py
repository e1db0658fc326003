"""Repository-relative path rules shared by pointers, manifests and user input."""

from __future__ import annotations

import posixpath

from moma_cli.errors import PathError

# Names moma never tracks, checks out or pulls, as any component of a path: git's own
# directory (a listing entry `sub/.git/config` would set hooks or a fsmonitor command) and
# moma's own configuration and state (a pointer `.moma.local.yaml.moma` would move the
# cache anywhere). Compared case-insensitively: `.GIT` is `.git` on macOS and Windows.
# moma's configuration and state, and git's own: `.gitattributes` picks filter drivers and
# `.gitmodules` submodule URLs, so a pointer may not write them either.
RESERVED_NAMES = frozenset({".git", ".gitattributes", ".gitmodules", ".moma", ".moma.yaml",
                            ".moma.local.yaml", "moma.lock"})


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


def is_reserved_name(name: str) -> bool:
    return name.lower() in RESERVED_NAMES


def check_repo_relpath(path: object, what: str = "path") -> str:
    """Like check_relpath, and refuse any path with a component that is git's or moma's own
    (`RESERVED_NAMES`), at any depth."""
    rel = check_relpath(path, what)
    low = rel.lower()
    if "/." not in "/" + low and "moma.lock" not in low:  # the common case, per listing entry
        return rel
    for part in rel.split("/"):
        if is_reserved_name(part):
            raise PathError(f"{what} {rel!r}: {part!r} is moma's or git's own; moma never "
                            "tracks, checks out or pulls it")
    return rel


def is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")
