"""The object cache's write paths: every object matches its name, no temp survives."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from blake3 import blake3

from conftest import Moma, write
from moma_cli.core.hashing import Hasher
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


def test_commit_behind_renames_only_synced_temps_and_the_exit_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A window handed to the thread is synced before any of it is renamed; what follows
    it is renamed by the batch's exit, after one more sync."""
    events: list[str] = []
    real_sync, real_replace = os.sync, os.replace
    monkeypatch.setattr(os, "sync", lambda: (events.append("sync"), real_sync())[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"),
                                                     real_replace(a, b))[1])
    cache = ObjectCache(tmp_path / "cache", "blake3")
    paths = [write(tmp_path / f"f{i}", f"file {i}") for i in range(40)]
    with cache.batch() as batch:
        first = [batch.add_file(p, 6 if i < 10 else 7)[0] for i, p in enumerate(paths[:20])]
        batch.commit_behind()
        rest = [batch.add_file(p)[0] for p in paths[20:]]
    assert events[0] == "sync" and events[1:21] == ["rename"] * 20
    assert events[21] == "sync" and events[22:42] == ["rename"] * 20
    assert events[42:] == ["sync"]  # the renames durable before anything names them
    assert sorted(cache.iter_oids()) == sorted(first + rest)
    assert all(cache.verify(oid) for oid in first + rest)
    assert os.listdir(cache.tmp_dir) == []


def test_a_failure_behind_is_raised_and_leaves_no_temps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from moma_cli.errors import NoSpaceError

    real_replace = os.replace

    def full(a: str, b: str) -> None:
        if b.endswith(digest(b"file 3", "blake3")[2:]):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(a, b)

    monkeypatch.setattr(os, "replace", full)
    cache = ObjectCache(tmp_path / "cache", "blake3")
    paths = [write(tmp_path / f"f{i}", f"file {i}") for i in range(30)]
    with pytest.raises(NoSpaceError), cache.batch() as batch:
        for p in paths[:20]:
            batch.add_file(p)
        batch.commit_behind()
        for p in paths[20:]:
            batch.add_file(p)
    assert os.listdir(cache.tmp_dir) == []
    assert all(cache.verify(oid) for oid in cache.iter_oids())  # whole, or absent


def test_a_small_file_that_changed_since_the_walk_is_read_whole(tmp_path: Path) -> None:
    src = write(tmp_path / "grew", b"x" * 5000)
    cache = ObjectCache(tmp_path / "cache", "blake3")
    with cache.batch() as batch:
        oid, size, key = batch.add_file(src, 100)  # the walk saw 100 bytes
    assert (oid, size) == (digest(b"x" * 5000, "blake3"), 5000)
    assert key.size == 5000 and cache.oid_to_path(oid).read_bytes() == b"x" * 5000


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


def _writer(data: bytes, feed: bool) -> Callable[[Sequence[Path], Hasher], bool]:
    """A `Writer` that writes `data` to every path, and feeds the hasher if `feed`."""
    def write(paths: Sequence[Path], hasher: Hasher) -> bool:
        for path in paths:
            path.write_bytes(data)
        if feed:
            hasher.update(data)
        return feed
    return write


@pytest.mark.parametrize("feed", [True, False])  # hashed on the way in / from the file
def test_a_download_within_spare_copies_leaves_a_spare_once_in_the_cache(
        tmp_path: Path, feed: bool) -> None:
    data = os.urandom(2 << 20)
    cache = ObjectCache(tmp_path / "cache", "blake3")
    oid = digest(data, "blake3")
    with cache.spare_copies():
        with cache.batch() as batch:
            batch.add_written(oid, len(data), _writer(data, feed), "remote")
            assert cache.take_spare(cache.object_path(oid)) is None  # not before the commit
        spare = cache.take_spare(cache.object_path(oid))
        assert spare is not None and Path(spare).read_bytes() == data
        assert os.stat(spare).st_ino != cache.oid_to_path(oid).stat().st_ino
        assert cache.take_spare(cache.object_path(oid)) is None  # taken once
        os.unlink(spare)
    assert cache.verify(oid) and os.listdir(cache.tmp_dir) == []


def test_spares_are_not_kept_for_a_corrupt_download_nor_after_the_block(tmp_path: Path) -> None:
    good, bad = os.urandom(2 << 20), os.urandom(2 << 20)
    cache = ObjectCache(tmp_path / "cache", "blake3")
    with cache.spare_copies():
        with cache.batch() as batch:
            batch.add_written(digest(good, "blake3"), len(good), _writer(good, True), "remote")
            with pytest.raises(Exception, match="is corrupt"):
                batch.add_written(digest(good + b"x", "blake3"), len(bad),
                                  _writer(bad, True), "remote")
        assert len(os.listdir(cache.tmp_dir)) == 1  # the good object's spare only
    assert os.listdir(cache.tmp_dir) == []  # an unused spare is removed with the block
    assert list(cache.iter_oids()) == [digest(good, "blake3")]


def test_without_spare_copies_a_download_is_written_once(tmp_path: Path) -> None:
    data = os.urandom(2 << 20)
    written: list[int] = []
    cache = ObjectCache(tmp_path / "cache", "blake3")

    def write(paths: Sequence[Path], hasher: Hasher) -> bool:
        written.append(len(paths))
        return _writer(data, False)(paths, hasher)

    with cache.batch() as batch:
        batch.add_written(digest(data, "blake3"), len(data), write, "remote")
    assert written == [1] and os.listdir(cache.tmp_dir) == []
