"""Packs: many small objects travel as a few remote files (storage/packs.py), against a
local-directory remote and the S3 server."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from conftest import Moma, RemoteSpec, clone_of, git, tree_bytes, write
from moma_cli.core import pointer
from moma_cli.core.hashing import hash_bytes
from moma_cli.errors import HashMismatchError
from moma_cli.storage import packs

N_FILES = 200  # above packs.MIN_OBJECTS


def _oid(data: bytes) -> str:
    return hash_bytes(data, "blake3")


def _content(i: int) -> bytes:
    return f"file {i}\n".encode() * (i % 7 + 1)


def _project(moma: Moma, remote: RemoteSpec) -> None:
    for i in range(N_FILES):
        write(moma.root / f"data/d{i // 50}/f{i:03}.txt", _content(i))
    write(moma.root / "big.bin", os.urandom(packs.OBJECT_MAX + 1))
    moma("add", "data", "big.bin")
    remote.add_to(moma)
    moma.git("add", "-A")
    moma.git("commit", "-qm", "data")


def _listing_oid(moma: Moma) -> str:
    return pointer.parse((moma.root / "data.moma").read_text(), "data.moma").oid


# -- the format ------------------------------------------------------------------------------


def test_index_round_trip_and_tampering() -> None:
    objects = [(_oid(b"a"), 1), (_oid(b"bb"), 2), (_oid(b""), 0)]
    index = packs.encode_index(objects, "blake3")
    packid = hash_bytes(index, "blake3")
    slots = packs.decode_index(index, packid, "blake3")
    assert slots == {_oid(b"a"): packs.Slot(packid, 0, 1), _oid(b"bb"): packs.Slot(packid, 1, 2),
                     _oid(b""): packs.Slot(packid, 3, 0)}
    with pytest.raises(HashMismatchError, match="pack index .* is corrupt"):
        packs.decode_index(index.replace(b" 1 2", b" 1 3"), packid, "blake3")
    foreign = index.replace(b"blake3", b"sha256")
    with pytest.raises(HashMismatchError, match="unknown format"):
        packs.decode_index(foreign, hash_bytes(foreign, "blake3"), "blake3")


def test_objects_are_grouped_by_size_and_reads_merged_across_small_gaps() -> None:
    assert packs.group([("a", 5), ("b", 5), ("c", 5)], target=10) == [["a", "b"], ["c"]]
    assert packs.group([("a", 50)], target=10) == [["a"]]
    gap, span = packs.GAP_BYTES, packs.SPAN_BYTES
    located = {
        "a": packs.Slot("p", 0, 10),
        "b": packs.Slot("p", 10 + gap, 10),  # within the gap: same read
        "c": packs.Slot("p", 20 + 2 * gap + 1, 10),  # beyond it: a new read
        "d": packs.Slot("q", 0, 10),  # another pack: a new read
        "e": packs.Slot("q", span, 10),  # would make the read too long
    }
    reads = [(s.packid, s.start, s.end, s.oids) for s in packs.spans(located)]
    c_at = 20 + 2 * gap + 1
    assert reads == [("p", 0, 20 + gap, ["a", "b"]), ("p", c_at, c_at + 10, ["c"]),
                     ("q", 0, 10, ["d"]), ("q", span, span + 10, ["e"])]
    a, b = b"A" * 10, b"B" * 10
    first = packs.spans(located)[0]
    assert [(oid, bytes(view)) for oid, view in first.objects(a + bytes(gap) + b)] == [
        ("a", a), ("b", b)]


# -- push and pull through packs -------------------------------------------------------------


def test_many_small_files_travel_in_packs(repo: Moma, any_remote: RemoteSpec,
                                          tmp_path: Path) -> None:
    _project(repo, any_remote)
    report = json.loads(repo("push", "--json").stdout)
    assert report["ok"] and len(report["transferred"]) == N_FILES + 2  # + big.bin, listing
    names = any_remote.packs()
    assert len(names) == 2 and {Path(n).suffix for n in names} == {".pack", ".idx"}
    objects = any_remote.objects()
    assert len(objects) == N_FILES + 2
    assert all(hash_bytes(blob, "blake3") == oid for oid, blob in objects.items())
    assert "up to date" in repo("status", "--remote").stdout
    assert f"0 files pushed, {N_FILES + 2} up to date" in repo("push").stdout

    clone = clone_of(repo, tmp_path)
    res = clone("pull")
    assert f"{N_FILES + 2} files fetched" in res.stdout
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    assert (clone.root / "big.bin").read_bytes() == (repo.root / "big.bin").read_bytes()
    assert json.loads(clone("fsck", "--remote", "--json").stdout)["ok"]


def test_few_small_files_stay_loose(repo: Moma, any_remote: RemoteSpec) -> None:
    for i in range(packs.MIN_OBJECTS - 2):
        write(repo.root / f"few/f{i}.txt", _content(i))
    repo("add", "few")
    any_remote.add_to(repo)
    repo("push")
    assert any_remote.packs() == []
    assert len(any_remote.oids()) == packs.MIN_OBJECTS - 1  # the files and the listing


def test_corrupt_object_in_a_pack_is_refused_then_repaired(
        repo: Moma, any_remote: RemoteSpec, tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push")
    victim = _content(7)
    pack = next(n for n in any_remote.packs() if n.endswith(".pack"))
    data = any_remote.read_pack(pack)
    at = data.index(victim)
    any_remote.write_pack(pack, data[:at] + b"X" + data[at + 1:])

    clone = clone_of(repo, tmp_path)
    res = clone("pull", ok=False)
    assert f"data/d0/f007.txt: object {_oid(victim)[:8]}" in res.stderr
    assert "corrupt" in res.stderr and "moma push --verify" in res.stderr
    assert not (clone.root / "data/d0/f007.txt").exists()
    assert (clone.root / "data/d0/f008.txt").read_bytes() == _content(8)  # the rest arrived
    assert len(list((clone.root / ".moma/cache/quarantine/corrupt").iterdir())) == 1

    report = json.loads(clone("fsck", "--remote", "--json", ok=False).stdout)
    assert [c["oid"] for c in report["corrupt"]] == [_oid(victim)]

    res = repo("push", "--verify")
    assert "1 damaged remote copies replaced" in res.stdout
    assert any_remote.read_pack(pack) == data  # same objects, same pack: replaced whole
    clone("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")


def test_missing_pack_names_the_files(repo: Moma, any_remote: RemoteSpec,
                                      tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push")
    pack = next(n for n in any_remote.packs() if n.endswith(".pack"))
    any_remote.delete_pack(pack)
    clone = clone_of(repo, tmp_path)
    res = clone("pull", ok=False)
    assert re.search(r"data/d\d/f\d{3}\.txt: no object [0-9a-f]{8} on remote 'storage'",
                     res.stderr)
    assert "run 'moma push' on the machine that added it" in res.stderr
    assert (clone.root / "big.bin").read_bytes() == (repo.root / "big.bin").read_bytes()
    # the remote no longer holds them, so a push sends them again
    assert f"{N_FILES} files pushed" in repo("push").stdout
    clone("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")


def test_damaged_index_is_reported_and_healed_by_push(repo: Moma, any_remote: RemoteSpec,
                                                      tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push")
    index = next(n for n in any_remote.packs() if n.endswith(".idx"))
    any_remote.write_pack(index, any_remote.read_pack(index) + b"junk\n")
    report = json.loads(repo("fsck", "--remote", "--json", ok=False).stdout)
    assert index.removesuffix(".idx") in [c["oid"] for c in report["corrupt"]]
    assert len(report["missing"]) == N_FILES  # what the pack holds can no longer be found
    assert f"{N_FILES} files pushed" in repo("push", "--verify").stdout
    clone = clone_of(repo, tmp_path)
    clone("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")


# -- gc --remote and remote clean ------------------------------------------------------------


def test_gc_remote_rewrites_packs_it_partly_frees(repo: Moma, any_remote: RemoteSpec,
                                                  tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "origin.git")  # gc keeps unpushed commits' data
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    _project(repo, any_remote)
    repo("push")
    for i in range(0, N_FILES, 2):  # the next version changes half the files
        write(repo.root / f"data/d{i // 50}/f{i:03}.txt", b"v2 " + _content(i))
    repo("add", "data")
    repo.git("commit", "-qam", "v2")
    repo.git("push", "-q", "origin", "main")
    repo("push")
    before = set(any_remote.packs())

    res = repo("gc", "--workspace", "--remote", "storage", "--force")
    assert "Deleted 101 objects" in res.stdout  # half of the files, and the old listing
    after = set(any_remote.packs())
    assert len(after) == 4 and after != before  # the old pack was rewritten
    assert _oid(_content(0)) not in any_remote.oids()
    assert _oid(_content(1)) in any_remote.oids()
    clone = clone_of(repo, tmp_path)
    clone("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")

    repo.git("rm", "-q", "data.moma")
    repo.git("commit", "-qm", "no more data")
    repo.git("push", "-q", "origin", "main")
    repo("gc", "--workspace", "--remote", "storage", "--force")
    assert any_remote.packs() == []  # every object gone: no pack left


def test_remote_clean_removes_old_packs_without_an_index(
        repo: Moma, tmp_path: Path) -> None:
    remote = RemoteSpec("local", str(tmp_path / "remote"), {})
    _project(repo, remote)
    repo("push")
    packs_dir = tmp_path / "remote/blake3/packs"
    old, young = packs_dir / f"{'a' * 64}.pack", packs_dir / f"{'b' * 64}.pack"
    write(old, b"what a killed push left")
    write(young, b"a push under way")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert len(remote.oids()) == N_FILES + 2  # neither is read as a pack
    res = json.loads(repo("remote", "clean", "--json").stdout)
    assert res["removed"] == [f"packs/{old.name}"]
    assert not old.exists() and young.exists()
    repo("push")  # a push cleans up too, and the complete packs stay
    assert json.loads(repo("fsck", "--remote", "--json").stdout)["ok"]
