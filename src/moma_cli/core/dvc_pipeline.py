"""dvc.yaml stages as moma stages, read strictly: a stage moma cannot express the same way
(templating, `foreach`, uncached outputs, params files moma cannot read) is refused by name
and left to convert by hand; what moma has no use for (plots, `frozen`) is noted."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from moma_cli.core.dvc import DvcError, command, join
from moma_cli.core.params import DEFAULT_PARAMS_FILE
from moma_cli.core.stages import Stage, parse_stage
from moma_cli.errors import MomaError

_STAGE_KEYS = {"cmd", "wdir", "deps", "outs", "params", "metrics", "plots", "frozen",
               "always_changed", "desc", "meta"}
_TEMPLATED = ("foreach", "do", "matrix", "vars")
_PATH_OPTIONS = {"cache", "persist", "desc", "type", "labels", "meta", "remote", "push",
                 "x", "y", "x_label", "y_label", "title", "template"}
_PARAMS_SUFFIXES = (".yaml", ".yml", ".json")
_TOP_KEYS = {"stages", "vars", "params", "metrics", "plots", "artifacts", "datasets"}


@dataclass
class Pipeline:
    stages: dict[str, Stage] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # stage -> why (one line)
    notes: list[str] = field(default_factory=list)  # what was left out, one line each
    bases: dict[str, str] = field(default_factory=dict)  # stage -> its wdir ("" for the root)


def parse_pipeline(doc: Any, source: str = "dvc.yaml") -> Pipeline:
    if not isinstance(doc, dict):
        raise DvcError(f"{source}: top level must be a mapping")
    pipeline = Pipeline()
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise DvcError(f"{source}: unknown key {unknown[0]!r}")
    pipeline.notes += [f"{source}: top-level '{key}' left out (moma has no such section)"
                       for key in sorted(set(doc) - {"stages"})]
    stages = doc.get("stages") or {}
    if not isinstance(stages, dict):
        raise DvcError(f"{source}: 'stages' must be a mapping")
    for name, body in stages.items():
        where = f"{source}: stage {name!r}"
        try:
            pipeline.stages[str(name)] = _stage(str(name), body, where, pipeline.notes)
            pipeline.bases[str(name)] = _base(body, where)
        except MomaError as exc:
            message = exc.message if exc.message.startswith(source) else f"{where}: {exc.message}"
            pipeline.refused[str(name)] = message
    return pipeline


def _stage(name: str, body: Any, where: str, notes: list[str]) -> Stage:
    if not isinstance(body, dict):
        raise DvcError(f"{where}: must be a mapping")
    templated = [k for k in body if k in _TEMPLATED]
    if templated or "${" in repr(body):
        raise DvcError(f"{where}: uses DVC templating ({templated[0] if templated else '${}'}); "
                       "convert it by hand")
    unknown = sorted(set(body) - _STAGE_KEYS)
    if unknown:
        raise DvcError(f"{where}: unknown key {unknown[0]!r}")
    base = _base(body, where)
    cmd = command(body.get("cmd"), where)
    if base:
        cmd = f"cd {shlex.quote(base)} && {cmd}"
    for flag in ("frozen", "always_changed"):
        if body.get(flag):
            notes.append(f"{where}: '{flag}' left out (moma has no such option)")
    outs, plots = _paths(body, "outs", base, where), _paths(body, "plots", base, where)
    for path, opts in outs:
        if opts.get("cache") is False:
            raise DvcError(f"{where}: output {path} is not cached ('cache: false'); moma "
                           "caches every output")
        if opts.get("persist"):
            notes.append(f"{where}: output {path} was 'persist: true'; moma removes outputs "
                         "before a stage runs")
    cached_plots = [p for p, opts in plots if opts.get("cache") is not False]
    notes += [f"{where}: plots {p} is now an output (moma has no plots)" for p in cached_plots]
    notes += [f"{where}: plots {p} left out (git keeps it)" for p, opts in plots
              if opts.get("cache") is False]
    mapping = {
        "cmd": cmd,
        "deps": [join(base, d, where) for d in _strings(body.get("deps"), "deps", where)],
        "outs": [p for p, _ in outs] + cached_plots,
        "params": _params(body.get("params"), base, where),
        "metrics": [p for p, _ in _paths(body, "metrics", base, where)],
    }
    return parse_stage(name, {k: v for k, v in mapping.items() if v}, "dvc.yaml")


def _base(body: dict[str, Any], where: str) -> str:
    wdir = body.get("wdir") or "."
    return "" if wdir == "." else join("", wdir, where)


def _strings(value: Any, key: str, where: str) -> list[str]:
    items = [] if value is None else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise DvcError(f"{where}: '{key}' must be a list of paths")
    return items


def _paths(body: dict[str, Any], key: str, base: str,
           where: str) -> list[tuple[str, dict[str, Any]]]:
    """Entries of outs/metrics/plots: `path` or `{path: {options}}`."""
    items = body.get(key) or []
    if not isinstance(items, list):
        raise DvcError(f"{where}: '{key}' must be a list")
    found: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, str):
            found.append((join(base, item, where), {}))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise DvcError(f"{where}: a '{key}' entry must be a path or {{path: options}}")
        ((path, opts),) = item.items()
        opts = opts or {}
        if not isinstance(opts, dict) or not set(opts) <= _PATH_OPTIONS:
            raise DvcError(f"{where}: '{key}' entry {path!r} has options moma cannot read")
        found.append((join(base, path, where), opts))
    return found


def _params(value: Any, base: str, where: str) -> list[str]:
    """DVC's params (`key`, or `{file: [keys]}`, or `{file: null}` for all) as moma specs."""
    specs: dict[str, list[str]] = {}
    for item in value or []:
        if isinstance(item, str):
            specs.setdefault(DEFAULT_PARAMS_FILE, []).append(item)
        elif isinstance(item, dict):
            for file, keys in item.items():
                specs.setdefault(str(file), []).extend(_strings(keys, "params", where))
        else:
            raise DvcError(f"{where}: a 'params' entry must be a key or {{file: [keys]}}")
    out = []
    for file, keys in specs.items():
        rel = join(base, file, where)
        if not rel.endswith(_PARAMS_SUFFIXES):
            raise DvcError(f"{where}: params file {file} is not YAML or JSON; moma reads "
                           "only those")
        out.append(f"{rel}:{','.join(keys)}" if keys else rel)
    return out

