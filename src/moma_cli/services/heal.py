"""`moma check --heal`: retrain models that fail a `retrain` condition or are stale, through
the pipeline stage that produces them; keep the new version only if it passes every
condition, otherwise put the previous outputs, pointers and lock back.

A kept version is registered as `moma models:add` does (its pointer's `model:` section
gets the new metrics, the parameters the stage ran with, and the encoding and algorithm of
the new bytes) and committed (only the files the stage wrote): a registry version is a
commit that changed the model's content, so that is what makes it the next version.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from moma_cli.core import checks as checks_mod
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.checks import ModelPolicy
from moma_cli.core.hashing import short_oid
from moma_cli.core.lineage import Lineage
from moma_cli.core.stages import Dag
from moma_cli.errors import MomaError
from moma_cli.services import checks, data_checkout, lockfile
from moma_cli.services.pipeline import loading, reproducing
from moma_cli.services.registry import registering
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.repo import Repo


@dataclass
class HealResult:
    model: str
    stage: str | None
    healed: bool
    message: str
    oid: str | None = None  # the new version's object, when kept
    version: int | None = None  # its registry version number, when kept
    commit: str | None = None
    conditions: list[checks.ConditionResult] = field(default_factory=list)


@dataclass
class HealReport:
    report: checks.CheckReport  # after healing
    heals: list[HealResult] = field(default_factory=list)


def check_and_heal(repo: Repo, refs: Sequence[str] | None = None) -> HealReport:
    before = checks.check(repo, refs)
    heals = [_heal(repo, repo.config.models[m.name], m)
             for m in before.models if m.needs_retrain]
    if not any(h.healed for h in heals):
        return HealReport(before, heals)
    kept = {h.model: f"{h.model}:{h.version}" for h in heals if h.healed}
    after = checks.check(repo, [kept.get(m.name, m.ref) for m in before.models],
                         send_alerts=False)
    for old, new in zip(before.models, after.models, strict=True):
        new.alerts = old.alerts
    return HealReport(after, heals)


def _heal(repo: Repo, policy: ModelPolicy, model: checks.ModelReport) -> HealResult:
    name, stage = policy.name, policy.retrain_stage
    if stage is None:
        return HealResult(name, None, False, "no retrain.stage in .moma.yaml to retrain it with")
    if model.path is None:
        return HealResult(name, stage, False, f"nothing to retrain: {model.error}")
    dag = loading.load_dag(repo)
    if stage not in dag.stages:
        return HealResult(name, stage, False, f"retrain.stage {stage!r} is not a pipeline stage")
    if model.path not in dag.stages[stage].outs:
        return HealResult(name, stage, False, f"stage {stage!r} does not produce {model.path}")
    after = _downstream(dag, stage)  # e.g. the evaluation stage that writes the metrics
    order = dag.closure(after)
    outs = [out for s in order for out in dag.stages[s].outs]
    touched = [lockfile.LOCK_FILE, *(pointer_mod.pointer_path_of(o) for o in outs),
               *(m for s in order for m in dag.stages[s].metrics)]
    dirty = repo.git.changes_among(touched)
    if dirty:
        raise MomaError(f"--heal would overwrite uncommitted changes: {dirty[0]}",
                        hint="commit or stash them, then run 'moma check --heal' again")
    committed = repo.git.tracked(touched)  # clean, so the index holds what HEAD holds
    model_pointer = pointer_mod.pointer_path_of(model.path)
    before = repo.load_pointer(model_pointer)  # what HEAD has, as the tree is clean
    previous, old_reference = before.oid, before.model.reference if before.model else None
    try:
        reproducing.repro(repo, [stage], force=True).check()
        if after != [stage]:
            reproducing.repro(repo, after).check()
    except MomaError as exc:
        _restore(repo, touched, committed, outs)
        return HealResult(name, stage, False, f"retraining failed: {exc.message}; "
                                              "previous version kept")
    if repo.load_pointer(model_pointer).oid == previous:
        # a deterministic stage on unchanged inputs: the same version, however often it runs
        _restore(repo, touched, committed, outs)
        return HealResult(name, stage, False, f"retraining gave the same bytes "
                                              f"({short_oid(previous)}): not a new version; "
                                              "previous version kept")
    lock = lockfile.read(repo)
    metrics: dict[str, Any] = {}
    for s in order:
        for values in (lock.get(s) or {}).get("metrics", {}).values():
            metrics.update(values)
    results = [checks.condition_result(checks_mod.evaluate(c, metrics)) for c in policy.checks]
    if not all(r.passed for r in results):
        _restore(repo, touched, committed, outs)
        failed = ", ".join(r.condition for r in results if not r.passed)
        return HealResult(name, stage, False, f"retrained model still fails {failed}; "
                                              "previous version kept", conditions=results)
    version = _register(repo, name, model.path, metrics, old_reference)
    present = [p for p in touched if os.path.exists(repo.abspath(p))]
    repo.git.add(present)
    commit = repo.git.commit(f"Retrain {name} with stage {stage} (moma check --heal)", present)
    return HealResult(name, stage, True, f"retrained; new version v{version.number} "
                                         f"({version.model_id}) passes",
                      version.oid, version.number, commit, results)


def _register(repo: Repo, name: str, path: str, metrics: dict[str, Any],
              old_reference: Any) -> ModelVersion:
    """The retrained file as the model's next version, through the registry: the params are
    those the stage ran with (its lineage), else the ones recorded before; the reference
    profile that of its training data, so `moma monitor` can watch the new version too."""
    ptr = repo.load_pointer(pointer_mod.pointer_path_of(path))
    ran_with = ptr.lineage.params if ptr.lineage is not None else None
    params = ran_with or (ptr.model.params if ptr.model is not None else None) or {}
    reference = _reference(repo, old_reference, ptr.lineage)
    return registering.add(repo, name, path, metrics=metrics, params=params, stage=False,
                           extra_model={"reference": reference} if reference else None)


def _reference(repo: Repo, old: Any, lineage: Lineage | None) -> dict[str, Any] | None:
    """The profile of the data the stage trained on: the file the previous version's
    reference came from (with its --target), else the one CSV or JSON-lines input in the
    stage's lineage; None when neither is known (the version is then not monitorable, as
    one added without --reference)."""
    source = old.get("source") if isinstance(old, dict) else None
    target = old.get("target") if isinstance(old, dict) else None
    if not isinstance(source, str):
        source, target = registering.training_data(lineage), None
        if source is None:
            return None
    try:
        return registering.reference_section(repo, repo.relpath(source, repo.root),
                                             target if isinstance(target, str) else None)
    except MomaError:
        return None  # the data moved or lost its label column: kept, without a profile


def _downstream(dag: Dag, stage: str) -> list[str]:
    """`stage` and every stage that depends on it, in pipeline order."""
    found = {stage}
    for name in dag.order:
        if any(up in found for up in dag.upstream(name)):
            found.add(name)
    return [n for n in dag.order if n in found]


def _restore(repo: Repo, touched: list[str], committed: list[str], outs: list[str]) -> None:
    """Back to the last commit: pointers, lock and metrics files, then the outputs' data."""
    repo.git.checkout_paths("HEAD", committed)
    created = sorted(set(touched) - set(committed))  # files the failed run created
    repo.git.untrack(created)
    for path in created:
        if os.path.lexists(repo.abspath(path)):
            os.unlink(repo.abspath(path))
    restorable = [o for o in outs if pointer_mod.pointer_path_of(o) in committed]
    if restorable:
        data_checkout.checkout(repo, restorable, force=True)
