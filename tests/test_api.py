"""`moma_cli.api.open / read`: tracked files at any git revision, verified bytes only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Moma, write
from moma_cli import api
from moma_cli.core.hashing import hash_bytes
from moma_cli.errors import GitError, HashMismatchError, ObjectMissingError, PathError


@pytest.fixture
def versions(repo: Moma) -> Moma:
    """model.bin and data/ at tag v1, changed at HEAD."""
    write(repo.root / "model.bin", b"weights v1")
    write(repo.root / "data/train.csv", "a,b\n1,2\n")
    repo("add", "model.bin", "data")
    repo.git("commit", "-qm", "v1")
    repo.git("tag", "v1")
    write(repo.root / "model.bin", b"weights v2")
    write(repo.root / "data/train.csv", "a,b\n3,4\n")
    repo("add", "model.bin", "data")
    repo.git("commit", "-qm", "v2")
    return repo


def test_read_at_revisions_and_from_the_work_tree(versions: Moma) -> None:
    root = versions.root
    assert api.read("model.bin", rev="v1", repo=root) == b"weights v1"
    assert api.read("model.bin", rev="HEAD", repo=root) == b"weights v2"
    assert api.read("model.bin", repo=root) == b"weights v2"
    assert api.read("data/train.csv", rev="v1", repo=root) == b"a,b\n1,2\n"
    assert api.read("data/train.csv", rev="HEAD~1", repo=root) == b"a,b\n1,2\n"


def test_open_defaults_to_the_current_repository(versions: Moma,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(versions.root / "data")
    with api.open("data/train.csv", rev="v1", mode="r") as fh:
        assert fh.readline() == "a,b\n"
    with api.open("model.bin") as fh:
        assert fh.read() == b"weights v2"
    with pytest.raises(ValueError, match="mode"):
        api.open("model.bin", mode="wb")


def test_reading_never_needs_the_work_tree_copy(versions: Moma) -> None:
    (versions.root / "model.bin").unlink()
    assert api.read("model.bin", rev="v1", repo=versions.root) == b"weights v1"


def test_bad_paths_and_revisions(versions: Moma) -> None:
    root = versions.root
    with pytest.raises(PathError, match="not tracked by moma at revision v1"):
        api.read("nope.bin", rev="v1", repo=root)
    with pytest.raises(PathError, match="is a tracked directory"):
        api.read("data", repo=root)
    with pytest.raises(PathError, match="not in the tracked directory data"):
        api.read("data/other.csv", repo=root)
    with pytest.raises(PathError, match="outside the repository"):
        api.read("../elsewhere", repo=root)
    with pytest.raises(GitError, match="unknown git revision"):
        api.read("model.bin", rev="no-such-tag", repo=root)


def cache_object(moma: Moma, data: bytes) -> Path:
    o = hash_bytes(data, "blake3")
    return moma.root / ".moma/cache/blake3" / o[:2] / o[2:]


def test_missing_object_raises_with_a_hint(versions: Moma) -> None:
    os.unlink(cache_object(versions, b"weights v1"))
    with pytest.raises(ObjectMissingError, match="no remote is configured") as exc:
        api.read("model.bin", rev="v1", repo=versions.root)
    assert exc.value.hint


def test_corrupt_object_is_never_returned(versions: Moma) -> None:
    path = cache_object(versions, b"weights v1")
    os.chmod(path, 0o644)
    path.write_bytes(b"weights v9")
    os.chmod(path, 0o444)
    with pytest.raises(HashMismatchError, match="corrupt; moved aside"):
        api.read("model.bin", rev="v1", repo=versions.root)
    assert not path.exists()
