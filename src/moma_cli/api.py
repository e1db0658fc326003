"""moma's Python API: read tracked data at any git revision, verified against its hash.

Example:
    >>> import moma_cli.api as moma
    >>> model_bytes = moma.read("model.pkl", rev="v1")
    >>> with moma.open("data/train.csv", mode="r") as fh:
    ...     header = fh.readline()

Paths are relative to the repository root; `rev` is any git revision (branch, tag, commit,
`HEAD~2`); None reads what the work tree's pointer says. Objects missing from the cache are
fetched from `remote` (default remote when None) if this moma has remote transfers, else
`ObjectMissingError` is raised with a hint. Nothing is ever unpickled here: deserialise the
bytes yourself, only from sources you trust.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import IO, Any

from moma_cli.services import access
from moma_cli.services.repo import open_repo


def open(  # noqa: A001 - mirrors builtins.open on purpose
    path: str,
    rev: str | None = None,
    remote: str | None = None,
    mode: str = "rb",
    *,
    repo: str | Path | None = None,
    encoding: str = "utf-8",
) -> IO[Any]:
    """Open a tracked file (or a file inside a tracked directory) for reading.

    `mode` is "rb" (default) or "r" (text, decoded with `encoding`). `repo` is a directory
    inside the repository (default: the current directory).

    Example:
        >>> with moma_cli.api.open("model.pkl", rev="main~1") as fh:
        ...     data = fh.read()
    """
    if mode not in ("rb", "r"):
        raise ValueError(f"mode must be 'rb' or 'r', not {mode!r}")
    path_of_object = _object_path(path, rev, remote, repo)
    if mode == "r":
        return builtins.open(path_of_object, encoding=encoding)
    return builtins.open(path_of_object, "rb")


def read(
    path: str, rev: str | None = None, remote: str | None = None, *,
    repo: str | Path | None = None,
) -> bytes:
    """The verified bytes of a tracked file at `rev`.

    Example:
        >>> old = moma_cli.api.read("data/labels.csv", rev="v1")
        >>> new = moma_cli.api.read("data/labels.csv")
    """
    return _object_path(path, rev, remote, repo).read_bytes()


def _object_path(path: str, rev: str | None, remote: str | None,
                 repo: str | Path | None) -> Path:
    context = open_repo(Path(repo) if repo is not None else None)
    located = access.locate(context, path, rev, remote=remote)
    return access.object_path(context, located.oid, remote=remote)
