"""Throwaway work trees for experiments, and commits made with plumbing in them."""

from __future__ import annotations

from pathlib import Path

from moma_cli.gitrepo.runner import Runner


class Worktrees(Runner):
    """`Git`'s part for experiment work trees."""

    def common_dir(self) -> Path:
        """The .git directory every work tree of this repository shares."""
        out = self.run("rev-parse", "--git-common-dir").decode().strip()
        path = Path(out)
        return path if path.is_absolute() else self.root / path

    def worktree_add(self, path: Path, rev: str) -> None:
        """A detached work tree of `rev` at `path`, with its own index and HEAD."""
        self.run("worktree", "add", "--detach", "--quiet", str(path), rev)

    def worktree_remove(self, path: Path) -> None:
        """Remove a work tree made by `worktree_add`, whatever the run left in it."""
        self.run("worktree", "remove", "--force", "--force", str(path), check=False)
        import shutil  # 3 ms at import, and every command loads this module

        shutil.rmtree(path, ignore_errors=True)
        self.run("worktree", "prune", check=False)

    def commit_index(self, message: str, parent: str) -> str:
        """A commit of what the index holds, with plumbing: no hook runs, no HEAD moves."""
        tree = self.run("write-tree").decode().strip()
        return self.run("commit-tree", tree, "-p", parent, input=message.encode()).decode().strip()
