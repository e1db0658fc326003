"""`moma metrics show / diff`: the numbers in the stages' metrics files, at any revision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moma_cli.core.params import numeric_leaves
from moma_cli.services.params import ValueChange, compare, read_at
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


def show(repo: Repo, rev: str | None = None) -> list[Metric]:
    """Metrics of the workspace, or of git revision `rev`."""
    rows = []
    for file in metric_files(repo, [rev]):
        values = numeric_leaves(read_at(repo, rev, file) or {})
        rows += [Metric(file, key, values[key]) for key in sorted(values)]
    return rows


def diff(repo: Repo, a: str | None = None, b: str | None = None, *,
         all_keys: bool = False) -> list[ValueChange]:
    """Metrics that differ between `a` (default HEAD) and `b` (default the workspace)."""
    a = a or "HEAD"
    rows = compare(repo, metric_files(repo, [a, b]), a, b, leaves=numeric_leaves)
    return rows if all_keys else [r for r in rows if r.changed]


def delta(change: ValueChange) -> float | None:
    if isinstance(change.old, (int, float)) and isinstance(change.new, (int, float)):
        return change.new - change.old
    return None
