"""The served models and zero-downtime switching.

Each served reference (`iris:production`, `iris:3`, ...) is a `Slot` whose `current`
attribute holds an immutable `LoadedModel`. A request reads `slot.current` once and keeps
that object to the end, so a reload can load the new version completely and then replace
the attribute (one reference assignment, atomic under the GIL): requests in flight finish
on the old estimator, later ones get the new one, and none waits or fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from moma_cli.errors import MomaError
from moma_cli.services.serving.source import LoadedModel, ModelSource, ResolvedModel

DEFAULT_STAGE = "production"

Loader = Callable[[ResolvedModel], LoadedModel]


class RequestError(MomaError):
    """A client error, answered with `status` and a JSON message."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class Slot:
    def __init__(self, name: str, selector: str | None, current: LoadedModel) -> None:
        self.name = name
        self.selector = selector
        self.current = current

    @property
    def spec(self) -> str:
        return self.name if self.selector is None else f"{self.name}:{self.selector}"


@dataclass
class Switch:
    spec: str
    old_version: int | None
    new_version: int | None


@dataclass
class ReloadReport:
    switched: list[Switch] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, selector = spec.partition(":")
    return name, selector or None


class ModelTable:
    """The slots, and reloads that never leave a slot without a working model."""

    def __init__(self, source: ModelSource, loader: Loader, specs: Sequence[str] = ()) -> None:
        self.source = source
        self.loader = loader
        # No specs: every registered model at its production stage, including models that
        # reach production while the server runs.
        self.auto = not specs
        self.specs = [parse_spec(s) for s in specs]
        self._slots: tuple[Slot, ...] = ()
        self._reload_lock = threading.Lock()

    @property
    def slots(self) -> tuple[Slot, ...]:
        return self._slots

    def start(self) -> ReloadReport:
        """Load every model; an explicitly named model that fails stops the start."""
        report = ReloadReport()
        slots = []
        for name, selector in self._wanted():
            try:
                loaded = self.loader(self.source.resolve(name, selector))
            except MomaError as exc:
                if not self.auto:
                    raise
                report.errors.append(exc.message)
                continue
            slots.append(Slot(name, selector, loaded))
            report.added.append(slots[-1].spec)
        if not slots:
            raise MomaError(f"no registered model has a {DEFAULT_STAGE!r} stage"
                            + (f" ({'; '.join(report.errors)})" if report.errors else ""),
                            hint=f"tag one with 'moma models:tag NAME:VERSION {DEFAULT_STAGE}', "
                                 "or name the models to serve: moma serve NAME:VERSION")
        self._slots = tuple(slots)
        return report

    def _wanted(self) -> list[tuple[str, str | None]]:
        if self.auto:
            return [(name, DEFAULT_STAGE) for name in self.source.names()]
        return list(self.specs)

    def reload(self) -> ReloadReport:
        """Re-resolve every slot; load what moved, then swap it in.

        A model that fails to resolve or load keeps serving its current version and the
        failure is reported, so a bad tag never takes a live model down.
        """
        with self._reload_lock:
            report = ReloadReport()
            for slot in self._slots:
                self._reload_slot(slot, report)
            if self.auto:
                self._add_new(report)
            return report

    def _reload_slot(self, slot: Slot, report: ReloadReport) -> None:
        old = slot.current
        try:
            resolved = self.source.resolve(slot.name, slot.selector)
            if resolved == old.resolved:
                return
            if (resolved.oid, resolved.algo) == (old.resolved.oid, old.resolved.algo):
                new = LoadedModel(resolved, old.estimator, old.feature_names,
                                  old.n_features, old.has_proba)
            else:
                new = self.loader(resolved)
        except MomaError as exc:
            report.errors.append(f"{slot.spec}: {exc.message}")
            return
        slot.current = new
        if new.resolved.version != old.resolved.version:
            report.switched.append(Switch(slot.spec, old.resolved.version,
                                          new.resolved.version))

    def _add_new(self, report: ReloadReport) -> None:
        served = {slot.name for slot in self._slots}
        added = []
        for name in self.source.names():
            if name in served:
                continue
            try:
                loaded = self.loader(self.source.resolve(name, DEFAULT_STAGE))
            except MomaError:
                continue  # not (yet) in production: nothing to serve
            added.append(Slot(name, DEFAULT_STAGE, loaded))
            report.added.append(added[-1].spec)
        if added:
            self._slots = self._slots + tuple(added)

    def find(self, target: str) -> LoadedModel:
        """The model a request path names: `NAME`, `NAME:VERSION` or `NAME:STAGE`."""
        name, selector = parse_spec(target)
        slots = [s for s in self._slots if s.name == name]
        if not slots:
            raise RequestError(404, f"model {name!r} is not served here",
                               hint="GET /v1/models lists the served models")
        if selector is None:
            return slots[0].current
        for slot in slots:
            current = slot.current
            if selector.isdigit() and current.resolved.version == int(selector):
                return current
            if selector in (slot.selector, current.resolved.stage):
                return current
        raise RequestError(404, f"model {name!r} is not served at {selector!r}",
                           hint="GET /v1/models lists the served versions and stages")
