"""Parameter and metric values: `file:key,key` specs, dotted keys, flattening."""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moma_cli.core.paths import check_repo_relpath
from moma_cli.errors import ConfigError

DEFAULT_PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class ParamSpec:
    file: str
    keys: tuple[str, ...]  # empty: every key in the file

    def __str__(self) -> str:
        return f"{self.file}:{','.join(self.keys)}" if self.keys else self.file


def parse_spec(text: str) -> ParamSpec:
    """`params.yaml:train.max_depth,seed`, `params.yaml` (all keys) or `seed` (default file)."""
    if ":" in text:
        file, _, keys = text.partition(":")
    elif text.endswith((".yaml", ".yml", ".json")):
        file, keys = text, ""
    else:
        file, keys = DEFAULT_PARAMS_FILE, text
    names = tuple(k.strip() for k in keys.split(",") if k.strip())
    if not file:
        raise ConfigError(f"param spec {text!r} names no file", hint="use params.yaml:key,key")
    check_repo_relpath(file, "params file")
    return ParamSpec(file, names)


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as `a.b.c -> value`; lists and scalars are leaves."""
    if not isinstance(doc, Mapping):
        return {prefix: doc} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def select(doc: Any, spec: ParamSpec) -> dict[str, Any]:
    """The values `spec` names from a parsed params file; a missing key is an error."""
    flat = flatten(doc)
    if not spec.keys:
        return flat
    chosen: dict[str, Any] = {}
    for key in spec.keys:
        if key in flat:
            chosen[key] = flat[key]
            continue
        nested = {k: v for k, v in flat.items() if k.startswith(key + ".")}
        if not nested:
            raise ConfigError(f"{spec.file}: no parameter {key!r}",
                              hint=f"add it to {spec.file} or fix the stage's params")
        chosen.update(nested)
    return chosen


def numeric_leaves(doc: Any) -> dict[str, Any]:
    """Metric values: the flattened numbers (and booleans) of a metrics file."""
    return {k: v for k, v in flatten(doc).items() if isinstance(v, (int, float))}


def as_variables(specs: Sequence[ParamSpec], values: Mapping[str, Mapping[str, Any]]
                 ) -> dict[str, Any]:
    """Parameter values as Python variable names, for a notebook's `parameters` cell:
    a key is named relative to the key the spec selected (`-p params.yaml:train` gives
    `max_depth` for `train.max_depth`; `-p params.yaml:train.seed` gives `seed`), and the
    dots of what remains become underscores (`opt.lr` -> `opt_lr`)."""
    names: dict[str, tuple[str, Any]] = {}  # variable -> (file:dotted key, value)
    for spec in specs:
        for key, value in values.get(spec.file, {}).items():
            rel = _relative(key, spec.keys)
            if rel is None:
                continue
            name = rel.replace(".", "_").replace("-", "_")
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ConfigError(f"{spec.file}: parameter {key!r} is not a Python name",
                                  hint="rename the key, or select it by its parent key")
            source = f"{spec.file}:{key}"
            if names.get(name, (source, None))[0] != source:
                raise ConfigError(
                    f"parameters {names[name][0]} and {source} would both be the notebook "
                    f"variable {name!r}", hint="select them by a common parent key "
                    "(-p params.yaml:train), or rename one")
            names[name] = (source, value)
    return {name: value for name, (_, value) in sorted(names.items())}


def _relative(key: str, selected: tuple[str, ...]) -> str | None:
    if not selected:
        return key
    for sel in selected:
        if key == sel:
            return sel.rsplit(".", 1)[-1]
        if key.startswith(sel + "."):
            return key[len(sel) + 1:]
    return None
