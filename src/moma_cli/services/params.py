"""`moma params diff`: parameter values between two git revisions or the workspace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moma_cli import yamlio
from moma_cli.core.params import DEFAULT_PARAMS_FILE, flatten
from moma_cli.services.pipeline.loading import load_stages
from moma_cli.services.repo import Repo


@dataclass
class ValueChange:
    file: str
    key: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
        return self.old != self.new


def read_at(repo: Repo, rev: str | None, rel: str) -> Any:
    """A YAML/JSON file parsed from the workspace (rev None) or a git revision; None if absent."""
    if rev is None:
        path = repo.abspath(rel)
        return yamlio.load_file(path, rel) if path.is_file() else None
    raw = repo.git.show(repo.git.rev_parse(rev), rel)
    return yamlio.load_bytes(raw, f"{rev}:{rel}") if raw is not None else None


def flat_at(repo: Repo, rev: str | None, rel: str) -> dict[str, Any]:
    """The keys of a params file at `rev`, nested ones dotted; {} if it is absent."""
    return flatten(read_at(repo, rev, rel) or {})


def compare(repo: Repo, files: list[str], a: str | None, b: str | None,
            read: Callable[[Repo, str | None, str], dict[str, Any]] = flat_at
            ) -> list[ValueChange]:
    """Every key of `files` at `a` and at `b` (as `read` gives them), side by side."""
    rows = []
    for file in files:
        old, new = read(repo, a, file), read(repo, b, file)
        rows += [ValueChange(file, key, old.get(key), new.get(key))
                 for key in sorted(set(old) | set(new))]
    return rows


def param_files(repo: Repo, revs: list[str | None]) -> list[str]:
    files = {DEFAULT_PARAMS_FILE}
    for rev in revs:
        files.update(spec.file for stage in load_stages(repo, rev).values()
                     for spec in stage.params)
    return sorted(files)


def diff(repo: Repo, a: str | None = None, b: str | None = None, *,
         all_keys: bool = False) -> list[ValueChange]:
    """Params that differ between `a` (default HEAD) and `b` (default the workspace)."""
    a = a or "HEAD"
    rows = compare(repo, param_files(repo, [a, b]), a, b)
    return rows if all_keys else [r for r in rows if r.changed]
