"""`moma import-dvc`: the plan carried out. Remotes and stages go into `.moma.yaml` (its
other content kept), each out's verified bytes become a pointer, stages DVC ran and whose
inputs are unchanged are recorded in moma.lock, fully converted `.dvc` files are removed;
everything is staged in git. A second run finds nothing left to do."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from moma_cli import config as config_mod
from moma_cli.core import dvc
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.stages import Stage, parse_stage, to_mapping
from moma_cli.errors import MomaError
from moma_cli.services import data, lockfile
from moma_cli.services.dvc_import import objects, remotes
from moma_cli.services.dvc_import.locking import lock_entries
from moma_cli.services.dvc_import.planning import (
    DVC_CACHE,
    DVC_REMOTE,
    MISSING,
    OutPlan,
    Plan,
    Planner,
    Refusal,
)
from moma_cli.services.repo import Repo, add_gitignore_entries, remove_gitignore_entries
from moma_cli.services.sync.remote_session import open_remote


@dataclass
class ImportResult:
    outs: list[OutPlan] = field(default_factory=list)  # the plan
    stages: list[str] = field(default_factory=list)  # new in .moma.yaml
    remotes: dict[str, str] = field(default_factory=dict)  # new in .moma.yaml: name -> url
    default_remote: str | None = None
    secrets_left_out: list[str] = field(default_factory=list)  # "storage.secret_access_key"
    options_left_out: list[str] = field(default_factory=list)  # options moma does not have
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # bytes nowhere
    refused: list[Refusal] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)  # stages recorded as run from dvc.lock
    removed: list[str] = field(default_factory=list)  # .dvc files
    copied: int = 0  # objects copied from the DVC remote
    copied_to: str | None = None
    staged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.refused


def import_dvc(repo: Repo, *, dry_run: bool = False, copy_remote: bool = False,
               remote: str | None = None) -> ImportResult:
    planner = Planner(repo, copy_remote)
    plan = planner.plan()
    doc = config_mod.read_layer(repo.root)
    before = dict(doc)
    result = ImportResult(outs=plan.rows(), dry_run=dry_run, refused=list(plan.refused),
                          secrets_left_out=plan.remotes.secrets,
                          options_left_out=plan.remotes.unsupported,
                          notes=list(plan.pipeline.notes))
    result.refused += [Refusal(f"remote {name}", why) for name, why
                       in plan.remotes.refused.items()]
    added = remotes.apply(doc, plan.remotes, result.notes)
    result.remotes = {name: plan.remotes.remotes[name]["url"] for name in added}
    result.default_remote = (doc.get("core") or {}).get("remote") if added else None
    stages = _merge_stages(doc, plan.pipeline.stages, result)
    if dry_run:
        return result
    if doc != before:
        config_mod.write_layer(repo.root, doc)
        result.staged.append(config_mod.CONFIG_FILE)
        repo.config = config_mod.load(repo.root)
    converted = _convert_outs(repo, planner, plan, result, remote)
    result.staged += _track_metrics(repo, [stages[name] for name in result.stages])
    entries = lock_entries(repo, stages, plan.locked, plan.pipeline.bases, converted,
                           result.notes)
    if entries:
        lockfile.write(repo, {**lockfile.read(repo), **entries})
        result.locked = sorted(entries)
        result.staged.append(lockfile.LOCK_FILE)
    done = set(result.converted)
    result.removed = [rel for rel, paths in plan.dvc_files.items() if set(paths) <= done]
    repo.git.remove(result.removed)
    repo.git.stage(result.staged)  # a .gitignore left empty is deleted: stage that too
    result.staged = sorted({*result.staged, *result.removed})
    return result


def _merge_stages(doc: dict[str, Any], stages: dict[str, Stage],
                  result: ImportResult) -> dict[str, Stage]:
    """Add the DVC stages to the document's `stages:`; returns those now defined as DVC
    defines them. A stage moma already has under that name, defined differently, is kept."""
    section = dict(doc.get("stages") or {})
    same = {}
    for name, stage in stages.items():
        if name in section:
            try:
                existing = parse_stage(name, section[name])
            except MomaError:
                existing = None
            if existing != stage:
                result.notes.append(f"stage {name!r}: moma's own definition kept")
                continue
        else:
            section[name] = to_mapping(stage)
            result.stages.append(name)
        same[name] = stage
    if result.stages:
        doc["stages"] = section
    return same


def _convert_outs(repo: Repo, planner: Planner, plan: Plan, result: ImportResult,
                  remote: str | None) -> dict[str, tuple[dvc.Out, pointer_mod.Pointer]]:
    copier = None
    if any(plan.sources[o.path] == DVC_REMOTE for o in plan.outs):
        target = open_remote(repo, remote, None, create=True)
        copier = objects.RemoteCopy(repo, planner, target.store)
        result.copied_to = target.name
    converted = {}
    for out in plan.outs:
        source = plan.sources[out.path]
        if source == MISSING:
            result.skipped.append(out.path)
            continue
        try:
            if copier is not None:
                ptr = _write_pointer(repo, copier.pointer(out))
            else:
                if source == DVC_CACHE:
                    objects.materialise(repo, planner, out)
                else:
                    objects.verify_workspace(repo, out)
                saved = data.save(repo, [out.path], stage=False)
                ptr = repo.load_pointer(pointer_mod.pointer_path_of(saved.items[0].path))
        except MomaError as exc:
            result.refused.append(Refusal(out.path, exc.message, exc.hint))
            continue
        converted[out.path] = (out, ptr)
        result.converted.append(out.path)
        result.staged += [ptr.pointer_path, _gitignore_of(out.path)]
    if copier is not None:
        result.copied = copier.copied
    return converted


def _write_pointer(repo: Repo, ptr: pointer_mod.Pointer) -> pointer_mod.Pointer:
    """What `data.save` does for data that is only on the remote: checks, the .gitignore
    line, the pointer."""
    data.check_addable(repo, [ptr.path], must_exist=False)
    parent, name = posixpath.split(ptr.path)
    add_gitignore_entries(repo.root, parent, ["/" + name])
    repo.write_pointer(ptr)
    return ptr


def _track_metrics(repo: Repo, stages: list[Stage]) -> list[str]:
    """Metrics files go to git in moma: drop the .gitignore line DVC wrote for one it
    cached. Returns the files to stage."""
    staged = []
    for stage in stages:
        for rel in stage.metrics:
            if not repo.abspath(rel).is_file():
                continue
            parent, name = posixpath.split(rel)
            if remove_gitignore_entries(repo.root, parent, ["/" + name]):
                staged.append(_gitignore_of(rel))
            staged.append(rel)
    return staged


def _gitignore_of(rel: str) -> str:
    return posixpath.join(posixpath.dirname(rel), ".gitignore")
