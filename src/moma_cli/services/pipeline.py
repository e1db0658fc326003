"""Reproducible pipelines: `moma run`, `repro` (with `--dry`, `--force`, `--verify`), `dag`,
and `lineage`.

Stages live in `.moma.yaml` (written by people); `moma.lock` (written by moma) records what
each stage last ran with: the oid of every dependency and output, parameter values, metric
values, the code commit and the environment. A stage re-runs when a hash, a parameter or its
command differs from the lock; never because of a modification time. Stage commands come
from a committed file, so they are only ever run by an explicit `moma run` / `moma repro`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli import config as config_mod
from moma_cli import yamlio
from moma_cli.core import hashing, manifest, modelmeta, refs
from moma_cli.core import params as params_mod
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.lineage import environment
from moma_cli.core.paths import is_within
from moma_cli.core.stages import Dag, PipelineError, Stage, build_dag, parse_stages, to_mapping
from moma_cli.errors import CheckoutConflictError, MomaError, PathError
from moma_cli.services import data, lockfile, workspace
from moma_cli.services import lineage as lineage_mod
from moma_cli.services.registry import resolving
from moma_cli.services.registry.index import full_history
from moma_cli.services.repo import Repo


class StageFailedError(PipelineError):
    pass


# -- stages ---------------------------------------------------------------------


def load_stages(repo: Repo, rev: str | None = None) -> dict[str, Stage]:
    """The stages of `.moma.yaml` in the workspace, or at git revision `rev`."""
    if rev is None:
        return parse_stages(config_mod.read_layer(repo.root).get("stages"))
    raw = repo.git.show(repo.git.rev_parse(rev), config_mod.CONFIG_FILE)
    doc = yamlio.load_bytes(raw, f"{rev}:{config_mod.CONFIG_FILE}") if raw else None
    return parse_stages((doc or {}).get("stages"), f"{rev}:{config_mod.CONFIG_FILE}")


def load_dag(repo: Repo, stages: dict[str, Stage] | None = None) -> Dag:
    def exists(rel: str) -> bool:
        return os.path.lexists(repo.abspath(rel)) or os.path.exists(
            repo.abspath(pointer_mod.pointer_path_of(rel)))

    return build_dag(load_stages(repo) if stages is None else stages, exists)


# -- moma run --------------------------------------------------------------------------------


@dataclass
class StageOutcome:
    name: str
    action: str  # ran | would-run | restored | would-restore | unchanged
    reasons: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    outs: dict[str, str] = field(default_factory=dict)  # path -> oid after the run
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


def run(repo: Repo, stage: Stage, *, force: bool = False) -> StageOutcome:
    """Record `stage` in `.moma.yaml` and run it now (`moma run -n NAME ... -- CMD`)."""
    doc = config_mod.read_layer(repo.root)
    section = dict(doc.get("stages") or {})
    stages = parse_stages(section)
    known = stages.get(stage.name)
    if known is not None and known != stage and not force:
        raise PipelineError(f"stage {stage.name!r} already exists with a different definition",
                            hint="pass --force to replace it, or edit .moma.yaml")
    stages[stage.name] = stage
    load_dag(repo, stages)  # every pipeline error before anything runs or is recorded
    data.check_addable(repo, list(stage.outs), must_exist=False)
    section[stage.name] = to_mapping(stage)
    config_mod.write_layer(repo.root, {**doc, "stages": section})
    outcome = _execute(repo, stage, [])
    repo.git.add([config_mod.CONFIG_FILE])
    return outcome


def _execute(repo: Repo, stage: Stage, reasons: list[str]) -> StageOutcome:
    """Run the command, cache its outputs, and record the run in `moma.lock`."""
    deps = []
    for dep in stage.deps:
        oid = lineage_mod.dep_oid(repo, dep)
        if oid is None:
            raise PathError(f"dependency {dep} of stage {stage.name!r} is missing",
                            hint="run 'moma checkout' (tracked data) or 'moma repro' (outputs)")
        deps.append({"path": dep, "oid": oid})
    params = lineage_mod.param_values(repo, stage.params)
    data.check_addable(repo, list(stage.outs), must_exist=False)
    _clear_outputs(repo, stage)
    _shell(stage, repo.root)
    absent = [p for p in stage.produces if not os.path.lexists(repo.abspath(p))]
    if absent:
        raise StageFailedError(f"stage {stage.name!r} did not produce {absent[0]}",
                               hint="fix the command or the stage's outs")
    saved = data.save(repo, list(stage.outs))
    metrics = {m: _read_metrics(repo.abspath(m), m) for m in stage.metrics}
    section = lineage_mod.section(repo, deps, params)
    models = [p for p in (repo.load_pointer(pointer_mod.pointer_path_of(i.path))
                          for i in saved.items) if p.model is not None]
    for ptr in models:
        repo.write_pointer(ptr.with_extra(lineage=section))
    measured = _record_measured(repo, deps, metrics)
    entries = lockfile.read(repo)
    entries[stage.name] = {
        "cmd": stage.cmd,
        "deps": deps,
        "params": params,
        "outs": [{"path": i.path, "oid": i.oid, "size": i.size} for i in saved.items],
        "metrics": metrics,
        "code": section["code"],
        "env": section["env"],
    }
    lockfile.write(repo, entries)
    repo.git.add([lockfile.LOCK_FILE, *stage.metrics, *(p.pointer_path for p in models), *measured])
    return StageOutcome(stage.name, "ran", reasons, outs={i.path: i.oid for i in saved.items},
                        metrics=metrics)


def _record_measured(repo: Repo, deps: list[dict[str, str]],
                     metrics: dict[str, dict[str, Any]]) -> list[str]:
    """Models this run measured: one registered with a metrics file this stage writes
    (`models:add --metrics-file`), whose bytes were a dependency of the run, records the
    file's numbers bound to those bytes. Returns the pointers written."""
    written = []
    for dep in deps:
        path = pointer_mod.pointer_path_of(dep["path"])
        if not (repo.root / path).is_file():
            continue  # a dependency git tracks, not moma
        ptr = repo.load_pointer(path)
        model = ptr.model
        source = model.get(modelmeta.METRICS_FILE) if model else None
        if model is None or ptr.oid != dep["oid"] or not isinstance(source, str) \
                or source not in metrics:
            continue
        repo.write_pointer(ptr.with_extra(
            model=modelmeta.bind_metrics(model, metrics[source], ptr.oid)))
        written.append(path)
    return written


def _clear_outputs(repo: Repo, stage: Stage) -> None:
    """Outputs are removed before the command runs, as DVC does: a command that writes into
    a hardlinked output would otherwise write into the read-only cache object, and a stale
    metrics file would hide a command that no longer writes it."""
    for out in stage.produces:
        path = repo.abspath(out)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


def _shell(stage: Stage, cwd: Path) -> None:
    # shell=True on purpose: the command is what the user wrote in `moma run` or .moma.yaml,
    # and it runs only on an explicit `moma run` / `moma repro`.
    proc = subprocess.run(stage.cmd, shell=True, cwd=cwd)  # noqa: S602
    if proc.returncode != 0:
        raise StageFailedError(
            f"stage {stage.name!r} failed: command exited with {proc.returncode}: {stage.cmd}",
            hint="fix it and run 'moma repro' again; nothing was recorded for this stage")


def _read_metrics(path: Path, rel: str) -> dict[str, Any]:
    try:
        return params_mod.numeric_leaves(yamlio.load_file(path, rel))
    except MomaError as exc:
        raise PipelineError(f"metrics file {exc.message}", hint="write JSON or YAML") from None


# -- moma repro ------------------------------------------------------------------------------


@dataclass
class ReproResult:
    stages: list[StageOutcome] = field(default_factory=list)

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.stages if s.action in ("ran", "would-run")]


def repro(repo: Repo, targets: list[str] | None = None, *, force: bool = False,
          dry: bool = False) -> ReproResult:
    dag = load_dag(repo)
    for name in targets or []:
        if name not in dag.stages:
            raise PipelineError(f"unknown stage {name!r}",
                                hint=f"stages: {', '.join(dag.order) or 'none'}")
    order = dag.closure(targets) if targets else dag.order
    _check_sources(repo, dag, order)
    result = ReproResult()
    pending: dict[str, str] = {}  # path -> stage that would rewrite it (dry run)
    restoring: list[str] = []  # outputs a dry run would restore to their locked version
    for name in order:
        stage = dag.stages[name]
        locked = lockfile.read(repo).get(name)
        upstream = sorted({owner for path, owner in pending.items()
                           for dep in stage.deps if is_within(dep, path) or is_within(path, dep)})
        if force:
            reasons = ["forced"]
        elif upstream:
            reasons = [f"upstream stage {u!r} would run" for u in upstream]
        else:
            reasons = _reasons(repo, stage, locked, restoring)
        stale: list[str] = []
        if not reasons and locked is not None:
            stale, reasons = _stale_outputs(repo, stage, locked)
        if reasons and dry:
            pending.update(dict.fromkeys(stage.produces, name))
            result.stages.append(StageOutcome(name, "would-run", reasons))
        elif reasons:
            result.stages.append(_execute(repo, stage, reasons))
        elif stale:
            if dry:
                restoring += stale
            else:
                _restore(repo, stale)
            result.stages.append(StageOutcome(name, "would-restore" if dry else "restored",
                                              restored=stale))
        else:
            result.stages.append(StageOutcome(name, "unchanged"))
    return result


def _check_sources(repo: Repo, dag: Dag, order: list[str]) -> None:
    """Inputs no stage produces must be in the workspace before the first stage runs (a
    pointer alone satisfies the DAG check, but a command cannot read a pointer)."""
    for name in order:
        for dep in dag.stages[name].deps:
            if dag.producer(dep) is None and not os.path.lexists(repo.abspath(dep)):
                raise PathError(f"dependency {dep} of stage {name!r} is not in the workspace",
                                hint="run 'moma checkout' (or 'moma pull') first")


def _reasons(repo: Repo, stage: Stage, locked: dict[str, Any] | None,
             restoring: list[str]) -> list[str]:
    """Why `stage` must run, compared with its lock entry by hash and value. Dependencies
    inside `restoring` are taken to be what a restore would bring back: their locked version."""
    if locked is None:
        return ["never run"]
    reasons = []
    if locked.get("cmd") != stage.cmd:
        reasons.append("command changed")
    recorded = {d.get("path"): d.get("oid") for d in locked.get("deps") or []}
    for dep in stage.deps:
        if dep in recorded and any(is_within(dep, out) for out in restoring):
            continue
        oid = lineage_mod.dep_oid(repo, dep)
        if oid is None:
            raise PathError(f"dependency {dep} of stage {stage.name!r} is missing",
                            hint="run 'moma checkout' to restore tracked data")
        if dep not in recorded:
            reasons.append(f"new dependency {dep}")
        elif recorded[dep] != oid:
            reasons.append(f"dependency {dep} changed")
    reasons += [f"dependency {d} removed" for d in recorded if d not in stage.deps]
    old_params = locked.get("params") or {}
    for file, values in lineage_mod.param_values(repo, stage.params).items():
        before = old_params.get(file) or {}
        for key in sorted(set(values) | set(before)):
            if values.get(key) != before.get(key):
                reasons.append(f"param {key} changed ({before.get(key)!r} -> {values.get(key)!r})")
    if sorted(o.get("path") for o in locked.get("outs") or []) != sorted(stage.outs):
        reasons.append("outputs changed")
    if sorted(locked.get("metrics") or {}) != sorted(stage.metrics):
        reasons.append("metrics files changed")
    return reasons


def _stale_outputs(repo: Repo, stage: Stage, locked: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Outputs missing or modified in the workspace, and reasons to re-run instead of
    restoring them (their recorded version is not in the cache, a metrics file is gone)."""
    stale, reasons = [], []
    for out in locked.get("outs") or []:
        if lineage_mod.dep_oid(repo, out["path"]) == out["oid"]:
            continue
        if repo.cache.exists(out["oid"]):
            stale.append(out["path"])
        else:
            reasons.append(f"output {out['path']} is missing and not in the cache")
    reasons += [f"metrics file {m} is missing" for m in stage.metrics
                if not repo.abspath(m).exists()]
    return stale, reasons


def _restore(repo: Repo, paths: list[str]) -> None:
    result = data.checkout(repo, paths)
    if result.conflicts:
        raise CheckoutConflictError(
            f"output {result.conflicts[0]} was modified and is not in the cache",
            hint="save it with 'moma add', or re-run the stage with 'moma repro --force STAGE'")
    if not result.ok:
        problem = (result.missing + result.corrupt + result.invalid)[0]
        raise PipelineError(f"could not restore {problem} from the cache",
                            hint="run 'moma pull', or 'moma repro --force STAGE'")


# -- moma repro --verify ---------------------------------------------------------------------


@dataclass
class VerifiedOutput:
    path: str
    expected: str
    actual: str | None  # None: the re-run did not produce it

    @property
    def match(self) -> bool:
        return self.expected == self.actual


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
    if locked.get("cmd") != stage.cmd:
        raise PipelineError(f"stage {name!r}: command differs from {lockfile.LOCK_FILE}",
                            hint="check out the commit whose lock you want to verify")
    if lineage_mod.param_values(repo, stage.params) != (locked.get("params") or {}):
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
        _shell(stage, scratch)
        for out in locked.get("outs") or []:
            actual = _hash_scratch(repo, scratch / out["path"])
            result.outputs.append(VerifiedOutput(out["path"], out["oid"], actual))
    return result


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


# -- moma dag --------------------------------------------------------------------------------


def dag(repo: Repo) -> Dag:
    return load_dag(repo)


# -- moma lineage ----------------------------------------------------------------------------


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
                           str(ptr.model.get("name")) if ptr.model else None)
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
    recorded = ptr.extra.get("lineage")
    if producer is not None:
        visit_stage(producer, lock[producer])
    elif isinstance(recorded, dict):
        result.stages.append(StageNode("(moma add)", None, list(recorded.get("deps") or []),
                                       dict(recorded.get("params") or {}), recorded.get("code"),
                                       dict(recorded.get("env") or {})))
        for dep in recorded.get("deps") or []:
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
