"""Reading git's objects: blobs by sha or by path at a revision, trees, in bulk."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from moma_cli.gitrepo.runner import Runner


class Objects(Runner):
    """`Git`'s part for blobs and trees."""

    def blob_sizes(self, shas: Iterable[str]) -> dict[str, int]:
        """sha -> size of the blobs this repository has, in one `git cat-file --batch-check`."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch-check", input=("\n".join(wanted) + "\n").encode())
        result = {}
        for line in out.decode().splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] == "blob":
                result[fields[0]] = int(fields[2])
        return result

    def tree_blobs(self, rev: str, pathspec: str = "*.moma") -> dict[str, str]:
        """path -> blob sha for files matching the glob `pathspec` in the tree of `rev`.

        `git ls-tree` takes literal path prefixes, not globs, so the match is done here
        (with git's default pathspec rules: `*` also matches `/`).
        """
        out = self.run("ls-tree", "-r", "-z", "--full-tree", rev).decode()
        result = {}
        for record in filter(None, out.split("\0")):
            meta, path = record.split("\t", 1)
            kind, sha = meta.split()[1:3]
            if kind == "blob" and fnmatch.fnmatchcase(path, pathspec):
                result[path] = sha
        return result

    def cat_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """Read many blobs in one `git cat-file --batch` process."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch", input=("\n".join(wanted) + "\n").encode())
        result: dict[str, bytes] = {}
        pos = 0
        for sha in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) < 3 or header[1] == b"missing":
                continue
            size = int(header[2])
            result[sha] = out[pos:pos + size]
            pos += size + 1
        return result

    def blob_size(self, rev: str, path: str) -> int | None:
        """Size of `path` at `rev`, None if absent: to refuse a huge blob before reading it."""
        proc = self._proc(["cat-file", "-s", f"{rev}:{path}"])
        return int(proc.stdout) if proc.returncode == 0 else None

    def show(self, rev: str, path: str) -> bytes | None:
        proc = self._proc(["cat-file", "blob", f"{rev}:{path}"])
        return proc.stdout if proc.returncode == 0 else None
