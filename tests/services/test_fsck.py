"""`moma fsck` and checkout over a damaged cache: detect, move aside, restore the rest."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from conftest import Moma, tree_bytes, write
from moma_cli.core.hashing import hash_bytes


def obj_path(moma: Moma, data: bytes) -> Path:
    o = hash_bytes(data, "blake3")
    return moma.root / ".moma/cache/blake3" / o[:2] / o[2:]


def damage(path: Path, content: bytes) -> None:
    """Overwrite a read-only cache object (tests may run as root, so check the bits)."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    os.chmod(path, 0o644)
    path.write_bytes(content)
    os.chmod(path, 0o444)


def flip_first_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    damage(path, bytes(data))


FILES = {"a.bin": b"alpha" * 100, "b.bin": b"bravo" * 100, "c.bin": b"charlie" * 100}


def add_three(moma: Moma) -> None:
    for name, data in FILES.items():
        write(moma.root / name, data)
    moma("add", *FILES)


def test_clean_cache_passes(repo: Moma) -> None:
    add_three(repo)
    write(repo.root / "empty.bin", b"")  # a legitimately zero-length object
    repo("add", "empty.bin")
    res = repo("fsck")
    assert "4 objects checked, 0 corrupt, 0 missing" in res.stdout


def test_flipped_byte_and_zero_length_object_are_moved_aside(repo: Moma) -> None:
    add_three(repo)
    flip_first_byte(obj_path(repo, FILES["a.bin"]))
    damage(obj_path(repo, FILES["b.bin"]), b"")
    res = repo("fsck", "--json", ok=False)
    report = json.loads(res.stdout)
    assert report["ok"] is False and report["checked"] == 3
    bad = {hash_bytes(FILES[n], "blake3") for n in ("a.bin", "b.bin")}
    assert {c["oid"] for c in report["corrupt"]} == bad
    for corrupt in report["corrupt"]:
        moved = Path(corrupt["moved_to"])
        assert moved.parent == repo.root / ".moma/cache/quarantine/corrupt" and moved.is_file()
    assert not obj_path(repo, FILES["a.bin"]).exists()
    assert {m["path"] for m in report["missing"]} == {"a.bin", "b.bin"}
    # The next run finds nothing corrupt, only the two objects still missing.
    res = repo("fsck", ok=False)
    assert "1 objects checked, 0 corrupt, 2 missing" in res.stdout
    assert "a.bin: object" in res.stderr and "moma pull" in res.stderr

    # checkout restores the intact file and lists the missing ones with a hint.
    for name in FILES:
        (repo.root / name).unlink()
    res = repo("checkout", ok=False)
    assert "1 restored" in res.stdout
    assert (repo.root / "c.bin").read_bytes() == FILES["c.bin"]
    assert "a.bin: object not in the cache" in res.stderr
    assert "b.bin: object not in the cache" in res.stderr and "hint:" in res.stderr
    assert not (repo.root / "a.bin").exists() and not (repo.root / "b.bin").exists()


def test_checkout_detects_corruption_without_fsck(repo: Moma) -> None:
    add_three(repo)
    for name in FILES:
        (repo.root / name).unlink()
    flip_first_byte(obj_path(repo, FILES["b.bin"]))
    damage(obj_path(repo, FILES["c.bin"]), b"")
    res = repo("checkout", ok=False)
    assert "b.bin: cache object was corrupt and was moved aside" in res.stderr
    assert "c.bin: cache object was corrupt and was moved aside" in res.stderr
    assert not (repo.root / "b.bin").exists() and not (repo.root / "c.bin").exists()
    assert (repo.root / "a.bin").read_bytes() == FILES["a.bin"]
    assert len(list((repo.root / ".moma/cache/quarantine/corrupt").iterdir())) == 2


def test_missing_file_inside_directory_is_named(repo: Moma) -> None:
    for i in range(3):
        write(repo.root / f"data/f{i}.txt", f"row {i}")
    repo("add", "data")
    expected = tree_bytes(repo.root / "data")
    os.unlink(obj_path(repo, b"row 1"))
    res = repo("fsck", "--json", ok=False)
    assert json.loads(res.stdout)["missing"] == [
        {"path": "data/f1.txt", "oid": hash_bytes(b"row 1", "blake3")}]
    assert tree_bytes(repo.root / "data") == expected  # the work tree is untouched


def test_stale_temp_files_are_removed(repo: Moma) -> None:
    add_three(repo)
    tmp = repo.root / ".moma/cache/tmp"
    old = write(tmp / ".moma-tmp-object.00000000deadbeef", b"x")
    fresh = write(tmp / ".moma-tmp-object.00000000feedf00d", b"y")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    res = repo("fsck", "--json")
    assert json.loads(res.stdout)["stale_tmp"] == [old.name]
    assert not old.exists() and fresh.exists()


def test_fsck_deletes_only_files_named_as_its_temps(repo: Moma, tmp_path: Path) -> None:
    # A cache set on this machine may be anywhere, e.g. a directory that also holds a
    # user's files: only moma's own temp names are ever removed from its tmp/.
    shared = tmp_path / "shared"
    write(repo.root / ".moma.local.yaml", f"cache:\n  dir: {shared}\n")
    add_three(repo)
    two_hours_ago = time.time() - 7200
    kept = [write(shared / "tmp" / name, b"the user's") for name in
            ("notes.txt", ".moma-tmp-notes", ".moma-tmp-object.dead", "object.0123456789abcdef")]
    stale = write(shared / "tmp/.moma-tmp-object.0123456789abcdef", b"x")
    for path in [*kept, stale]:
        os.utime(path, (two_hours_ago, two_hours_ago))
    res = repo("fsck", "--json")
    assert json.loads(res.stdout)["stale_tmp"] == [stale.name]
    assert all(path.read_bytes() == b"the user's" for path in kept)


def test_invalid_pointer_fails_fsck(repo: Moma) -> None:
    add_three(repo)
    write(repo.root / "bad.bin.moma", "moma: 1\nhash: blake3\noid: abc\nsize: 1\n")
    res = repo("fsck", ok=False)
    assert "bad.bin.moma" in res.stderr and "0 corrupt, 0 missing" in res.stdout
