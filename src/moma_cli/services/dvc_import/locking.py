"""moma.lock entries from dvc.lock: a stage DVC ran is recorded as run when every
dependency, parameter, output and metrics file is still what dvc.lock says (md5 checked,
then moma's oids taken), so `moma repro` finds it up to date instead of running it again.
A stage that differs in anything gets no entry: `moma repro` runs it."""

from __future__ import annotations

import shlex
from typing import Any

from moma_cli.core import dvc
from moma_cli.core import metrics as metrics_mod
from moma_cli.core import params as params_mod
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.stages import Stage
from moma_cli.errors import MomaError
from moma_cli.services import lineage as lineage_mod
from moma_cli.services import lockfile
from moma_cli.services.dvc_import.objects import verify_workspace
from moma_cli.services.dvc_import.planning import DVC_LOCK
from moma_cli.services.repo import Repo


class _Stale(Exception):
    pass


def lock_entries(repo: Repo, stages: dict[str, Stage], locked: dict[str, dvc.LockedStage],
                 bases: dict[str, str], converted: dict[str, tuple[dvc.Out, pointer_mod.Pointer]],
                 notes: list[str]) -> dict[str, dict[str, Any]]:
    """stage -> its new moma.lock entry, for the stages moma.lock does not have yet."""
    have = lockfile.read(repo)
    entries = {}
    for name, stage in stages.items():
        if name in have or name not in locked:
            continue
        try:
            entries[name] = _entry(repo, stage, locked[name], bases.get(name, ""), converted)
        except (_Stale, MomaError) as exc:
            reason = exc.message if isinstance(exc, MomaError) else str(exc)
            notes.append(f"stage {name!r}: not recorded as run ({reason}); 'moma repro' "
                         "will run it")
    return entries


def _entry(repo: Repo, stage: Stage, locked: dvc.LockedStage, base: str,
           converted: dict[str, tuple[dvc.Out, pointer_mod.Pointer]]) -> dict[str, Any]:
    expected = f"cd {shlex.quote(base)} && {locked.cmd}" if base else locked.cmd
    if stage.cmd != expected:
        raise _Stale("its command differs from dvc.lock")
    by_path = {d.path: d for d in (*locked.deps, *locked.outs)}
    deps = []
    for dep in stage.deps:
        recorded = by_path.get(dep)
        if recorded is None:
            raise _Stale(f"dvc.lock has no hash for dependency {dep}")
        deps.append({"path": dep, "oid": _oid(repo, recorded, converted)})
    params = lineage_mod.param_values(repo, stage.params)
    for file, values in params.items():
        if params_mod.flatten(locked.params.get(file) or {}) != values:
            raise _Stale(f"parameters in {file} changed since dvc.lock")
    outs = []
    for out in stage.outs:
        recorded = by_path.get(out)
        if recorded is None or out not in converted or converted[out][0].md5 != recorded.md5:
            raise _Stale(f"output {out} is not the one dvc.lock records")
        ptr = converted[out][1]
        outs.append({"path": out, "oid": ptr.oid, "size": ptr.size})
    metrics = {}
    for rel in stage.metrics:
        recorded = by_path.get(rel)
        if recorded is None:
            raise _Stale(f"dvc.lock has no hash for metrics file {rel}")
        verify_workspace(repo, recorded)
        metrics[rel] = params_mod.numeric_leaves(metrics_mod.read_file(repo.abspath(rel), rel))
    return {"cmd": stage.cmd, "deps": deps, "params": params, "outs": outs,
            "metrics": metrics, "code": repo.git.last_commit(DVC_LOCK),
            "env": {}}


def _oid(repo: Repo, recorded: dvc.Out,
         converted: dict[str, tuple[dvc.Out, pointer_mod.Pointer]]) -> str:
    """moma's oid of a dependency whose bytes are those dvc.lock records."""
    if recorded.path in converted:
        out, ptr = converted[recorded.path]
        if out.md5 != recorded.md5:
            raise _Stale(f"dependency {recorded.path} changed since dvc.lock")
        return ptr.oid
    verify_workspace(repo, recorded)
    oid = lineage_mod.dep_oid(repo, recorded.path)
    if oid is None:
        raise _Stale(f"dependency {recorded.path} is missing")
    return oid

