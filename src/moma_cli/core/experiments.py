"""Experiments as data: `-S` overrides and the grid they span, names and hidden refs, and the
trailers an experiment commit carries (params, metrics, duration, exit status)."""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moma_cli import yamlio
from moma_cli.core.params import DEFAULT_PARAMS_FILE
from moma_cli.core.paths import check_repo_relpath
from moma_cli.core.refs import check_name
from moma_cli.errors import ConfigError, MomaError

REF_PREFIX = "refs/moma/exps/"
_PARAM, _METRIC, _DURATION, _STATUS = "Moma-Param", "Moma-Metric", "Moma-Duration", "Moma-Exit"


class ExperimentError(MomaError):
    pass


@dataclass(frozen=True)
class Override:
    file: str
    key: str
    values: tuple[Any, ...]  # more than one: a sweep over them


def parse_override(text: str) -> Override:
    """`train.lr=0.1`, `params.yaml:train.lr=0.01,0.1` (values parsed as YAML scalars)."""
    target, sep, raw = text.partition("=")
    file, colon, key = target.rpartition(":")
    if not colon:
        file = DEFAULT_PARAMS_FILE
    if not sep or not key or not raw or (colon and not file):
        raise ConfigError(f"-S {text!r}: expected [FILE:]KEY=VALUE[,VALUE...]",
                          hint="e.g. -S train.lr=0.01,0.1 or -S params.yaml:train.depth=3")
    check_repo_relpath(file, "params file")
    return Override(file, key, tuple(yamlio.loads(v.strip(), f"-S {text}")
                                     for v in raw.split(",")))


def grid(overrides: list[Override]) -> list[dict[tuple[str, str], Any]]:
    """Every combination of the overrides' values, (file, key) -> value; one empty run
    when there are none. The same key named twice is a mistake, not a merge."""
    seen: set[tuple[str, str]] = set()
    for o in overrides:
        if (o.file, o.key) in seen:
            raise ConfigError(f"-S {o.file}:{o.key} given twice",
                              hint="list every value once: -S KEY=A,B")
        seen.add((o.file, o.key))
    keys = [(o.file, o.key) for o in overrides]
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(o.values for o in overrides))]


def set_key(doc: Any, key: str, value: Any, file: str) -> dict[str, Any]:
    """`doc` with the dotted `key` set to `value` (missing levels are created)."""
    root: dict[str, Any] = dict(doc) if isinstance(doc, Mapping) else {}
    if doc is not None and not isinstance(doc, Mapping):
        raise ConfigError(f"{file}: not a mapping of parameters", hint="fix the params file")
    node = root
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is not None and not isinstance(child, Mapping):
            raise ConfigError(f"{file}: {'.'.join(parts[:i + 1])} is not a mapping",
                              hint=f"set {'.'.join(parts[:i + 1])} itself, not a key in it")
        node[part] = dict(child or {})
        node = node[part]
    node[parts[-1]] = value
    return root


def check_exp_name(name: str) -> str:
    return check_name(name, "experiment name")


def generate_name() -> str:
    return f"exp-{secrets.token_hex(3)}"


def ref_of(base: str, name: str) -> str:
    return f"{REF_PREFIX}{base}/{name}"


def split_ref(ref: str) -> tuple[str, str] | None:
    """(base commit, name) of an experiment ref, None for anything else under the prefix."""
    base, _, name = ref.removeprefix(REF_PREFIX).partition("/")
    if len(base) != 40 or not name:
        return None
    try:
        return base, check_exp_name(name)
    except MomaError:  # refs can be fetched from anyone: a bad name is skipped, not shown
        return None


@dataclass
class Record:
    """What an experiment commit's message says about its run."""
    params: dict[str, Any] = field(default_factory=dict)  # FILE:KEY -> value set by -S
    metrics: dict[str, Any] = field(default_factory=dict)  # FILE:KEY -> number
    duration: float | None = None  # seconds
    exit: int | None = None


def message(name: str, record: Record) -> str:
    """The commit message: a subject, then one trailer per value (JSON, so types survive)."""
    lines = [f"{_PARAM}: {k}={json.dumps(v)}" for k, v in record.params.items()]
    lines += [f"{_METRIC}: {k}={json.dumps(v)}" for k, v in record.metrics.items()]
    lines += [f"{_DURATION}: {record.duration:.3f}", f"{_STATUS}: {record.exit}"]
    return f"moma exp {name}\n\n" + "\n".join(lines) + "\n"


def parse_record(trailers: tuple[tuple[str, str], ...]) -> Record:
    """The trailers back as values; one that does not parse is kept as text."""
    record = Record()
    for key, value in trailers:
        if key in (_PARAM, _METRIC):
            name, _, raw = value.partition("=")
            (record.params if key == _PARAM else record.metrics)[name] = _json(raw)
        elif key == _DURATION:
            number = _json(value)
            record.duration = float(number) if isinstance(number, (int, float)) else None
        elif key == _STATUS:
            number = _json(value)
            record.exit = number if isinstance(number, int) else None
    return record


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
