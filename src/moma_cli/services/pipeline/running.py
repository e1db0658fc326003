"""`moma run`: record a stage and run it; and executing one stage (its command, its cached
outputs, its `moma.lock` entry), which `moma repro` uses too, in three steps so that the
command can run elsewhere (a thread, a Dask worker) while the bookkeeping stays here."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from moma_cli import config as config_mod
from moma_cli.core import metrics as metrics_mod
from moma_cli.core import params as params_mod
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.stages import PipelineError, Stage, parse_stages, to_mapping
from moma_cli.errors import PathError
from moma_cli.services import data, lockfile
from moma_cli.services import lineage as lineage_mod
from moma_cli.services.pipeline import notebook
from moma_cli.services.pipeline.loading import load_dag
from moma_cli.services.repo import Repo


class StageFailedError(PipelineError):
    pass


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
    if stage.notebook is not None:
        notebook.require()  # a missing extra is reported before the stage is recorded
    section[stage.name] = to_mapping(stage)
    config_mod.write_layer(repo.root, {**doc, "stages": section})
    outcome = execute(repo, stage, [])
    repo.git.add([config_mod.CONFIG_FILE])
    return outcome


def execute(repo: Repo, stage: Stage, reasons: list[str]) -> StageOutcome:
    """Run the command, cache its outputs, and record the run in `moma.lock`."""
    inputs = prepare(repo, stage)
    run_command(stage, repo.root, inputs.params)
    return record(repo, stage, inputs, reasons)


@dataclass(frozen=True)
class StageInputs:
    """What a stage reads, hashed before its command runs: the lock records these."""
    deps: list[dict[str, str]]
    params: dict[str, dict[str, Any]]


def prepare(repo: Repo, stage: Stage) -> StageInputs:
    """Hash the dependencies, read the params and clear the outputs: everything before the
    command."""
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
    return StageInputs(deps, params)


def record(repo: Repo, stage: Stage, inputs: StageInputs, reasons: list[str]) -> StageOutcome:
    """After the command succeeded: cache the outputs, write lineage into model pointers and
    the stage's entry into `moma.lock`, stage it all in git."""
    deps = inputs.deps
    absent = [p for p in stage.produces if not os.path.lexists(repo.abspath(p))]
    if absent:
        raise StageFailedError(f"stage {stage.name!r} did not produce {absent[0]}",
                               hint="fix the command or the stage's outs")
    saved = data.save(repo, list(stage.outs))
    metrics = {m: _read_metrics(repo.abspath(m), m) for m in stage.metrics}
    section = lineage_mod.section(repo, deps, inputs.params)
    models = [p for p in (repo.load_pointer(pointer_mod.pointer_path_of(i.path))
                          for i in saved.items) if p.model is not None]
    for ptr in models:
        repo.write_pointer(replace(ptr, lineage=section))
    measured = _record_measured(repo, deps, metrics)
    entries = lockfile.read(repo)
    entries[stage.name] = {
        "cmd": stage.command,
        "deps": deps,
        "params": inputs.params,
        "outs": [{"path": i.path, "oid": i.oid, "size": i.size} for i in saved.items],
        "metrics": metrics,
        "code": section.code,
        "env": section.env,
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
        source = model.metrics_file if model else None
        if model is None or ptr.oid != dep["oid"] or source is None or source not in metrics:
            continue
        repo.write_pointer(replace(ptr, model=model.bind_metrics(metrics[source], ptr.oid)))
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


def run_command(stage: Stage, cwd: Path, params: dict[str, dict[str, Any]]) -> None:
    """Run what the stage runs from `cwd`: its notebook with `params` injected, or its
    command. A failure raises, and nothing is recorded."""
    if stage.notebook is not None:
        notebook.execute(stage, cwd, params)
    else:
        shell(stage, cwd)


def shell(stage: Stage, cwd: Path) -> None:
    # shell=True on purpose: the command is what the user wrote in `moma run` or .moma.yaml,
    # and it runs only on an explicit `moma run` / `moma repro`.
    proc = subprocess.run(stage.cmd, shell=True, cwd=cwd)  # noqa: S602
    if proc.returncode != 0:
        raise command_failed(stage, proc.returncode)


def command_failed(stage: Stage, returncode: int) -> StageFailedError:
    return StageFailedError(
        f"stage {stage.name!r} failed: command exited with {returncode}: {stage.cmd}",
        hint="fix it and run 'moma repro' again; nothing was recorded for this stage")


def _read_metrics(path: Path, rel: str) -> dict[str, Any]:
    return params_mod.numeric_leaves(metrics_mod.read_file(path, rel))
