"""Source repositories (`moma ls / get / import URL`): cloned with GitPython, the only
module that imports it (lazily), and fetched from with the git binary."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from moma_cli.errors import GitError
from moma_cli.gitrepo.history import History
from moma_cli.gitrepo.runner import SOURCE_ENV


def _git_message(stderr: str) -> str:
    """git's first fatal line of GitPython's `stderr: '...'` report."""
    lines = [line.strip().removeprefix("stderr:").strip().strip("'").strip()
             for line in str(stderr).splitlines()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or [line for line in lines if line][-1:] or ["unknown error"])[0]


class Clone(History):
    """`Git`'s part for source repositories."""

    @classmethod
    def clone_source(cls, url: str, dest: Path) -> Self:
        """A shallow clone of `url` with no work tree: moma reads the source's pointers from
        git's objects, so no file the source chose is ever written here. The URL was
        checked (core.sources.check_url); GIT_ALLOW_PROTOCOL holds git to the same list."""
        import git

        try:
            git.Repo.clone_from(url, dest, depth=1, no_checkout=True, no_single_branch=True,
                                env=SOURCE_ENV)
        except git.GitCommandError as exc:
            raise GitError(f"git clone {url} failed: {_git_message(exc.stderr)}",
                           hint="check the URL and that you can 'git clone' it") from None
        return cls(dest)

    def fetch_source(self, rev: str | None, *, tags: bool = False) -> str:
        """Fetch `rev` (None: the source's default branch) from `origin` of a source clone,
        one commit deep unless the whole history is already here; the commit it names.
        With `tags`, a clone with its whole history also takes the source's tags as they
        are now (the registry's stages move, and GTO deletes tags): a shallow one gets
        them when the registry deepens it (`unshallow`).
        The git binary, not GitPython: `run` drops a GIT_DIR leaked from a hook, which
        GitPython would pass on (and fetch into that repository)."""
        shallow = self.is_shallow()
        depth = ["--depth=1"] if shallow else []
        try:
            self.run("fetch", "--quiet", *depth, "origin", rev or "HEAD", env=SOURCE_ENV)
            commit = self.rev_parse("FETCH_HEAD")
            if tags and not shallow:
                self.run("fetch", "--quiet", "--prune", "--prune-tags", "--tags", "origin",
                         env=SOURCE_ENV)
        except GitError as exc:
            what = f"revision {rev!r}" if rev else "the default branch"
            raise GitError(f"{exc.message} (fetching {what} of the source)",
                           hint="check that the source repository has it" if rev else
                           "pass --rev with a branch or tag of the source") from None
        return commit

    def follow_origin(self) -> None:
        """Bring a source clone's branches and tags to what `origin` has now: a tag moved
        there is moved here (`--force`), one deleted there is deleted here (`--prune-tags`);
        a plain `git fetch` keeps both as they were, so a server would go on serving a
        stage its authors moved away (`moma serve --repo`). A shallow clone gets the whole
        history too: version numbers count it."""
        deepen = ["--unshallow"] if self.is_shallow() else []
        try:
            self.run("fetch", "--quiet", *deepen, "--force", "--prune", "--prune-tags",
                     "origin", env=SOURCE_ENV)
        except GitError as exc:
            raise GitError(f"{exc.message} (fetching the tags of the source)",
                           hint="check that the source repository is reachable") from None
