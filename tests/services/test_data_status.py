"""`moma status` of a directory answered from the parts of its walk that changed must say
exactly what the full comparison (a second walk, the whole listing) says."""

from __future__ import annotations

import os
import shutil
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import Moma, clone_of, write
from moma_cli.core import pointer
from moma_cli.core.hashing import hash_bytes
from moma_cli.services import walkstamp, workspace

Change = Callable[[Path], None]


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories walked, one item per walk; parts of ~4 files, so that a few dozen
    files make many parts."""
    walked: list[str] = []
    real = workspace.iter_walk

    def counted(top: str, skipped: workspace.Skipped | None = None
                ) -> Iterator[workspace.FileInfo]:
        walked.append(top)
        return real(top, skipped)

    monkeypatch.setattr(workspace, "iter_walk", counted)
    monkeypatch.setattr(walkstamp, "_CUT_MASK", 3)
    return walked


@pytest.fixture
def data(repo: Moma, walks: list[str]) -> Path:
    for d in range(3):
        for i in range(12):
            write(repo.root / f"data/d{d}/f{i:02d}", f"file {d}/{i}\n")
    repo("add", "data")
    assert "up to date" in repo("status").stdout
    return repo.root / "data"


def _rewrite(path: Path, text: str) -> None:
    """New bytes, and an mtime no coarse clock could leave unchanged."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _forget_parts(repo: Moma) -> None:
    with sqlite3.connect(repo.root / ".moma/state.db") as db:
        db.execute("DELETE FROM parts")
        db.execute("DELETE FROM clean")


def _both_ways(repo: Moma, walks: list[str]) -> str:
    """status from the parts (one walk), then with the parts forgotten (two walks): the
    same output either way; returns it."""
    walks.clear()
    from_parts = repo("status", ok=None).stdout
    assert len(walks) == 1
    _forget_parts(repo)
    walks.clear()
    full = repo("status", ok=None).stdout
    assert len(walks) == 2
    assert from_parts == full
    return full


def _cut_point(top: Path) -> Path:
    """A file after which a part ends."""
    return next(p for p in sorted(top.rglob("f*")) if p.is_file() and not zlib.crc32(
        p.relative_to(top).as_posix().encode()) & walkstamp._CUT_MASK)


CHANGES: dict[str, tuple[Change, list[str]]] = {
    "modify": (lambda top: _rewrite(top / "d1/f05", "FILE 1/5\n"), ["modified: d1/f05"]),
    "add": (lambda top: write(top / "d1/f05b", "new"), ["added: d1/f05b"]),
    "delete": (lambda top: (top / "d1/f05").unlink(), ["deleted: d1/f05"]),
    "rename": (lambda top: (top / "d1/f05").rename(top / "d1/g05"),
               ["deleted: d1/f05", "added: d1/g05"]),
    "file becomes a directory": (
        lambda top: ((top / "d1/f05").unlink(), write(top / "d1/f05/x", "x")),
        ["deleted: d1/f05", "added: d1/f05/x"]),
    "two parts": (lambda top: (_rewrite(top / "d0/f01", "one"), (top / "d2/f10").unlink()),
                  ["modified: d0/f01", "deleted: d2/f10"]),
    "a new directory": (lambda top: write(top / "d1a/f00", "n"), ["added: d1a/f00"]),
    "a directory deleted": (lambda top: shutil.rmtree(top / "d2"),
                            [f"deleted: d2/f{i:02d}" for i in range(12)]),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_status_from_parts_equals_the_full_comparison(
        repo: Moma, data: Path, walks: list[str], name: str) -> None:
    change, expected = CHANGES[name]
    change(data)
    assert _both_ways(repo, walks).splitlines() == [
        "modified:     data", *(f"    {line}" for line in expected)]


def test_deleting_the_file_a_part_ends_with_merges_two_parts(
        repo: Moma, data: Path, walks: list[str]) -> None:
    cut = _cut_point(data)
    cut.unlink()
    assert f"deleted: {cut.relative_to(data).as_posix()}" in _both_ways(repo, walks)


def test_touched_not_changed_is_up_to_date_and_remembered(
        repo: Moma, data: Path, walks: list[str]) -> None:
    os.utime(data / "d1/f05", ns=(0, 10**9))
    walks.clear()
    assert "up to date" in repo("status").stdout
    assert len(walks) == 1  # from the parts, no second walk
    walks.clear()
    assert "up to date" in repo("status").stdout  # now from the clean stamp
    assert len(walks) == 1
    _rewrite(data / "d1/f06", "later")  # the refreshed parts still see a change
    assert "modified: d1/f06" in _both_ways(repo, walks)


def test_status_from_parts_still_sees_an_object_gone_from_the_cache(
        repo: Moma, data: Path, walks: list[str]) -> None:
    oid = hash_bytes((data / "d0/f00").read_bytes(), "blake3")
    (repo.root / ".moma/cache/blake3" / oid[:2] / oid[2:]).unlink()
    os.utime(data / "d2/f00", ns=(0, 10**9))
    assert "not-in-cache" in _both_ways(repo, walks)


def test_many_changed_parts_fall_back_to_a_second_walk(
        repo: Moma, data: Path, walks: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walkstamp, "_KEEP_MAX", 3)
    for i in range(12):
        _rewrite(data / f"d0/f{i:02d}", f"changed {i}")
    walks.clear()
    out = repo("status", ok=False).stdout
    assert len(walks) == 2
    assert all(f"modified: d0/f{i:02d}" in out for i in range(12))


def test_a_re_add_records_the_parts_of_its_new_listing(
        repo: Moma, data: Path, walks: list[str]) -> None:
    _rewrite(data / "d1/f05", "v2")
    repo("add", "data")
    _rewrite(data / "d2/f07", "v3")
    assert "modified: d2/f07" in _both_ways(repo, walks)


def test_a_listing_gone_from_the_cache_is_reported_as_without_parts(
        repo: Moma, data: Path, walks: list[str]) -> None:
    ptr = pointer.parse((repo.root / "data.moma").read_text(), "data.moma")
    (repo.root / ".moma/cache/blake3" / ptr.oid[:2] / ptr.oid[2:]).unlink()
    _rewrite(data / "d1/f05", "changed")
    walks.clear()
    out = repo("status", ok=False).stdout
    assert len(walks) == 2 and "recorded listing not in cache" in out


def _listed_parts(repo: Moma) -> int:
    with sqlite3.connect(repo.root / ".moma/state.db") as db:
        return int(db.execute("SELECT count(*) FROM parts").fetchone()[0])


def test_status_after_a_checkout_is_answered_from_one_walk(
        repo: Moma, data: Path, walks: list[str]) -> None:
    _forget_parts(repo)  # what a fresh clone has: nothing from an add
    shutil.rmtree(data)
    repo("checkout")
    walks.clear()
    assert "up to date" in repo("status").stdout
    assert len(walks) == 1  # the clean stamp the checkout left, no second walk
    _rewrite(data / "d1/f05", "changed after the checkout")
    assert "modified: d1/f05" in _both_ways(repo, walks)  # and its parts


def test_a_checkout_finding_every_file_in_place_leaves_the_stamps_too(
        repo: Moma, data: Path, walks: list[str]) -> None:
    _forget_parts(repo)
    assert "36 unchanged" in repo("checkout").stdout
    walks.clear()
    assert "up to date" in repo("status").stdout
    assert len(walks) == 1


def test_a_pull_leaves_the_stamps_of_the_directories_it_checks_out(
        repo: Moma, data: Path, walks: list[str], tmp_path: Path) -> None:
    repo("remote", "add", "storage", str(tmp_path / "remote"), "--default")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "data")
    repo("push")
    clone = clone_of(repo, tmp_path)
    clone("pull")
    walks.clear()
    assert "up to date" in clone("status").stdout
    assert len(walks) == 1


def test_a_checkout_that_did_not_place_every_file_leaves_no_parts(
        repo: Moma, data: Path, walks: list[str]) -> None:
    _forget_parts(repo)
    oid = hash_bytes((data / "d2/f03").read_bytes(), "blake3")
    (repo.root / ".moma/cache/blake3" / oid[:2] / oid[2:]).unlink()
    shutil.rmtree(data)
    assert "data/d2/f03" in repo("checkout", ok=False).stderr
    assert _listed_parts(repo) == 0
    walks.clear()
    assert "deleted: d2/f03" in repo("status", ok=False).stdout
    assert len(walks) == 2  # the full comparison, as without any record


def test_a_listing_not_as_add_writes_it_is_never_remembered_as_up_to_date(
        repo: Moma, data: Path, walks: list[str]) -> None:
    """Same entries, other bytes (a crafted or foreign listing): the full comparison says
    "modified", so a checkout must not leave a stamp that says up to date."""
    ptr_file = repo.root / "data.moma"
    ptr = pointer.parse(ptr_file.read_text(), "data.moma")
    objects = repo.root / ".moma/cache/blake3"
    crafted = (objects / ptr.oid[:2] / ptr.oid[2:]).read_bytes().replace(b'",', b'", ')
    oid = hash_bytes(crafted, "blake3")
    write(objects / oid[:2] / oid[2:], crafted)
    ptr_file.write_text(ptr_file.read_text().replace(ptr.oid, oid))
    _forget_parts(repo)
    shutil.rmtree(data)
    repo("checkout")
    assert _listed_parts(repo) == 0
    walks.clear()
    assert "modified:     data" in repo("status", ok=False).stdout
    assert len(walks) == 2
