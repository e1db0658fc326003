"""`moma get` (another repository's data, downloaded from its remote and verified, left
untracked), `moma import` (the same, tracked here by a pointer with a `source:` section),
and `moma update` (an import moved to the newest commit of its revision). Pulling an
import through its source is `sync.fetching`'s."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.atomic import atomic_open
from moma_cli.core import hashing
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.paths import check_repo_relpath
from moma_cli.core.sources import Source, source_of
from moma_cli.errors import CheckoutConflictError, ObjectMissingError, PathError
from moma_cli.services import access, data, data_checkout, revisions
from moma_cli.services.crossrepo.clones import Opened, current_repo, open_source
from moma_cli.services.registry.model_files import unsaved
from moma_cli.services.repo import Repo, add_gitignore_entries
from moma_cli.services.sync.fetching import fetch_oids


@dataclass
class GetResult:
    url: str
    commit: str
    path: str  # in the source
    dest: Path
    kind: str
    oid: str
    files: int  # written (or already identical)


@dataclass
class ImportResult:
    url: str
    rev: str | None
    commit: str
    path: str  # tracked here
    oid: str
    changed: bool  # False: the pointer already said exactly this
    checkout: data_checkout.CheckoutResult | None = None


@dataclass
class UpdateResult:
    imports: list[ImportResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(i.checkout is None or i.checkout.ok for i in self.imports)


def get(here: Repo | None, url: str, path: str, out: str | None = None, *,
        rev: str | None = None, force: bool = False, cwd: Path | None = None) -> GetResult:
    """Write `path` of `url` at `rev` to `out` (default: its name, here), verified against
    its oid; a file there that the cache could not give back is kept unless `force`."""
    src = open_source(here, url, rev, cwd=cwd)
    ptr = source_pointer(src, path)
    files = download(src.repo, ptr)
    dest = Path(cwd or os.getcwd()) / (out or posixpath.basename(ptr.path))
    if not ptr.is_dir and dest.is_dir():
        dest = dest / posixpath.basename(ptr.path)
    planned = [(dest / rel if ptr.is_dir else dest, oid) for rel, oid in files]
    for target, oid in planned:  # every conflict before any write
        if unsaved(src.repo, target, oid) and not force:
            raise CheckoutConflictError(f"{target}: modified and not in the cache; left as is",
                                        hint="save it with 'moma add', or pass --force to "
                                             "overwrite it")
    for target, oid in planned:
        _copy(src.repo.cache.checked_path(oid), target)
    return GetResult(src.url, src.commit, ptr.path, dest, ptr.kind, ptr.oid, len(planned))


def import_(here: Repo, url: str, path: str, out: str | None = None, *,
            rev: str | None = None, force: bool = False, cwd: Path | None = None) -> ImportResult:
    """`get`, then track the result here with a `source:` section naming `url`, the `rev`
    asked for and the commit it resolved to; the pointer and .gitignore are staged."""
    src = open_source(here, url, rev, cwd=cwd)
    ptr = source_pointer(src, path)
    rel = here.relpath(out or posixpath.basename(ptr.path), cwd)
    return _track(here, src, ptr, rel, force)


def update(here: Repo, targets: Iterable[str] | None = None, *, rev: str | None = None,
           force: bool = False, cwd: Path | None = None) -> UpdateResult:
    """Re-resolve each import's revision (or `rev`) and move it to that commit, downloading
    what changed."""
    pointers, errors = here.pointers(list(targets) if targets else None, cwd)
    if errors:
        raise errors[0]
    result = UpdateResult()
    for ptr in pointers:
        source = source_of(ptr.extra, ptr.pointer_path)
        if source is None:
            if targets:
                raise PathError(f"{ptr.pointer_path}: was not made by 'moma import'",
                                hint="'moma update' moves imports only")
            continue
        wanted = rev if rev is not None else source.rev
        src = open_source(here, source.url, wanted)
        result.imports.append(_track(here, src, source_pointer(src, source.path), ptr.path,
                                     force))
    return result


def object_of(url: str, path: str, rev: str | None = None, *, remote: str | None = None,
              cwd: Path | None = None) -> Path:
    """The verified cache path of the file `path` of `url` at `rev` (`moma_cli.api`), from
    the source's `remote` (default: its default remote)."""
    src = open_source(current_repo(cwd), url, rev, cwd=cwd)
    ptr = source_pointer(src, path)
    if ptr.is_dir:
        raise PathError(f"{ptr.path}: is a tracked directory of {src.url}",
                        hint=f"open a file inside it, e.g. {ptr.path}/<name>")
    download(src.repo, ptr, remote=remote)
    return src.repo.cache.checked_path(ptr.oid)


def source_pointer(src: Opened, path: str) -> pointer_mod.Pointer:
    """The pointer tracking `path` at the source's commit; a file inside a tracked
    directory becomes a file pointer of its own."""
    rel = check_repo_relpath(path.strip("/"))
    ptr = revisions.pointer_at(src.repo, rel, src.commit)
    if ptr is not None:
        return ptr
    located = access.locate(src.repo, rel, src.commit)
    algo = located.pointer.algo
    return pointer_mod.Pointer(rel, algo, located.oid, located.size)


def download(src: Repo, ptr: pointer_mod.Pointer,
             remote: str | None = None) -> list[tuple[str, str]]:
    """Fetch what the cache lacks of `ptr` from the source's remote (default: its default
    remote), each object verified on arrival; (relative path, oid) of every file it holds."""
    fetch_missing(src, [ptr.oid], remote)
    if not ptr.is_dir:
        return [("", ptr.oid)]
    files = [(check_repo_relpath(e.relpath), e.oid) for e in src.cache.iter_manifest(ptr.oid)]
    fetch_missing(src, {oid for _, oid in files}, remote)
    return files


def fetch_missing(src: Repo, oids: Iterable[str], remote: str | None = None) -> None:
    """Download the `oids` the cache lacks from the source's `remote` (default: its default
    remote), each verified on arrival; the first failure is raised."""
    wanted = [oid for oid in oids if not src.cache.exists(oid)]
    if not wanted:
        return
    result = fetch_oids(src, wanted, remote=remote)
    if result.failed:
        oid, message = next(iter(result.failed.items()))
        raise ObjectMissingError(f"object {hashing.short_oid(oid)} of the source could not "
                                 f"be downloaded: {message}",
                                 hint="ask the source's authors to 'moma push' it")


def _track(here: Repo, src: Opened, found: pointer_mod.Pointer, rel: str,
           force: bool) -> ImportResult:
    if found.algo != here.cache.algo:
        raise PathError(f"{found.path}: the source hashes with {found.algo}, this repository "
                        f"with {here.cache.algo}", hint="use 'moma get' to copy it instead")
    existing = here.git.pointer_files()
    if pointer_mod.pointer_path_of(rel) not in existing:
        data.check_addable(here, [rel], must_exist=False)
    download(src.repo, found)
    source = Source(src.url, found.path, src.rev, src.commit)
    ptr = pointer_mod.Pointer(rel, found.algo, found.oid, found.size, found.kind, found.nfiles,
                              {"source": source.to_mapping()})
    parent, name = posixpath.split(rel)
    (here.root / parent).mkdir(parents=True, exist_ok=True)  # parents checked by relpath
    add_gitignore_entries(here.root, parent, ["/" + name])  # first: no pointer left alone
    changed = here.write_pointer(ptr)
    here.git.add([ptr.pointer_path, posixpath.join(parent, ".gitignore")])
    checkout = data_checkout.checkout(here, [rel], force=force, cwd=here.root)
    return ImportResult(src.url, src.rev, src.commit, rel, ptr.oid, changed, checkout)


def _copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, atomic_open(dest) as fh:
        while chunk := src.read(1 << 20):
            fh.write(chunk)
