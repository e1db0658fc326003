"""DVC's object stores, read-only: its local cache or a remote (a directory, or S3 and other
fsspec URLs through fs.py), in DVC 3's layout (`files/md5/<2>/<rest>`). An object is handed
out as a local file: the file itself when the store is a directory, else a download into
a temp that is removed afterwards. Callers verify the md5 before they trust the bytes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from moma_cli.atomic import tmp_sibling
from moma_cli.core import dvc
from moma_cli.storage.fs import Location


class DvcObjects:
    def __init__(self, location: Location, tmp_dir: Path) -> None:
        self.location = location
        self.tmp_dir = tmp_dir

    def has(self, name: str) -> bool:
        """Whether the store holds object `name` (an md5, or an md5 + '.dir')."""
        rel = dvc.object_path(name)
        if self.location.is_local:
            return os.path.isfile(os.path.join(self.location.root, rel))
        with self.location.translate():
            return bool(self.location.fs.isfile(f"{self.location.root}/{rel}"))

    @contextlib.contextmanager
    def local(self, name: str) -> Iterator[Path]:
        """Object `name` as a local file; FileNotFoundError when the store lacks it."""
        rel = dvc.object_path(name)
        if self.location.is_local:
            path = Path(self.location.root) / rel
            if not path.is_file():
                raise FileNotFoundError(str(path))
            yield path
            return
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_sibling(self.tmp_dir / "dvc-object")
        try:
            with self.location.translate():
                self.location.fs.get_file(f"{self.location.root}/{rel}", str(tmp))
            yield tmp
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
