"""init / add / status / checkout against real git repositories."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import Moma, git, tree_bytes, write
from moma_cli.core import pointer


def test_init_refuses_outside_git(tmp_path: Path) -> None:
    moma = Moma(tmp_path)
    res = moma("init", ok=False)
    assert res.exit_code == 1
    assert "not inside a git work tree" in res.stderr
    assert not (tmp_path / ".moma.yaml").exists()


def test_commands_refuse_without_init(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    res = Moma(tmp_path)("status", ok=False)
    assert "moma init" in res.stderr


def test_add_file_writes_pointer_ignores_blob_and_stages(repo: Moma) -> None:
    write(repo.root / "model.pkl", b"weights" * 1000)
    repo("add", "model.pkl")
    ptr = pointer.parse((repo.root / "model.pkl.moma").read_text(), "model.pkl.moma")
    assert (ptr.size, ptr.kind, ptr.algo) == (7000, "file", "blake3")
    assert "/model.pkl" in (repo.root / ".gitignore").read_text().splitlines()
    staged = repo.git("diff", "--cached", "--name-only").split()
    assert staged == [".gitignore", "model.pkl.moma"]
    obj = repo.root / ".moma/cache/blake3" / ptr.oid[:2] / ptr.oid[2:]
    assert obj.read_bytes() == b"weights" * 1000
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444


def test_pointer_key_order_is_stable(repo: Moma) -> None:
    write(repo.root / "a.bin", b"x")
    repo("add", "a.bin")
    text = (repo.root / "a.bin.moma").read_text()
    assert [line.split(":")[0] for line in text.splitlines()] == [
        "moma", "hash", "oid", "size", "kind"]


def test_readd_unchanged_is_noop_and_keeps_git_diff_empty(repo: Moma) -> None:
    write(repo.root / "data/a.csv", "1,2\n")
    repo("add", "data")
    repo.git("commit", "-qm", "data")
    res = repo("add", "data")
    assert "Unchanged data" in res.stdout
    assert repo.git("status", "--porcelain") == ""


def test_add_dir_stores_manifest_and_dedups(repo: Moma) -> None:
    for i in range(5):
        write(repo.root / f"data/part{i}.txt", "same content")
    write(repo.root / "data/sub/other.txt", "other")
    res = repo("add", "data", "--json")
    assert '"nfiles": 6' in res.stdout
    objects = [p for p in (repo.root / ".moma/cache/blake3").rglob("*") if p.is_file()]
    assert len(objects) == 3  # two distinct files + the manifest


def test_add_refuses_bad_paths(repo: Moma, tmp_path: Path) -> None:
    write(tmp_path / "outside.txt", "x")
    assert "outside the repository" in repo("add", str(tmp_path / "outside.txt"), ok=False).stderr
    assert "moma never tracks" in repo("add", ".moma", ok=False).stderr
    assert "no such file" in repo("add", "nope.bin", ok=False).stderr
    write(repo.root / "code.py", "print(1)")
    repo.git("add", "code.py")
    res = repo("add", "code.py", ok=False)
    assert "already tracked by git" in res.stderr and "git rm -r --cached code.py" in res.stderr


def test_add_refuses_overlapping_targets(repo: Moma) -> None:
    write(repo.root / "data/x.csv", "1")
    repo("add", "data")
    assert "tracks as a whole" in repo("add", "data/x.csv", ok=False).stderr


def test_status_reports_modified_missing_and_dir_changes(repo: Moma) -> None:
    write(repo.root / "model.bin", "v1")
    write(repo.root / "data/a", "a")
    write(repo.root / "data/b", "b")
    repo("add", "model.bin", "data")
    assert "up to date" in repo("status").stdout
    write(repo.root / "data/a", "changed")
    write(repo.root / "data/c", "new")
    (repo.root / "data/b").unlink()
    (repo.root / "model.bin").unlink()
    res = repo("status", ok=False)
    assert res.exit_code == 1
    assert "missing:      model.bin" in res.stdout
    assert "modified: a" in res.stdout and "added: c" in res.stdout and "deleted: b" in res.stdout


def test_status_of_a_clean_directory_still_sees_later_changes(repo: Moma) -> None:
    # The second status is answered from the remembered clean stamp; it must not hide
    # an edit of the same size or an object gone from the cache.
    write(repo.root / "data/a", "aaaa")
    write(repo.root / "data/b", "bbbb")
    repo("add", "data")
    for _ in range(2):
        assert "up to date" in repo("status").stdout
    a = repo.root / "data/a"
    a.write_text("AAAA")
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    assert "modified: a" in repo("status", ok=False).stdout
    a.write_text("aaaa")
    assert "up to date" in repo("status").stdout
    ptr = pointer.parse((repo.root / "data.moma").read_text(), "data.moma")
    listing = repo.root / ".moma/cache/blake3" / ptr.oid[:2] / ptr.oid[2:]
    objects = [p for p in (repo.root / ".moma/cache/blake3").rglob("*")
               if p.is_file() and p != listing]
    objects[0].unlink()
    assert "not-in-cache" in repo("status", ok=False).stdout


def test_re_adding_an_unchanged_directory_still_sees_changes(repo: Moma) -> None:
    # add remembers the directory as clean: a second add of the same walk hashes nothing,
    # but an edit of the same size or an object gone from the cache is still acted on.
    write(repo.root / "data/a", "aaaa")
    write(repo.root / "data/b", "bbbb")
    repo("add", "data")
    first = (repo.root / "data.moma").read_text()
    assert "Unchanged data" in repo("add", "data").stdout
    cache = repo.root / ".moma/cache/blake3"
    lost = next(p for p in cache.rglob("*") if p.is_file() and p.read_bytes() == b"bbbb")
    lost.unlink()
    repo("add", "data")
    assert lost.read_bytes() == b"bbbb" and (repo.root / "data.moma").read_text() == first
    a = repo.root / "data/a"
    a.write_text("AAAA")
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    assert "Added data" in repo("add", "data").stdout
    assert (repo.root / "data.moma").read_text() != first


def test_checkout_follows_git(repo: Moma) -> None:
    write(repo.root / "model.bin", "version one")
    repo("add", "model.bin")
    repo.git("commit", "-qm", "v1")
    repo.git("tag", "v1")
    write(repo.root / "model.bin", "version two")
    repo("add", "model.bin")
    repo.git("commit", "-qm", "v2")
    repo.git("checkout", "-q", "v1")
    repo("checkout")
    assert (repo.root / "model.bin").read_text() == "version one"
    repo.git("checkout", "-q", "main")
    repo("checkout")
    assert (repo.root / "model.bin").read_text() == "version two"


def test_checkout_restores_directory_and_keeps_untracked_files(repo: Moma) -> None:
    for i in range(20):
        write(repo.root / f"data/d{i % 3}/f{i}.txt", f"row {i}\n")
    repo("add", "data")
    expected = tree_bytes(repo.root / "data")
    write(repo.root / "data/mine.txt", "not tracked, not cached")
    (repo.root / "data/d0/f0.txt").unlink()
    repo("checkout")
    got = tree_bytes(repo.root / "data")
    assert got.pop("mine.txt") == b"not tracked, not cached"
    assert got == expected


def test_checkout_refuses_to_clobber_uncached_edits_without_force(repo: Moma) -> None:
    write(repo.root / "model.bin", "committed")
    repo("add", "model.bin")
    write(repo.root / "model.bin", "precious unsaved work")
    res = repo("checkout", ok=False)
    assert "modified and not in the cache" in res.stderr
    assert (repo.root / "model.bin").read_text() == "precious unsaved work"
    res = repo("checkout", "--force")
    assert "replaced modified model.bin" in res.stderr
    assert (repo.root / "model.bin").read_text() == "committed"


def test_copied_workspace_file_is_writable_and_independent_of_cache(repo: Moma) -> None:
    write(repo.root / "model.bin", "cached bytes")
    repo("add", "model.bin")
    (repo.root / "model.bin").unlink()
    repo("checkout")
    target = repo.root / "model.bin"
    assert os.access(target, os.W_OK)
    target.write_text("edited")
    ptr = pointer.parse((repo.root / "model.bin.moma").read_text(), "model.bin.moma")
    obj = repo.root / ".moma/cache/blake3" / ptr.oid[:2] / ptr.oid[2:]
    assert obj.read_text() == "cached bytes"


def test_corrupt_pointer_is_reported_while_good_ones_work(repo: Moma) -> None:
    write(repo.root / "good.bin", "good")
    repo("add", "good.bin")
    write(repo.root / "bad.bin.moma", "moma: 1\nhash: blake3\noid: [unterminated\n")
    (repo.root / "good.bin").unlink()
    res = repo("checkout", ok=False)
    assert "bad.bin.moma:4: invalid YAML" in res.stderr
    assert (repo.root / "good.bin").read_text() == "good"


def test_directory_spanning_several_windows_is_listed_in_path_order(
    repo: Moma, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Directories are walked and hashed a window at a time (a million files are never held
    # at once): names around '/' must still come out in full-path order ('a-b' < 'a/c'),
    # and a change in any window must be seen.
    from moma_cli.services import workspace

    monkeypatch.setattr(workspace, "_WINDOW", 3)
    names = ["a-b", "a/c", "a/d/e", "a.txt", "a0", "b", "a/c0", "z/y/x", "Z"]
    for name in names:
        write(repo.root / "data" / name, name)
    repo("add", "data")
    ptr = pointer.parse((repo.root / "data.moma").read_text(), "data.moma")
    listing = repo.root / ".moma/cache/blake3" / ptr.oid[:2] / ptr.oid[2:]
    listed = [json.loads(line)[0] for line in listing.read_text().splitlines()[1:]]
    assert listed == sorted(names) and ptr.nfiles == len(names)
    assert "up to date" in repo("status").stdout
    write(repo.root / "data/z/y/x", "changed")
    (repo.root / "data/a-b").unlink()
    write(repo.root / "data/a/new", "new")
    out = repo("status", ok=False).stdout
    assert "modified: z/y/x" in out and "deleted: a-b" in out and "added: a/new" in out
