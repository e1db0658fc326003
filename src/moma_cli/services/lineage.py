"""Recording lineage: the inputs, parameters, code commit and environment of a result.

Used by pipeline stages and by `moma add PATH --from DEP -p params.yaml` for results made
outside a pipeline (notebooks). The section written into a pointer is
a `core.lineage.Lineage`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from moma_cli import yamlio
from moma_cli.core import params as params_mod
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.lineage import Lineage, environment
from moma_cli.errors import ConfigError, MomaError, PathError
from moma_cli.services import data
from moma_cli.services.progress import SILENT, Progress
from moma_cli.services.repo import Repo


def dep_oid(repo: Repo, rel: str) -> str | None:
    """The current oid of a dependency in the workspace (None if it is absent)."""
    if not os.path.lexists(repo.abspath(rel)):
        return None
    return data.track(repo, rel, store=False).oid


def param_values(repo: Repo, specs: Iterable[params_mod.ParamSpec]) -> dict[str, dict[str, Any]]:
    """file -> {dotted key: value} for the parameters the specs name, read from the workspace."""
    values: dict[str, dict[str, Any]] = {}
    docs: dict[str, Any] = {}
    for spec in specs:
        if spec.file not in docs:
            path = repo.abspath(spec.file)
            if not path.is_file():
                raise ConfigError(f"params file {spec.file} not found",
                                  hint=f"create {spec.file} or fix the params option")
            try:
                docs[spec.file] = yamlio.load_file(path, spec.file)
            except MomaError as exc:
                raise ConfigError(exc.message, hint=f"fix {spec.file}") from None
        values.setdefault(spec.file, {}).update(params_mod.select(docs[spec.file], spec))
    return {file: dict(sorted(keys.items())) for file, keys in sorted(values.items())}


def flat_params(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-file values as one mapping; a key in several files is prefixed with its file."""
    counts: dict[str, int] = {}
    for keys in values.values():
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    return {(key if counts[key] == 1 else f"{file}:{key}"): value
            for file, keys in values.items() for key, value in keys.items()}


def section(repo: Repo, deps: list[dict[str, str]], params: dict[str, dict[str, Any]]
            ) -> Lineage:
    return Lineage(tuple(deps), repo.git.head(), flat_params(params), dict(environment()))


def capture(repo: Repo, froms: Sequence[str], params: Sequence[str],
            cwd: Path | None = None) -> Lineage:
    """The lineage section for `moma add --from DEP -p params.yaml`.

    A `--from` naming tracked data (its pointer or its path) records the pointer's oid;
    any other file (code) is hashed as it is in the workspace.
    """
    deps = []
    for user_path in froms:
        rel = repo.relpath(user_path, cwd)
        data_rel = pointer_mod.data_path_of(rel) if pointer_mod.is_pointer_path(rel) else rel
        if os.path.exists(repo.abspath(pointer_mod.pointer_path_of(data_rel))):
            ptr = repo.load_pointer(pointer_mod.pointer_path_of(data_rel))
            deps.append({"path": ptr.path, "oid": ptr.oid})
            continue
        oid = dep_oid(repo, rel)
        if oid is None:
            raise PathError(f"--from {user_path}: no such file or directory")
        deps.append({"path": rel, "oid": oid})
    specs = [params_mod.parse_spec(p) for p in params]
    return section(repo, deps, param_values(repo, specs))


def add_traced(repo: Repo, targets: Sequence[str], froms: Sequence[str] = (),
               params: Sequence[str] = (), *, stage: bool = True, jobs: int | None = None,
               progress: Progress = SILENT) -> data.AddResult:
    """`moma add`: track `targets`, with the lineage `--from` and `-p` name when given."""
    traced = capture(repo, froms, params) if froms or params else None
    return data.add(repo, targets, stage=stage, jobs=jobs, lineage=traced, progress=progress)
