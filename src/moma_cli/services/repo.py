"""The repository context every service works in: root, config, cache, stat cache, git."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from moma_cli import config as config_mod
from moma_cli.atomic import resolves_inside, write_if_changed
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.paths import check_repo_relpath, is_within
from moma_cli.errors import MomaError, NotARepoError, PathError, PointerError
from moma_cli.gitrepo import Git, find_root
from moma_cli.storage.cache import ObjectCache
from moma_cli.storage.lock import RepoLock
from moma_cli.storage.state import StateDB

MOMA_DIR = ".moma"


def default_jobs() -> int:
    """Threads for local hashing and copying: one per core. Between system calls they run
    Python, so more only fight over the GIL: adding 100,000 files of 1 KiB took 18.8 s with
    2 threads against 23.6 s with 8, on 2 cores (docs/performance.md)."""
    return os.cpu_count() or 1


@dataclass
class Repo:
    root: Path
    config: config_mod.Config

    @cached_property
    def git(self) -> Git:
        return Git(self.root)

    @cached_property
    def state(self) -> StateDB:
        return StateDB(self.moma_dir / "state.db")

    @cached_property
    def cache(self) -> ObjectCache:
        self.moma_dir  # noqa: B018 - verifies the cache directory too
        return ObjectCache(self.config.cache_dir, self.config.hash_algo, self.state)

    def lock(self, wait: float = 0.0) -> RepoLock:
        # Not `moma_dir`: commands lock before they validate their input, which must come
        # before any git call. The lock file is opened without following a symlink.
        return RepoLock(self._real_moma_dir() / "lock", wait=wait)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        """True in the block when no other moma works in this repository: this process holds
        the lock, or has just taken it (without waiting). Every command that writes holds
        it, so a temp found then is a leftover of a killed writer, never one in flight."""
        lock = self.lock()
        if RepoLock.held_here(lock.path):
            yield True
            return
        try:
            lock.acquire()
        except (MomaError, OSError):  # another moma is at work, or .moma/ is read-only
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # -- moma's own directories -----------------------------------------------------------
    # A clone can commit anything, also where moma keeps its state: `.moma` as a symlink to
    # a directory outside, `.moma/lock` as a symlink to a user's file (the lock truncates
    # it), `.moma/cache/tmp` as one to a directory whose old files `fsck` would delete.
    # So before first use: `.moma` is a real directory, the cache resolves inside the
    # repository (unless set on this machine), and git tracks nothing in either.
    @cached_property
    def moma_dir(self) -> Path:
        """`.moma/`, once it and the cache directory are verified as moma's own."""
        path = self._real_moma_dir()
        self._refuse_tracked([MOMA_DIR, *self._cache_inside()])
        return path

    def _real_moma_dir(self) -> Path:
        path = self.root / MOMA_DIR
        if os.path.islink(path):
            raise PathError(
                f"{MOMA_DIR}: is a symlink; moma keeps its state in a real directory of the "
                "repository", hint=f"remove it ('rm {MOMA_DIR}'); a cache elsewhere is set "
                f"with cache.dir in {config_mod.LOCAL_CONFIG_FILE} or MOMA_CACHE_DIR")
        return path

    def _cache_inside(self) -> list[str]:
        """The cache directory's repo-relative paths (as configured and resolved), or none
        for a cache set on this machine outside; a cache from the committed config or the
        default that resolves outside is refused."""
        cache, root = os.path.abspath(self.config.cache_dir), os.path.abspath(self.root)
        real = os.path.realpath(cache)
        named = [os.path.relpath(cache, root)] if is_within(cache, root) else []
        if not is_within(real, self.real_root):
            if self.config.cache_is_local:
                return []
            raise PathError(
                f"cache directory {named[0] if named else cache} resolves outside the "
                f"repository (to {real})", hint="remove the symlink that leads there; set a "
                f"shared cache in {config_mod.LOCAL_CONFIG_FILE} or MOMA_CACHE_DIR instead")
        # "." too: a cache at the top would hold every committed file.
        return sorted({os.path.relpath(real, self.real_root), *named})

    def _refuse_tracked(self, rels: list[str]) -> None:
        tracked = self.git.tracked([":(literal)" + rel for rel in rels])
        if tracked:
            raise PathError(
                f"{tracked[0]}: is committed to git, inside the directory where moma keeps its "
                "cache and state; moma will not use it",
                hint=f"remove it from git and the disk: 'git rm -r --cached {tracked[0]}' "
                f"and 'rm -r {tracked[0]}'")

    def jobs(self, override: int | None = None) -> int:
        return override or self.config.jobs or default_jobs()

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    # -- user paths -----------------------------------------------------------------------
    def relpath(self, user_path: str | Path, cwd: Path | None = None) -> str:
        """Turn a path typed by the user into a checked repo-relative POSIX path."""
        base = Path(cwd or os.getcwd())
        absolute = Path(os.path.abspath(base / user_path))
        root = Path(os.path.abspath(self.root))
        if absolute == root:
            raise PathError(f"{user_path}: is the repository root itself")
        if not is_within(str(absolute), str(root)):
            raise PathError(f"{user_path}: is outside the repository {root}",
                            hint="copy or move it into the repository first, then add it "
                                 "there")
        rel = absolute.relative_to(root).as_posix()
        check_repo_relpath(rel)
        self.check_no_escape(rel)
        return rel

    @cached_property
    def real_root(self) -> str:
        return os.path.realpath(self.root)

    @cached_property
    def _safe_dirs(self) -> set[str]:
        return set()

    def check_no_escape(self, rel: str) -> None:
        """Refuse paths whose parent directories are symlinks leading outside the repo.

        One realpath per directory per command, not per file (10k pointers, 1M entries).
        """
        directory = os.path.dirname(rel)
        if directory in self._safe_dirs:
            return
        parent = os.path.realpath(self.root / directory)
        if not is_within(parent, self.real_root):
            raise PathError(
                f"{rel}: a parent directory is a symlink leading outside the repository")
        self._safe_dirs.add(directory)

    # -- pointers -------------------------------------------------------------------------
    def load_pointer(self, pointer_rel: str) -> pointer_mod.Pointer:
        try:  # named by the pointer file: a cloned `.moma.local.yaml.moma` would move the cache
            check_repo_relpath(pointer_mod.data_path_of(pointer_rel), "tracked path")
        except PathError as exc:
            hint = f"remove the pointer: 'git rm --cached {pointer_rel}'"
            raise PointerError(f"{pointer_rel}: {exc.message}", hint=hint) from None
        self.check_no_escape(pointer_rel)  # never read a pointer through a symlink outside
        path = self.root / pointer_rel
        # A clone can commit a pointer that is a symlink (to a file outside, to a FIFO that
        # would block forever): open without following it, and read regular files only.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise PointerError(f"{pointer_rel}: pointer file not found") from None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise PointerError(f"{pointer_rel}: is a symlink; pointer files must be regular "
                               "files", hint="replace it with the pointer it links to") from None
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PointerError(f"{pointer_rel}: is not a regular file")
            raw = fh.read(pointer_mod.MAX_POINTER_BYTES + 1)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PointerError(f"{pointer_rel}: not UTF-8 text") from None
        return pointer_mod.parse(text, pointer_rel)

    def write_pointer(self, ptr: pointer_mod.Pointer) -> bool:
        """Write the pointer file; False when its content is already exactly that."""
        self.check_no_escape(ptr.pointer_path)
        return write_if_changed(self.root / ptr.pointer_path, pointer_mod.dumps(ptr).encode())

    def pointers(
        self, targets: Iterable[str] | None = None, cwd: Path | None = None
    ) -> tuple[list[pointer_mod.Pointer], list[MomaError]]:
        """Workspace pointers (all, or those matching targets) and the ones that failed to parse.

        A bad pointer never hides the good ones: callers act on what parsed and report the rest.
        """
        all_files = self.git.pointer_files()
        if targets is None:
            chosen = all_files
        else:
            chosen = []
            for target in targets:
                chosen.extend(self._match_target(target, all_files, cwd))
        clashes = overlapping(all_files)
        good: list[pointer_mod.Pointer] = []
        bad: list[MomaError] = []
        for rel in dict.fromkeys(chosen):
            if rel in clashes:
                if clashes[rel] not in bad:
                    bad.append(clashes[rel])
                continue
            try:
                good.append(self.load_pointer(rel))
            except MomaError as exc:
                bad.append(exc)
        return good, bad

    def _match_target(self, target: str, pointer_files: list[str], cwd: Path | None) -> list[str]:
        rel = self.relpath(target, cwd)
        if pointer_mod.is_pointer_path(rel):
            return [rel]
        if os.path.exists(self.root / pointer_mod.pointer_path_of(rel)):
            return [pointer_mod.pointer_path_of(rel)]
        inside = [p for p in pointer_files if is_within(p, rel)]
        if inside:
            return inside
        raise PathError(f"{target}: not tracked by moma", hint=f"run 'moma add {target}' first")


def overlapping(pointer_files: Iterable[str]) -> dict[str, PointerError]:
    """Pointers whose tracked paths nest (`data.moma` and `data/x.moma`), each with an error
    naming both: acting on either would let one overwrite or delete the other's data."""
    by_data = {pointer_mod.data_path_of(p): p for p in pointer_files}
    clashes: dict[str, PointerError] = {}
    for inner, inner_file in by_data.items():
        parts = inner.split("/")
        for i in range(1, len(parts)):
            outer_file = by_data.get("/".join(parts[:i]))
            if outer_file is None:
                continue
            # One error for the pair, reported once, whichever of the two is asked for.
            error = clashes.get(outer_file) or PointerError(
                f"{inner_file}: overlaps {outer_file}, which tracks the whole directory",
                hint=f"remove one of them, e.g. 'git rm --cached {inner_file}'")
            clashes[inner_file] = clashes[outer_file] = error
            break
    return clashes


def open_repo(cwd: Path | None = None) -> Repo:
    root = repo_root(cwd)
    return Repo(root, config_mod.load(root))


def repo_root(cwd: Path | None = None) -> Path:
    """The moma repository's root, its configuration not read yet (`moma config` must
    be able to fix a configuration that does not load)."""
    root = find_root(Path(cwd or os.getcwd()))
    if not (root / config_mod.CONFIG_FILE).exists():
        raise NotARepoError(
            f"{root} is not a moma repository (no {config_mod.CONFIG_FILE})",
            hint="run 'moma init' at the top of the git work tree",
        )
    return root


@dataclass
class InitResult:
    root: Path
    created: list[str] = field(default_factory=list)


def init(cwd: Path | None = None, stage: bool = True) -> InitResult:
    root = find_root(Path(cwd or os.getcwd()))
    result = InitResult(root)
    config_file = root / config_mod.CONFIG_FILE
    if not config_file.exists():
        config_mod.write_layer(root, {"core": {"hash": "blake3"}})
        result.created.append(config_mod.CONFIG_FILE)
    (root / MOMA_DIR).mkdir(exist_ok=True)
    if add_gitignore_entries(root, "", [f"/{MOMA_DIR}/", f"/{config_mod.LOCAL_CONFIG_FILE}"]):
        result.created.append(".gitignore")
    if stage:
        Git(root).add([config_mod.CONFIG_FILE, ".gitignore"])
    return result


def gitignore_path(root: Path, directory: str) -> Path:
    """`<directory>/.gitignore`, once it is known not to lead outside the repository."""
    path = root / directory / ".gitignore"
    if not resolves_inside(path, root):
        rel = f"{directory}/.gitignore" if directory else ".gitignore"
        raise PathError(f"{rel}: is a symlink leading outside the repository; moma will not "
                        "edit it", hint=f"replace it with a regular file: 'rm {rel}'")
    return path


def add_gitignore_entries(root: Path, directory: str, entries: list[str]) -> bool:
    """Append missing lines to `<directory>/.gitignore`; True when the file changed."""
    path = gitignore_path(root, directory)
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    present = set(text.splitlines())
    missing = [e for e in entries if e not in present]
    if not missing:
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(e + "\n" for e in missing)
    write_if_changed(path, text.encode())
    return True


def remove_gitignore_entries(root: Path, directory: str, entries: list[str]) -> bool:
    """Remove exactly these lines (those `add_gitignore_entries` wrote) from
    `<directory>/.gitignore`, and the file itself once nothing else is left in it; True
    when the file changed."""
    path = gitignore_path(root, directory)
    if not os.path.lexists(path):
        return False
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line not in entries]
    if kept == lines:
        return False
    if any(line.strip() for line in kept):
        write_if_changed(path, "".join(line + "\n" for line in kept).encode())
    else:
        path.unlink()
    return True
