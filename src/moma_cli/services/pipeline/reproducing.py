"""`moma repro`: per stage in topological order, why it must run (hashes, params and
command against `moma.lock`), then run it, restore its missing outputs from the cache, or
skip it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from moma_cli.core.paths import is_within
from moma_cli.core.stages import Dag, PipelineError, Stage
from moma_cli.errors import CheckoutConflictError, PathError
from moma_cli.services import data_checkout, lockfile
from moma_cli.services import lineage as lineage_mod
from moma_cli.services.pipeline.loading import load_dag
from moma_cli.services.pipeline.running import StageOutcome, execute
from moma_cli.services.repo import Repo


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
            result.stages.append(execute(repo, stage, reasons))
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
    if locked.get("cmd") != stage.command:
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
    result = data_checkout.checkout(repo, paths)
    if result.conflicts:
        raise CheckoutConflictError(
            f"output {result.conflicts[0]} was modified and is not in the cache",
            hint="save it with 'moma add', or re-run the stage with 'moma repro --force STAGE'")
    if not result.ok:
        problem = (result.missing + result.corrupt + result.invalid)[0]
        raise PipelineError(f"could not restore {problem} from the cache",
                            hint="run 'moma pull', or 'moma repro --force STAGE'")
