"""`moma lineage`: from a tracked path or a model reference back to every upstream input,
with the stages, params, code commit and environment recorded for it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from moma_cli.core import pointer as pointer_mod
from moma_cli.core import refs
from moma_cli.core.paths import is_within
from moma_cli.errors import PathError
from moma_cli.services import lineage as lineage_mod
from moma_cli.services import lockfile
from moma_cli.services.registry import resolving
from moma_cli.services.registry.index import full_history
from moma_cli.services.repo import Repo


@dataclass
class DataNode:
    path: str
    oid: str
    kind: str  # data (a moma pointer) | file (anything else, e.g. code in git)
    commit: str | None  # data: the commit that introduced this oid; file: last commit
    stage: str | None  # the stage that produced it, if any


@dataclass
class StageNode:
    name: str
    cmd: str | None  # None: recorded by 'moma add --from', not by a stage
    deps: list[dict[str, str]]
    params: dict[str, Any]
    code: str | None
    env: dict[str, Any]


@dataclass
class LineageResult:
    path: str
    oid: str
    commit: str | None
    model: str | None
    upstream: list[DataNode] = field(default_factory=list)
    stages: list[StageNode] = field(default_factory=list)


def lineage(repo: Repo, target: str) -> LineageResult:
    """From a tracked path (or a model reference, once the registry is installed) back to
    every upstream input, with the stages, params, code commit and environment."""
    full_history(repo, "finding the commits of a lineage")
    ptr, rev = _resolve(repo, target)
    lock = lockfile.read(repo, rev)
    # a model version knows its commit; searching from HEAD would find the commit that
    # replaced an older version's bytes, not the one that introduced them
    commit = rev if rev is not None else _introduced(repo, ptr.path, ptr.oid, None)
    result = LineageResult(ptr.path, ptr.oid, commit,
                           ptr.model.name if ptr.model else None)
    seen: set[str] = set()

    def visit_stage(name: str, entry: dict[str, Any]) -> None:
        if name in seen:
            return
        seen.add(name)
        result.stages.append(StageNode(name, entry.get("cmd"), list(entry.get("deps") or []),
                                       lineage_mod.flat_params(entry.get("params") or {}),
                                       entry.get("code"), dict(entry.get("env") or {})))
        for dep in entry.get("deps") or []:
            visit_data(dep["path"], dep["oid"])

    def visit_data(path: str, oid: str) -> None:
        producer = _producer(lock, path)
        kind = "data" if _pointer_exists(repo, path, rev) else "file"
        commit = (_introduced(repo, path, oid, rev) if kind == "data"
                  else repo.git.last_commit(path, rev))
        result.upstream.append(DataNode(path, oid, kind, commit, producer))
        if producer is not None:
            visit_stage(producer, lock[producer])

    producer = _producer(lock, ptr.path)
    recorded = ptr.lineage
    if producer is not None:
        visit_stage(producer, lock[producer])
    elif recorded is not None:
        result.stages.append(StageNode("(moma add)", None, list(recorded.deps),
                                       dict(recorded.params), recorded.code, dict(recorded.env)))
        for dep in recorded.deps:
            visit_data(dep["path"], dep["oid"])
    return result


def _resolve(repo: Repo, target: str) -> tuple[pointer_mod.Pointer, str | None]:
    """A tracked path in the workspace, else a model reference through the registry."""
    try:
        pointers, _ = repo.pointers([target])
        if len(pointers) == 1:
            return pointers[0], None
    except PathError:
        pass
    try:
        refs.parse(target)
    except refs.RefError:
        raise PathError(f"{target}: not tracked by moma and not a model reference",
                        hint="name a tracked file (its pointer is PATH.moma) or a model "
                             "such as credit-risk:4") from None
    version = resolving.resolve(repo, target)
    return version.pointer, version.commit


def _producer(lock: dict[str, dict[str, Any]], path: str) -> str | None:
    for name in sorted(lock):
        if any(is_within(path, o.get("path", "")) for o in lock[name].get("outs") or []):
            return name
    return None


def _pointer_exists(repo: Repo, path: str, rev: str | None) -> bool:
    pointer_file = pointer_mod.pointer_path_of(path)
    if rev is None:
        return os.path.exists(repo.abspath(pointer_file))
    return repo.git.show(rev, pointer_file) is not None


def _introduced(repo: Repo, path: str, oid: str, rev: str | None) -> str | None:
    """The commit of `rev` (default HEAD) that last wrote `oid` into `path`'s pointer.

    The pickaxe lists the commits that added or removed the oid, newest first; when the
    pointer at `rev` no longer holds it (the data moved on before `rev`), the newest of
    them removed it and the one before is the commit that wrote it."""
    pointer_file = pointer_mod.pointer_path_of(path)
    found = repo.git.path_commits(pointer_file, rev, pickaxe=oid, limit=2)
    raw = repo.git.show(rev or "HEAD", pointer_file)
    newest = 0 if raw is not None and oid.encode() in raw else 1
    return found[newest] if len(found) > newest else None
