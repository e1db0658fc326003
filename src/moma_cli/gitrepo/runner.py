"""Running the git binary: the environment it gets, one command line, and what every
part of `Git` shares.

Hot paths (status, add, checkout, history reads) run the `git` binary directly: one
process, machine-readable `-z` output, no 100 ms GitPython import on commands that must
start fast.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moma_cli.errors import GitError, NotARepoError

# Git exports these to hooks; inherited by our own git calls they would point git at the
# wrong repository or index (pre-commit's no_git_env has the same list and reason).
_KEEP_GIT_ENV = {"GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO",
                 "GIT_SSL_NO_VERIFY", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM",
                 "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                 "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE",
                 "GIT_TERMINAL_PROMPT", "GIT_ASKPASS"}

# Transports git may use for a source repository, and never a password prompt: a source
# URL may come from a committed pointer, and `ext::` would run a program.
SOURCE_ENV = {"GIT_ALLOW_PROTOCOL": "file:https:ssh", "GIT_TERMINAL_PROMPT": "0"}


def no_git_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    return {k: v for k, v in env.items() if not k.startswith("GIT_") or k in _KEEP_GIT_ENV}


def git_version() -> str | None:
    """`git --version` without a repository (`moma doctor`); None when git is not found."""
    try:
        proc = subprocess.run(["git", "--version"], capture_output=True, env=no_git_env())
    except OSError:
        return None
    return proc.stdout.decode(errors="replace").strip().removeprefix("git version ") or None


def find_root(start: Path) -> Path:
    """The work tree containing `start`, found without spawning git."""
    here = start.resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    raise NotARepoError(
        f"{start} is not inside a git work tree",
        hint="run 'git init' first (moma keeps its pointers in git)",
    )


class Runner:
    """One repository's git: the command line every part of `Git` runs through."""

    def __init__(self, root: Path) -> None:
        self.root = root


    def _proc(self, args: Sequence[str], input: bytes | None = None,
              env: dict[str, str] | None = None) -> Any:
        return subprocess.run(["git", *args], cwd=self.root, input=input,
                              capture_output=True, env=no_git_env() | (env or {}))

    def run(self, *args: str, input: bytes | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> bytes:
        proc = self._proc(args, input, env)
        if check and proc.returncode != 0:
            raise _failed(args, proc.returncode, proc.stderr)
        return proc.stdout

    def start(self, *args: str) -> Started:
        """Start `git args` and return at once; `Started.output()` waits for it. Lets
        the registry's reads run side by side (the tag objects, `rev-list` and `git log`
        of a cold read: on two cores about half their time)."""
        return Started(args, self.root)

    def ok(self, *args: str) -> bool:
        return bool(self._proc(args).returncode == 0)

    def hooks_dir(self) -> Path:
        """Where git runs hooks from: core.hooksPath when set, else .git/hooks."""
        out = self.run("rev-parse", "--git-path", "hooks").decode().strip()
        path = Path(out)
        return path if path.is_absolute() else self.root / path


class Started:
    """A running git command whose output goes to unnamed temporary files, not pipes: a
    pipe would stop git at 64 KiB until this process read it, and the tag listing of
    30,000 tags is 5 MB."""

    def __init__(self, args: Sequence[str], root: Path) -> None:
        import tempfile  # 4 ms at import (shutil, random): only for these side-by-side reads

        self.args = args
        # they outlive this call: `output` (or a failed start) closes them
        self.out = tempfile.TemporaryFile()  # noqa: SIM115
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(["git", *args], cwd=root, stdin=subprocess.DEVNULL,
                                         stdout=self.out, stderr=self.err, env=no_git_env())
        except BaseException:
            self.close()
            raise

    def output(self) -> bytes:
        """What git wrote to stdout; GitError when it failed, as `Runner.run`."""
        try:
            code = self.proc.wait()
            self.out.seek(0)
            if code != 0:
                self.err.seek(0)
                raise _failed(self.args, code, self.err.read())
            return self.out.read()
        finally:
            self.close()

    def close(self) -> None:
        self.out.close()
        self.err.close()


def _failed(args: Sequence[str], returncode: int, stderr: bytes) -> GitError:
    lines = stderr.decode(errors="replace").strip().splitlines()
    # git's first fatal line says what went wrong; the lines after it are advice
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    message = (fatal or lines[-1:] or [str(returncode)])[0]
    return GitError(f"git {args[0]} failed: {message}")


def check_remote(name: str) -> str:
    """A git remote name or URL from the command line, never read as an option."""
    if not name or name.startswith("-"):
        raise GitError(f"invalid git remote {name!r}", hint="name a git remote, e.g. origin")
    return name


def parse_trailers(text: str) -> tuple[tuple[str, str], ...]:
    """`Key: value` pairs of git's `%(contents:trailers:unfold,separator=%x1e)`."""
    pairs = (item.partition(":") for item in text.split("\x1e"))
    return tuple((key.strip(), value.strip()) for key, sep, value in pairs if sep)
