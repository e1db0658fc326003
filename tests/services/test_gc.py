"""`moma gc` against real git histories: scopes, what is always kept, quarantine and undo."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Moma, git, make_repo, write
from moma_cli.core.hashing import hash_bytes


def oid(data: bytes) -> str:
    return hash_bytes(data, "blake3")


def cached(moma: Moma, data: bytes) -> bool:
    o = oid(data)
    return (moma.root / ".moma/cache/blake3" / o[:2] / o[2:]).is_file()


def commit_version(moma: Moma, data: bytes, message: str, path: str = "model.bin") -> None:
    write(moma.root / path, data)
    moma("add", path)
    moma.git("commit", "-qm", message)


@pytest.fixture
def pushed(tmp_path: Path) -> Moma:
    """A repository with a git remote that has every branch and tag."""
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    moma = make_repo(tmp_path / "repo")
    moma.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    moma.git("push", "-q", "origin", "main")
    return moma


@pytest.fixture
def history(pushed: Moma) -> Moma:
    """main: v1 (tag t1) -> v2 -> v4; branch side off v2 with 'side'; all pushed."""
    commit_version(pushed, b"v1", "v1")
    pushed.git("tag", "t1")
    commit_version(pushed, b"v2", "v2")
    pushed.git("checkout", "-qb", "side")
    commit_version(pushed, b"side", "side")
    pushed.git("checkout", "-q", "main")
    commit_version(pushed, b"v4", "v4")
    pushed.git("push", "-q", "origin", "--all")
    pushed.git("push", "-q", "origin", "--tags")
    return pushed


def would_remove(moma: Moma, *scope: str) -> set[str]:
    res = moma("gc", *scope, "--json")
    return set(json.loads(res.stdout)["oids"])


ALL = {b"v1", b"v2", b"side", b"v4"}


@pytest.mark.parametrize(("scope", "kept"), [
    (["--workspace"], {b"v4"}),
    (["--all-branches"], {b"v4", b"side"}),
    (["--all-tags"], {b"v4", b"v1"}),
    (["--all-tags", "--all-branches"], {b"v4", b"v1", b"side"}),
    (["--all-commits"], ALL),
])
def test_scope_decides_what_is_removed(history: Moma, scope: list[str], kept: set[bytes]) -> None:
    assert would_remove(history, *scope) == {oid(d) for d in ALL - kept}
    assert all(cached(history, d) for d in ALL), "a dry run removed something"
    history("gc", *scope, "--force")
    assert {d for d in ALL if cached(history, d)} == kept


def test_old_commit_survives_all_commits_but_not_workspace(history: Moma) -> None:
    history("gc", "--all-commits", "--force")
    assert cached(history, b"v2")
    history("gc", "--workspace", "--force")
    assert not cached(history, b"v2") and cached(history, b"v4")


def test_no_scope_refuses(history: Moma) -> None:
    res = history("gc", "--force", ok=False)
    assert "gc needs a scope" in res.stderr and "--workspace" in res.stderr
    assert all(cached(history, d) for d in ALL)


def test_without_force_off_a_terminal_only_lists(history: Moma) -> None:
    res = history("gc", "--workspace")
    assert res.exit_code == 0
    assert "Would remove 3 objects" in res.stdout
    assert "pass --force" in res.stderr
    assert all(cached(history, d) for d in ALL)


def test_staged_uncommitted_pointer_keeps_its_object(history: Moma) -> None:
    write(history.root / "new.bin", b"staged only")
    history("add", "new.bin")
    os.unlink(history.root / "new.bin.moma")  # now only the git index knows the pointer
    history("gc", "--workspace", "--force")
    assert cached(history, b"staged only")


def test_stashed_pointer_keeps_its_object(history: Moma) -> None:
    write(history.root / "model.bin", b"work in progress")
    history("add", "model.bin")
    history.git("stash", "-q")
    assert b"work in progress" not in (history.root / "model.bin.moma").read_bytes()
    history("gc", "--workspace", "--force")
    assert cached(history, b"work in progress")
    history.git("stash", "pop", "-q")
    history("checkout", "--force")
    assert (history.root / "model.bin").read_bytes() == b"work in progress"


def test_unpushed_commits_keep_their_objects_until_pushed(history: Moma) -> None:
    commit_version(history, b"local 1", "local 1")
    commit_version(history, b"local 2", "local 2")
    history("gc", "--workspace", "--force")
    assert cached(history, b"local 1")
    history.git("push", "-q", "origin", "main")
    history("gc", "--workspace", "--force")
    assert not cached(history, b"local 1") and cached(history, b"local 2")


def test_repository_without_git_remote_keeps_all_history(repo: Moma) -> None:
    commit_version(repo, b"a", "a")
    commit_version(repo, b"b", "b")
    repo("gc", "--workspace", "--force")
    assert cached(repo, b"a") and cached(repo, b"b")


def test_directory_entries_are_kept(pushed: Moma) -> None:
    for i in range(4):
        write(pushed.root / f"data/f{i}.txt", f"row {i}")
    pushed("add", "data")
    pushed.git("commit", "-qm", "data")
    pushed.git("push", "-q", "origin", "main")
    res = pushed("gc", "--workspace", "--json")
    assert json.loads(res.stdout)["would_remove"] == 0
    (pushed.root / "data/f0.txt").unlink()
    pushed("checkout")
    assert (pushed.root / "data/f0.txt").read_text() == "row 0"


def test_undo_restores_byte_identical(history: Moma) -> None:
    before = {d: cached(history, d) for d in ALL}
    res = history("gc", "--workspace", "--force", "--json")
    batch = json.loads(res.stdout)["batch"]
    moved = list((history.root / ".moma/cache/quarantine/gc" / batch / "blake3").rglob("*"))
    assert len([p for p in moved if p.is_file()]) == 3  # layout kept under the batch
    assert not cached(history, b"v1")
    history("gc", "--undo")
    assert {d: cached(history, d) for d in ALL} == before
    o = oid(b"v1")
    obj = history.root / ".moma/cache/blake3" / o[:2] / o[2:]
    assert obj.read_bytes() == b"v1" and (obj.stat().st_mode & 0o777) == 0o444
    assert "nothing to undo" in history("gc", "--undo", ok=False).stderr


def test_undo_a_named_batch_and_purge(history: Moma) -> None:
    first = json.loads(history("gc", "--all-branches", "--force", "--json").stdout)["batch"]
    second = json.loads(history("gc", "--workspace", "--force", "--json").stdout)["batch"]
    assert first != second
    history("gc", "--undo", first)  # v1, v2: removed by the first run
    assert cached(history, b"v1") and not cached(history, b"side")
    assert "no gc batch 'nope'" in history("gc", "--undo", "nope", ok=False).stderr
    res = history("gc", "--purge-quarantine", "--json")
    assert json.loads(res.stdout)["purged"] == [second]
    assert "nothing to undo" in history("gc", "--undo", ok=False).stderr


def test_quarantine_expires_after_14_days(history: Moma) -> None:
    batch = json.loads(history("gc", "--workspace", "--force", "--json").stdout)["batch"]
    root = history.root / ".moma/cache/quarantine/gc"
    (root / batch).rename(root / "20000101-000000")
    res = history("gc", "--workspace", "--force", "--json")
    assert json.loads(res.stdout)["expired"] == ["20000101-000000"]
    assert not (root / "20000101-000000").exists()


def test_bad_pointer_in_history_aborts(history: Moma) -> None:
    write(history.root / "bad.bin.moma", "moma: 1\nhash: blake3\noid: nothex\nsize: 1\n")
    history.git("add", "bad.bin.moma")
    history.git("commit", "-qm", "bad pointer")
    bad_commit = history.git("rev-parse", "HEAD").strip()
    history.git("rm", "-q", "bad.bin.moma")
    history.git("commit", "-qm", "drop it")
    history.git("push", "-q", "origin", "main")
    res = history("gc", "--all-commits", "--force", ok=False)
    assert f"commit {bad_commit[:10]}: bad.bin.moma" in res.stderr
    assert "nothing was removed" in res.stderr
    assert all(cached(history, d) for d in ALL)


def test_bad_pointer_in_work_tree_aborts(history: Moma) -> None:
    write(history.root / "bad.bin.moma", "moma: [\n")
    res = history("gc", "--workspace", "--force", ok=False)
    assert "the work tree: bad.bin.moma" in res.stderr
    assert all(cached(history, d) for d in ALL)


def run_on_terminal(moma: Moma, answer: str, *args: str) -> str:
    """Run moma with a pseudo-terminal as stdin/stdout, typing `answer` at the prompt."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "moma_cli", *args], cwd=moma.root,
                            stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    os.write(main, answer.encode())
    output = b""
    with contextlib.suppress(OSError):  # EIO once the child has exited
        while chunk := os.read(main, 4096):
            output += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 0
    return output.decode(errors="replace")


def test_on_a_terminal_gc_asks_first(history: Moma) -> None:
    out = run_on_terminal(history, "n\n", "gc", "--workspace")
    assert "Would remove 3 objects" in out and "Move them to the gc quarantine?" in out
    assert all(cached(history, d) for d in ALL)
    out = run_on_terminal(history, "y\n", "gc", "--workspace")
    assert "Removed 3 objects" in out
    assert {d for d in ALL if cached(history, d)} == {b"v4"}
