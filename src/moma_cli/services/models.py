"""The git-native model registry: register, versions from history, stages as GTO tags.

A model is a pointer with a `model:` section, identified by `model.name` (so moving or
renaming the file keeps its history). Version N is the Nth first-parent commit that
changed the model's content oid; stages and semver registrations are annotated tags in
GTO's grammar (`NAME#STAGE#N`, `NAME#STAGE!#N`, `NAME@v1.2.0`), so GTO, DVC and moma read
the same registry. Nothing here ever unpickles a model.

Numbers need the whole history (a shallow clone is deepened first, or refused: see
registry_index). A stage or semver names a commit, so in a shallow clone `NAME:production`
and `NAME@v1.2.0` are read from the tags alone (`_tagged`), without version numbers.
"""

from __future__ import annotations

import bisect
import json
import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli.core import modelmeta, refs, tags
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.hashing import short_oid
from moma_cli.errors import CheckoutConflictError, MomaError, PathError
from moma_cli.services import access, data, lockfile, workspace
from moma_cli.services.registry_index import Chain, RegistryIndex, full_history
from moma_cli.services.repo import Repo


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
    def meta(self) -> dict[str, Any]:
        return self.pointer.model or {}

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics recorded for these bytes; never those of other bytes."""
        return modelmeta.own_metrics(self.meta, self.oid, self.previous_metrics)

    @property
    def lineage(self) -> dict[str, Any] | None:
        """The pointer's `lineage:` section (`moma run`, or `models:add --from/-p`)."""
        section = self.pointer.extra.get("lineage")
        return section if isinstance(section, dict) else None

    def to_json(self) -> dict[str, Any]:
        meta = self.meta
        return {
            "name": self.name, "version": self.version, "number": self.number or None,
            "uncommitted": self.uncommitted, "model_id": self.model_id, "oid": self.oid,
            "hash": self.pointer.algo, "size": self.pointer.size, "path": self.pointer.path,
            "commit": self.commit, "date": self.date, "author": self.author,
            "message": self.message, "stages": self.stages, "semvers": self.semvers,
            "encoding": meta.get("encoding"), "algo": meta.get("algo"),
            "params": meta.get("params") or {}, "metrics": self.metrics,
            "description": meta.get("description"), "lineage": self.lineage,
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

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


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
        return any(e.action == "deprecate" for e in self.events.get(name, []))

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


# -- reading the registry --------------------------------------------------------------------


def load(repo: Repo, rev: str | None = None, *, workspace: bool | None = None) -> Registry:
    """Build the registry from one git log pass (cached by tip) and the tags.

    `workspace` (default: only when reading the current branch) adds uncommitted pointers.
    """
    index = RegistryIndex(repo)
    tip = repo.git.rev_parse(refs.check_rev(rev)) if rev else repo.git.head()
    chain = index.chain(tip) if tip else None
    versions: dict[str, list[ModelVersion]] = {}
    present: dict[str, str] = {}
    broken: list[MomaError] = []
    if chain is not None:
        _replay(index, chain, versions, present)
    if workspace if workspace is not None else rev is None:
        broken = _add_workspace(repo, versions, present)
    events = _tag_events(repo, chain, versions)
    index.save()
    numbered: dict[tuple[str, int | None], ModelVersion] = {
        (v.name, v.version): v for history in versions.values() for v in history
        if v.version is not None}
    _apply_events(events, lambda e: numbered.get((e.name, e.version)))
    return Registry(versions, present, events, chain, broken)


def _tagged(repo: Repo, name: str) -> Registry:
    """The versions of `name` its tags point at, read without the history: in a shallow
    clone a stage or semver still names a commit exactly, only the numbers are unknown.
    A version is its content oid (the commits that hold the same bytes are one version);
    the metadata is HEAD's when HEAD holds those bytes, as in the full registry."""
    index = RegistryIndex(repo)
    events = {name: _read_tags(repo).get(name, [])}
    tagged = {e.commit for e in events[name]}
    head = repo.git.head()
    commits = [c for c in sorted(tagged | {head or ""}) if c and repo.git.has_commit(c)]
    pointers = {c: ptr for c in commits if (ptr := _model_at(repo, index, c, name))}
    index.save()
    headers = repo.git.commit_headers([c for c in pointers if c in tagged])
    at: dict[str, ModelVersion] = {}
    by_oid: dict[str, ModelVersion] = {}
    for commit in sorted(headers, key=lambda c: headers[c][0]):
        ptr = pointers[commit]
        date, author, _email, message = headers[commit]
        at[commit] = by_oid.setdefault(ptr.oid, ModelVersion(
            name, None, ptr.oid, ptr, commit, date=date, author=author, message=message))
    if head in pointers and pointers[head].oid in by_oid:
        by_oid[pointers[head].oid].pointer = pointers[head]
    _apply_events(events, lambda e: at.get(e.commit))
    versions = {name: list(by_oid.values())} if by_oid else {}
    return Registry(versions, {}, events, None, shallow=True)


def _model_at(repo: Repo, index: RegistryIndex, commit: str,
              name: str) -> pointer_mod.Pointer | None:
    """The pointer of model `name` in the tree of `commit`, if it has one."""
    paths = {blob: path for path, blob in repo.git.tree_blobs(commit).items()}
    for ptr in index.pointers(set(paths), paths).values():
        if ptr.model is not None and ptr.model.get("name") == name:
            return ptr
    return None


def _replay(index: RegistryIndex, chain: Chain, versions: dict[str, list[ModelVersion]],
            present: dict[str, str]) -> None:
    paths = {blob: path for c in chain.commits for path, blob in c.changes if blob}
    pointers = index.pointers(set(paths), paths)
    path_model: dict[str, str] = {}  # pointer path -> model name
    by_name: dict[str, pointer_mod.Pointer] = {}
    for commit in chain.commits:
        touched: set[str] = set()
        for path, blob in commit.changes:
            old = path_model.pop(path, None)
            if old is not None:
                touched.add(old)
                if present.get(old) == path:
                    del present[old]
                    by_name.pop(old, None)
            ptr = pointers.get(blob) if blob else None
            if ptr is not None:
                name = ptr.model["name"]  # type: ignore[index]
                path_model[path] = name
                present[name] = path
                by_name[name] = ptr
                touched.add(name)
        for name in touched:
            if name in by_name:
                _record(versions, by_name[name], commit.sha, commit.date, commit.author,
                        commit.message)


def _record(versions: dict[str, list[ModelVersion]], ptr: pointer_mod.Pointer,
            commit: str | None, date: str | None, author: str | None, message: str) -> None:
    name = ptr.model["name"]  # type: ignore[index]
    history = versions.setdefault(name, [])
    if history and history[-1].oid == ptr.oid:
        history[-1].pointer = ptr  # a metadata-only edit: same version, newer metadata
        return
    number = len(history) + 1
    previous = history[-1].meta.get("metrics") if history else None
    history.append(ModelVersion(name, number if commit else None, ptr.oid, ptr, commit,
                                number=number, date=date, author=author, message=message,
                                previous_metrics=previous))


def _add_workspace(repo: Repo, versions: dict[str, list[ModelVersion]],
                   present: dict[str, str]) -> list[MomaError]:
    """Add the workspace's model pointers; returns the errors of those that do not parse
    (any of them may be a model)."""
    pointers, bad = repo.pointers()
    for name in [n for n, path in present.items()
                 if not (repo.root / path).exists()]:
        del present[name]  # deleted in the workspace, not yet committed
    for ptr in pointers:
        model = ptr.model
        if model is None or not isinstance(model.get("name"), str):
            continue
        present[model["name"]] = ptr.pointer_path
        _record(versions, ptr, None, None, None, "")
    return bad


def _tag_events(repo: Repo, chain: Chain | None,
                versions: dict[str, list[ModelVersion]]) -> dict[str, list[TagEvent]]:
    """Every registry tag, placed on the version in force at its commit."""
    events = _read_tags(repo)
    for name, evs in events.items():
        placer = _Placer(chain, versions.get(name, []))
        for event in evs:
            event.version = placer.version_at(event.commit)
    _place_by_content(repo, events, versions)
    return events


def _read_tags(repo: Repo) -> dict[str, list[TagEvent]]:
    """Every GTO-grammar annotated tag, oldest first."""
    events: dict[str, list[TagEvent]] = {}
    for found in repo.git.annotated_tags():
        parsed = tags.parse(found.name)
        if parsed is None:
            continue  # tags outside the grammar are not registry events
        event = TagEvent(found.name, parsed.name, parsed.action, found.commit, found.author,
                         found.email, found.date, found.subject, stage=parsed.stage,
                         semver=parsed.semver, counter=parsed.counter)
        events.setdefault(event.name, []).append(event)
    for evs in events.values():
        evs.sort(key=lambda e: (e.date, e.counter))
    return events


def _place_by_content(repo: Repo, events: dict[str, list[TagEvent]],
                      versions: dict[str, list[ModelVersion]]) -> None:
    """Tags on commits off this first-parent line (say, on a branch that was merged) are
    placed by content: the model's pointer at that commit, read in one `git cat-file
    --batch`, names an oid, and the newest version with that oid is the one tagged."""
    wanted: dict[str, tuple[TagEvent, str]] = {}
    for name, evs in events.items():
        paths = {v.pointer.pointer_path for v in versions.get(name, [])}
        for event in evs:
            if event.version is None:
                for path in paths:
                    wanted[f"{event.commit}:{path}"] = (event, path)
    if not wanted:
        return
    for spec, raw in repo.git.cat_blobs(wanted).items():
        event, path = wanted[spec]
        try:
            ptr = pointer_mod.parse(raw.decode("utf-8"), path)
        except (MomaError, UnicodeDecodeError):
            continue
        if ptr.model is None or ptr.model.get("name") != event.name:
            continue
        for v in versions[event.name]:
            if v.oid == ptr.oid and v.version is not None:
                event.version = v.version


class _Placer:
    """The model version in force at a commit of this line of history (a bisect over the
    positions of the version commits)."""

    def __init__(self, chain: Chain | None, history: list[ModelVersion]) -> None:
        self.order = chain.order if chain else {}
        committed = [(self.order[v.commit], v.version) for v in history
                     if v.commit is not None and v.commit in self.order]
        self.positions = [p for p, _ in committed]
        self.numbers = [n for _, n in committed]

    def version_at(self, commit: str) -> int | None:
        position = self.order.get(commit)
        if position is None:
            return None
        i = bisect.bisect_right(self.positions, position)
        return self.numbers[i - 1] if i else None


def _apply_events(events: dict[str, list[TagEvent]],
                  version_of: Callable[[TagEvent], ModelVersion | None]) -> None:
    """Stages as GTO computes them: a stage is active on a version when its last event for
    that version is an assignment; of those, the most recently assigned version holds it."""
    for evs in events.values():
        active: dict[tuple[int, str], tuple[TagEvent, ModelVersion]] = {}
        for e in evs:
            v = version_of(e)
            if v is None:
                continue
            if e.action == "register" and e.semver not in v.semvers:
                v.semvers.append(e.semver or "")
            elif e.action == "deregister" and e.semver in v.semvers:
                v.semvers.remove(e.semver or "")
            elif e.stage and e.action == "assign":
                active[(id(v), e.stage)] = (e, v)
            elif e.stage and e.action == "unassign":
                active.pop((id(v), e.stage), None)
        holder: dict[str, ModelVersion] = {}
        for e, v in sorted(active.values(), key=lambda ev: (ev[0].date, ev[0].counter)):
            holder[e.stage or ""] = v
            v.active_stages.append(e.stage or "")
        for stage, v in sorted(holder.items()):
            v.stages.append(stage)


# -- resolve ---------------------------------------------------------------------------------


def resolve(repo: Repo, ref: str, *, rev: str | None = None) -> ModelVersion:
    """`NAME` (latest, including uncommitted), `NAME:4`, `NAME:production`, `NAME@REV`
    (latest at a git revision, or the GTO registration `NAME@v1.2.0`)."""
    parsed = refs.parse(ref)
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
        return _tagged(repo, parsed.name)
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
    models: list[ModelVersion]
    broken: list[MomaError]  # pointers that could not be read: reported, never skipped


def list_models(repo: Repo, *, rev: str | None = None, deprecated: bool = False) -> ModelList:
    """The latest version of every model present in the tip (or workspace); models
    deprecated with GTO (`NAME@deprecated`) only when asked for, as `gto show` does."""
    registry = load(repo, rev)
    return ModelList([registry.versions[name][-1] for name in sorted(registry.present)
                      if name in registry.versions
                      and (deprecated or not registry.deprecated(name))], registry.broken)


def pinned(repo: Repo) -> list[ModelVersion]:
    """Committed versions the registry points at: those holding a stage or a semver
    registration (what `push` must keep downloadable)."""
    if repo.git.is_shallow():  # the tags name the commits: no history needed, none fetched
        registries = [_tagged(repo, name) for name in _read_tags(repo)]
    else:
        registries = [load(repo, workspace=False)]
    return [v for registry in registries for history in registry.versions.values()
            for v in history if v.commit is not None and (v.stages or v.semvers)]


def log(repo: Repo, name: str | None = None, *, rev: str | None = None) -> list[ModelVersion]:
    """Versions newest first: of one model, or of all models interleaved by date."""
    if name is not None:
        refs.check_name(name)  # before any git call: names end up in git tag patterns
    registry = load(repo, rev)
    if name is not None:
        return list(reversed(registry.of(name)))
    order = registry.chain.order if registry.chain else {}
    every = [v for history in registry.versions.values() for v in history]
    return sorted(every, key=lambda v: (v.uncommitted, order.get(v.commit or "", 0), v.name),
                  reverse=True)


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


def history(repo: Repo, name: str, *, rev: str | None = None) -> list[HistoryEntry]:
    """Every version commit, registration and stage change of a model, oldest first."""
    name = refs.check_name(name)  # before any git call
    registry = load(repo, rev, workspace=False)
    entries = [HistoryEntry("commit", name, v.version, v.date, v.author, v.commit,
                            message=v.message) for v in registry.versions.get(name, [])]
    entries += [HistoryEntry(e.action, name, e.version, e.date, e.author, e.commit, e.stage,
                             e.semver, e.tag, e.message) for e in registry.events.get(name, [])]
    if not entries:  # unknown -> error; registered but not committed -> no history yet
        (registry if rev else load(repo)).of(name)
    return sorted(entries, key=lambda e: e.date or "")


# -- registering -----------------------------------------------------------------------------


def add(
    repo: Repo,
    name: str,
    target: str,
    *,
    metrics: dict[str, Any] | None = None,
    metrics_file: str | None = None,
    params: dict[str, Any] | None = None,
    description: str | None = None,
    stage: bool = True,
    cwd: Path | None = None,
    extra_model: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
) -> ModelVersion:
    """Track the file at `target` like `moma add` and write its `model:` section.

    Its `lineage:` section is `lineage` when given (see services.lineage.capture); else the
    one already recorded for these bytes, or the one `moma.lock` holds when a pipeline stage
    produced them; lineage recorded for other bytes is dropped, like their metrics.
    `metrics_file` (the file `metrics` were read from) is remembered: a pipeline stage that
    writes it after reading these bytes records its numbers for them."""
    name = refs.check_name(name)
    rel = repo.relpath(target, cwd)
    _check_unique(repo, name, rel)
    before = _current_oid(repo, rel)
    data.add(repo, [rel], stage=False, cwd=repo.root, lineage=lineage)
    ptr = repo.load_pointer(pointer_mod.pointer_path_of(rel))
    if lineage is None:
        kept = ptr.extra.get("lineage") if before == ptr.oid else None
        ptr = ptr.with_extra(lineage=kept or lockfile.output_lineage(repo, rel, ptr.oid))
    encoding, algo = ("dir", modelmeta.UNKNOWN) if ptr.is_dir else modelmeta.sniff(
        str(repo.abspath(rel)))
    # metrics and params describe the bytes they were recorded with: new content starts
    # without them unless given again
    old = (ptr.model or {}) if before == ptr.oid else {
        k: v for k, v in (ptr.model or {}).items()
        if k in ("description", modelmeta.METRICS_FILE)}
    model: dict[str, Any] = {"name": name, "encoding": encoding, "algo": algo}
    model.update(extra_model or {})
    model["params"] = _plain(params if params is not None else old.get("params") or {})
    # metrics given are bound to these bytes; kept ones stay as recorded (a legacy,
    # unbound section is not vouched for by re-adding it)
    recorded = (modelmeta.bind_metrics({}, _plain(metrics), ptr.oid) if metrics is not None
                else {k: v for k, v in old.items() if k in modelmeta.METRICS_KEYS})
    model |= {"metrics": {}} | recorded
    source = repo.relpath(metrics_file, cwd) if metrics_file else old.get(modelmeta.METRICS_FILE)
    if source:
        model[modelmeta.METRICS_FILE] = source
    text = description if description is not None else old.get("description")
    if text:
        model["description"] = text
    ptr = ptr.with_extra(model=model)
    repo.write_pointer(ptr)
    if stage:
        repo.git.add([ptr.pointer_path, posixpath.join(posixpath.dirname(rel), ".gitignore")])
    registry = load(repo)
    return registry.of(name)[-1]


def _current_oid(repo: Repo, rel: str) -> str | None:
    if not (repo.root / pointer_mod.pointer_path_of(rel)).exists():
        return None
    return repo.load_pointer(pointer_mod.pointer_path_of(rel)).oid


def _check_unique(repo: Repo, name: str, rel: str) -> None:
    pointers, _bad = repo.pointers()
    for ptr in pointers:
        if ptr.model and ptr.model.get("name") == name and ptr.path != rel:
            raise ModelError(f"model name {name!r} is already used by {ptr.path}",
                             hint="choose another name, or re-add that file to make a new "
                                  "version")


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Metadata values as YAML/JSON scalars; anything else (an estimator inside params,
    say) is recorded as its repr, never pickled."""
    result: dict[str, Any] = {}
    for key in sorted(values):
        value = values[key]
        if value is None or type(value) in (bool, int, float, str):
            result[str(key)] = value
        elif hasattr(value, "item") and callable(value.item):  # numpy scalars
            result[str(key)] = _plain({"v": value.item()})["v"]
        else:
            result[str(key)] = repr(value)
    return result


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """`k=v` options: v becomes an int, float, bool or null when it reads as one."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ModelError(f"invalid {what} {pair!r}", hint=f"write {what}s as key=value")
        result[key.strip()] = _scalar(value.strip())
    return result


def _scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_metrics_file(repo: Repo, path: str, cwd: Path | None = None) -> dict[str, Any]:
    rel = repo.relpath(path, cwd)
    try:
        doc = json.loads(repo.abspath(rel).read_text())
    except FileNotFoundError:
        raise PathError(f"{path}: no such file") from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ModelError(f"{path}: metrics must be a JSON object of name: value")
    try:  # a "\ud800" escape parses, then fails every write and print of the pointer
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError(f"{path}: holds a string that is not valid UTF-8") from None
    return {str(k): v for k, v in doc.items()}


# -- stages and semver registrations ---------------------------------------------------------


@dataclass
class TagResult:
    created: list[str]
    version: ModelVersion


def tag(repo: Repo, ref: str, stage: str) -> TagResult:
    """Assign `stage` to a committed version: a new `NAME#STAGE#N` tag (history kept)."""
    stage = refs.check_name(stage, "stage name")
    version = _committed(repo, ref)
    name = tags.assign(version.name, stage, tags.next_counter(repo.git.tag_names(),
                                                               version.name))
    _create_tag(repo, name, version.commit or "",
                f"Assigning stage '{stage}' to artifact '{version.name}' "
                f"version '{_gto_version(version)}'")
    return TagResult([name], resolve(repo, ref))


def untag(repo: Repo, name: str, stage: str) -> TagResult:
    """Remove `stage` from every version holding it: `NAME#STAGE!#N` tags, GTO's unassign."""
    name = refs.check_name(name)
    stage = refs.check_name(stage, "stage name")
    registry = load(repo, workspace=False)
    # every version where the stage is still active, or an older assignment would
    # take the stage back once the newest is unassigned
    holders = [v for v in registry.of(name) if stage in v.active_stages]
    if not any(stage in v.stages for v in holders):
        raise ModelError(f"no version of {name} is in stage {stage!r}",
                         hint=f"see 'moma models:list' for the stages of {name}")
    created = []
    for version in holders:
        tag_name = tags.unassign(name, stage, tags.next_counter(repo.git.tag_names(), name))
        _create_tag(repo, tag_name, version.commit or "",
                    f"Unassigning stage '{stage}' to artifact '{name}' "
                    f"version '{_gto_version(version)}'")
        created.append(tag_name)
    return TagResult(created, resolve(repo, f"{name}:{holders[-1].version}"))


def register(repo: Repo, ref: str, semver: str | None = None) -> TagResult:
    """Give a committed version a semver: the GTO registration tag `NAME@v1.2.0`."""
    version = _committed(repo, ref)
    registry = load(repo, workspace=False)
    taken = {s: v for v in registry.of(version.name) for s in v.semvers}
    semver = semver or _bump(list(taken))
    if not refs.SEMVER_RE.fullmatch(semver):
        raise ModelError(f"invalid semver {semver!r}", hint="write it like v1.2.0")
    if semver in taken:
        raise ModelError(f"{version.name} {semver} is already registered "
                         f"(version {taken[semver].version})",
                         hint="pick the next semver, e.g. " + _bump(list(taken)))
    if version.semvers:
        raise ModelError(f"{version.name}:{version.version} is already registered as "
                         f"{version.semvers[0]}")
    name = tags.register(version.name, semver)
    _create_tag(repo, name, version.commit or "",
                f"Registering artifact '{version.name}' version '{semver}'")
    return TagResult([name], resolve(repo, ref))


def _committed(repo: Repo, ref: str) -> ModelVersion:
    """The version a new tag goes on. The whole history first, even for `NAME:production`:
    a tag's GTO counter must exceed every tag's and a semver must be new, and a shallow
    clone lacks the tags on the commits it does not have."""
    refs.parse(ref)  # before any git call
    full_history(repo, "writing a registry tag")
    version = resolve(repo, ref)
    if version.commit is None:
        raise ModelError(f"{version.name} {version.label} is not committed yet",
                         hint="commit its pointer first: git commit -m '...'")
    return version


def _gto_version(version: ModelVersion) -> str:
    return version.semvers[0] if version.semvers else version.commit or ""


def _bump(semvers: list[str]) -> str:
    if not semvers:
        return "v0.0.1"
    parts = max(tuple(int(x) for x in s[1:].split("-")[0].split("+")[0].split("."))
                for s in semvers)
    return f"v{parts[0]}.{parts[1]}.{parts[2] + 1}"


def _create_tag(repo: Repo, name: str, commit: str, message: str) -> None:
    if not repo.git.create_tag(name, commit, message):
        raise ModelError(f"tag {name!r} already exists")


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
    rows += _diff_maps("params", a.meta.get("params") or {}, b.meta.get("params") or {})
    rows += _diff_maps("metrics", a.metrics, b.metrics)
    rows += _diff_maps("lineage", _flat_lineage(a.pointer), _flat_lineage(b.pointer))
    return DiffResult(a, b, rows)


def _model_core(v: ModelVersion) -> dict[str, Any]:
    return {"oid": v.model_id, "encoding": v.meta.get("encoding"), "algo": v.meta.get("algo"),
            "path": v.pointer.path, "size": v.pointer.size}


def _flat_lineage(ptr: pointer_mod.Pointer) -> dict[str, Any]:
    lineage = ptr.extra.get("lineage")
    if not isinstance(lineage, dict):
        return {}
    flat: dict[str, Any] = {}
    for dep in lineage.get("deps") or []:
        if isinstance(dep, dict):
            flat[f"deps.{dep.get('path')}"] = short_oid(str(dep.get("oid", "")))
    for key in ("code",):
        if key in lineage:
            flat[key] = lineage[key]
    for section in ("params", "env"):
        for key, value in (lineage.get(section) or {}).items():
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


# -- get -------------------------------------------------------------------------------------


@dataclass
class GetResult:
    version: ModelVersion
    path: Path
    fetched: bool
    replaced: bool = False  # modified data overwritten with --force


def get(repo: Repo, ref: str, output: str, *, cwd: Path | None = None,
        force: bool = False) -> GetResult:
    """Write a version's bytes to `output` from the cache (fetching them from the remote
    first when missing), leaving git alone. Like checkout, a file there whose bytes are
    not in the cache (unsaved work) is only overwritten with `force`."""
    version = resolve(repo, ref)
    if version.pointer.is_dir:
        raise ModelError(f"{version.name} {version.label} is a directory",
                         hint="use 'moma checkout' for directory models")
    dest = Path(cwd or Path.cwd()) / output
    if dest.is_dir():
        dest = dest / posixpath.basename(version.pointer.path)
    replaced = _unsaved(repo, dest, version.oid)
    if replaced and not force:
        raise CheckoutConflictError(f"{dest}: modified and not in the cache; left as is",
                                    hint="save it with 'moma add', or pass --force to "
                                         "overwrite it")
    fetched = not repo.cache.exists(version.oid)
    source = access.object_path(repo, version.oid)
    from moma_cli.storage.atomic import atomic_open

    with open(source, "rb") as src, atomic_open(dest) as fh:
        while chunk := src.read(1 << 20):
            fh.write(chunk)
    return GetResult(version, dest, fetched, replaced)


def _unsaved(repo: Repo, dest: Path, oid: str) -> bool:
    """Whether something is at `dest` that neither the cache nor the version `oid` being
    written could give back (checkout's rule)."""
    if not os.path.lexists(dest):
        return False
    current = workspace.current_oid(repo, dest)
    return current is None or (current != oid and not repo.cache.exists(current))


def model_file(repo: Repo, ref: str) -> tuple[ModelVersion, Path]:
    """A verified cache path holding the bytes of `ref` (for the Python API)."""
    version = resolve(repo, ref)
    return version, access.object_path(repo, version.oid)
