"""Refs outside branches and tags (experiments' hidden refs), and branches made from them."""

from __future__ import annotations

from dataclasses import dataclass

from moma_cli.errors import GitError
from moma_cli.gitrepo.runner import Runner, parse_trailers


@dataclass(frozen=True)
class RefCommit:
    ref: str
    commit: str
    parent: str  # the first parent ("" for a root commit)
    date: str  # committer date, ISO 8601
    subject: str
    trailers: tuple[tuple[str, str], ...] = ()


class Refs(Runner):
    """`Git`'s part for hidden refs and branches."""

    def create_ref(self, ref: str, sha: str) -> bool:
        """Point a new ref at `sha`; False (nothing written) when it exists already."""
        return bool(self._proc(["update-ref", ref, sha, ""]).returncode == 0)

    def delete_ref(self, ref: str) -> None:
        self.run("update-ref", "-d", ref)

    def ref_commits(self, prefix: str) -> list[RefCommit]:
        """Every ref under `prefix` with its commit's parent, date, subject and trailers, in
        one `git for-each-ref`."""
        out = self.run(
            "for-each-ref", prefix,
            "--format=%(refname)%1f%(objectname)%1f%(parent)%1f%(creatordate:iso-strict)"
            "%1f%(contents:subject)%1f%(contents:trailers:unfold,separator=%x1e)"
        ).decode("utf-8", "replace")
        found = []
        for line in out.split("\n"):  # not splitlines(): it also splits at the \x1e
            ref, sha, parent, date, subject, trailers = (line.split("\x1f") + [""] * 6)[:6]
            if ref:
                found.append(RefCommit(ref, sha, parent.split(" ")[0], date, subject,
                                       parse_trailers(trailers)))
        return found

    def create_branch(self, name: str, sha: str) -> None:
        if name.startswith("-") or not self.ok("check-ref-format", "--branch", name):
            raise GitError(f"invalid branch name {name!r}", hint="e.g. exp/lower-lr")
        self.run("branch", name, sha)
