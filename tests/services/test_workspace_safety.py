"""checkout never writes through symlinks, never deletes untracked files, never clobbers
unsaved edits without --force (the single-file refusal is in test_data.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Moma, write
from helpers import assert_nothing_lost, assert_one_error, snapshot


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    write(tmp_path / "outside/file", "outside bytes")
    return tmp_path / "outside"


@pytest.mark.parametrize("rel", ["model.bin", "data/a.txt"])
def test_checkout_never_writes_through_a_destination_symlink(repo: Moma, outside: Path,
                                                            rel: str) -> None:
    write(repo.root / "model.bin", "model bytes")
    write(repo.root / "data/a.txt", "a bytes")
    repo("add", "model.bin", "data")
    expected = (repo.root / rel).read_bytes()
    (repo.root / rel).unlink()
    os.symlink(outside / "file", repo.root / rel)
    before = snapshot(repo.root)

    res = repo("checkout", ok=False)
    assert_one_error(res, f"{rel}: modified and not in the cache; left as is")
    assert_nothing_lost(repo.root, before, outside={outside: {"file": b"outside bytes"}})

    res = repo("checkout", "--force")
    assert f"replaced modified {rel}" in res.stderr
    assert not (repo.root / rel).is_symlink()
    assert (repo.root / rel).read_bytes() == expected
    assert_nothing_lost(repo.root, outside={outside: {"file": b"outside bytes"}})


@pytest.mark.parametrize("force", [False, True])
def test_untracked_files_in_a_tracked_directory_are_never_deleted(repo: Moma,
                                                                  force: bool) -> None:
    write(repo.root / "data/a.txt", "a")
    write(repo.root / "data/b.txt", "b")
    repo("add", "data")
    repo.git("commit", "-qm", "v1")
    repo.git("tag", "v1")
    (repo.root / "data/b.txt").unlink()
    repo("add", "data")
    repo.git("commit", "-qm", "v2: b.txt removed")
    # Untracked: uncached bytes, bytes that happen to be cached, a whole new subdirectory.
    write(repo.root / "data/mine.txt", "never added")
    write(repo.root / "data/copy-of-a.txt", "a")
    write(repo.root / "data/new/deep.txt", "deep")
    flags = ["--force"] if force else []

    repo.git("checkout", "-q", "v1")
    repo("checkout", *flags)
    assert (repo.root / "data/b.txt").read_text() == "b"
    before = snapshot(repo.root)
    repo.git("checkout", "-q", "main")
    res = repo("checkout", *flags)
    assert "1 removed" in res.stdout  # b.txt: in v1, not in v2, bytes are in the cache
    del before["data/b.txt"]
    before["data.moma"] = (repo.root / "data.moma").read_bytes()
    assert_nothing_lost(repo.root, before)
    for rel, text in [("mine.txt", "never added"), ("copy-of-a.txt", "a"),
                      ("new/deep.txt", "deep")]:
        assert (repo.root / "data" / rel).read_text() == text


def test_a_removed_file_that_was_edited_is_kept(repo: Moma) -> None:
    write(repo.root / "data/a.txt", "a")
    write(repo.root / "data/b.txt", "b")
    repo("add", "data")
    repo.git("commit", "-qm", "v1")
    (repo.root / "data/b.txt").unlink()
    repo("add", "data")
    repo.git("commit", "-qm", "v2")
    repo.git("checkout", "-q", "HEAD~1")
    repo("checkout")
    write(repo.root / "data/b.txt", "edited after checkout, never saved")
    repo.git("checkout", "-q", "main")
    res = repo("checkout", "--force")
    assert "removed" not in res.stdout
    assert (repo.root / "data/b.txt").read_text() == "edited after checkout, never saved"


def test_modified_uncached_files_in_a_directory_are_listed_and_kept(repo: Moma) -> None:
    for name in ("a", "b", "c"):
        write(repo.root / f"data/{name}.txt", name)
    repo("add", "data")
    write(repo.root / "data/a.txt", "unsaved a")
    write(repo.root / "data/c.txt", "unsaved c")
    (repo.root / "data/b.txt").unlink()
    res = repo("checkout", ok=False)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: data/a.txt: modified and not in the cache; left as is",
                      "error: data/c.txt: modified and not in the cache; left as is"]
    assert (repo.root / "data/b.txt").read_text() == "b"  # the others are restored
    assert (repo.root / "data/a.txt").read_text() == "unsaved a"
    res = repo("checkout", "--force")
    assert "replaced modified data/a.txt" in res.stderr
    assert [(repo.root / f"data/{n}.txt").read_text() for n in "abc"] == ["a", "b", "c"]
    assert_nothing_lost(repo.root)


def test_a_temp_left_by_a_killed_checkout_is_never_tracked(repo: Moma) -> None:
    write(repo.root / "data/a.txt", "a")
    repo("add", "data")
    repo.git("commit", "-qm", "data")
    # What kill -9 between writing a temp sibling and renaming it leaves behind.
    write(repo.root / "data/.moma-tmp-a.txt.0badf00d", "half of a")
    repo("status")
    res = repo("add", "data")
    assert "Unchanged data (1 files" in res.stdout


def moma_temps(top: Path) -> list[str]:
    """moma's temps below `top`, tolerating a checkout renaming them meanwhile."""
    return [os.path.join(d, n) for d, _, names in os.walk(top) for n in names
            if n.startswith(".moma-tmp-") and n != ".moma-tmp-notes"]


def kill_checkout_midway(repo: Moma) -> list[str]:
    """Run `moma checkout` of a 300-file directory and kill -9 it while its temps are
    staged beside their destinations (it renames them in one go after one sync)."""
    for _ in range(20):
        shutil.rmtree(repo.root / "data/a", ignore_errors=True)  # a try killed too early
        proc = subprocess.Popen([sys.executable, "-m", "moma_cli", "checkout"], cwd=repo.root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and not moma_temps(repo.root / "data"):
            pass
        proc.kill()
        proc.wait()
        left = moma_temps(repo.root / "data")
        if left:
            return left
    raise AssertionError("the checkout was never caught with its temps in place")


@pytest.fixture
def killed(repo: Moma, tmp_path: Path) -> Moma:
    for i in range(300):
        write(repo.root / f"data/{'ab'[i % 2]}/f{i:03d}.txt", f"row {i}\n" * 50)
    repo("add", "data")
    repo.git("commit", "-qm", "data")
    repo("remote", "add", "storage", str(tmp_path / "remote"), "--default")
    repo("push")
    write(repo.root / "data/.moma-tmp-notes", "the user's, whatever its name")
    assert kill_checkout_midway(repo)
    return repo


@pytest.mark.parametrize("command", ["status", "checkout", "pull", "fsck"])
def test_temps_of_a_killed_checkout_are_removed_by_the_next_command(killed: Moma,
                                                                    command: str) -> None:
    res = killed(command, ok=None)
    assert ".moma-tmp" not in res.stdout + res.stderr  # never reported as data
    assert moma_temps(killed.root / "data") == []
    assert (killed.root / "data/.moma-tmp-notes").read_text() == "the user's, whatever its name"
    killed("checkout")
    assert killed("status").exit_code == 0


def test_temps_are_kept_while_another_moma_holds_the_lock(killed: Moma) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         "fd = os.open('.moma/lock', os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)"],
        cwd=killed.root, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        left = moma_temps(killed.root / "data")
        killed("status", ok=None)  # status takes no lock: the temps may be another's in flight
        assert moma_temps(killed.root / "data") == left
    finally:
        holder.kill()
        holder.wait()
    killed("status", ok=None)
    assert moma_temps(killed.root / "data") == []


@pytest.mark.parametrize("victim", ["README.md", "notes/README.md"])
def test_checkout_never_overwrites_files_git_tracks(repo: Moma, victim: str) -> None:
    # (a pointer over .moma.yaml is refused before that: tests/cli/test_bad_input.py)
    write(repo.root / "notes/README.md", "committed notes")
    write(repo.root / "README.md", "committed readme")
    write(repo.root / "payload.bin", "attacker bytes")
    repo("add", "payload.bin")
    repo.git("add", "notes/README.md", "README.md")
    ptr_text = (repo.root / "payload.bin.moma").read_text()
    if victim == "README.md":
        write(repo.root / "README.md.moma", ptr_text)
    else:  # a directory pointer over a directory that git tracks files in
        write(repo.root / "notes.moma", ptr_text.replace("kind: file", "kind: dir\nnfiles: 1"))
    repo.git("commit", "-qm", "crafted")
    before = snapshot(repo.root)
    res = repo("checkout", "--force", ok=False)
    assert_one_error(res, f"would overwrite {victim}, which git tracks")
    assert_nothing_lost(repo.root, before)


def test_checkout_never_deletes_through_a_symlinked_tracked_directory(repo: Moma,
                                                                      outside: Path) -> None:
    # An empty listing writes no file, so no file's parent is checked on the way: the
    # directory itself must be, before old files are looked for (and deleted) in it.
    write(repo.root / "data/file", "outside bytes")  # the bytes of outside/file
    repo("add", "data")
    repo.git("commit", "-qm", "data")
    write(repo.root / "empty/.keep", "")
    (repo.root / "empty/.keep").unlink()
    repo("add", "empty")  # an empty directory: its listing has no entries
    (repo.root / "data.moma").write_text((repo.root / "empty.moma").read_text())
    os.rename(repo.root / "data", repo.root / "data.moved")
    os.symlink(outside, repo.root / "data")
    res = repo("checkout", ok=False)
    assert_one_error(res, "data/.: a parent directory is a symlink leading outside")
    assert (outside / "file").read_text() == "outside bytes"
