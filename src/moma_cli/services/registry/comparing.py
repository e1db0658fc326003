"""`models:diff`: two versions side by side (params, metrics, lineage, model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moma_cli.core import pointer as pointer_mod
from moma_cli.core import refs
from moma_cli.core.hashing import short_oid
from moma_cli.services.registry.model_version import ModelVersion
from moma_cli.services.registry.resolving import resolve
from moma_cli.services.repo import Repo

# -- diff ------------------------------------------------------------------------------------


@dataclass
class DiffRow:
    section: str  # params | metrics | lineage | model
    key: str
    a: Any
    b: Any
    change: str  # changed | added | removed | same
    delta: float | None = None


@dataclass
class DiffResult:
    a: ModelVersion
    b: ModelVersion
    rows: list[DiffRow]


def diff(repo: Repo, ref_a: str, ref_b: str) -> DiffResult:
    refs.parse(ref_b)  # both refuse a bad name before any git call
    a, b = resolve(repo, ref_a), resolve(repo, ref_b)
    rows = _diff_maps("model", _model_core(a), _model_core(b))
    rows += _diff_maps("params", a.meta.params or {}, b.meta.params or {})
    rows += _diff_maps("metrics", a.metrics, b.metrics)
    rows += _diff_maps("lineage", _flat_lineage(a.pointer), _flat_lineage(b.pointer))
    return DiffResult(a, b, rows)


def _model_core(v: ModelVersion) -> dict[str, Any]:
    return {"oid": v.model_id, "encoding": v.meta.encoding, "algo": v.meta.algo,
            "path": v.pointer.path, "size": v.pointer.size}


def _flat_lineage(ptr: pointer_mod.Pointer) -> dict[str, Any]:
    lineage = ptr.lineage
    if lineage is None:
        return {}
    flat: dict[str, Any] = {f"deps.{dep['path']}": short_oid(dep["oid"]) for dep in lineage.deps}
    flat["code"] = lineage.code
    for section, values in (("params", lineage.params), ("env", lineage.env)):
        for key, value in values.items():
            flat[f"{section}.{key}"] = value
    return flat


def _diff_maps(section: str, a: dict[str, Any], b: dict[str, Any]) -> list[DiffRow]:
    rows = []
    for key in sorted(set(a) | set(b), key=str):
        if key not in a:
            rows.append(DiffRow(section, str(key), None, b[key], "added"))
        elif key not in b:
            rows.append(DiffRow(section, str(key), a[key], None, "removed"))
        else:
            change = "same" if a[key] == b[key] else "changed"
            rows.append(DiffRow(section, str(key), a[key], b[key], change, _delta(a[key], b[key])))
    return rows


def _delta(a: Any, b: Any) -> float | None:
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
    return round(b - a, 10) if numbers and a != b else None
