"""Which oids a set of pointers needs: all at once (`Plan`: files, directory manifests and
their entries, each with the workspace path it belongs to), or a window at a time for push
and fetch (`Transfer`), so that a directory of a million files is never held whole; and
which pointers a transfer covers."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moma_cli.core import pointer as pointer_mod
from moma_cli.core.paths import is_within
from moma_cli.errors import HashMismatchError, ObjectMissingError
from moma_cli.services.registry import resolving
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.repo import Repo


@dataclass
class Plan:
    """What a set of pointers needs: oids (files first, manifests apart) and whose they are."""

    files: set[str] = field(default_factory=set)
    manifests: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)  # oid -> workspace path
    sizes: dict[str, int] = field(default_factory=dict)
    unlisted: list[pointer_mod.Pointer] = field(default_factory=list)  # manifest not cached


def plan_pointers(repo: Repo, pointers: Iterable[pointer_mod.Pointer], plan: Plan | None = None,
                  where: str = "") -> Plan:
    """Add the pointers' objects to `plan` (a new one by default); `where` follows their
    paths in messages, e.g. " (credit-risk:3, production)" for a pointer not in the work tree."""
    plan = Plan() if plan is None else plan
    for ptr in pointers:
        plan.names.setdefault(ptr.oid, ptr.path + where)
        if not ptr.is_dir:
            plan.files.add(ptr.oid)
            plan.sizes[ptr.oid] = ptr.size
            continue
        plan.manifests.add(ptr.oid)
        try:
            entries = list(repo.cache.iter_manifest(ptr.oid))
        except (ObjectMissingError, HashMismatchError):  # a damaged one is quarantined
            plan.unlisted.append(ptr)
            continue
        for entry in entries:
            plan.files.add(entry.oid)
            plan.names.setdefault(entry.oid, posixpath.join(ptr.path, entry.relpath) + where)
            plan.sizes[entry.oid] = entry.size
    return plan


# Objects per window of a transfer: the add/status walk's window (workspace._WINDOW). What a
# transfer holds per object of a window (names, sizes, existence, verification, upload
# tasks) is ~1.5 KB, so a window costs ~50 MB whatever the directory's size.
WINDOW = 32_768


@dataclass(frozen=True)
class Window:
    """Up to WINDOW objects of a transfer, each with the workspace path it belongs to and its
    size when known; `listing`: the directory listing whose entries these are (None for
    file pointers and listings themselves)."""

    names: dict[str, str]  # oid -> workspace path
    sizes: dict[str, int]
    listing: str | None = None


@dataclass
class Transfer:
    """What a push or fetch moves: the objects of file pointers, and directories, whose
    listings are read a window of entries at a time (`windows`)."""

    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # oid -> (name, size)
    # listing oid -> (directory path, what follows paths in messages)
    listings: dict[str, tuple[str, str]] = field(default_factory=dict)
    total: int = 0  # objects, counted from the pointers (for progress)

    def add(self, ptr: pointer_mod.Pointer, where: str = "") -> None:
        """Add a pointer's objects; `where` follows its path in messages (see plan_pointers)."""
        if ptr.is_dir:
            if ptr.oid not in self.listings:
                self.listings[ptr.oid] = (ptr.path, where)
                self.total += 1 + (ptr.nfiles or 0)
        elif ptr.oid not in self.files:
            self.files[ptr.oid] = (ptr.path + where, ptr.size)
            self.total += 1

    def windows(self, repo: Repo, listings: Iterable[str]) -> Iterator[Window]:
        """The file pointers' objects, then the entries of each of these `listings` (those
        in the cache and intact: a damaged one is quarantined and skipped), WINDOW at a time."""
        files = ((oid, name, size) for oid, (name, size) in self.files.items())
        yield from _windows(files, None)
        for listing in listings:
            top, where = self.listings[listing]
            try:
                entries = ((e.oid, posixpath.join(top, e.relpath) + where, e.size)
                           for e in repo.cache.iter_manifest(listing))
                yield from _windows(entries, listing)
            except (ObjectMissingError, HashMismatchError):
                continue

    def listing_window(self, listings: Iterable[str]) -> Window:
        """The listings themselves, as one window (their sizes are not in the pointers)."""
        return Window({oid: "".join(self.listings[oid]) for oid in listings}, {})


def _windows(objects: Iterable[tuple[str, str, int]], listing: str | None) -> Iterator[Window]:
    names: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for oid, name, size in objects:
        names.setdefault(oid, name)
        sizes[oid] = size
        if len(names) >= WINDOW:
            yield Window(names, sizes, listing)
            names, sizes = {}, {}
    if names:
        yield Window(names, sizes, listing)


def expand(repo: Repo, pointers: Iterable[pointer_mod.Pointer]) -> set[str]:
    """Every oid the pointers need: files, and for directories the manifest and its entries
    (entries only when the manifest is in the cache)."""
    plan = plan_pointers(repo, pointers)
    return plan.files | plan.manifests


def expand_named(repo: Repo, pointers: Iterable[pointer_mod.Pointer]) -> dict[str, str]:
    """`expand`, each oid with the workspace path it belongs to."""
    return plan_pointers(repo, pointers).names


def registry_pointers(repo: Repo) -> list[tuple[str, pointer_mod.Pointer]]:
    """(where, pointer) of every version the registry points at (`resolving.pinned`)."""
    return [(version_label(v), v.pointer) for v in resolving.pinned(repo)]


def version_label(v: ModelVersion) -> str:
    """What follows a version's path in messages: " (NAME:VERSION, its stages and semvers)"."""
    held = ", ".join(v.stages + v.semvers)
    return f" ({v.name}:{v.version}{', ' + held if held else ''})"


def within_targets(repo: Repo, targets: Sequence[str] | None,
                   cwd: Path | None) -> Callable[[str], bool]:
    """Whether a data path is one of `targets` or inside one (every path without targets)."""
    if targets is None:
        return lambda path: True
    rels = [pointer_mod.data_path_of(rel) if pointer_mod.is_pointer_path(rel) else rel
            for rel in (repo.relpath(t, cwd) for t in targets)]
    return lambda path: any(is_within(path, rel) for rel in rels)
