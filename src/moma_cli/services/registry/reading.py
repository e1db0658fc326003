"""Reading the registry: versions from one first-parent `git log` pass (cached by tip in
the registry index), stages and semvers from the tags.

A model is a pointer with a `model:` section, identified by `model.name` (so moving or
renaming the file keeps its history). Version N is the Nth first-parent commit that
changed the model's content oid. Numbers need the whole history (a shallow clone is
deepened first, or refused: see index.full_history). A stage or semver names a commit, so
in a shallow clone `NAME:production` and `NAME@v1.2.0` are read from the tags alone
(`tagged`), without version numbers.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from moma_cli.core import pointer as pointer_mod
from moma_cli.core import refs, tags
from moma_cli.errors import MomaError
from moma_cli.gitrepo import AnnotatedTag
from moma_cli.services.registry.index import Chain, RegistryIndex
from moma_cli.services.registry.model_version import ModelVersion, Registry, TagEvent
from moma_cli.services.repo import Repo

# -- reading the registry --------------------------------------------------------------------


def load(repo: Repo, rev: str | None = None, *, workspace: bool | None = None) -> Registry:
    """Build the registry from one git log pass (cached by tip) and the tags.

    `workspace` (default: only when reading the current branch) adds uncommitted pointers.
    """
    with _collector_paused():
        return _load(repo, rev, workspace)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A full read builds a few hundred thousand objects that all live on (pointers, tag
    events, the index), no cycles among them; the cycle collector walked them all again
    and again: 0.44 s of a cold 3.6 s read at 10,000 versions and 30,000 tags."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(repo: Repo, rev: str | None, workspace: bool | None) -> Registry:
    index = RegistryIndex(repo)
    tip = repo.git.rev_parse(refs.check_rev(rev)) if rev else repo.git.head()
    # three git processes side by side (rev-list, git log, the tag objects: the slowest,
    # 0.7 s at 30,000 tags under load, read last); the chain first, as deepening a shallow
    # clone may fetch tags
    pending_chain = index.start_chain(tip) if tip else None
    pending_tags = index.start_tags()
    chain = pending_chain() if pending_chain else None
    versions: dict[str, list[ModelVersion]] = {}
    present: dict[str, str] = {}
    broken: list[MomaError] = []
    if chain is not None:
        _replay(index, chain, versions, present)
    if workspace if workspace is not None else rev is None:
        broken = add_workspace(repo, versions, present)
    events = tag_events(pending_tags())
    _place_events(repo, events, chain, versions)
    index.save()
    numbered: dict[tuple[str, int | None], ModelVersion] = {
        (v.name, v.version): v for history in versions.values() for v in history
        if v.version is not None}
    _apply_events(events, lambda e: numbered.get((e.name, e.version)))
    return Registry(versions, present, events, chain, broken)


def tagged(repo: Repo, name: str) -> Registry:
    """The versions of `name` its tags point at, read without the history: in a shallow
    clone a stage or semver still names a commit exactly, only the numbers are unknown.
    A version is its content oid (the commits that hold the same bytes are one version);
    the metadata is HEAD's when HEAD holds those bytes, as in the full registry."""
    index = RegistryIndex(repo)
    events = {name: read_tags(index).get(name, [])}
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
        if ptr.model is not None and ptr.model.name == name:
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
            if ptr is not None and ptr.model is not None:  # the index holds models only
                name = ptr.model.name
                path_model[path] = name
                present[name] = path
                by_name[name] = ptr
                touched.add(name)
        for name in touched:
            if name in by_name:
                _record(versions, name, by_name[name], commit.sha, commit.date, commit.author,
                        commit.message)


def _record(versions: dict[str, list[ModelVersion]], name: str, ptr: pointer_mod.Pointer,
            commit: str | None, date: str | None, author: str | None, message: str) -> None:
    history = versions.setdefault(name, [])
    if history and history[-1].oid == ptr.oid:
        history[-1].pointer = ptr  # a metadata-only edit: same version, newer metadata
        return
    number = history[-1].number + 1 if history else 1  # the history may be a summary's tail
    previous = history[-1].meta.metrics if history else None
    history.append(ModelVersion(name, number if commit else None, ptr.oid, ptr, commit,
                                number=number, date=date, author=author, message=message,
                                previous_metrics=previous))


def add_workspace(repo: Repo, versions: dict[str, list[ModelVersion]],
                   present: dict[str, str]) -> list[MomaError]:
    """Add the workspace's model pointers; returns the errors of those that do not parse
    (any of them may be a model)."""
    pointers, bad = repo.pointers()
    for name in [n for n, path in present.items()
                 if not (repo.root / path).exists()]:
        del present[name]  # deleted in the workspace, not yet committed
    for ptr in pointers:
        if ptr.model is None:
            continue
        present[ptr.model.name] = ptr.pointer_path
        _record(versions, ptr.model.name, ptr, None, None, None, "")
    return bad


def _place_events(repo: Repo, events: dict[str, list[TagEvent]], chain: Chain | None,
                  versions: dict[str, list[ModelVersion]]) -> None:
    """Every registry tag placed on the version in force at its commit."""
    for name, evs in events.items():
        placer = _Placer(chain, versions.get(name, []))
        for event in evs:
            event.version = placer.version_at(event.commit)
    _place_by_content(repo, events, versions)


def read_tags(index: RegistryIndex) -> dict[str, list[TagEvent]]:
    """Every GTO-grammar annotated tag, oldest first."""
    return tag_events(index.tags())


def tag_events(annotated: list[AnnotatedTag]) -> dict[str, list[TagEvent]]:
    """The GTO-grammar tags among `annotated`, as events by model, oldest first."""
    events: dict[str, list[TagEvent]] = {}
    for found in annotated:
        parsed = tags.parse(found.name)
        if parsed is None:
            continue  # tags outside the grammar are not registry events
        event = TagEvent(found.name, parsed.name, parsed.action, found.commit, found.author,
                         found.email, found.date, found.subject, stage=parsed.stage,
                         semver=parsed.semver, counter=parsed.counter,
                         override=tags.parse_override(found.trailers))
        events.setdefault(event.name, []).append(event)
    for evs in events.values():
        evs.sort(key=event_order)
    return events


def event_order(event: TagEvent) -> tuple[str, float]:
    """Tag time, then the tag's counter. GTO writes its tags with the time of day, not
    $GIT_COMMITTER_DATE, so events a script makes in one second tie on time; its simple
    deprecation tag (`NAME@deprecated`, no counter) then counts as the last of them: it is
    the one that ends the model's life."""
    last = event.action == "deprecate" and not event.counter
    return event.date, float("inf") if last else event.counter


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
        if ptr.model is None or ptr.model.name != event.name:
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
        for e, v in sorted(active.values(), key=lambda ev: event_order(ev[0])):
            holder[e.stage or ""] = v
            v.active_stages.append(e.stage or "")
        for stage, v in sorted(holder.items()):
            v.stages.append(stage)
