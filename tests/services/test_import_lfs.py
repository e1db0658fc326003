"""`moma import-lfs` against the real git-lfs: a repository's LFS files become pointers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Moma, git, make_repo, write
from moma_cli.core import lfs
from moma_cli.errors import PointerError
from moma_cli.gitrepo import Git

A, B = os.urandom(3000), b"weights " * 500
NOTES = b"a plain git file\n"


@pytest.fixture(autouse=True)
def _git_lfs() -> None:
    if shutil.which("git-lfs") is None:  # .ci/run installs it; a skip would hide the gap
        pytest.fail("git-lfs is not installed: 'apt-get install git-lfs' (.ci/run does)")


def lfs_repo(path: Path) -> Moma:
    """A moma repository whose *.bin files git-lfs tracks: a.bin, sub/b.bin, beside a
    plain notes.txt."""
    moma = make_repo(path)
    moma.git("lfs", "install", "--local")
    moma.git("lfs", "track", "*.bin")
    write(moma.root / "a.bin", A)
    write(moma.root / "sub" / "b.bin", B)
    write(moma.root / "notes.txt", NOTES)
    moma.git("add", "-A")
    moma.git("commit", "-qm", "data in git-lfs")
    return moma


def pointer_only_clone(source: Moma, tmp_path: Path, fetch: bool = True) -> Moma:
    """A clone whose working copy holds the LFS pointer texts; with `fetch`, the objects
    are in its .git/lfs/objects."""
    subprocess.run(["git", "clone", "-q", str(source.root), "clone"], cwd=tmp_path,
                   check=True, env=os.environ | {"GIT_LFS_SKIP_SMUDGE": "1"})
    clone = Moma(tmp_path / "clone")
    clone.git("lfs", "install", "--local")
    if fetch:
        clone.git("lfs", "fetch")
    assert (clone.root / "a.bin").read_bytes().startswith(lfs.VERSION_LINE)
    return clone


def lfs_object(moma: Moma, data: bytes) -> Path:
    import hashlib

    oid = hashlib.sha256(data).hexdigest()
    return moma.root / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def snapshot(moma: Moma) -> tuple[str, str, dict[str, bytes]]:
    files = {p.relative_to(moma.root).as_posix(): p.read_bytes()
             for p in sorted(moma.root.rglob("*"))
             if p.is_file() and p.relative_to(moma.root).parts[0] not in (".git", ".moma")}
    return moma.git("ls-files", "--stage"), moma.git("status", "--porcelain"), files


@pytest.mark.parametrize("finder", ["git-lfs", "gitattributes"])
def test_import_converts_lfs_files_and_a_clone_pulls_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finder: str) -> None:
    if finder == "gitattributes":  # as on a machine without git-lfs
        monkeypatch.setattr(Git, "lfs_files", lambda self: None)
    repo = lfs_repo(tmp_path / "repo")
    res = repo("import-lfs")
    assert "Imported a.bin" in res.stdout and "Imported sub/b.bin" in res.stdout
    assert (repo.root / "a.bin.moma").is_file() and (repo.root / "sub/b.bin.moma").is_file()
    assert (repo.root / "a.bin").read_bytes() == A
    assert (repo.root / "sub/b.bin").read_bytes() == B
    assert "*.bin" not in (repo.root / ".gitattributes").read_text()
    assert repo.git("diff", "--cached", "--name-only").split() == [
        ".gitattributes", ".gitignore", "a.bin", "a.bin.moma", "sub/.gitignore", "sub/b.bin",
        "sub/b.bin.moma"]
    repo.git("commit", "-qm", "git-lfs to moma")
    assert repo.git("lfs", "ls-files") == ""
    assert repo.git("status", "--porcelain") == ""
    assert "up to date" in repo("status").stdout
    assert repo.git("ls-files").split() == [
        ".gitattributes", ".gitignore", ".moma.yaml", "a.bin.moma", "notes.txt",
        "sub/.gitignore", "sub/b.bin.moma"]

    again = repo("import-lfs")
    assert "No git-lfs files to import." in again.stdout
    assert repo.git("status", "--porcelain") == ""

    repo("remote", "add", "storage", str(tmp_path / "remote"), "--default")
    repo.git("commit", "-qm", "default remote", ".moma.yaml")
    repo("push")
    git(tmp_path, "clone", "-q", str(repo.root), "fresh")
    fresh = Moma(tmp_path / "fresh")
    fresh("pull")
    assert (fresh.root / "a.bin").read_bytes() == A
    assert (fresh.root / "sub/b.bin").read_bytes() == B


def test_a_pointer_only_working_copy_converts_from_the_lfs_store(tmp_path: Path) -> None:
    clone = pointer_only_clone(lfs_repo(tmp_path / "repo"), tmp_path)
    plan = clone("import-lfs", "--dry-run", "--json").stdout
    assert plan.count('"lfs-cache"') == 2
    clone("import-lfs")
    assert (clone.root / "a.bin").read_bytes() == A
    assert (clone.root / "sub/b.bin").read_bytes() == B
    clone.git("commit", "-qm", "git-lfs to moma")
    assert clone.git("lfs", "ls-files") == ""
    assert "up to date" in clone("status").stdout


def test_a_corrupt_lfs_object_is_refused_by_name(tmp_path: Path) -> None:
    clone = pointer_only_clone(lfs_repo(tmp_path / "repo"), tmp_path)
    obj = lfs_object(clone, B)
    obj.chmod(0o644)
    obj.write_bytes(b"x" + B[1:])
    res = clone("import-lfs", ok=False)
    assert res.exit_code == 1
    assert "error: sub/b.bin: its LFS object" in res.stderr and "corrupt" in res.stderr
    assert "Imported a.bin" in res.stdout and "sub/b.bin" not in res.stdout
    assert (clone.root / "sub/b.bin").read_bytes().startswith(lfs.VERSION_LINE)
    assert not (clone.root / "sub/b.bin.moma").exists()
    assert clone.git("ls-files", "sub").split() == ["sub/b.bin"]
    # b.bin still uses the pattern, so it stays
    assert "*.bin filter=lfs" in (clone.root / ".gitattributes").read_text()
    assert not list(clone.root.rglob(".moma-tmp-*"))


def test_a_changed_working_copy_is_refused_and_left_as_is(tmp_path: Path) -> None:
    repo = lfs_repo(tmp_path / "lfs")
    write(repo.root / "a.bin", b"edited, not committed")
    res = repo("import-lfs", ok=False)
    assert "error: a.bin: the working copy is not the LFS object" in res.stderr
    assert (repo.root / "a.bin").read_bytes() == b"edited, not committed"
    assert not (repo.root / "a.bin.moma").exists()
    assert (repo.root / "sub/b.bin.moma").exists()


def test_files_without_their_lfs_object_are_skipped_with_a_fetch_hint(tmp_path: Path) -> None:
    clone = pointer_only_clone(lfs_repo(tmp_path / "repo"), tmp_path, fetch=False)
    assert clone("import-lfs", "--dry-run").stdout.count("missing") == 2
    before = snapshot(clone)
    res = clone("import-lfs", ok=False)
    assert res.exit_code == 1
    assert "skipped a.bin" in res.stderr and "skipped sub/b.bin" in res.stderr
    assert "git lfs fetch" in res.stderr
    assert snapshot(clone) == before


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    repo = lfs_repo(tmp_path / "repo")
    before = snapshot(repo)
    res = repo("import-lfs", "--dry-run")
    rows = [line.split() for line in res.stdout.splitlines()]
    assert rows[0] == ["path", "size", "source"]
    assert [(r[0], r[-1]) for r in rows[1:]] == [("a.bin", "workspace"), ("sub/b.bin",
                                                                          "workspace")]
    assert snapshot(repo) == before
    assert not list((repo.root / ".moma" / "cache").rglob("*/??/*"))


def test_paths_limit_the_import_and_a_pattern_still_used_stays(tmp_path: Path) -> None:
    repo = lfs_repo(tmp_path / "repo")
    repo("import-lfs", "sub")
    assert (repo.root / "sub/b.bin.moma").exists() and not (repo.root / "a.bin.moma").exists()
    assert "*.bin filter=lfs" in (repo.root / ".gitattributes").read_text()
    assert repo.git("lfs", "ls-files", "--name-only", "--all").split()  # a.bin is still LFS


def test_a_failed_conversion_puts_the_index_and_gitattributes_back(tmp_path: Path) -> None:
    repo = lfs_repo(tmp_path / "repo")
    write(repo.root / "sub.moma", "a pointer tracking sub/ as a whole\n")
    attributes = (repo.root / ".gitattributes").read_bytes()
    res = repo("import-lfs", ok=False)
    assert "error: sub/b.bin: is inside sub" in res.stderr
    assert repo.git("diff", "--cached", "--name-only") == ""
    assert (repo.root / ".gitattributes").read_bytes() == attributes


def test_pointers_under_a_directory_pattern_do_not_go_to_git_lfs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    repo.git("lfs", "install", "--local")
    repo.git("lfs", "track", "data/**")
    write(repo.root / "data" / "x.csv", A)
    repo.git("add", "-A")
    repo.git("commit", "-qm", "data in git-lfs")
    repo("import-lfs")
    assert "data/**" not in (repo.root / ".gitattributes").read_text()
    assert repo.git("show", ":data/x.csv.moma").startswith("moma: 1")
    repo.git("commit", "-qm", "git-lfs to moma")
    assert repo.git("lfs", "ls-files") == ""


@pytest.mark.parametrize("text", [
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"A" * 64 + b"\nsize 1\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 63 + b"\nsize 1\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 01\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize -1\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 1",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 1\nx y\n",
    b"version https://git-lfs.github.com/spec/v1\next-0-foo sha256:" + b"b" * 64
    + b"\noid sha256:" + b"a" * 64 + b"\nsize 1\n",
    b"version https://git-lfs.github.com/spec/v1\noid md5:" + b"a" * 32 + b"\nsize 1\n",
    b"version https://git-lfs.github.com/spec/v1\n" + b"x" * 2000,
])
def test_a_malformed_lfs_pointer_is_refused(text: bytes) -> None:
    with pytest.raises(PointerError):
        lfs.parse_pointer(text)


def test_lfs_pointer_parsing_and_patterns() -> None:
    good = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 12\n"
    assert lfs.parse_pointer(good) == lfs.LfsPointer("a" * 64, 12)
    assert lfs.parse_pointer(b"plain bytes") is None
    assert lfs.lfs_pattern("*.bin filter=lfs diff=lfs merge=lfs -text\n") == "*.bin"
    assert lfs.lfs_pattern("# *.bin filter=lfs") is None
    assert lfs.lfs_pattern("*.txt text") is None
    assert lfs.pattern_pathspec("", "*.bin") == ":(glob)**/*.bin"
    assert lfs.pattern_pathspec("sub", "/data/**") == ":(glob)sub/data/**"
    assert lfs.pattern_pathspec("", "data/") is None
