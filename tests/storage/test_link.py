"""Workspace placement: staged temps become files only on commit, and never linger."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moma_cli.storage import link


def objects(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        paths.append(tmp_path / "cache" / f"obj{i}")
        paths[-1].parent.mkdir(exist_ok=True)
        paths[-1].write_bytes(f"object {i}".encode())
        paths[-1].chmod(0o444)
    return paths


@pytest.mark.parametrize("count", [3, 40])  # fsync each / one sync for the batch
@pytest.mark.parametrize("kind", ["copy", "hardlink", "symlink"])
def test_commit_puts_every_file_in_place(tmp_path: Path, count: int, kind: str) -> None:
    placement = link.Placement([kind])
    dests = [tmp_path / "ws" / f"d{i % 4}" / f"f{i}" for i in range(count)]
    for src, dest in zip(objects(tmp_path, count), dests, strict=True):
        assert placement.stage(src, dest) == kind
        assert not dest.exists()  # nothing visible before the commit
    placement.commit()
    for i, dest in enumerate(dests):
        assert dest.read_bytes() == f"object {i}".encode()
    leftovers = [n for _, _, names in os.walk(tmp_path / "ws") for n in names if "moma-tmp" in n]
    assert leftovers == []


def test_discard_removes_staged_temps(tmp_path: Path) -> None:
    placement = link.Placement(["copy"])
    (src,) = objects(tmp_path, 1)
    placement.stage(src, tmp_path / "ws" / "f")
    placement.discard()
    assert os.listdir(tmp_path / "ws") == []


@pytest.mark.parametrize("size", [1 << 20, (64 << 20) + 12345])  # one window / written behind
def test_copies_are_exact_whatever_their_size(tmp_path: Path, size: int) -> None:
    src = tmp_path / "src"
    block = os.urandom(1 << 20)
    src.write_bytes((block * (size // len(block) + 1))[:size])
    link.copy_file(src, tmp_path / "dst", 0o444)
    assert (tmp_path / "dst").read_bytes() == src.read_bytes()
    assert (tmp_path / "dst").stat().st_mode & 0o777 == 0o444


def test_a_copy_takes_the_spare_offered_and_copies_without_one(tmp_path: Path) -> None:
    first, second = objects(tmp_path, 2)
    spare = tmp_path / "spare"
    spare.write_bytes(b"object 0")
    offered = {str(first): str(spare)}
    placement = link.Placement(["reflink", "copy"], spare=lambda p: offered.pop(p, None))
    placement.stage(first, tmp_path / "ws" / "a")
    placement.stage(second, tmp_path / "ws" / "b")
    placement.stage(first, tmp_path / "ws" / "c")  # the spare is gone: a copy
    placement.commit()
    assert not spare.exists()
    a, b, c = (tmp_path / "ws" / n for n in "abc")
    assert (a.read_bytes(), b.read_bytes(), c.read_bytes()) == (b"object 0", b"object 1",
                                                                 b"object 0")
    assert {p.stat().st_mode & 0o777 for p in (a, b, c)} == {0o644}
    assert len({p.stat().st_ino for p in (first, a, c)}) == 3


def test_copies_probes_the_link_types_in_order(tmp_path: Path) -> None:
    src, dst = tmp_path / "cache", tmp_path / "ws"
    dst.mkdir()
    assert link.copies(["copy"], src, dst)
    assert not link.copies(["hardlink", "copy"], src, dst)
    assert not link.copies(["symlink"], src, dst)
    assert os.listdir(src) == [] and os.listdir(dst) == []
