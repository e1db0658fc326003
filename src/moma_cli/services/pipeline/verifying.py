"""`moma repro --verify`: re-run a stage in a scratch copy of its locked dependencies and
compare its output hashes with `moma.lock`; an executed notebook (`.ipynb`) whose bytes
differ is compared without its run timings, ids and execution counts (core/notebooks.py)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli.core import hashing, manifest, notebooks
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.lineage import environment
from moma_cli.core.stages import PipelineError
from moma_cli.services import lineage as lineage_mod
from moma_cli.services import lockfile, workspace
from moma_cli.services.pipeline.loading import load_dag
from moma_cli.services.pipeline.running import run_command
from moma_cli.services.repo import Repo


@dataclass
class VerifiedOutput:
    path: str
    expected: str
    actual: str | None  # None: the re-run did not produce it
    match: bool
    rule: str = "hash"  # notebooks.RULE: two notebooks, equal once normalised


@dataclass
class VerifyResult:
    stage: str
    outputs: list[VerifiedOutput] = field(default_factory=list)
    env_changes: dict[str, list[Any]] = field(default_factory=dict)  # key -> [locked, now]

    @property
    def ok(self) -> bool:
        return all(o.match for o in self.outputs)


def verify(repo: Repo, name: str) -> VerifyResult:
    """Re-run a stage in a scratch copy of its locked dependencies and compare the output
    hashes with `moma.lock`. The workspace, the cache and the lock are not touched."""
    stage = load_dag(repo).stages.get(name)
    locked = lockfile.read(repo).get(name)
    if stage is None or locked is None:
        raise PipelineError(f"stage {name!r} has no entry in {lockfile.LOCK_FILE}",
                            hint="run it first with 'moma repro'")
    if locked.get("cmd") != stage.command:
        raise PipelineError(f"stage {name!r}: command differs from {lockfile.LOCK_FILE}",
                            hint="check out the commit whose lock you want to verify")
    params = lineage_mod.param_values(repo, stage.params)
    if params != (locked.get("params") or {}):
        raise PipelineError(f"stage {name!r}: params differ from {lockfile.LOCK_FILE}",
                            hint="check out the commit whose lock you want to verify")
    locked_env = locked.get("env") or {}
    result = VerifyResult(name, env_changes={
        key: [locked_env.get(key), value] for key, value in environment().items()
        if locked_env.get(key) != value})
    with tempfile.TemporaryDirectory(prefix="moma-verify-") as tmp:
        scratch = Path(tmp)
        for dep in locked.get("deps") or []:
            _materialize(repo, dep["path"], dep["oid"], scratch)
        for file in {spec.file for spec in stage.params}:
            (scratch / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(repo.abspath(file), scratch / file)
        run_command(stage, scratch, params)
        for out in locked.get("outs") or []:
            result.outputs.append(_compare(repo, out["path"], out["oid"], scratch))
    return result


def _compare(repo: Repo, rel: str, expected: str, scratch: Path) -> VerifiedOutput:
    path = scratch / rel
    actual = _hash_scratch(repo, path)
    if actual in (expected, None) or not rel.endswith(".ipynb") or not path.is_file() \
            or not repo.cache.exists(expected):
        return VerifiedOutput(rel, expected, actual, actual == expected)
    ours = notebooks.normalized(path.read_bytes())
    locked = notebooks.normalized(repo.cache.read_bytes(expected))
    if ours is None or locked is None:
        return VerifiedOutput(rel, expected, actual, False)
    return VerifiedOutput(rel, expected, actual, ours == locked, notebooks.RULE)


def _materialize(repo: Repo, rel: str, oid: str, scratch: Path) -> None:
    """Put the locked version of a dependency at the same path under `scratch`: the
    workspace copy when it still hashes to `oid`, else the cache's copy."""
    dest = scratch / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = repo.abspath(rel)
    if lineage_mod.dep_oid(repo, rel) == oid:
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copyfile(src, dest)
        return
    if not repo.cache.exists(oid):
        raise PipelineError(
            f"dependency {rel} differs from {lockfile.LOCK_FILE} and "
            f"{hashing.short_oid(oid)} is not in the cache",
            hint="check out the matching commit and run 'moma checkout'")
    pointer_file = repo.abspath(pointer_mod.pointer_path_of(rel))
    is_dir = pointer_file.exists() and repo.load_pointer(
        pointer_mod.pointer_path_of(rel)).is_dir
    if not is_dir:
        shutil.copyfile(repo.cache.checked_path(oid), dest)
        return
    for entry in repo.cache.iter_manifest(oid):
        (dest / entry.relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo.cache.checked_path(entry.oid), dest / entry.relpath)


def _hash_scratch(repo: Repo, path: Path) -> str | None:
    """Hash a scratch output without the stat cache (its paths are throwaway)."""
    if path.is_dir():
        files = workspace.walk_dir(str(path))
        entries = [manifest.Entry(f.relpath, repo.cache.hash_file(f.path), f.key.size)
                   for f in files]
        return hashing.hash_bytes(manifest.encode(entries, repo.cache.algo), repo.cache.algo)
    if path.is_file():
        return repo.cache.hash_file(path)
    return None
