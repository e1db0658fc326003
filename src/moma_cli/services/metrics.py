"""`moma metrics show / diff`: the numbers in the stages' metrics files, at any revision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moma_cli.core import metrics as metrics_mod
from moma_cli.core.params import numeric_leaves
from moma_cli.services.params import ValueChange, compare
from moma_cli.services.pipeline.loading import load_stages
from moma_cli.services.repo import Repo


@dataclass
class Metric:
    file: str
    key: str
    value: Any


def metric_files(repo: Repo, revs: list[str | None]) -> list[str]:
    return sorted({m for rev in revs for stage in load_stages(repo, rev).values()
                   for m in stage.metrics})


def numbers_at(repo: Repo, rev: str | None, rel: str) -> dict[str, Any]:
    """The numbers of the metrics file `rel` in the workspace (rev None) or at git revision
    `rev`; {} if it is absent."""
    if rev is None:
        path = repo.abspath(rel)
        return numeric_leaves(metrics_mod.read_file(path, rel)) if path.is_file() else {}
    raw = repo.git.show(repo.git.rev_parse(rev), rel)
    return numeric_leaves(metrics_mod.parse(raw, f"{rev}:{rel}")) if raw is not None else {}


def show(repo: Repo, rev: str | None = None) -> list[Metric]:
    """Metrics of the workspace, or of git revision `rev`."""
    rows = []
    for file in metric_files(repo, [rev]):
        values = numbers_at(repo, rev, file)
        rows += [Metric(file, key, values[key]) for key in sorted(values)]
    return rows


def diff(repo: Repo, a: str | None = None, b: str | None = None, *,
         all_keys: bool = False) -> list[ValueChange]:
    """Metrics that differ between `a` (default HEAD) and `b` (default the workspace)."""
    a = a or "HEAD"
    rows = compare(repo, metric_files(repo, [a, b]), a, b, read=numbers_at)
    return rows if all_keys else [r for r in rows if r.changed]


def delta(change: ValueChange) -> float | None:
    if isinstance(change.old, (int, float)) and isinstance(change.new, (int, float)):
        return change.new - change.old
    return None
