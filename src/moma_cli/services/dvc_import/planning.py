"""What `moma import-dvc` would do: the DVC files read and checked, each out's bytes located
(workspace, DVC's cache, DVC's remote), the stages and remotes to write. Changes nothing."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property

from moma_cli import yamlio
from moma_cli.config import RemoteConfig
from moma_cli.core import dvc
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.dvc_config import DvcConfig, parse_config
from moma_cli.core.dvc_pipeline import Pipeline, parse_pipeline
from moma_cli.errors import ConfigError, HashMismatchError, MomaError, PathError
from moma_cli.services.dvc_import.remotes import RemotePlan, plan_remotes, source_config
from moma_cli.services.repo import Repo
from moma_cli.storage import fs
from moma_cli.storage.dvc_objects import DvcObjects

WORKSPACE, DVC_CACHE, DVC_REMOTE, MISSING = "workspace", "dvc-cache", "dvc-remote", "missing"
DVC_YAML, DVC_LOCK, DVC_CONFIG = "dvc.yaml", "dvc.lock", ".dvc/config"
CACHE_DIR = ".dvc/cache"


@dataclass
class OutPlan:
    path: str
    kind: str  # file | dir
    size: int | None
    source: str  # workspace | dvc-cache | dvc-remote | missing
    origin: str  # the .dvc file, or dvc.lock:STAGE


@dataclass
class Refusal:
    path: str
    message: str  # one line, naming the file
    hint: str | None = None


@dataclass
class Plan:
    outs: list[dvc.Out] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # out path -> source
    dvc_files: dict[str, list[str]] = field(default_factory=dict)  # .dvc file -> out paths
    pipeline: Pipeline = field(default_factory=Pipeline)
    locked: dict[str, dvc.LockedStage] = field(default_factory=dict)
    remotes: RemotePlan = field(default_factory=RemotePlan)
    refused: list[Refusal] = field(default_factory=list)

    def rows(self) -> list[OutPlan]:
        return [OutPlan(o.path, "dir" if o.is_dir else "file", o.size, self.sources[o.path],
                        o.origin) for o in self.outs]


class Planner:
    def __init__(self, repo: Repo, copy_remote: bool) -> None:
        self.repo, self.copy_remote = repo, copy_remote
        self.config = DvcConfig()
        self._sources: dict[str | None, DvcObjects] = {}

    def plan(self) -> Plan:
        plan = Plan()
        self.config = self._config()
        plan.remotes = plan_remotes(self.config)
        for rel in self.repo.git.matching("*" + dvc.DVC_SUFFIX):
            if os.path.basename(rel) == dvc.DVC_SUFFIX:
                continue
            try:
                outs = dvc.parse_dvc_file(self._read(rel), rel)
            except MomaError as exc:
                plan.refused.append(Refusal(rel, exc.message, exc.hint))
                continue
            plan.outs += outs
            plan.dvc_files[rel] = [o.path for o in outs]
        if os.path.lexists(self.repo.abspath(DVC_YAML)):
            plan.pipeline = parse_pipeline(yamlio.load_bytes(self._read(DVC_YAML), DVC_YAML))
            plan.refused += [Refusal(name, why) for name, why in plan.pipeline.refused.items()]
        if os.path.lexists(self.repo.abspath(DVC_LOCK)):
            doc = yamlio.load_bytes(self._read(DVC_LOCK), DVC_LOCK)
            plan.locked = dvc.parse_lock(doc, plan.pipeline.bases)
        plan.outs += self._stage_outs(plan)
        for out in plan.outs:
            plan.sources[out.path] = self.source(out)
        return plan

    def _stage_outs(self, plan: Plan) -> list[dvc.Out]:
        """The outputs dvc.lock records for the converted stages' `outs` (metrics stay in
        git), except those moma tracks already (a previous import, or a moma run since)."""
        found = []
        for name, locked in plan.locked.items():
            wanted = set(plan.pipeline.stages[name].outs)
            for out in locked.outs:
                pointer = self.repo.abspath(pointer_mod.pointer_path_of(out.path))
                if out.path in wanted and not pointer.exists():
                    found.append(out)
        return found

    def _read(self, rel: str) -> bytes:
        """A DVC file of the work tree: a regular file inside the repository, never bigger
        than yamlio reads."""
        self.repo.check_no_escape(rel)
        path = self.repo.abspath(rel)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise PathError(f"{rel}: is not a regular file; moma will not read it")
        with open(path, "rb") as fh:
            return fh.read(yamlio.MAX_YAML_BYTES + 1)

    def _config(self) -> DvcConfig:
        path = self.repo.abspath(DVC_CONFIG)
        if not os.path.lexists(path):
            return DvcConfig()
        try:
            text = self._read(DVC_CONFIG).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{DVC_CONFIG}: not UTF-8 text") from None
        return parse_config(text)

    # -- where the bytes are ------------------------------------------------------------
    def source(self, out: dvc.Out) -> str:
        if self.copy_remote:
            return DVC_REMOTE
        self.repo.check_no_escape(out.path)
        if os.path.lexists(self.repo.abspath(out.path)):
            return WORKSPACE
        cache = self.dvc_cache
        if cache.has(out.object_name) and (not out.is_dir or self._has_listed(cache, out)):
            return DVC_CACHE
        return MISSING

    def _has_listed(self, objects: DvcObjects, out: dvc.Out) -> bool:
        try:
            return all(objects.has(md5) for _, md5 in self.listing(objects, out))
        except MomaError:
            return False  # a bad listing: refused when the out is converted

    def listing(self, objects: DvcObjects, out: dvc.Out) -> list[tuple[str, str]]:
        """A directory out's .dir listing from `objects`, verified against its md5."""
        with objects.local(out.object_name) as path:
            data = path.read_bytes()
        if hashlib.md5(data).hexdigest() != out.md5:  # noqa: S324 - DVC's own digest
            raise HashMismatchError(f"{out.path}: DVC's listing {out.object_name} does not hash "
                                    f"to its name (corrupt)", hint="run 'dvc fetch' again")
        return dvc.parse_listing(data, f"{out.path} ({out.object_name})")

    @cached_property
    def dvc_cache(self) -> DvcObjects:
        root = os.path.abspath(self.repo.abspath(CACHE_DIR))
        return DvcObjects(fs.Location("dvc-cache", CACHE_DIR, "local", root),
                          self.repo.cache.tmp_dir)

    def dvc_remote(self, name: str | None) -> DvcObjects:
        """The DVC remote an out is pushed to (its own `remote:`, else the default)."""
        chosen = name or self.config.default_remote
        if chosen not in self._sources:
            if chosen is None or chosen not in self.config.remotes:
                raise ConfigError(f"{DVC_CONFIG}: no DVC remote {chosen or '(default)'} to "
                                  "copy from", hint="set one with 'dvc remote default NAME'")
            remote: RemoteConfig = source_config(self.config.remotes[chosen])
            location = fs.open_location(remote, self.repo.root)
            self._sources[chosen] = DvcObjects(location, self.repo.cache.tmp_dir)
        return self._sources[chosen]
