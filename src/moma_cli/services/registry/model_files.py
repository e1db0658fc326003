"""A registered model's file: `models:get -o` (never over unsaved work), its verified
cache path, and the model loaded from it (`api.load_model`)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moma_cli.errors import CheckoutConflictError
from moma_cli.services import access, workspace
from moma_cli.services.model_loading import load_estimator
from moma_cli.services.registry.model_version import ModelError, ModelVersion
from moma_cli.services.registry.resolving import resolve
from moma_cli.services.repo import Repo

# -- get -------------------------------------------------------------------------------------


@dataclass
class GetResult:
    version: ModelVersion
    path: Path
    fetched: bool
    replaced: bool = False  # modified data overwritten with --force


def get(repo: Repo, ref: str, output: str, *, rev: str | None = None,
        cwd: Path | None = None, force: bool = False) -> GetResult:
    """Write a version's bytes (of the registry at `rev`) to `output` from the cache
    (fetching them from the remote first when missing), leaving git alone. Like checkout,
    a file there whose bytes are not in the cache (unsaved work) is only overwritten with
    `force`."""
    version = resolve(repo, ref, rev=rev)
    if version.pointer.is_dir:
        raise ModelError(f"{version.name} {version.label} is a directory",
                         hint="use 'moma checkout' for directory models")
    dest = Path(cwd or Path.cwd()) / output
    if dest.is_dir():
        dest = dest / posixpath.basename(version.pointer.path)
    replaced = unsaved(repo, dest, version.oid)
    if replaced and not force:
        raise CheckoutConflictError(f"{dest}: modified and not in the cache; left as is",
                                    hint="save it with 'moma add', or pass --force to "
                                         "overwrite it")
    fetched = not repo.cache.exists(version.oid)
    source = access.object_path(repo, version.oid)
    from moma_cli.atomic import atomic_open

    with open(source, "rb") as src, atomic_open(dest) as fh:
        while chunk := src.read(1 << 20):
            fh.write(chunk)
    return GetResult(version, dest, fetched, replaced)


def unsaved(repo: Repo, dest: Path, oid: str) -> bool:
    """Whether something is at `dest` that neither the cache nor the version `oid` being
    written could give back (checkout's rule)."""
    if not os.path.lexists(dest):
        return False
    current = workspace.current_oid(repo, dest)
    return current is None or (current != oid and not repo.cache.exists(current))


def model_file(repo: Repo, ref: str, rev: str | None = None) -> tuple[ModelVersion, Path]:
    """A verified cache path holding the bytes of `ref` (for the Python API)."""
    version = resolve(repo, ref, rev=rev)
    return version, access.object_path(repo, version.oid)


def load(repo: Repo, ref: str, *, trust_pickle: bool, rev: str | None = None,
         trusted_types: Sequence[str] = ()) -> Any:
    """The estimator of `ref` (in the registry at `rev`), loaded by its recorded format
    from its verified cache path (services/model_loading.py says what runs code and what
    does not)."""
    version, path = model_file(repo, ref, rev)
    what = f"{version.name} {version.label} ({version.model_id})"
    if version.pointer.is_dir:
        raise ModelError(f"{what} is a directory; load_model reads single-file models")
    return load_estimator(path, version.meta.encoding, what,
                          trust_pickle=trust_pickle, trusted_types=trusted_types)
