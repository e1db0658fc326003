"""Why a stage must run, compared with its `moma.lock` entry by hash and value; which of an
unchanged stage's outputs are missing; and restoring those from the cache."""

from __future__ import annotations

from typing import Any

from moma_cli.core.paths import is_within
from moma_cli.core.stages import PipelineError, Stage
from moma_cli.errors import CheckoutConflictError, PathError
from moma_cli.services import data_checkout
from moma_cli.services import lineage as lineage_mod
from moma_cli.services.repo import Repo


def reasons(repo: Repo, stage: Stage, locked: dict[str, Any] | None,
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


def stale_outputs(repo: Repo, stage: Stage, locked: dict[str, Any]) -> tuple[list[str], list[str]]:
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


def restore(repo: Repo, paths: list[str]) -> None:
    result = data_checkout.checkout(repo, paths)
    if result.conflicts:
        raise CheckoutConflictError(
            f"output {result.conflicts[0]} was modified and is not in the cache",
            hint="save it with 'moma add', or re-run the stage with 'moma repro --force STAGE'")
    if not result.ok:
        problem = (result.missing + result.corrupt + result.invalid)[0]
        raise PipelineError(f"could not restore {problem} from the cache",
                            hint="run 'moma pull', or 'moma repro --force STAGE'")
