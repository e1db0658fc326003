"""git-lfs: what it tracks, and where it keeps objects (`moma import-lfs`)."""

from __future__ import annotations

import json
from pathlib import Path

from moma_cli.gitrepo.runner import Runner


class Lfs(Runner):
    """`Git`'s part for git-lfs."""

    def lfs_files(self) -> list[str] | None:
        """The paths `git lfs ls-files` reports (LFS files of HEAD); None when git-lfs is
        not installed or cannot answer (a version without --json; no commit yet)."""
        import shutil  # 3 ms at import, and every command loads this module

        if shutil.which("git-lfs") is None:
            return None
        proc = self._proc(["lfs", "ls-files", "--json"])
        if proc.returncode != 0:
            return None
        try:
            files = json.loads(proc.stdout)["files"] or []
            return [f["name"] for f in files if isinstance(f.get("name"), str)]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def lfs_objects_dir(self) -> Path:
        """git-lfs's object store, in the git directory every worktree shares."""
        out = self.run("rev-parse", "--git-common-dir").decode().strip()
        path = Path(out)
        return (path if path.is_absolute() else self.root / path) / "lfs" / "objects"
