"""The registry summary (`.moma/registry-summary.json`): per model, only the versions that
`models:list`, `models:show NAME` / `NAME:STAGE` and `models:log -n N` show, so those
commands neither parse the registry index (11 MB at 10,000 versions and 30,000 tags) nor
replay every version and place every tag (docs/performance.md: 2 s warm, where this takes
a few milliseconds).

A summary is keyed by the tip commit and a digest of the tag listing (names and object
ids, from the refs alone): a new commit, or a tag made, moved or deleted by any means, is
a new key, so nothing is ever invalidated, and it is computed from the full read
(`reading.load`), so it gives the same answers. It holds committed versions only: the
workspace's uncommitted versions are laid over it on every read, as over the full
registry. A corrupt or foreign file is ignored and rebuilt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moma_cli.atomic import atomic_open
from moma_cli.core import pointer as pointer_mod
from moma_cli.core import refs
from moma_cli.errors import MomaError
from moma_cli.services.registry import reading
from moma_cli.services.registry.model_version import ModelVersion, Registry
from moma_cli.services.repo import MOMA_DIR, Repo

SUMMARY_FILE = "registry-summary.json"
SUMMARY_VERSION = 1
# The newest versions kept of each model: `models:log -n N` up to this many is answered
# here; the global newest N are among the union of every model's newest N.
TAIL = 50
MAX_ENTRIES = 4  # tips (or revisions) remembered, as the index's chains


@dataclass
class Summary:
    """The kept versions of every model (oldest first): each one holding a stage and the
    TAIL newest, then the workspace's."""

    versions: dict[str, list[ModelVersion]]
    present: dict[str, str]  # models in the tip (or workspace) -> pointer path
    deprecated: frozenset[str]  # models whose newest registry event is a deprecation
    order: dict[str, int]  # commit of a kept version -> its first-parent position
    broken: list[MomaError] = field(default_factory=list)  # workspace pointers unreadable

    @property
    def registry(self) -> Registry:
        """A registry of the kept versions: all that resolving `NAME` or `NAME:STAGE` reads
        (the latest version and the stage holders), errors included."""
        return Registry(self.versions, self.present, {}, None, self.broken)


def read(repo: Repo, rev: str | None = None) -> Summary:
    """The summary at `rev` (default HEAD, with the workspace laid over it)."""
    tip = repo.git.rev_parse(refs.check_rev(rev)) if rev else repo.git.head()
    # a shallow clone's numbers would be wrong: the full read deepens it or refuses
    key = f"{tip} {repo.git.tag_listing_digest()}" if tip and not repo.git.is_shallow() else None
    store = _SummaryFile(repo)
    entry = store.entries.get(key) if key else None
    summary = _decoded(entry) if entry is not None else None
    if summary is None:
        registry = reading.load(repo, tip or rev, workspace=False)
        summary = _kept(registry)
        # stored only when no tag changed during the read
        if key and key.endswith(repo.git.tag_listing_digest()):
            store.put(key, _encoded(summary))
    if rev is None:
        summary.broken = reading.add_workspace(repo, summary.versions, summary.present)
    return summary


# -- the file --------------------------------------------------------------------------------


class _SummaryFile:
    def __init__(self, repo: Repo) -> None:
        self.path = repo.root / MOMA_DIR / SUMMARY_FILE
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError, RecursionError):
            data = None
        valid = (isinstance(data, dict) and data.get("version") == SUMMARY_VERSION
                 and isinstance(data.get("entries"), dict))
        self.entries: dict[str, Any] = data["entries"] if valid else {}  # type: ignore[index]

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Best effort, as the index: a read-only `.moma/` must not fail a read command."""
        if not self.path.parent.is_dir():
            return
        self.entries.pop(key, None)
        self.entries[key] = entry
        kept = dict(list(self.entries.items())[-MAX_ENTRIES:])
        try:
            text = json.dumps({"version": SUMMARY_VERSION, "entries": kept},
                              separators=(",", ":"))
            with atomic_open(self.path, fsync=False) as fh:
                fh.write(text.encode())
        except (OSError, TypeError, ValueError):
            pass


# -- to and from JSON ------------------------------------------------------------------------


def _kept(registry: Registry) -> Summary:
    """The summary of a full read: the same version objects, only fewer of them."""
    order = registry.chain.order if registry.chain else {}
    versions = {name: [v for i, v in enumerate(history) if i >= len(history) - TAIL or v.stages]
                for name, history in registry.versions.items()}
    return Summary(versions, dict(registry.present),
                   frozenset(n for n in registry.events if registry.deprecated(n)),
                   {v.commit: order.get(v.commit, 0) for kept in versions.values() for v in kept
                    if v.commit})


def _encoded(summary: Summary) -> dict[str, Any]:
    return {"present": summary.present, "deprecated": sorted(summary.deprecated),
            "models": {name: [_encoded_version(v, summary.order) for v in kept]
                       for name, kept in summary.versions.items()}}


def _encoded_version(v: ModelVersion, order: dict[str, int]) -> list[Any]:
    return [v.number, v.version, v.pointer.pointer_path, pointer_mod.to_mapping(v.pointer),
            v.commit, v.date, v.author, v.message, v.stages, v.semvers, v.active_stages,
            v.previous_metrics, order.get(v.commit or "", 0)]


def _decoded(entry: Any) -> Summary | None:
    """The summary an entry holds, or None when any part of it is not what `_encoded`
    writes (anyone can damage the file)."""
    try:
        versions: dict[str, list[ModelVersion]] = {}
        order: dict[str, int] = {}
        for name, kept in entry["models"].items():
            versions[name] = [_decoded_version(name, fields, order) for fields in kept]
        present = entry["present"]
        deprecated = entry["deprecated"]
        if not (all(type(k) is str and type(v) is str for k, v in present.items())
                and all(type(n) is str for n in deprecated)):
            return None
        return Summary(versions, dict(present), frozenset(deprecated), order)
    except (KeyError, TypeError, ValueError, AttributeError, MomaError):
        return None


def _decoded_version(name: str, fields: list[Any], order: dict[str, int]) -> ModelVersion:
    (number, version, path, mapping, commit, date, author, message, stages, semvers, active,
     previous, position) = fields
    if not (type(number) is int and type(version) is int and type(commit) is str
            and type(position) is int and all(type(f) is str for f in (path, date, author,
                                                                      message))
            and all(type(s) is str for s in (*stages, *semvers, *active))):
        raise ValueError("not a summary entry")
    ptr = pointer_mod.from_mapping(mapping, pointer_mod.data_path_of(path), path)
    if ptr.model is None or ptr.model.name != name:
        raise ValueError("not this model's pointer")
    order[commit] = position
    return ModelVersion(name, version, ptr.oid, ptr, commit, list(stages), number=number,
                        date=date, author=author, message=message, semvers=list(semvers),
                        active_stages=list(active), previous_metrics=previous)
