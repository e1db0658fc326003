"""The served models and zero-downtime switching.

Each served reference (`iris:production`, `iris:3`, ...) is a `Slot` whose `current`
attribute holds an immutable `LoadedModel`. A request reads `slot.current` once and keeps
that object to the end, so a reload can load the new version completely and then replace
the attribute (one reference assignment, atomic under the GIL): requests in flight finish
on the old estimator, later ones get the new one, and none waits or fails.

Beside a model's primary slot there may be a canary (a share of its traffic) and a shadow
(a copy of every request, answered to nobody): slots of their own, named by their own refs,
that reload like the primary, so a stage tag moved onto them is followed the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from moma_cli.errors import MomaError
from moma_cli.services.serving.source import LoadedModel, ModelSource, ResolvedModel

DEFAULT_STAGE = "production"

Loader = Callable[[ResolvedModel], LoadedModel]
Role = Literal["primary", "canary", "shadow"]


class RequestError(MomaError):
    """A client error, answered with `status` and a JSON message."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class Slot:
    def __init__(self, name: str, selector: str | None, current: LoadedModel,
                 role: Role = "primary") -> None:
        self.name = name
        self.selector = selector
        self.current = current
        self.role: Role = role

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


@dataclass(frozen=True)
class Canary:
    spec: str
    percent: float  # of the requests for the model, 0..100


@dataclass
class Variants:
    """A model's canary and shadow slots, beside its primary slot (the first served ref of
    the model, the one a request naming only the model reaches)."""

    primary: Slot
    canary: Slot | None = None
    percent: float = 0.0
    shadow: Slot | None = None


@dataclass(frozen=True)
class Target:
    """What a request reaches, each model taken from its slot once, when the request starts:
    `model` answers unless the request is split to `canary`; `shadow` gets a copy."""

    model: LoadedModel
    role: Role
    canary: LoadedModel | None = None
    percent: float = 0.0
    shadow: LoadedModel | None = None


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, selector = spec.partition(":")
    return name, selector or None


class ModelTable:
    """The slots, and reloads that never leave a slot without a working model."""

    def __init__(self, source: ModelSource, loader: Loader, specs: Sequence[str] = (),
                 canaries: Sequence[Canary] = (), shadows: Sequence[str] = ()) -> None:
        self.source = source
        self.loader = loader
        # No specs: every registered model at its production stage, including models that
        # reach production while the server runs.
        self.auto = not specs
        self.specs = [parse_spec(s) for s in specs]
        self.canaries = list(canaries)
        self.shadows = list(shadows)
        self._slots: tuple[Slot, ...] = ()
        self._variants: dict[str, Variants] = {}
        self._reload_lock = threading.Lock()

    @property
    def slots(self) -> tuple[Slot, ...]:
        """The primary slots."""
        return self._slots

    @property
    def variants(self) -> tuple[Variants, ...]:
        """The canaries and shadows, by model."""
        return tuple(self._variants.values())

    @property
    def all_slots(self) -> tuple[Slot, ...]:
        """The primary slots, then every canary and shadow slot."""
        extra = [s for v in self._variants.values() for s in (v.canary, v.shadow) if s]
        return self._slots + tuple(extra)

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
        for canary in self.canaries:
            variants = self._start_variant(canary.spec, "canary", "--canary", report)
            variants.percent = canary.percent
        for spec in self.shadows:
            self._start_variant(spec, "shadow", "--shadow", report)
        return report

    def _start_variant(self, spec: str, role: Role, option: str,
                       report: ReloadReport) -> Variants:
        """Load the canary or shadow `spec` beside its model's primary slot; any failure
        stops the start, as for an explicitly named model."""
        name, selector = parse_spec(spec)
        primary = next((s for s in self._slots if s.name == name), None)
        if primary is None:
            names = ", ".join(sorted({s.name for s in self._slots}))
            raise MomaError(f"{option} {spec}: model {name!r} is not served here "
                            f"(serving {names})",
                            hint=f"a {role} stands beside a served model of the same name: "
                                 f"moma serve {name}:{DEFAULT_STAGE} {option} {spec}")
        variants = self._variants.setdefault(name, Variants(primary))
        served = (*self._slots, variants.canary, variants.shadow)
        clash = next((s for s in served if s and (s.name, s.selector) == (name, selector)), None)
        if clash is not None:
            raise MomaError(f"{option} {spec}: {clash.spec} is already served as the "
                            f"{clash.role}", hint=f"name another stage or version of {name}")
        taken = getattr(variants, role)
        if taken is not None:
            raise MomaError(f"{option} {spec}: {name} already has a {role} ({taken.spec})",
                            hint=f"give one {option} per model")
        slot = Slot(name, selector, self.loader(self.source.resolve(name, selector)), role)
        setattr(variants, role, slot)
        report.added.append(f"{slot.spec} ({role} of {primary.spec})")
        return variants

    def _wanted(self) -> list[tuple[str, str | None]]:
        if self.auto:
            return [(name, DEFAULT_STAGE) for name in self.source.names()]
        return list(self.specs)

    def reload(self, refresh: bool = True) -> ReloadReport:
        """Bring the source up to date (unless `refresh` is False: another process just
        did), re-resolve every slot, load what moved, then swap it in.

        A model that fails to resolve or load keeps serving its current version and the
        failure is reported, so a bad tag never takes a live model down; a failed refresh
        (the source's git host is down) is reported and the slots re-resolved as they were.
        """
        with self._reload_lock:
            report = ReloadReport()
            if refresh:
                try:
                    self.source.refresh()
                except MomaError as exc:
                    report.errors.append(exc.message)
            for slot in self.all_slots:
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

    def find(self, target: str) -> Target:
        """What a request path reaches: `NAME`, `NAME:VERSION` or `NAME:STAGE`.

        A request for the model or its primary ref (`iris`, `iris:production`) may go to the
        canary and is mirrored to the shadow; one naming a version, or another ref, gets
        exactly that model. A canary's or shadow's own ref reaches it directly.
        """
        name, selector = parse_spec(target)
        slots = [s for s in self._slots if s.name == name]
        if not slots:
            raise RequestError(404, f"model {name!r} is not served here",
                               hint="GET /v1/models lists the served models")
        variants = self._variants.get(name)
        if selector is None or (variants and selector == variants.primary.selector):
            return self._split(slots[0], variants)
        if variants:
            slots += [s for s in (variants.canary, variants.shadow) if s]
        for slot in slots:
            current = slot.current
            if selector.isdigit() and current.resolved.version == int(selector):
                return Target(current, slot.role)
            if selector in (slot.selector, current.resolved.stage):
                return Target(current, slot.role)
        raise RequestError(404, f"model {name!r} is not served at {selector!r}",
                           hint="GET /v1/models lists the served versions and stages")

    @staticmethod
    def _split(primary: Slot, variants: Variants | None) -> Target:
        if variants is None:
            return Target(primary.current, "primary")
        return Target(primary.current, "primary",
                      variants.canary.current if variants.canary else None, variants.percent,
                      variants.shadow.current if variants.shadow else None)
