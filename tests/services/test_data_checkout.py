"""Checkout a window of files at a time: one stat-cache query verifies a window's objects,
and a damaged object is still caught, quarantined and never materialised."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Moma, tree_bytes, write
from moma_cli.core import pointer
from moma_cli.services import data_checkout


def _objects(repo: Moma) -> Path:
    return repo.root / ".moma/cache/blake3"


def test_directory_larger_than_a_window_is_restored_whole(
        repo: Moma, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_checkout, "_WINDOW", 3)
    for i in range(10):
        write(repo.root / f"data/d{i % 2}/f{i}.txt", f"row {i % 7}\n")  # some share bytes
    repo("add", "data")
    expected = tree_bytes(repo.root / "data")
    for path in (repo.root / "data").rglob("*.txt"):
        path.unlink()
    res = repo("checkout")
    assert "10 restored, 0 unchanged" in res.stdout
    assert tree_bytes(repo.root / "data") == expected
    assert not [p for p in (repo.root / "data").rglob("*") if ".moma-tmp-" in p.name]
    assert "10 unchanged" in repo("checkout").stdout  # stat rows recorded per window


def test_damaged_object_is_caught_in_a_window_and_never_written(
        repo: Moma, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_checkout, "_WINDOW", 2)
    for name, text in (("a", "same"), ("b", "good"), ("c", "same"), ("d", "also good")):
        write(repo.root / f"data/{name}.txt", text)
    repo("add", "data")
    repo("checkout")  # every object is now known intact to the stat cache
    bad = repo.root / "data/a.txt"
    oid = next(p for p in _objects(repo).rglob("*") if p.is_file()
               and p.read_bytes() == b"same")
    os.chmod(oid, 0o644)
    oid.write_bytes(b"evil")  # a new mtime: the stat cache no longer vouches for it
    for name in "abcd":
        (repo.root / f"data/{name}.txt").unlink()
    res = repo("checkout", ok=False)
    assert res.exit_code == 1
    assert "data/a.txt: cache object was corrupt" in res.stderr
    # The same object in the next window: already moved aside, so missing from the cache.
    assert "data/c.txt: object not in the cache" in res.stderr
    assert not bad.exists() and not (repo.root / "data/c.txt").exists()
    assert (repo.root / "data/b.txt").read_text() == "good"
    assert (repo.root / "data/d.txt").read_text() == "also good"
    assert not oid.exists()
    assert [p.read_bytes() for p in (repo.root / ".moma/cache/quarantine/corrupt").iterdir()] \
        == [b"evil"]


def test_single_file_with_a_size_other_than_its_object_is_refused(repo: Moma) -> None:
    write(repo.root / "model.bin", "weights")
    repo("add", "model.bin")
    ptr_path = repo.root / "model.bin.moma"
    ptr = pointer.parse(ptr_path.read_text(), "model.bin.moma")
    ptr_path.write_text(ptr_path.read_text().replace(f"size: {ptr.size}", "size: 99"))
    (repo.root / "model.bin").unlink()
    res = repo("checkout", ok=False)
    assert "recorded size 99 differs from object" in res.stderr
    assert not (repo.root / "model.bin").exists()
