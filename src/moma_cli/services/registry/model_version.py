"""The registry's values: a model version, a tag event, the registry of one line of
history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import short_oid
from moma_cli.core.lineage import Lineage
from moma_cli.core.modelsection import ModelSection
from moma_cli.core.tags import Override
from moma_cli.errors import MomaError
from moma_cli.services.registry.index import Chain


class ModelError(MomaError):
    pass


# -- results ---------------------------------------------------------------------------------


@dataclass
class ModelVersion:
    name: str
    version: int | None  # None: uncommitted, or read from a tag in a shallow clone
    oid: str
    pointer: pointer_mod.Pointer
    commit: str | None
    stages: list[str] = field(default_factory=list)
    number: int = 0  # the version number this is, or will be once committed; 0: unknown
    date: str | None = None  # ISO 8601, from the commit
    author: str | None = None
    message: str = ""
    semvers: list[str] = field(default_factory=list)
    # stages whose last event on this version is an assignment (GTO's "active"); the
    # newest of them per stage is what `stages` shows
    active_stages: list[str] = field(default_factory=list)
    previous_metrics: Any = None  # the previous version's recorded metrics (see metrics)

    @property
    def uncommitted(self) -> bool:
        return self.commit is None

    @property
    def label(self) -> str:
        if not self.number:  # a shallow clone: the tag names the commit, not the number
            return f"at {(self.commit or '')[:8]}"
        return f"v{self.number}" + (" (uncommitted)" if self.uncommitted else "")

    @property
    def model_id(self) -> str:
        return short_oid(self.oid)

    @property
    def meta(self) -> ModelSection:
        return self.pointer.model or ModelSection(self.name)

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics recorded for these bytes; never those of other bytes."""
        return self.meta.own_metrics(self.oid, self.previous_metrics)

    @property
    def lineage(self) -> Lineage | None:
        """The pointer's `lineage:` section (`moma run`, or `models:add --from/-p`)."""
        return self.pointer.lineage

    def to_json(self) -> dict[str, Any]:
        meta = self.meta
        return {
            "name": self.name, "version": self.version, "number": self.number or None,
            "uncommitted": self.uncommitted, "model_id": self.model_id, "oid": self.oid,
            "hash": self.pointer.algo, "size": self.pointer.size, "path": self.pointer.path,
            "commit": self.commit, "date": self.date, "author": self.author,
            "message": self.message, "stages": self.stages, "semvers": self.semvers,
            "encoding": meta.encoding, "algo": meta.algo,
            "params": meta.params or {}, "metrics": self.metrics,
            "description": meta.description,
            "lineage": self.lineage.to_mapping() if self.lineage else None,
            "signature": meta.signature,
        }


@dataclass
class TagEvent:
    tag: str
    name: str
    action: str  # register | deregister | assign | unassign | deprecate
    commit: str
    author: str
    email: str
    date: str
    message: str
    stage: str | None = None
    semver: str | None = None
    counter: int = 0
    version: int | None = None  # moma version number at the tagged commit, when known
    override: Override | None = None  # forced past failing quality gates (models:tag --force)

    def to_json(self) -> dict[str, Any]:
        override = self.override.to_json() if self.override else None
        return vars(self) | {"override": override}


@dataclass
class Registry:
    """Every model's versions (oldest first) and tag events on one line of history."""

    versions: dict[str, list[ModelVersion]]
    present: dict[str, str]  # models in the tip (or workspace) -> pointer path
    events: dict[str, list[TagEvent]]
    chain: Chain | None
    broken: list[MomaError] = field(default_factory=list)  # workspace pointers unreadable
    shallow: bool = False  # read from the tags of a shallow clone: no numbers, no history

    def deprecated(self, name: str) -> bool:
        """GTO's rule: while a deprecation is the model's newest event; a later assignment
        or registration makes it active again."""
        events = self.events.get(name, [])
        return bool(events) and events[-1].action == "deprecate"

    def of(self, name: str) -> list[ModelVersion]:
        found = self.versions.get(name)
        if not found:
            raise ModelError(f"no model named {name!r}" + self.where,
                             hint=self.hint("see 'moma models:list'; register one with "
                                            "'moma models:add'"))
        return found

    @property
    def where(self) -> str:
        return " among the tags of this shallow clone" if self.shallow else ""

    def hint(self, usual: str) -> str:
        """Tags on commits a shallow clone lacks are not fetched with it."""
        return ("fetch the registry tags with 'git fetch --tags' (in CI: actions/checkout "
                "'fetch-tags: true'), or the whole history with 'git fetch --unshallow'"
                if self.shallow else usual)
