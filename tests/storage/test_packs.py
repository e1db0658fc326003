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
from helpers import cache_objects
from moma_cli.core import pointer
from moma_cli.core.hashing import hash_bytes
from moma_cli.errors import HashMismatchError, PackIndexError
from moma_cli.services.sync import planning
from moma_cli.storage import packs
from moma_cli.storage.fs import Location
from moma_cli.storage.remote.local import LocalRemote

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
    slots = packs.decode_index(index, packid, "blake3", 3)
    assert slots == {_oid(b"a"): packs.Slot(packid, 0, 1), _oid(b"bb"): packs.Slot(packid, 1, 2),
                     _oid(b""): packs.Slot(packid, 3, 0)}
    with pytest.raises(PackIndexError, match=f"pack index packs/{packid}.idx: content does "
                                             "not match its name"):
        packs.decode_index(index.replace(b" 1 2", b" 1 3"), packid, "blake3", 3)
    foreign = index.replace(b"blake3", b"sha256")
    with pytest.raises(PackIndexError, match="unknown format"):
        packs.decode_index(foreign, hash_bytes(foreign, "blake3"), "blake3", 3)


@pytest.mark.parametrize("pack_size", [2, 4])
def test_index_must_cover_its_pack_exactly(pack_size: int) -> None:
    index = packs.encode_index([(_oid(b"a"), 1), (_oid(b"bb"), 2)], "blake3")
    packid = hash_bytes(index, "blake3")
    with pytest.raises(PackIndexError, match=f"describes 3 bytes, the pack has {pack_size}"):
        packs.decode_index(index, packid, "blake3", pack_size, "remote 'r'")


@pytest.mark.parametrize(("body", "reason"), [
    (b"{a} 0 1\n{b} 2 2\n", "line 3: object at offset 2, not 1"),
    (b"{a} 00 1\n", "line 2 is not"),
    (b"{a} +0 1\n", "line 2 is not"),
    (b"{a} 0 1_0\n", "line 2 is not"),
    (b"{a}  0 1\n", "line 2 is not"),
    (b"{a} 0 1\r\n", "line 2 is not"),
    (b"{A} 0 1\n", "line 2 is not"),
    (b"{a} 0 " + b"9" * 5000 + b"\n", "line 2 is not"),
    (b"{a} 0 1", "last line is cut short"),
    (b"{a} 0 1048577\n", "line 2: object of 1048577 bytes, more than a pack holds"),
])
def test_index_is_read_only_in_the_form_moma_writes(body: bytes, reason: str) -> None:
    a, b = _oid(b"a"), _oid(b"bb")
    index = f"{packs.FORMAT} blake3\n".encode() + body.replace(b"{a}", a.encode()).replace(
        b"{A}", a.upper().encode()).replace(b"{b}", b.encode())
    packid = hash_bytes(index, "blake3")
    with pytest.raises(PackIndexError) as caught:
        packs.decode_index(index, packid, "blake3", 3, "remote 'r'")
    assert caught.value.message.startswith(f"pack index packs/{packid}.idx on remote 'r': "
                                           f"{reason}")


def test_index_larger_than_any_moma_writes_is_refused_unread() -> None:
    packid = "0" * 64
    with pytest.raises(PackIndexError, match="more than an index can be"):
        packs.check_index_size(packid, packs.INDEX_MAX + 1)
    oids = [(f"{i:064x}", 9) for i in range(packs.OBJECTS_MAX + 1)]
    assert [len(g) for g in packs.group(oids)] == [packs.OBJECTS_MAX, 1]
    largest = packs.encode_index([(f"{i:064x}", packs.OBJECT_MAX) for i in
                                  range(packs.OBJECTS_MAX)], "blake3")
    assert len(largest) < packs.INDEX_MAX


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


def test_index_finds_every_object_of_its_live_packs() -> None:
    first = {f"{i:064x}": packs.Slot("p1", i * 10, 10) for i in range(3000)}
    second = {f"{i:064x}": packs.Slot("p2", i, 1) for i in range(2000, 4000)}  # overlaps
    index = packs.Index()
    index.add("p1", first)
    index.add("p2", second)
    index.add("p1", first)  # a pack already there: nothing changes
    assert index.get(f"{5:064x}") == packs.Slot("p1", 50, 10)
    assert index.get(f"{2500:064x}") == packs.Slot("p2", 2500, 1)  # the later pack is read
    assert f"{4000:064x}" not in index and index.get("f" * 64) is None
    assert index.pack_ids() == ["p1", "p2"] and index.slots("p1") == first
    index.drop("p2")
    assert index.get(f"{2500:064x}") == packs.Slot("p1", 25000, 10)  # the other copy
    assert f"{3500:064x}" not in index
    assert dict(index.items()) == first and len(index) == 3000


def test_a_pack_is_built_from_the_files_and_refuses_one_that_changed_size(
        tmp_path: Path) -> None:
    store = LocalRemote(Location("r", str(tmp_path / "remote"), "local",
                                 str(tmp_path / "remote")), "blake3", tmp_path / "idx", 2, False)
    files = []
    for i in range(3):
        path = tmp_path / f"f{i}"
        path.write_bytes(_content(i))
        files.append((_oid(_content(i)), path, len(_content(i))))
    packid = store.pack_files(files)
    data = (tmp_path / "remote" / "blake3" / packs.DIR / (packid + packs.PACK_SUFFIX)).read_bytes()
    assert data == b"".join(_content(i) for i in range(3))
    assert all(store.packs().get(oid) is not None for oid, _, _ in files)
    for size in (files[1][2] - 1, files[1][2] + 1):  # shrank or grew since it was verified
        changed = [files[0], (files[1][0], files[1][1], size), files[2]]
        with pytest.raises(HashMismatchError, match=f"{files[1][0][:8]}.* changed while"):
            store.pack_files(changed)


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
    assert "up to date" in repo("status", "-c").stdout
    assert f"0 files pushed, {N_FILES + 2} up to date" in repo("push").stdout

    clone = clone_of(repo, tmp_path)
    res = clone("pull")
    assert f"{N_FILES + 2} files fetched" in res.stdout
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    assert (clone.root / "big.bin").read_bytes() == (repo.root / "big.bin").read_bytes()
    assert json.loads(clone("fsck", "-c", "--json").stdout)["ok"]


def test_a_directory_moves_a_window_at_a_time(repo: Moma, any_remote: RemoteSpec,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows of 70: two become packs, the last 60 files (fewer than MIN_OBJECTS) go loose;
    # the last file repeats the first one's bytes, which the first window already sent.
    monkeypatch.setattr(planning, "WINDOW", 70)
    write(repo.root / "data/d3/z-copy.txt", _content(0))
    _project(repo, any_remote)
    report = json.loads(repo("push", "--json").stdout)
    assert report["ok"] and len(report["transferred"]) == N_FILES + 2
    assert report["skipped"] == 1  # the copy: on the remote by its window
    assert len(any_remote.packs()) == 4  # two packs and their indexes
    objects = any_remote.objects()
    assert len(objects) == N_FILES + 2
    assert all(hash_bytes(blob, "blake3") == oid for oid, blob in objects.items())
    assert "0 files pushed" in repo("push").stdout

    clone = clone_of(repo, tmp_path)
    assert f"{N_FILES + 2} files fetched" in clone("pull").stdout
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    assert json.loads(clone("fsck", "-c", "--json").stdout)["ok"]


def test_a_fetch_reads_packs_in_their_order_not_once_per_window(
        repo: Moma, any_remote: RemoteSpec, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _project(repo, any_remote)
    repo("push")  # one window: one pack, its objects in oid order, not the listing's
    reads: list[packs.Span] = []
    spans = packs.spans
    monkeypatch.setattr(packs, "spans", lambda located: reads.extend(spans(located)) or
                        spans(located))
    monkeypatch.setattr(planning, "WINDOW", 70)  # every window wants objects of all the pack
    clone = clone_of(repo, tmp_path)
    clone("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    # Each byte of the pack is read once, a window's worth of objects at a time.
    assert sum(len(span.oids) for span in reads) == N_FILES
    assert all(a.end <= b.start for a, b in zip(reads, reads[1:], strict=False))


def test_a_file_missing_from_the_cache_holds_its_listing_back(
        repo: Moma, any_remote: RemoteSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planning, "WINDOW", 70)
    _project(repo, any_remote)
    lost = _oid(_content(120))  # data/d2/f120.txt, in the second window
    path = cache_objects(repo.root)[lost]
    os.chmod(path.parent, 0o755)
    path.unlink()
    res = repo("push", "--json", ok=False)
    report = json.loads(res.stdout)
    listing = _listing_oid(repo)
    assert report["failed"][lost] == f"data/d2/f120.txt: object {lost[:8]} is not in the cache"
    assert report["failed"][listing] == (f"data: directory listing {listing[:8]} not pushed: "
                                         "1 of its files are not on the remote")
    assert lost not in report["transferred"] and listing not in report["transferred"]
    assert len(report["transferred"]) == N_FILES  # the other files and big.bin
    assert any_remote.oids() == set(report["transferred"])


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

    report = json.loads(clone("fsck", "-c", "--json", ok=False).stdout)
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
    report = json.loads(repo("fsck", "-c", "--json", ok=False).stdout)
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
    assert json.loads(repo("fsck", "-c", "--json").stdout)["ok"]


# -- indexes come from whoever can write to the remote ---------------------------------------


def _plant(remote: RemoteSpec, index: bytes, pack: bytes) -> str:
    """Put a crafted pack and index on the remote, the index named by its own hash as any
    writer could; returns the index's file name as messages give it."""
    packid = hash_bytes(index, "blake3")
    fs, root = remote._fs()
    fs.makedirs(f"{root}/blake3/packs", exist_ok=True)
    fs.pipe_file(f"{root}/blake3/packs/{packid}.pack", pack)
    fs.pipe_file(f"{root}/blake3/packs/{packid}.idx", index)
    return f"packs/{packid}.idx"


_HEADER = f"{packs.FORMAT} blake3\n".encode()


# Each made `pull` fail before: exit 3 (ValueError, UnicodeDecodeError, MemoryError), an
# error naming no file (negative offset), or a corrupt object instead of the good one.
_BAD_LINES = {
    "{oid} 0": "line 2 is not '<oid> <offset> <size>'",
    "{oid} 0 1\n\xff\xfe 0 1": "not ASCII text",
    "{oid} -1 1": "line 2 is not '<oid> <offset> <size>'",
    "{oid} 0 1000000000000000": "line 2: object of 1000000000000000 bytes",
    "{oid} 0 1\n{oid} 1 1": "line 3: object {short} is listed twice",
}


def test_malformed_indexes_are_reported_by_name_and_the_other_packs_serve(
        repo: Moma, any_remote: RemoteSpec, tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push")
    # Each bad index claims the directory listing, which the remote holds loose: a claim
    # from a pack is believed first, so a trusted bad one would stand in the way.
    oid = _listing_oid(repo)
    planted = {_plant(any_remote, _HEADER + line.format(oid=oid).encode("latin-1") + b"\n",
                      b"x"): reason.format(short=oid[:8]) for line, reason in _BAD_LINES.items()}
    huge = _HEADER + b"\n" * (packs.INDEX_MAX + 1 - len(_HEADER))  # larger than moma writes
    planted[_plant(any_remote, huge, b"")] = f"{len(huge)} bytes, more than an index can be"
    clone = clone_of(repo, tmp_path)
    res = clone("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    stderr = " ".join(res.stderr.split())
    for name, reason in planted.items():
        assert re.search(rf"warning: ignored pack index {name} on remote 'storage' \(.*?\): "
                         rf"{re.escape(reason)}", stderr)
    report = json.loads(clone("fsck", "-c", "--json", ok=False).stdout)
    assert sorted(c["oid"] for c in report["corrupt"]) == sorted(n[6:-4] for n in planted)
    assert report["missing"] == []


def test_index_whose_pack_cannot_back_it_does_not_count_as_pushed(
        repo: Moma, any_remote: RemoteSpec, tmp_path: Path) -> None:
    # An index claiming everything `data` needs, planted before its owner pushes it (the
    # oids are in the pointers, the bytes of the listing are in any clone's cache).
    _project(repo, any_remote)
    listing = cache_objects(repo.root)[_listing_oid(repo)].read_bytes()
    contents = [_content(i) for i in range(N_FILES)] + [listing]
    real = b"".join(contents)
    name = _plant(any_remote, packs.encode_index([(_oid(c), len(c)) for c in contents],
                                                 "blake3"), real[:-1])
    res = repo("status", "-c", ok=False)
    assert re.search(r"not-pushed:\s+data\s", res.stdout)
    res = repo("push")
    assert f"{N_FILES + 2} files pushed, 0 up to date" in res.stdout
    assert re.search(rf"warning: ignored pack index {name} on remote 'storage' \(.*\): describes "
                     rf"{len(real)} bytes, the pack has {len(real) - 1}",
                     " ".join(res.stderr.split()))
    assert "up to date" in repo("status", "-c").stdout
    clone = clone_of(repo, tmp_path)
    clone("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
