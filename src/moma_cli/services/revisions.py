"""Pointers as git holds them at revisions: branch and tag tips, every commit, named ones.

Every reader of pointers at a revision comes here: `pointers_at(REV...)` for the trees of
named commits (`moma diff`, `moma ls URL`, experiments), `pointers_in` for a set of commits
(`gc` and `push --all-*` / `--rev` see the same pointers), `pointer_at` for one tracked
path (`moma_cli.api`, `moma get URL`). Read in bulk, one `git ls-tree` per distinct root
tree and one `git cat-file --batch` for every pointer blob. (The registry's index parses
blobs it already has the ids of, and caches them by id; the pre-push hook reads the blobs
the pushed commits wrote.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from moma_cli.core import pointer as pointer_mod
from moma_cli.core import refs
from moma_cli.errors import MomaError, PointerError
from moma_cli.services.repo import Repo


@dataclass(frozen=True)
class Scope:
    """Which commits' pointers count, as `gc` and `push` name them on the command line."""

    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False
    revs: Sequence[str] = ()

    @property
    def empty(self) -> bool:
        return not (self.all_branches or self.all_tags or self.all_commits or self.revs)


@dataclass
class Found:
    pointers: list[tuple[str, pointer_mod.Pointer]] = field(default_factory=list)  # (where, ptr)
    errors: list[tuple[str, MomaError]] = field(default_factory=list)  # (where, why)


def commits(repo: Repo, scope: Scope) -> dict[str, str]:
    """commit -> root tree of every commit the scope names."""
    git = repo.git
    if scope.all_commits:
        found = git.commit_trees("--all")
    else:
        tips = (["--branches"] if scope.all_branches else []) + (
            ["--tags"] if scope.all_tags else [])
        found = git.commit_trees(*tips, walk=False) if tips else {}
    # Checked before git sees them: a revision is never read as an option.
    named = [git.rev_parse(refs.check_rev(rev)) for rev in scope.revs]
    if named:
        found |= git.commit_trees(*named, walk=False)
    return found


def pointers_at(repo: Repo, *revs: str) -> Found:
    """Every pointer in the trees of the commits `revs` name (their history is not walked)."""
    return pointers_in(repo, repo.git.commit_trees(*revs, walk=False))


def pointer_at(repo: Repo, tracked: str, commit: str | None) -> pointer_mod.Pointer | None:
    """The pointer of the tracked path `tracked` at `commit` (None: the work tree), if any."""
    pointer_rel = pointer_mod.pointer_path_of(tracked)
    if commit is None:
        if not (repo.root / pointer_rel).is_file():
            return None
        return repo.load_pointer(pointer_rel)
    raw = repo.git.show(commit, pointer_rel)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PointerError(f"{pointer_rel} at {commit[:10]}: not UTF-8 text") from None
    return pointer_mod.parse(text, pointer_rel)


def pointers_in(repo: Repo, commit_trees: dict[str, str],
                found: dict[str, tuple[str, str]] | None = None) -> Found:
    """Every pointer in these commits' trees, plus the blobs already `found`
    (sha -> (where, path)); each blob is parsed once, named by where it was first seen."""
    git = repo.git
    found = dict(found or {})
    seen_trees: set[str] = set()
    for commit, tree in commit_trees.items():
        if tree in seen_trees:
            continue
        seen_trees.add(tree)
        for path, sha in git.tree_blobs(tree).items():
            if pointer_mod.is_pointer_path(path):
                found.setdefault(sha, (f"commit {commit[:10]}", path))
    blobs = git.cat_blobs(found)
    result = Found()
    for sha, (where, path) in found.items():
        try:
            if sha not in blobs:
                raise MomaError(f"{path}: blob {sha[:10]} is missing from the git repository")
            result.pointers.append((where, pointer_mod.parse(blobs[sha].decode("utf-8"), path)))
        except UnicodeDecodeError:
            result.errors.append((where, MomaError(f"{path}: not UTF-8 text")))
        except MomaError as exc:
            result.errors.append((where, exc))
    return result
