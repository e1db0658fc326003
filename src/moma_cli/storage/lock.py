"""The repository lock: `flock` on `.moma/lock`, so two writing commands never interleave.

The kernel drops an flock when its holder dies, so a lock left by a killed process never
blocks the next command. The holder writes who it is into the file, for the error message.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from types import TracebackType

from moma_cli.errors import LockedError, PathError

_HELD: set[str] = set()  # lock files this process holds


class RepoLock:
    def __init__(self, path: Path, command: str = "", wait: float = 0.0) -> None:
        self.path = path
        self.command = command or " ".join(["moma", *sys.argv[1:]])
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> RepoLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @staticmethod
    def held_here(path: Path) -> bool:
        """Whether this process holds the lock on `path` (a second flock from the same
        process would conflict with the first, on another descriptor)."""
        return str(path) in _HELD

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # never through a symlink: the holder's record truncates the file
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise PathError(f"{self.path}: the lock file is a symlink; moma will not open it",
                            hint=f"remove it: 'rm {self.path}'") from None
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"repository is locked by {holder}",
                        hint="wait for it to finish, or pass --wait SECONDS",
                    ) from None
                time.sleep(0.05)
        info = {"pid": os.getpid(), "host": os.uname().nodename, "command": self.command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        _HELD.add(str(self.path))

    def release(self) -> None:
        if self._fd is not None:
            _HELD.discard(str(self.path))
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"pid {info['pid']} on {info['host']} ({info['command']!r}, "
                f"since {info['since']})")
    except (ValueError, KeyError, TypeError, RecursionError):  # any bytes at all
        return "another moma process"
