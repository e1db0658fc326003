"""The object cache's write paths: every object matches its name, no temp survives."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from blake3 import blake3

from conftest import Moma, write
from moma_cli.storage.cache import ObjectCache


def digest(data: bytes, algo: str) -> str:
    return blake3(data).hexdigest() if algo == "blake3" else hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("algo", ["blake3", "sha256"])
def test_large_file_is_copied_and_named_by_its_content(tmp_path: Path, algo: str) -> None:
    data = os.urandom(3 << 20) + b"tail"  # above the small-file limit: kernel copy + mmap hash
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    cache = ObjectCache(tmp_path / "cache", algo)
    oid, size = cache.add_file(src)
    assert (oid, size) == (digest(data, algo), len(data))
    stored = cache.oid_to_path(oid)
    assert stored.read_bytes() == data
    assert stored.stat().st_mode & 0o777 == 0o444
    assert cache.hash_file(stored) == oid and cache.verify(oid)
    assert os.listdir(cache.tmp_dir) == []


def test_batch_stores_many_files_once_each(tmp_path: Path) -> None:
    contents = [f"file {i % 50}".encode() for i in range(200)]  # 50 distinct contents
    paths = []
    for i, data in enumerate(contents):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(data)
    cache = ObjectCache(tmp_path / "cache", "blake3")
    with cache.batch() as batch:
        oids = [batch.add_file(p)[0] for p in paths]
        assert list(cache.iter_oids()) == []  # nothing visible before the batch commits
    assert oids == [digest(d, "blake3") for d in contents]
    assert sorted(cache.iter_oids()) == sorted(set(oids))
    assert all(cache.verify(oid) for oid in set(oids))
    assert os.listdir(cache.tmp_dir) == []


def test_failed_batch_leaves_no_objects_and_no_temps(tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_bytes(b"some bytes")
    cache = ObjectCache(tmp_path / "cache", "blake3")
    with pytest.raises(FileNotFoundError), cache.batch() as batch:
        batch.add_file(src)
        batch.add_file(tmp_path / "missing")
    assert list(cache.iter_oids()) == []
    assert os.listdir(cache.tmp_dir) == []


def test_add_with_hardlink_cache_type_links_workspace_files(repo: Moma) -> None:
    (repo.root / ".moma.yaml").write_text("core:\n  hash: blake3\ncache:\n  type: hardlink,copy\n")
    files = {f"data/f{i}.txt": f"row {i}\n".encode() for i in range(20)}
    files["data/big.bin"] = os.urandom(2 << 20)
    files["data/dup.txt"] = b"row 3\n"  # same bytes as f3: one object
    for rel, data in files.items():
        write(repo.root / rel, data)
    repo("add", "data")
    cache = ObjectCache(repo.root / ".moma/cache", "blake3")
    linked = set()
    for rel, data in files.items():
        st = (repo.root / rel).stat()
        obj = cache.oid_to_path(digest(data, "blake3"))
        assert obj.read_bytes() == data and cache.verify(digest(data, "blake3"))
        if st.st_ino == obj.stat().st_ino:  # one inode, no copy
            linked.add(rel)
            assert st.st_mode & 0o777 == 0o444  # protects the cache from in-place edits
    assert len(linked) == len(files) - 1  # f3 and dup share one object: one of them links
    assert repo("status").stdout.strip() == "Data and pointers are up to date."


def test_default_cache_type_copies_on_add(repo: Moma) -> None:
    write(repo.root / "model.bin", b"weights")
    repo("add", "model.bin")
    obj = ObjectCache(repo.root / ".moma/cache", "blake3").oid_to_path(digest(b"weights",
                                                                             "blake3"))
    assert obj.stat().st_ino != (repo.root / "model.bin").stat().st_ino
    assert os.access(repo.root / "model.bin", os.W_OK)
