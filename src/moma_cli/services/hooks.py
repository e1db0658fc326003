"""Git hooks (`moma install` / `moma uninstall`) and the checks the hooks run.

Installed hooks chain whatever was there before: moma's part is a marked block inserted
right after the shebang of an existing shell hook (not appended: hooks often end in
`exit 0`, which would skip anything after it), and a hook in another language is moved to
`<hook>.moma-chained` and exec'd from a small shell hook. `moma uninstall` removes only the
marked block, and puts a moved hook back.

The checks run from pre-commit on every commit: the transfer machinery (remotes, packs,
threads) is imported only when a check needs a remote, so `moma hook pointers` starts
about as fast as `moma status` (docs/performance.md, Start-up).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from moma_cli.atomic import atomic_write_bytes
from moma_cli.core import pointer as pointer_mod
from moma_cli.errors import MomaError
from moma_cli.services.repo import Repo

if TYPE_CHECKING:
    from moma_cli.services.sync.results import TransferResult

HOOKS = ("pre-push", "post-checkout", "post-merge")
BEGIN = "# >>> moma >>>"
END = "# <<< moma <<<"
CHAINED_SUFFIX = ".moma-chained"
_SHELL_RE = re.compile(r"#!.*\b(sh|bash|dash|ksh|zsh)\b")
_ZERO_SHA = re.compile(r"0+")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass
class HookChange:
    hook: str
    path: str
    action: str


@dataclass
class HooksResult:
    changes: list[HookChange] = field(default_factory=list)


# -- install / uninstall ----------------------------------------------------------------------


def install(repo: Repo, python: str = sys.executable) -> HooksResult:
    """Install (or refresh) moma's hooks; `python` runs moma, so hooks work inside venvs."""
    hooks_dir = repo.git.hooks_dir()
    hooks_dir.mkdir(parents=True, exist_ok=True)
    result = HooksResult()
    for hook in HOOKS:
        path = hooks_dir / hook
        action = _install_one(path, hook, python)
        result.changes.append(HookChange(hook, str(path), action))
    return result


def _install_one(path: Path, hook: str, python: str) -> str:
    chained = path.with_name(path.name + CHAINED_SUFFIX)
    if not path.exists():
        _write_hook(path, ["#!/bin/sh", *_block(hook, python, chain=False)], 0o755)
        return "created"
    lines = path.read_text().splitlines()
    if BEGIN in lines:
        chain = any(CHAINED_SUFFIX in line for line in _strip(lines, keep_block=True))
        _write_hook(path, _insert(_strip(lines), _block(hook, python, chain)), _mode(path))
        return "updated"
    if lines and _SHELL_RE.match(lines[0]):
        _write_hook(path, _insert(lines, _block(hook, python, chain=False)), _mode(path))
        return "added to the existing shell hook"
    if chained.exists():
        raise MomaError(f"{path}: cannot chain it, {chained.name} already exists",
                        hint=f"merge or remove {chained} by hand, then run 'moma install'")
    os.replace(path, chained)
    _write_hook(path, ["#!/bin/sh", *_block(hook, python, chain=True)], 0o755)
    return f"chained (existing hook moved to {chained.name})"


def uninstall(repo: Repo) -> HooksResult:
    hooks_dir = repo.git.hooks_dir()
    result = HooksResult()
    for hook in HOOKS:
        path = hooks_dir / hook
        if not path.exists() or BEGIN not in (lines := path.read_text().splitlines()):
            continue
        chained = path.with_name(path.name + CHAINED_SUFFIX)
        rest = _strip(lines)
        if any(line.strip() for line in rest[1:]):
            _write_hook(path, rest, _mode(path))
            action = "removed moma's block"
        elif chained.exists():
            os.replace(chained, path)
            action = "restored the chained hook"
        else:
            path.unlink()
            action = "removed"
        result.changes.append(HookChange(hook, str(path), action))
    return result


def installed(repo: Repo) -> dict[str, bool]:
    """Each of moma's hooks: whether its block is in the hook git runs."""
    hooks_dir = repo.git.hooks_dir()
    found = {}
    for hook in HOOKS:
        try:
            found[hook] = BEGIN in (hooks_dir / hook).read_text(errors="replace").splitlines()
        except OSError:
            found[hook] = False
    return found


def _block(hook: str, python: str, chain: bool) -> list[str]:
    moma = f"{shlex.quote(python)} -m moma_cli"
    lines = [BEGIN, "# Installed by 'moma install'; 'moma uninstall' removes this block."]
    if hook == "pre-push":
        # git gives the pushed refs on stdin once: keep them for the rest of the hook.
        lines += ['moma_refs=$(cat)',
                  f'printf \'%s\\n\' "$moma_refs" | {moma} hook pre-push "$@" || exit $?',
                  "exec 0<<MOMA_REFS", "$moma_refs", "MOMA_REFS"]
    else:
        lines.append(f"{moma} checkout || echo \"moma: 'moma checkout' failed\" >&2")
    if chain:
        lines.append(f'exec "$(dirname "$0")/{hook}{CHAINED_SUFFIX}" "$@"')
    return [*lines, END]


def _insert(lines: list[str], block: list[str]) -> list[str]:
    at = 1 if lines and lines[0].startswith("#!") else 0
    return [*lines[:at], *block, *lines[at:]]


def _strip(lines: list[str], keep_block: bool = False) -> list[str]:
    """The lines outside moma's block (or, with keep_block, inside it)."""
    inside, kept = False, []
    for line in lines:
        if line == BEGIN:
            inside = True
        elif line == END:
            inside = False
        elif inside == keep_block:
            kept.append(line)
    return kept


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777 | 0o111


def _write_hook(path: Path, lines: list[str], mode: int) -> None:
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode(), mode)


# -- what the hooks check ---------------------------------------------------------------------


def pushed_pointers(repo: Repo, git_remote: str, ref_lines: Iterable[str]
                    ) -> tuple[list[pointer_mod.Pointer], list[MomaError]]:
    """Every pointer version written by the commits a `git push` sends.

    `ref_lines` are pre-push's stdin: `<local ref> <local sha> <remote ref> <remote sha>`.
    Commits already on the remote (its tracking refs, or the remote tip it reported) are
    excluded, as git-lfs does.
    """
    tips, known = [], []
    for line in ref_lines:
        parts = line.split()
        if len(parts) != 4 or _ZERO_SHA.fullmatch(parts[1]) or not _SHA.fullmatch(parts[1]):
            continue  # blank, malformed, or a branch deletion: nothing to upload
        tips.append(parts[1])
        remote_sha = parts[3]
        if _SHA.fullmatch(remote_sha) and not _ZERO_SHA.fullmatch(remote_sha) and \
                repo.git.peels_to_commit(remote_sha):
            known.append("^" + remote_sha)
    if not tips:
        return [], []
    written = repo.git.written_blobs([*tips, *known, "--not", f"--remotes={git_remote}"])
    blobs = repo.git.cat_blobs(sha for _path, sha in written)
    pointers: dict[tuple[str, str], pointer_mod.Pointer] = {}
    bad: list[MomaError] = []
    for path, sha in written:
        try:
            ptr = pointer_mod.parse(blobs[sha].decode("utf-8"), path)
        except (MomaError, KeyError, UnicodeDecodeError) as exc:
            bad.append(exc if isinstance(exc, MomaError) else MomaError(f"{path}: unreadable"))
            continue
        pointers.setdefault((ptr.algo, ptr.oid), ptr)
    return list(pointers.values()), bad


def pre_push(repo: Repo, git_remote: str, ref_lines: Iterable[str]) -> TransferResult:
    """Upload, to the default moma remote, the objects of every pointer the pushed commits
    wrote and of every version the registry points at, so git never points at data nobody
    can download: a stage tag pushed for an old commit writes no pointer, yet
    `NAME:production` must be downloadable wherever the tag goes."""
    from moma_cli.services.sync.planning import registry_pointers
    from moma_cli.services.sync.pushing import push_pointers
    from moma_cli.services.sync.results import TransferResult

    pointers, bad = pushed_pointers(repo, git_remote, ref_lines)
    labelled = [("", ptr) for ptr in pointers]
    if repo.config.default_remote is not None:  # without one, only pushed pointers need it
        labelled += registry_pointers(repo)
    result = TransferResult()
    if labelled:
        result = push_pointers(repo, labelled)
    result.invalid = [e.message for e in bad]
    if not result.ok:
        result.hint = ("the pushed commits reference data that is not on the remote; "
                       "'git push --no-verify' skips this check")
    return result


@dataclass
class Problem:
    message: str  # names the file, as a MomaError's does
    hint: str | None = None


def check_pointers(repo: Repo, files: Sequence[str]) -> list[Problem]:
    """pre-commit `moma-pointers`: each pointer parses, follows the schema, and its object
    is in the cache or on the default remote."""
    problems, unsaved = [], []
    for rel in files:
        if not pointer_mod.is_pointer_path(rel):
            continue
        try:
            ptr = repo.load_pointer(rel)
        except MomaError as exc:
            problems.append(Problem(exc.message, exc.hint))
            continue
        if not repo.cache.exists(ptr.oid):
            unsaved.append(ptr)
    remote = repo.config.default_remote
    pushed: set[str] = set()
    if unsaved and remote:
        from moma_cli.services.sync.remote_status import on_remote

        pushed = on_remote(repo, {p.oid for p in unsaved})
    where = f"neither in the cache nor on remote '{remote}'" if remote else "not in the cache"
    problems += [Problem(f"{p.pointer_path}: object {p.oid[:12]} of {p.path} is {where}",
                         f"run 'moma add {p.path}' or 'moma pull'")
                 for p in unsaved if p.oid not in pushed]
    return problems


def large_files(repo: Repo, files: Sequence[str], max_kb: int) -> list[Problem]:
    """pre-commit `moma-no-large-files`: files git would store that belong in moma."""
    problems = []
    for rel in files:
        path = repo.root / rel
        if pointer_mod.is_pointer_path(rel) or not path.is_file():
            continue
        size = path.stat().st_size
        if size > max_kb * 1024:
            problems.append(Problem(f"{rel}: {size // 1024} KiB is over the {max_kb} KiB limit",
                                    f"git rm --cached {shlex.quote(rel)} && "
                                    f"moma add {shlex.quote(rel)}"))
    return problems
