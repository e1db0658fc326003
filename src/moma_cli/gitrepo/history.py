"""Commits: naming them, walking them, what they wrote, making one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from moma_cli.errors import GitError
from moma_cli.gitrepo.runner import Runner

# One commit of `first_parent_log`: a record separator, then the fields a unit apart (the
# message may hold newlines, so git's own separators would not do).
_LOG_FORMAT = "%x1e%H%x1f%aI%x1f%an%x1f%ae%x1f%B%x1f"

Change = tuple[str, str | None]  # (path, blob sha written; None when the commit deleted it)


class History(Runner):
    """`Git`'s part for commits."""

    def head(self) -> str | None:
        out = self.run("rev-parse", "--verify", "-q", "HEAD", check=False).strip()
        return out.decode() or None

    def rev_parse(self, rev: str) -> str:
        if rev.startswith("-"):
            raise GitError(f"invalid revision {rev!r}")
        out = self.run("rev-parse", "--verify", "-q", rev + "^{commit}", check=False).strip()
        if not out:
            raise GitError(f"unknown git revision {rev!r}", hint="see 'git log' for revisions")
        return out.decode()

    def is_shallow(self) -> bool:
        return self.run("rev-parse", "--is-shallow-repository").strip() == b"true"

    def has_commit(self, sha: str) -> bool:
        """Whether `sha` is a commit this repository has (not a tag that would peel to one)."""
        return self.run("cat-file", "-t", sha, check=False).strip() == b"commit"

    def peels_to_commit(self, sha: str) -> bool:
        """Whether this repository has `sha` and it is a commit or a tag of one (what a
        pre-push hook's remote side names may be either)."""
        return self.ok("cat-file", "-e", sha + "^{commit}")

    def commit_headers(self, shas: Sequence[str]) -> dict[str, tuple[str, str, str, str]]:
        """sha -> (author date in ISO 8601, author name, author email, message) of the
        named commits, in one `git log --no-walk`."""
        if not shas:
            return {}
        out = self.run("log", "--no-walk=unsorted", "--format=%H%x1f%aI%x1f%an%x1f%ae%x1f%B%x1e",
                       *shas, "--").decode("utf-8", "replace")
        result = {}
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) == 5:
                result[fields[0]] = (fields[1], fields[2], fields[3], fields[4].strip())
        return result

    def commit_trees(self, *revs: str, walk: bool = True) -> dict[str, str]:
        """commit -> root tree sha for `git rev-list REVS` (just the named tips unless `walk`).

        `revs` are rev-list arguments such as `--branches`, `--tags`, `--all`, `--not`.
        """
        args = ["rev-list", "--format=%T", *([] if walk else ["--no-walk"]), *revs]
        lines = self.run(*args).decode().split()
        # Output alternates "commit <sha>" and "<tree>".
        return {lines[i + 1]: lines[i + 2] for i in range(0, len(lines) - 2, 3)
                if lines[i] == "commit"}

    def stash_commits(self) -> list[str]:
        """Every stash entry's commits: the work-tree commit and its index/untracked parents.

        The first parent is the commit the stash was made on, which is history, not stash.
        """
        if not self.ok("rev-parse", "--verify", "-q", "refs/stash"):
            return []
        out = self.run("log", "-g", "--format=%H %P", "refs/stash").decode()
        result: list[str] = []
        for line in out.splitlines():
            shas = line.split()
            result += shas[:1] + shas[2:]
        return result

    def written_blobs(self, revs: Sequence[str], pathspec: str = "*.moma") -> list[tuple[str, str]]:
        """(path, blob sha) of every version of `pathspec` written by the commits that
        `git rev-list REVS` names (additions and modifications; deletions carry no data)."""
        out = self.run("log", "--format=", "--raw", "-z", "--no-renames", "--no-abbrev",
                       "--diff-filter=AMT", *revs, "--", pathspec).decode()
        fields = [f for f in out.split("\0") if f.strip()]
        # -z --raw: ":old_mode new_mode old_sha new_sha status" then the path, as two fields
        return [(fields[i + 1], fields[i].split()[3]) for i in range(0, len(fields) - 1, 2)
                if fields[i].lstrip("\n").startswith(":")]

    def first_parent_log(self, revision: str, pathspec: str = "*.moma",
                         ) -> list[tuple[str, str, str, str, str, list[Change]]]:
        """(sha, ISO date, author, email, message, changes) of the first-parent commits of
        `revision` (oldest first) that touched `pathspec`, in one `git log` pass.

        `--first-parent` also makes git diff a merge against its first parent only, so a
        merged branch counts as one change on this branch.
        """
        return self.start_first_parent_log(revision, pathspec)()

    def start_first_parent_log(self, revision: str, pathspec: str = "*.moma",
                               ) -> Callable[[], list[tuple[str, str, str, str, str,
                                                            list[Change]]]]:
        """`first_parent_log`, started now: call the result for the commits."""
        started = self.start(
            "log", "--first-parent", "--reverse", "--no-renames", "--raw", "--no-abbrev",
            "-z", f"--format={_LOG_FORMAT}", revision, "--", pathspec)
        return lambda: _log_commits(started.output())

    def first_parent_order(self, tip: str) -> list[str]:
        """Every first-parent commit of `tip`, oldest first."""
        return self.start_first_parent_order(tip)()

    def start_first_parent_order(self, tip: str) -> Callable[[], list[str]]:
        """`first_parent_order`, started now: call the result for the commits."""
        started = self.start("rev-list", "--first-parent", "--reverse", tip)
        return lambda: started.output().decode().split()

    def last_commit(self, path: str, rev: str | None = None) -> str | None:
        """The newest commit of `rev` (default HEAD) that touched `path`."""
        found = self.path_commits(path, rev, limit=1)
        return found[0] if found else None

    def path_commits(self, path: str, rev: str | None = None, pickaxe: str | None = None,
                     limit: int | None = None) -> list[str]:
        """Commits of `rev` (default HEAD) that touched `path`, newest first; with
        `pickaxe`, only those that changed how often that string occurs in it."""
        args = ["log", "--format=%H"] + ([f"-n{limit}"] if limit else []) + (
            [f"-S{pickaxe}"] if pickaxe else [])
        out = self.run(*args, rev or "HEAD", "--", path, check=False)
        return out.decode().split()

    def changed_paths(self, a: str, b: str) -> list[tuple[str, str]]:
        """(status letter, path) of the files that differ between commits `a` and `b`."""
        fields = self.run("diff", "--name-status", "-z", "--no-renames", a, b,
                          "--").decode().split("\0")
        return [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]

    def commit(self, message: str, paths: Sequence[str]) -> str:
        """Commit exactly `paths` (whatever else is staged stays staged); the new commit."""
        self.run("commit", "-q", "-m", message, "--only", "--", *paths)
        return self.run("rev-parse", "HEAD").decode().strip()


def _log_commits(out: bytes) -> list[tuple[str, str, str, str, str, list[Change]]]:
    commits = []
    for record in out.decode("utf-8", "replace").split("\x1e")[1:]:
        sha, date, author, email, message, raw = record.split("\x1f", 5)
        commits.append((sha, date, author, email, message.strip(), _raw_changes(raw)))
    return commits


def _raw_changes(raw: str) -> list[Change]:
    fields = [f for f in raw.split("\0") if f]
    changes: list[Change] = []
    for meta, path in zip(fields[::2], fields[1::2], strict=False):
        parts = meta.lstrip("\n:").split()
        if len(parts) < 5:
            continue
        new, status = parts[3], parts[4]
        changes.append((path, None if status.startswith("D") else new))
    return changes
