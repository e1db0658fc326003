"""The registry index under `.moma/`: what one `git log` pass and one `git cat-file
--batch` learned, kept so the next command does not ask again.

- `chains[tip]`: the first-parent commits of `tip` that touched a pointer, with the
  pointer blobs they wrote, plus the order of every first-parent commit (to place tags
  that point at commits which changed no pointer). Keyed by the tip commit: a new HEAD
  is a new key, so there is nothing to invalidate.
- `blobs[sha]`: the parsed pointer of a model (or null for other pointers). Keyed by the
  git blob id, so always valid.
- `tags[tag object id]`: what the tag object says (commit, tagger, date, subject,
  trailers), or null for a tag that is not an annotated tag of a commit. Tag objects are
  immutable, so the id is the key. Which tags exist is asked of git every time, from the
  refs alone (`git for-each-ref` of names and ids: 0.05 s for 30,000 packed tags, where
  reading every tag object took 0.3-0.7 s), so a tag moved or deleted with plain git is
  seen at once; a new id sends one full read of the tags.
A corrupt or foreign index file is ignored and rebuilt.

A shallow clone's history stops at its boundary, so numbering versions there would
restart them (a `--depth 1` CI checkout tagged the real v3 as `clf:1`). No chain is ever
computed in one: `full_history` deepens the clone from `origin` first, or refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moma_cli.atomic import atomic_open
from moma_cli.core import pointer as pointer_mod
from moma_cli.errors import GitError, MomaError
from moma_cli.gitrepo import AnnotatedTag
from moma_cli.services.progress import NOTICES
from moma_cli.services.repo import MOMA_DIR, Repo

INDEX_FILE = "registry-index.json"
# 2: no chain is computed in a shallow clone; a version-1 index may hold one that was,
# under a tip that deepening does not change. 3: tags.
INDEX_VERSION = 3
MAX_CHAINS = 4
UNSHALLOW_HINT = ("run 'git fetch --unshallow' (in CI check out the whole history: "
                  "GitHub Actions 'fetch-depth: 0', GitLab 'GIT_DEPTH: 0')")


class ShallowCloneError(MomaError):
    pass


def full_history(repo: Repo, why: str) -> None:
    """Make sure the whole history is here before anything counts commits: deepen a
    shallow clone from `origin` (saying so), or refuse with the fix."""
    git = repo.git
    if not git.is_shallow():
        return
    if git.remote_url("origin") is None:
        raise ShallowCloneError(f"this is a shallow clone and {why} needs the whole history "
                                "(no 'origin' remote to fetch it from)", hint=UNSHALLOW_HINT)
    NOTICES(f"shallow clone: fetching the whole history from 'origin' (git fetch "
            f"--unshallow): {why} needs it")
    try:
        git.unshallow("origin")
    except GitError as exc:
        raise ShallowCloneError(f"this is a shallow clone and {why} needs the whole history; "
                                f"fetching it from 'origin' failed ({exc.message})",
                                hint=UNSHALLOW_HINT) from None
    if git.is_shallow():  # the fetch succeeds from an origin that is itself shallow
        raise ShallowCloneError(f"this is a shallow clone and {why} needs the whole history; "
                                "'origin' does not have it either (a shallow clone itself)",
                                hint="point 'origin' at a complete repository, then run "
                                     "'git fetch --unshallow'")


@dataclass
class Commit:
    sha: str
    date: str  # ISO 8601 with the author's offset
    author: str
    email: str
    message: str
    changes: list[tuple[str, str | None]]  # (pointer path, new blob or None when deleted)


@dataclass
class Chain:
    commits: list[Commit]  # oldest first, only those that touched a pointer
    order: dict[str, int]  # every first-parent commit -> position (0 = root)


class RegistryIndex:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.path = repo.root / MOMA_DIR / INDEX_FILE
        self.data = self._load()
        self.dirty = False

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError, RecursionError):
            data = None
        if _valid_index(data):
            return data  # type: ignore[no-any-return]
        return {"version": INDEX_VERSION, "chains": {}, "blobs": {}, "tags": {}}

    def save(self) -> None:
        """Write the index back, best effort: it is only a cache, so a read-only `.moma/`
        must not fail a read command, and no fsync (a torn file is invalid JSON, which is
        ignored and rebuilt)."""
        if not self.dirty or not self.path.parent.is_dir():
            return
        kept = {blob for chain in self.data["chains"].values()
                for commit in chain["commits"] for _path, blob in commit[5] if blob}
        self.data["blobs"] = {k: v for k, v in self.data["blobs"].items() if k in kept}
        try:
            with atomic_open(self.path, fsync=False) as fh:
                fh.write(json.dumps(self.data, separators=(",", ":")).encode())
        except OSError:
            pass
        self.dirty = False

    # -- history ----------------------------------------------------------------------------
    def start_chain(self, tip: str) -> Callable[[], Chain]:
        """Start reading the chain of `tip`; call the result for it. On a cold index
        `rev-list` and `git log` run side by side while the caller does something else
        (reads the tags)."""
        full_history(self.repo, "numbering model versions")
        chains: dict[str, Any] = self.data["chains"]
        if tip in chains:
            return lambda: _chain(chains[tip])
        pending_order = self.repo.git.start_first_parent_order(tip)
        # nothing to extend: the whole log, at once; else only what follows a cached tip
        pending_log = None if chains else self.repo.git.start_first_parent_log(tip)

        def finish() -> Chain:
            order = pending_order()
            touched = ([list(commit) for commit in pending_log()] if pending_log
                       else self._extend(chains, tip, order))
            chains[tip] = cached = {"commits": touched, "order": order}
            for old in list(chains)[:-MAX_CHAINS]:
                del chains[old]
            self.dirty = True
            return _chain(cached)
        return finish

    def _extend(self, chains: dict[str, Any], tip: str, order: list[str]) -> list[list[Any]]:
        """Commits of `tip`: when a cached tip is on its first-parent line (a branch moved
        forward), only the commits since then are read."""
        positions = {sha: i for i, sha in enumerate(order)}
        base = max((t for t in chains if t in positions), key=positions.__getitem__,
                   default=None)
        if base is None:
            return self._log(tip)
        return list(chains[base]["commits"]) + self._log(f"{base}..{tip}")

    def _log(self, revision: str) -> list[list[Any]]:
        """One `git log` pass: first-parent commits touching pointers, with their blobs
        (as lists: the index is JSON)."""
        return [list(commit) for commit in self.repo.git.first_parent_log(revision)]

    # -- tags -------------------------------------------------------------------------------
    def tags(self) -> list[AnnotatedTag]:
        """Every annotated tag of a commit under refs/tags, sorted by name."""
        return self.start_tags()()

    def start_tags(self) -> Callable[[], list[AnnotatedTag]]:
        """`tags`, started now: the tag objects are read (all at once, by a git process
        that runs while the caller reads the history) only when an id is new."""
        known: dict[str, Any] = self.data["tags"]
        # a cold index knows no tag: no listing to compare (0.02-0.1 s of show-ref)
        listing = self.repo.git.tag_ids() if known else None
        if listing is not None and all(oid in known for _name, oid in listing):
            return lambda: [AnnotatedTag(name, f[0], f[1], f[2], f[3], f[4],
                                         tuple((k, v) for k, v in f[5]) if f[5] else ())
                            for name, oid in listing if (f := known[oid])]
        pending = self.repo.git.start_tag_objects()

        def finish() -> list[AnnotatedTag]:
            read = pending()  # a tag may have moved since the listing: this is newer
            fresh = {oid: None if t is None else [
                t.commit, t.author, t.email, t.date, t.subject, [list(p) for p in t.trailers]]
                for _name, oid, t in read}
            if fresh != known:  # (a repository without tags: nothing to write)
                self.data["tags"] = fresh
                self.dirty = True
            return [t for _name, _oid, t in read if t is not None]
        return finish

    # -- pointer blobs ----------------------------------------------------------------------
    def pointers(self, shas: set[str], paths: dict[str, str]) -> dict[str, pointer_mod.Pointer]:
        """blob sha -> model Pointer for those blobs that hold a model pointer."""
        blobs: dict[str, Any] = self.data["blobs"]
        result: dict[str, pointer_mod.Pointer | None] = {}
        for sha in shas & blobs.keys():
            result[sha] = _model_pointer(blobs[sha], paths[sha])
        # not cached, or cached as something that is not a model pointer (a damaged index)
        missing = [s for s in shas if s not in result or (blobs[s] and not result[s])]
        if missing:
            for sha, raw in self.repo.git.cat_blobs(missing).items():
                blobs[sha], result[sha] = _model_entry(raw, paths[sha])
            self.dirty = True
        return {sha: ptr for sha, ptr in result.items() if ptr is not None}


def _chain(cached: dict[str, Any]) -> Chain:
    commits = [Commit(c[0], c[1], c[2], c[3], c[4], [(p, b) for p, b in c[5]])
               for c in cached["commits"]]
    return Chain(commits, {sha: i for i, sha in enumerate(cached["order"])})


def _valid_index(data: Any) -> bool:
    """Whether `data` has the index's shape throughout: the file is only a cache, anyone
    can damage it, and a bad one is rebuilt rather than read."""
    if not isinstance(data, dict) or type(data.get("version")) is not int \
            or data["version"] != INDEX_VERSION:
        return False
    chains, blobs, tags = data.get("chains"), data.get("blobs"), data.get("tags")
    if not isinstance(chains, dict) or not isinstance(blobs, dict) \
            or not isinstance(tags, dict) or not all(map(_valid_tag, tags.values())):
        return False
    if not all(doc is None or isinstance(doc, dict) for doc in blobs.values()):
        return False
    for chain in chains.values():
        if not isinstance(chain, dict) or not isinstance(chain.get("order"), list) \
                or not all(isinstance(sha, str) for sha in chain["order"]) \
                or not isinstance(chain.get("commits"), list):
            return False
        for commit in chain["commits"]:
            if not isinstance(commit, list) or len(commit) != 6 \
                    or not all(isinstance(f, str) for f in commit[:5]) \
                    or not isinstance(commit[5], list):
                return False
            for change in commit[5]:
                if not isinstance(change, list) or len(change) != 2 \
                        or not isinstance(change[0], str) \
                        or not (change[1] is None or isinstance(change[1], str)):
                    return False
    return True


def _valid_tag(fields: Any) -> bool:
    """Plain checks, no generators: an index holds one entry per tag, 30,000 in the
    benchmark, and this runs on every read."""
    if fields is None:
        return True
    if type(fields) is not list or len(fields) != 6:
        return False
    commit, author, email, date, subject, trailers = fields
    return (type(commit) is str and type(author) is str and type(email) is str
            and type(date) is str and type(subject) is str and type(trailers) is list
            and (not trailers or all(type(p) is list and len(p) == 2 and type(p[0]) is str
                                     and type(p[1]) is str for p in trailers)))


def _model_pointer(doc: Any, pointer_path: str) -> pointer_mod.Pointer | None:
    """The model pointer a cached mapping holds, or None (not a model, or not valid)."""
    if doc is None:
        return None
    try:
        ptr = pointer_mod.from_mapping(doc, pointer_mod.data_path_of(pointer_path),
                                       pointer_path)
    except MomaError:
        return None
    return ptr if ptr.model is not None else None


def _model_entry(raw: bytes, pointer_path: str,
                 ) -> tuple[dict[str, Any] | None, pointer_mod.Pointer | None]:
    """The JSON-able mapping the index keeps for a blob and its model pointer, or (None,
    None) when it is not a valid model pointer. The pointer is the one the kept mapping
    gives back on the next read (so a cold read and a warm one agree), built here
    without a second validation when the mapping is plain JSON already.

    A quick byte test first: most pointers in a big repo are data, not models.
    """
    if b"model:" not in raw:
        return None, None
    try:
        ptr = pointer_mod.parse(raw.decode("utf-8"), pointer_path)
    except (MomaError, UnicodeDecodeError):
        return None, None
    if ptr.model is None:
        return None, None
    doc = pointer_mod.to_mapping(ptr)
    if _is_json(doc):
        return doc, ptr
    doc = json.loads(json.dumps(doc, default=str))  # YAML dates, binary, int keys...
    return doc, _model_pointer(doc, pointer_path)


_JSON_SCALARS = frozenset((str, int, float, bool, type(None)))


def _is_json(value: Any) -> bool:
    """Whether `value` comes back from JSON as it is (str keys, JSON scalars). A loop
    over a mapping, not `all()` over a generator: it runs on every blob of a cold read."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (type(item) not in _JSON_SCALARS
                                        and not _is_json(item)):
                return False
        return True
    if kind is list:
        return all(type(item) in _JSON_SCALARS or _is_json(item) for item in value)
    return kind in _JSON_SCALARS
