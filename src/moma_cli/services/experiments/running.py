"""`moma exp run`: for each combination of the `-S` overrides, a detached work tree of HEAD
under `.moma/exps/tmp/`, sharing this repository's cache; the params set there, `moma repro`
run there, and what it staged committed onto a hidden ref. The user's work tree, index and
HEAD are never touched, and the temporary work tree is removed whatever happens.

A failed run records nothing: its error (and the failing command's exit status) is
reported and the next combination runs.

A run needs no repository lock of its own, which is what lets `moma exp queue start` run
several at once: its work tree, index, state and lock are its own; cache objects are
written to unique temps and renamed into place (storage/cache.py), so two runs writing the
same output agree; git writes objects and the new ref atomically, and the ref is created
only if absent.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli import config as config_mod
from moma_cli import yamlio
from moma_cli.atomic import atomic_write_bytes
from moma_cli.core import experiments
from moma_cli.core.experiments import ExperimentError, Record
from moma_cli.errors import MomaError
from moma_cli.services import data_checkout
from moma_cli.services import metrics as metrics_mod
from moma_cli.services.pipeline import reproducing
from moma_cli.services.repo import Repo

TMP_DIR = "exps/tmp"  # under .moma/


@dataclass
class ExpRun:
    name: str
    ok: bool
    ref: str | None = None
    commit: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    error: str | None = None
    exit: int | None = None  # 0, or the failing command's status (None: it did not run)


@dataclass
class RunResult:
    base: str
    runs: list[ExpRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)


def run(repo: Repo, sets: list[str], name: str | None = None, *,
        on_start: Callable[[str, dict[str, Any]], None] | None = None,
        on_done: Callable[[ExpRun], None] | None = None) -> RunResult:
    """Run the pipeline once per combination of `sets` (`[FILE:]KEY=V1,V2`), one after
    another, each recorded as an experiment on HEAD; the callbacks hear of each run."""
    base = repo.git.head()
    if base is None:
        raise ExperimentError("no commit to run experiments on",
                              hint="commit the pipeline first ('git commit')")
    result = RunResult(base)
    for exp_name, params in plan(repo, base, sets, name):
        if on_start is not None:
            on_start(exp_name, params)
        result.runs.append(run_one(repo, base, exp_name, params))
        if on_done is not None:
            on_done(result.runs[-1])
    return result


def plan(repo: Repo, base: str, sets: list[str], name: str | None,
         queued: Collection[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """(name, params as FILE:KEY -> value) for each point of the grid `sets` spans, named
    after `name` or generated, none the name of an experiment on `base` or in `queued`."""
    combos = experiments.grid([experiments.parse_override(s) for s in sets])
    names = _names(repo, base, name, len(combos), queued)
    return [(exp_name, {f"{file}:{key}": value for (file, key), value in combo.items()})
            for exp_name, combo in zip(names, combos, strict=True)]


def _names(repo: Repo, base: str, name: str | None, count: int,
           queued: Collection[str]) -> list[str]:
    """The given name (`NAME-1`, `NAME-2`... for a sweep) or generated ones, none taken."""
    if name is None:
        names = [experiments.generate_name() for _ in range(count)]
        # 3 random bytes: a long sweep can draw one twice
        while len(set(names)) < count or any(n in queued for n in names):
            names = [experiments.generate_name() for _ in range(count)]
    else:
        experiments.check_exp_name(name)
        names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
    taken = {rc.ref for rc in repo.git.ref_commits(experiments.REF_PREFIX + base + "/")}
    for exp_name in names:
        experiments.check_exp_name(exp_name)
        if experiments.ref_of(base, exp_name) in taken:
            raise ExperimentError(f"experiment {exp_name!r} exists already on {base[:10]}",
                                  hint=f"pick another name, or 'moma exp remove {exp_name}'")
        if exp_name in queued:
            raise ExperimentError(f"experiment {exp_name!r} is queued already",
                                  hint="pick another name, or 'moma exp queue remove "
                                       f"{exp_name}'")
    return names


def run_one(repo: Repo, base: str, name: str, params: dict[str, Any]) -> ExpRun:
    """Run the pipeline of `base` with `params` (FILE:KEY -> value) set; record it as `name`."""
    tmp = repo.moma_dir / TMP_DIR / secrets.token_hex(4)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    repo.git.worktree_add(tmp, base)
    try:
        work = _open_tree(repo, tmp)
        _set_params(work, params)
        failed = reproducing.repro(work).failed  # a failed stage: nothing is recorded
        if failed:
            return ExpRun(name, False, params=params, duration=time.monotonic() - started,
                          error=failed[0].message, exit=failed[0].returncode)
        metrics = {f"{m.file}:{m.key}": m.value for m in metrics_mod.show(work)}
        duration = time.monotonic() - started
        record = Record(params, metrics, duration, 0)
        commit = work.git.commit_index(experiments.message(name, record), base)
    except MomaError as exc:
        return ExpRun(name, False, params=params, duration=time.monotonic() - started,
                      error=exc.message)
    finally:
        repo.git.worktree_remove(tmp)
    ref = experiments.ref_of(base, name)
    if not repo.git.create_ref(ref, commit):
        raise ExperimentError(f"experiment {name!r} was recorded by another run meanwhile",
                              hint="run it again under another name (-n)")
    return ExpRun(name, True, ref, commit, params, metrics, duration, exit=0)


def _open_tree(repo: Repo, tmp: Path) -> Repo:
    """The temporary work tree as a repository whose cache is this one's (through its own
    git-ignored `.moma.local.yaml`, which keeps this machine's remotes too), with the
    tracked data checked out from that cache for the stages to read."""
    local = config_mod.read_layer(repo.root, local=True)
    cache = dict(local.get("cache") or {}) | {"dir": str(repo.config.cache_dir.resolve())}
    config_mod.write_layer(tmp, local | {"cache": cache}, local=True)
    work = Repo(tmp, config_mod.load(tmp))
    data_checkout.checkout(work)  # what is not cached surfaces as a missing dependency
    return work


def _set_params(work: Repo, params: dict[str, Any]) -> None:
    """Write the overrides into the params files of the temporary tree and stage them."""
    by_file: dict[str, list[tuple[str, Any]]] = {}
    for target, value in params.items():
        file, _, key = target.rpartition(":")  # keys have no colon (parse_override)
        by_file.setdefault(file, []).append((key, value))
    for file, values in by_file.items():
        path = work.abspath(file)
        work.check_no_escape(file)
        doc = yamlio.load_file(path, file) if path.is_file() else None
        for key, value in values:
            doc = experiments.set_key(doc, key, value, file)
        text = (json.dumps(doc, indent=2) + "\n" if file.endswith(".json")
                else yamlio.dumps(doc))
        atomic_write_bytes(path, text.encode())
    work.git.add(sorted(by_file))
