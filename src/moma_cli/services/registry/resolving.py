"""From a reference (`NAME:4`, `NAME:production`, `NAME@v1.2.0`, `NAME@REV`) or a registry
tag to what it names, and the listings built on the same registry read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moma_cli.core import refs, tags
from moma_cli.core.tags import Override
from moma_cli.errors import MomaError
from moma_cli.services.registry import summary
from moma_cli.services.registry.index import RegistryIndex
from moma_cli.services.registry.model_version import ModelError, ModelVersion, Registry, TagEvent
from moma_cli.services.registry.reading import load, read_tags, tagged
from moma_cli.services.repo import Repo

# -- resolve ---------------------------------------------------------------------------------


def resolve(repo: Repo, ref: str, *, rev: str | None = None) -> ModelVersion:
    """`NAME` (latest, including uncommitted), `NAME:4`, `NAME:production`, `NAME@REV`
    (latest at a git revision, or the GTO registration `NAME@v1.2.0`)."""
    parsed = refs.parse(ref)
    if parsed.version is None and parsed.semver is None and not _by_tag(repo, parsed, rev):
        # the latest version or a stage holder: what the summary keeps
        return resolve_parsed(repo, parsed, summary.read(repo, _rev_for(parsed, rev)).registry)
    return resolve_parsed(repo, parsed, _registry_for(repo, parsed, rev))


def _rev_for(parsed: refs.ModelRef, rev: str | None) -> str | None:
    return rev if parsed.rev is None or parsed.semver else parsed.rev


def _by_tag(repo: Repo, parsed: refs.ModelRef, rev: str | None) -> bool:
    """A stage or semver on the current registry names a commit: a shallow clone answers it
    from the tags, with no history to fetch."""
    return (rev is None and (parsed.stage is not None or parsed.semver is not None)
            and repo.git.is_shallow())


def _registry_for(repo: Repo, parsed: refs.ModelRef, rev: str | None) -> Registry:
    if _by_tag(repo, parsed, rev):
        return tagged(repo, parsed.name)
    return load(repo, _rev_for(parsed, rev))


class Resolver:
    """Resolves many parsed references with one registry load per git revision
    (`moma check` over every configured model)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._loaded: dict[tuple[str | None, str | None], Registry] = {}

    def registry(self, parsed: refs.ModelRef) -> Registry:
        key = (parsed.name if _by_tag(self.repo, parsed, None) else None,
               _rev_for(parsed, None))
        if key not in self._loaded:
            self._loaded[key] = _registry_for(self.repo, parsed, None)
        return self._loaded[key]

    def __call__(self, parsed: refs.ModelRef) -> ModelVersion:
        return resolve_parsed(self.repo, parsed, self.registry(parsed))


def resolve_parsed(repo: Repo, parsed: refs.ModelRef, registry: Registry) -> ModelVersion:
    history = registry.of(parsed.name)
    if parsed.version is not None:
        for v in history:
            if v.version == parsed.version:
                return v
        raise ModelError(f"{parsed.name} has no version {parsed.version}",
                         hint=f"it has versions 1 to {_last_committed(history)}; "
                              f"see 'moma models:log {parsed.name}'")
    if parsed.stage is not None:
        for v in reversed(history):
            if parsed.stage in v.stages:
                return v
        raise ModelError(f"no version of {parsed.name} is in stage {parsed.stage!r}"
                         + registry.where,
                         hint=registry.hint(f"assign one with 'moma models:tag "
                                            f"{parsed.name}:N {parsed.stage}'"))
    if parsed.semver:
        for v in history:
            if parsed.semver in v.semvers:
                return v
        raise ModelError(f"{parsed.name} has no registered version {parsed.semver}"
                         + registry.where,
                         hint=registry.hint(f"see 'moma models:history {parsed.name}'"))
    return history[-1]


def _last_committed(history: list[ModelVersion]) -> int:
    return max((v.version or 0 for v in history), default=0)


# -- listing and reading ---------------------------------------------------------------------


@dataclass
class ModelList:
    models: list[ModelVersion]  # the latest version of each model
    stages: dict[str, dict[str, ModelVersion]]  # model -> stage -> the version holding it
    stage_names: list[str]  # every stage held, registry.stages' order first, then by name
    broken: list[MomaError]  # pointers that could not be read: reported, never skipped
    hidden: list[str]  # deprecated models left out (shown with deprecated=True)


def list_models(repo: Repo, *, rev: str | None = None, deprecated: bool = False) -> ModelList:
    """The latest version of every model present in the tip (or workspace) and the version
    in each stage, as `gto show` lists them; models deprecated with GTO (`NAME@deprecated`)
    only when asked for."""
    registry = summary.read(repo, rev)
    present = [name for name in sorted(registry.present) if name in registry.versions]
    hidden = [] if deprecated else [name for name in present if name in registry.deprecated]
    names = [name for name in present if name not in hidden]
    stages = {name: {stage: v for v in registry.versions[name] for stage in v.stages}
              for name in names}
    held = {stage for by_stage in stages.values() for stage in by_stage}
    order = [s for s in repo.config.stages if s in held] + sorted(held - set(repo.config.stages))
    return ModelList([registry.versions[name][-1] for name in names], stages, order,
                     registry.broken, hidden)


def pinned(repo: Repo) -> list[ModelVersion]:
    """Committed versions the registry points at: those holding a stage or a semver
    registration (what `push` must keep downloadable)."""
    if repo.git.is_shallow():  # the tags name the commits: no history needed, none fetched
        index = RegistryIndex(repo)
        names = list(read_tags(index))
        index.save()
        registries = [tagged(repo, name) for name in names]
    else:
        registries = [load(repo, workspace=False)]
    return [v for registry in registries for history in registry.versions.values()
            for v in history if v.commit is not None and (v.stages or v.semvers)]


def log(repo: Repo, name: str | None = None, *, rev: str | None = None,
        limit: int | None = None) -> list[ModelVersion]:
    """Versions newest first: of one model, or of all models interleaved by date; the
    `limit` newest only (up to summary.TAIL of them are read from the summary)."""
    if name is not None:
        refs.check_name(name)  # before any git call: names end up in git tag patterns
    if limit is not None and limit <= summary.TAIL:
        kept = summary.read(repo, rev)
        found, order = kept.registry, kept.order
    else:
        found = load(repo, rev)
        order = found.chain.order if found.chain else {}
    if name is not None:
        return list(reversed(found.of(name)))[:limit]
    every = [v for history in found.versions.values() for v in history]
    return sorted(every, key=lambda v: (v.uncommitted, order.get(v.commit or "", 0), v.name),
                  reverse=True)[:limit]


@dataclass
class HistoryEntry:
    action: str  # commit | register | deregister | assign | unassign | deprecate
    name: str
    version: int | None
    date: str | None
    author: str | None
    commit: str | None
    stage: str | None = None
    semver: str | None = None
    tag: str | None = None
    message: str = ""
    override: Override | None = None  # a stage forced past failing quality gates

    def to_json(self) -> dict[str, Any]:
        override = self.override.to_json() if self.override else None
        return vars(self) | {"override": override}


def history(repo: Repo, name: str, *, rev: str | None = None) -> list[HistoryEntry]:
    """Every version commit, registration and stage change of a model, oldest first."""
    name = refs.check_name(name)  # before any git call
    registry = load(repo, rev, workspace=False)
    entries = [HistoryEntry("commit", name, v.version, v.date, v.author, v.commit,
                            message=v.message) for v in registry.versions.get(name, [])]
    entries += [HistoryEntry(e.action, name, e.version, e.date, e.author, e.commit, e.stage,
                             e.semver, e.tag, e.message, e.override)
                for e in registry.events.get(name, [])]
    if not entries:  # unknown -> error; registered but not committed -> no history yet
        (registry if rev else load(repo)).of(name)
    return sorted(entries, key=lambda e: e.date or "")


def check_ref(repo: Repo, ref: str) -> TagEvent:
    """What a registry tag means (`gto check-ref`): model, action, stage or semver, the
    version it is on and the commit; for CI jobs that run when a tag is pushed."""
    tag = ref.removeprefix("refs/tags/")
    parsed = tags.parse(tag)  # before any git call: only GTO-grammar names reach git
    if parsed is None:
        raise ModelError(f"{ref!r} is not a registry tag",
                         hint="registry tags are GTO's: NAME@v1.2.0, NAME#STAGE#N, "
                              "NAME#STAGE!#N, NAME@v1.2.0!, NAME@deprecated#N")
    registry = load(repo, workspace=False)
    for event in registry.events.get(parsed.name, []):
        if event.tag == tag:
            return event
    raise ModelError(f"no annotated tag {tag!r} in this repository",
                     hint="fetch the tags with 'git fetch --tags'; a lightweight tag is not a "
                          "registry event")
