"""Which oids a set of pointers needs (`Plan`): files, directory manifests and their entries,
each with the workspace path it belongs to; and which pointers a transfer covers."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence
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
