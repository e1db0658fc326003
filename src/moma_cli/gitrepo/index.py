"""The work tree and the index: what git tracks, staging, removing, restoring."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from moma_cli.gitrepo.runner import Runner


class Index(Runner):
    """`Git`'s part for what git tracks and stages."""

    def tracked(self, paths: Sequence[str]) -> list[str]:
        if not paths:
            return []
        out = self.run("ls-files", "-z", "--cached", "--", *paths)
        return [p for p in out.decode().split("\0") if p]

    def add(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            self.run("add", "--", *paths)

    def stage(self, paths: Iterable[str]) -> None:
        """Stage `paths` as the work tree has them now: new or changed files added, deleted
        ones removed from the index (and a deleted one git never knew left alone)."""
        paths = list(dict.fromkeys(paths))
        gone = [p for p in paths if not os.path.lexists(self.root / p)]
        self.add([p for p in paths if p not in gone])
        self.untrack(gone)

    def untrack(self, paths: Sequence[str]) -> None:
        """Out of the index, the files left on disk; a path git does not track is no error."""
        if paths:
            self.run("rm", "--cached", "--quiet", "--ignore-unmatch", "--", *paths)

    def checkout_paths(self, rev: str, paths: Sequence[str]) -> None:
        """`paths` as `rev` has them, into the index and the work tree."""
        if paths:
            self.run("checkout", "-q", rev, "--", *paths)

    def pointer_files(self) -> list[str]:
        """Tracked and untracked-not-ignored `*.moma` files of the work tree."""
        out = self.run("ls-files", "-z", "--cached", "--others", "--exclude-standard",
                       "--deduplicate", "--", "*.moma")
        return sorted({p for p in out.decode().split("\0") if p and os.path.basename(p) != ".moma"})

    def index_blobs(self, pathspec: str = "*.moma") -> dict[str, str]:
        """path -> blob sha of what the index holds for `pathspec`."""
        out = self.run("ls-files", "-z", "--stage", "--", pathspec).decode()
        result = {}
        for record in filter(None, out.split("\0")):
            meta, path = record.split("\t", 1)
            result[path] = meta.split()[1]
        return result

    def index_entries(self, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
        """path -> (mode, blob sha) of the index's regular files among `paths`; symlinks and
        submodules are left out. The whole index is read: 100k paths overflow a command line."""
        wanted, result = set(paths), {}
        for record in filter(None, self.run("ls-files", "-z", "--stage").decode().split("\0")):
            meta, path = record.split("\t", 1)
            mode, sha = meta.split()[:2]
            if path in wanted and mode in ("100644", "100755"):
                result[path] = (mode, sha)
        return result

    def matching(self, pathspec: str) -> list[str]:
        """Index paths matching a pathspec (with its magic, e.g. `:(glob)`, `:(attr:...)`)."""
        return self.tracked([pathspec])

    def remove_cached(self, paths: Sequence[str]) -> None:
        """`git rm --cached` (the files stay on disk)."""
        self._rm(paths, "--cached")

    def remove(self, paths: Sequence[str]) -> None:
        """`git rm`: from the index and the disk."""
        self._rm(paths)

    def _rm(self, paths: Sequence[str], *flags: str) -> None:
        # --force, as the callers have already verified (or converted) what the files hold
        if paths:
            self.run("rm", "-q", *flags, "--force", "--pathspec-from-file=-",
                     "--pathspec-file-nul",
                     input="".join(":(literal)" + p + "\0" for p in paths).encode())

    def restore_index(self, entries: dict[str, tuple[str, str]]) -> None:
        """Put index entries (path -> (mode, blob sha)) back as they were."""
        self.run("update-index", "-z", "--index-info", input="".join(
            f"{mode} {sha}\t{path}\0" for path, (mode, sha) in entries.items()).encode())

    def restore_worktree(self, rev: str, paths: Sequence[str]) -> None:
        """Write `paths` as `rev` has them into the work tree only (the index is untouched)."""
        if paths:
            self.run("restore", f"--source={rev}", "--worktree", "--",
                     *(":(literal)" + p for p in paths))

    def changes_among(self, paths: Sequence[str]) -> list[str]:
        """Files among `paths` that differ from HEAD in the work tree or the index, or that
        git does not track (and does not ignore)."""
        out = self.run("status", "--porcelain", "--", *paths).decode()
        return [line[3:] for line in out.split("\n") if line]

    def unsaved(self) -> list[str]:
        """Tracked files with changes in the work tree or the index."""
        out = self.run("status", "--porcelain", "-z", "--untracked-files=no").decode()
        return [record[3:] for record in out.split("\0") if len(record) > 3]
