"""A pointer's `model:` section as a typed value: the registry's name, what the model file
is (`core/modelmeta.py` sniffs it), its parameters, and the metrics bound to the bytes they
were measured on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from moma_cli.core import refs
from moma_cli.errors import POINTER_HINT, MomaError, PointerError

METRICS_FILE = "metrics_file"  # where the registration's metrics come from (kept across bytes)
# the known keys, in the order a new section is written (a read one keeps its own order)
_MODEL_KEYS = ("name", "encoding", "algo", "signature", "params", "metrics", "metrics_oid",
               METRICS_FILE, "reference", "description")
_MAPPINGS = ("signature", "params", "metrics", "reference")


@dataclass(frozen=True)
class ModelSection:
    """A pointer's `model:` section, read once with the pointer (dvc-data's `Meta`).

    `name` ends up in git tag names and in paths, so it follows the registry's name rules
    (no `../../x`). A known key that is absent (or null) is None. Keys this moma does not
    know are kept in `unknown` and, like the known ones, written back in the order they
    were read, so an older moma re-adding the same bytes leaves `git diff` empty.
    """

    name: str
    encoding: str | None = None
    algo: str | None = None
    signature: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    metrics_oid: str | None = None  # the oid its metrics describe
    metrics_file: str | None = None
    reference: dict[str, Any] | None = None  # the profile of the training inputs (monitor)
    description: str | None = None
    unknown: dict[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_mapping(cls, doc: Any, source: str) -> ModelSection:
        """The section of the pointer file `source`; a bad one raises PointerError naming it."""
        if not isinstance(doc, dict):
            raise _bad(source, "'model' must be a mapping")
        name = doc.get("name")
        if not isinstance(name, str):
            raise _bad(source, "'model.name' must be a string")
        try:
            refs.check_name(name)
        except MomaError as exc:
            raise _bad(source, f"'model.name': {exc.message}") from None
        known: dict[str, Any] = {}
        for key in _MODEL_KEYS[1:]:
            value = doc.get(key)
            wanted = dict if key in _MAPPINGS else str
            if value is not None and not isinstance(value, wanted):
                kind = "a mapping" if wanted is dict else "a string"
                raise _bad(source, f"'model.{key}' must be {kind}")
            known[key] = value
        unknown = {k: v for k, v in doc.items() if k not in _MODEL_KEYS}
        if any(not isinstance(k, str) for k in unknown):
            raise _bad(source, "'model' keys must be strings")
        return cls(name, **known, unknown=unknown, order=tuple(doc))

    def to_mapping(self) -> dict[str, Any]:
        values = {k: getattr(self, k) for k in _MODEL_KEYS}
        values = {k: v for k, v in values.items() if v is not None} | self.unknown
        doc = {k: values[k] for k in self.order if k in values}
        return doc | {k: v for k, v in values.items() if k not in doc}

    def own_metrics(self, oid: str, previous: Any = None) -> dict[str, Any]:
        """The metrics this section records for the bytes `oid`, else {}.

        `metrics_oid` binds them to the bytes they were measured on. A section written
        before that binding existed has none: its metrics count unless they equal
        `previous` (the previous version's), which is what an older moma carried onto
        retrained bytes; a legacy version that really measured the same numbers shows
        none (fails closed)."""
        if not self.metrics:
            return {}
        if self.metrics_oid is not None:
            return self.metrics if self.metrics_oid == oid else {}
        return {} if self.metrics == previous else self.metrics

    def bind_metrics(self, metrics: dict[str, Any], oid: str) -> ModelSection:
        """This section recording `metrics` as measured on the bytes `oid`."""
        return replace(self, metrics=metrics, metrics_oid=oid if metrics else None)

    def without_metrics(self) -> ModelSection:
        """This section for new bytes: the metrics described other bytes, so they go."""
        return replace(self, metrics=None, metrics_oid=None)


def _bad(source: str, msg: str) -> PointerError:
    return PointerError(f"{source}: {msg}", hint=POINTER_HINT)
