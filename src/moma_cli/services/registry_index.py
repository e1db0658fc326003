"""The registry index under `.moma/`: what one `git log` pass and one `git cat-file
--batch` learned, kept so the next command does not ask again.

- `chains[tip]`: the first-parent commits of `tip` that touched a pointer, with the
  pointer blobs they wrote, plus the order of every first-parent commit (to place tags
  that point at commits which changed no pointer). Keyed by the tip commit: a new HEAD
  is a new key, so there is nothing to invalidate.
- `blobs[sha]`: the parsed pointer of a model (or null for other pointers). Keyed by the
  git blob id, so always valid.
Tags are not cached here: one `git for-each-ref` reads all of them (milliseconds for
thousands), so a tag moved or deleted with plain git is seen at once. Their parsed form
is memoized by the tag object id, which changes whenever a tag is re-created.
A corrupt or foreign index file is ignored and rebuilt.

A shallow clone's history stops at its boundary, so numbering versions there would
restart them (a `--depth 1` CI checkout tagged the real v3 as `clf:1`). No chain is ever
computed in one: `full_history` deepens the clone from `origin` first, or refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moma_cli.core import pointer as pointer_mod
from moma_cli.errors import GitError, MomaError
from moma_cli.services.progress import NOTICES
from moma_cli.services.repo import MOMA_DIR, Repo
from moma_cli.storage.atomic import atomic_open

INDEX_FILE = "registry-index.json"
# 2: no chain is computed in a shallow clone; a version-1 index may hold one that was,
# under a tip that deepening does not change
INDEX_VERSION = 2
MAX_CHAINS = 4
_LOG_FORMAT = "%x1e%H%x1f%aI%x1f%an%x1f%ae%x1f%B%x1f"
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
            if isinstance(data, dict) and data.get("version") == INDEX_VERSION:
                return data
        except (OSError, ValueError):
            pass
        return {"version": INDEX_VERSION, "chains": {}, "blobs": {}}

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
    def chain(self, tip: str) -> Chain:
        full_history(self.repo, "numbering model versions")
        chains: dict[str, Any] = self.data["chains"]
        cached = chains.get(tip)
        if cached is None:
            order = self._order(tip)
            cached = {"commits": self._extend(chains, tip, order), "order": order}
            chains[tip] = cached
            for old in list(chains)[:-MAX_CHAINS]:
                del chains[old]
            self.dirty = True
        commits = [Commit(c[0], c[1], c[2], c[3], c[4], [(p, b) for p, b in c[5]])
                   for c in cached["commits"]]
        return Chain(commits, {sha: i for i, sha in enumerate(cached["order"])})

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
        """One `git log` pass: first-parent commits touching pointers, with their blobs.

        `--first-parent` also makes git diff a merge against its first parent only, so a
        merged branch counts as one change on this branch.
        """
        out = self.repo.git.run(
            "log", "--first-parent", "--reverse", "--no-renames", "--raw", "--no-abbrev",
            "-z", f"--format={_LOG_FORMAT}", revision, "--", "*.moma").decode("utf-8", "replace")
        commits: list[list[Any]] = []
        for record in out.split("\x1e")[1:]:
            sha, date, author, email, message, raw = record.split("\x1f", 5)
            commits.append([sha, date, author, email, message.strip(), _raw_changes(raw)])
        return commits

    def _order(self, tip: str) -> list[str]:
        out = self.repo.git.run("rev-list", "--first-parent", "--reverse", tip)
        return out.decode().split()

    # -- pointer blobs ----------------------------------------------------------------------
    def pointers(self, shas: set[str], paths: dict[str, str]) -> dict[str, pointer_mod.Pointer]:
        """blob sha -> model Pointer for those blobs that hold a model pointer."""
        blobs: dict[str, Any] = self.data["blobs"]
        missing = [s for s in shas if s not in blobs]
        if missing:
            for sha, raw in self.repo.git.cat_blobs(missing).items():
                blobs[sha] = _model_mapping(raw, paths[sha])
            self.dirty = True
        result = {}
        for sha in shas:
            doc = blobs.get(sha)
            if doc is not None:
                ptr_path = paths[sha]
                result[sha] = pointer_mod.from_mapping(
                    doc, pointer_mod.data_path_of(ptr_path), ptr_path)
        return result


def _raw_changes(raw: str) -> list[tuple[str, str | None]]:
    fields = [f for f in raw.split("\0") if f]
    changes: list[tuple[str, str | None]] = []
    for meta, path in zip(fields[::2], fields[1::2], strict=False):
        parts = meta.lstrip("\n:").split()
        if len(parts) < 5:
            continue
        new, status = parts[3], parts[4]
        changes.append((path, None if status.startswith("D") else new))
    return changes


def _model_mapping(raw: bytes, pointer_path: str) -> dict[str, Any] | None:
    """The pointer as a JSON-able mapping if it is a valid model pointer, else None.

    A quick byte test first: most pointers in a big repo are data, not models.
    """
    if b"model:" not in raw:
        return None
    try:
        ptr = pointer_mod.parse(raw.decode("utf-8"), pointer_path)
    except (MomaError, UnicodeDecodeError):
        return None
    if ptr.model is None or not isinstance(ptr.model.get("name"), str):
        return None
    doc = pointer_mod.to_mapping(ptr)
    return json.loads(json.dumps(doc, default=str))

