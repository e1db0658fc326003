"""Hostile or damaged pointers and manifests, through the CLI.

Each case: exit code 1, one clear error line naming the file (and line for YAML), no
traceback, the good pointers still work, and nothing lost or written outside the repo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Moma, register_model, write
from helpers import assert_nothing_lost, assert_one_error, snapshot
from moma_cli.core import hashing
from moma_cli.core import pointer as pointer_mod
from moma_cli.storage.cache import ObjectCache

GOOD_OID = "a" * 64


@pytest.fixture
def tracked(repo: Moma) -> Moma:
    write(repo.root / "good.bin", "good data")
    write(repo.root / "data/a.txt", "a")
    write(repo.root / "data/sub/b.txt", "b")
    repo("add", "good.bin", "data")
    repo.git("commit", "-qm", "data")
    return repo


def pointer_text(**changes: object) -> str:
    doc = {"moma": 1, "hash": "blake3", "oid": GOOD_OID, "size": 3, "kind": "file", **changes}
    return "".join(f"{k}: {v}\n" for k, v in doc.items() if v is not None)


def store_object(repo: Moma, data: bytes) -> str:
    return ObjectCache(repo.root / ".moma/cache", "blake3").add_bytes(data)


def dir_pointer(repo: Moma, path: str, entries: list[tuple[str, str, int]],
                nfiles: int | None = None, size: int | None = None) -> None:
    """Store a hand-made (possibly hostile) listing as a valid cache object, and point at it."""
    lines = [json.dumps({"moma-manifest": 1, "hash": "blake3"})]
    lines += [json.dumps(list(e)) for e in entries]
    oid = store_object(repo, ("\n".join(lines) + "\n").encode())
    ptr = pointer_mod.Pointer(path, "blake3", oid, sum(e[2] for e in entries) if size is None
                              else size, "dir", len(entries) if nfiles is None else nfiles)
    write(repo.root / ptr.pointer_path, pointer_mod.dumps(ptr))


def check_good_ones_still_work(repo: Moma, *fragments: str) -> None:
    """status and checkout report the bad pointer once and act on every good one."""
    before = snapshot(repo.root)
    (repo.root / "good.bin").unlink()
    (repo.root / "data/sub/b.txt").unlink()
    res = repo("status", ok=False)
    assert_one_error(res, *fragments)
    assert "missing:      good.bin" in res.stdout
    res = repo("checkout", ok=False)
    assert_one_error(res, *fragments)
    assert "2 restored" in res.stdout
    assert_nothing_lost(repo.root, before)
    assert {p.name for p in repo.root.parent.iterdir()} <= {"repo", "elsewhere.moma"}


BAD_POINTERS = {
    "short oid": (pointer_text(oid="abc"), "bad.bin.moma: 'oid' is not a valid blake3 digest"),
    "uppercase oid": (pointer_text(oid="A" * 64), "bad.bin.moma: 'oid' is not a valid"),
    "path as oid": (pointer_text(oid="../../tmp/x"), "bad.bin.moma: 'oid' is not a valid"),
    "truncated": ('moma: 1\nhash: blake3\noid: "aaaa', "bad.bin.moma:3: invalid YAML"),
    "duplicate key": (pointer_text() + "size: 4\n", "bad.bin.moma:6: invalid YAML: duplicate"),
    "list": ("- moma\n- 1\n", "bad.bin.moma:1: not a moma pointer (expected a mapping, got list)"),
    "scalar": ("just text\n", "bad.bin.moma:1: not a moma pointer"),
    "missing hash": (pointer_text(hash=None), "bad.bin.moma: unknown or missing hash algorithm"),
    "negative size": (pointer_text(size=-1), "bad.bin.moma: 'size' must be a non-negative"),
    "string size": (pointer_text(size="'3'"), "bad.bin.moma: 'size' must be a non-negative"),
    "sha256 algo, bad digest": (pointer_text(hash="sha256", oid="f" * 40),
                                "bad.bin.moma: 'oid' is not a valid sha256 digest"),
    # issue 12 item 6: valid YAML that no moma writes
    "complex key": (pointer_text() + "? [a, b]\n: x\n",
                    "bad.bin.moma:6: invalid YAML: complex mapping keys are not allowed"),
    "float schema": (pointer_text(moma="1.0"), "bad.bin.moma: missing or invalid 'moma' schema"),
    "bool schema": (pointer_text(moma="true"), "bad.bin.moma: missing or invalid 'moma' schema"),
    "impossible date": (pointer_text() + "meta: !!timestamp 2001-13-99\n",
                        "bad.bin.moma:6: invalid YAML: invalid timestamp value"),
}


@pytest.mark.parametrize("case", BAD_POINTERS)
def test_bad_pointer_is_named_and_good_ones_still_work(tracked: Moma, case: str) -> None:
    text, expected = BAD_POINTERS[case]
    write(tracked.root / "bad.bin.moma", text)
    check_good_ones_still_work(tracked, expected)


def test_absolute_paths_are_refused_and_pointers_cannot_redirect(tracked: Moma,
                                                                  tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # A pointer cannot name another location: its data path is its own path minus .moma;
    # an extra `path:` key is an unknown key, kept but never used.
    write(tracked.root / "x.bin.moma", pointer_text(path=str(outside / "x.bin")))
    for command in ("status", "checkout", "add"):
        res = tracked(command, str(outside / "x.bin"), ok=False)
        assert_one_error(res, "is outside the repository")
    res = tracked("checkout", ok=False)
    assert_one_error(res, "x.bin: object not in the cache")
    assert snapshot(outside) == {}


@pytest.mark.parametrize("target", ["valid pointer", "fifo"])
def test_symlinked_pointer_is_not_followed(tracked: Moma, tmp_path: Path, target: str) -> None:
    elsewhere = tmp_path / "elsewhere.moma"
    if target == "fifo":  # following it would block forever
        os.mkfifo(elsewhere)
    else:
        write(elsewhere, (tracked.root / "good.bin.moma").read_text())
    os.symlink(elsewhere, tracked.root / "bad.bin.moma")
    check_good_ones_still_work(tracked, "bad.bin.moma: is a symlink; pointer files must be")


def test_python_tag_runs_nothing_and_fails_fast(tracked: Moma, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    write(tracked.root / "bad.bin.moma",
          pointer_text() + f"meta: !!python/object/apply:os.system ['touch {marker}']\n")
    started = time.monotonic()
    for command in ("status", "checkout"):
        res = tracked.proc(command, ok=False)
        assert_one_error(res, "bad.bin.moma:6: invalid YAML",
                         "could not determine a constructor")
    assert time.monotonic() - started < 20
    assert not marker.exists()
    check_good_ones_still_work(tracked, "bad.bin.moma:6")


def test_alias_bomb_is_refused_at_the_first_alias(tracked: Moma) -> None:
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        bomb.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    write(tracked.root / "bad.bin.moma", pointer_text() + "meta:\n  " + "\n  ".join(bomb) + "\n")
    started = time.monotonic()
    res = tracked.proc("status", ok=False)
    assert time.monotonic() - started < 20
    assert_one_error(res, "bad.bin.moma:8: invalid YAML: aliases are not allowed")
    check_good_ones_still_work(tracked, "aliases are not allowed")


def test_pointer_size_must_match_the_object(tracked: Moma) -> None:
    ptr_file = tracked.root / "good.bin.moma"
    ptr_file.write_text(ptr_file.read_text().replace("size: 9", "size: 5"))
    res = tracked("status", ok=False)
    assert_one_error(res, "good.bin.moma: records size 5 but the data is 9 bytes")
    before = snapshot(tracked.root)
    (tracked.root / "good.bin").unlink()
    res = tracked("checkout", ok=False)
    assert_one_error(res, "good.bin: recorded size 5 differs from object", "not checked out")
    assert not (tracked.root / "good.bin").exists()
    del before["good.bin"]
    assert_nothing_lost(tracked.root, before)


def test_dir_pointer_totals_must_match_its_listing(tracked: Moma) -> None:
    ptr_file = tracked.root / "data.moma"
    ptr_file.write_text(ptr_file.read_text().replace("nfiles: 2", "nfiles: 3"))
    assert_one_error(tracked("status", ok=False), "data.moma: records 3 files, 2 bytes",
                     "has 2 files, 2 bytes")
    (tracked.root / "data/a.txt").unlink()
    res = tracked("checkout", ok=False)
    assert_one_error(res, "data.moma: records 3 files")
    assert not (tracked.root / "data/a.txt").exists()


def test_manifest_entry_size_must_match_the_object(repo: Moma) -> None:
    oid = store_object(repo, b"four")
    dir_pointer(repo, "data", [("a.txt", oid, 3)])
    res = repo("checkout", ok=False)
    assert_one_error(res, "data/a.txt: recorded size 3 differs from object")
    assert not (repo.root / "data/a.txt").exists()


def commit_overlapping_pointer(repo: Moma) -> None:
    """data.moma tracks data/ as a whole; a clone also carries data/sub.moma (force-added)."""
    write(repo.root / "data/sub.moma", (repo.root / "good.bin.moma").read_text())
    repo.git("add", "-f", "data/sub.moma")
    repo.git("commit", "-qm", "overlap")


def test_overlapping_pointers_are_refused_naming_both(tracked: Moma) -> None:
    commit_overlapping_pointer(tracked)
    expected = "data/sub.moma: overlaps data.moma, which tracks the whole directory"
    assert_one_error(tracked("status", ok=False), expected)
    assert_one_error(tracked("status", "data/sub", ok=False), expected)
    before = snapshot(tracked.root)
    (tracked.root / "good.bin").unlink()
    (tracked.root / "data/a.txt").unlink()
    res = tracked("checkout", ok=False)
    assert_one_error(res, expected)
    assert "1 restored" in res.stdout  # good.bin; neither overlapping pointer is acted on
    assert not (tracked.root / "data/a.txt").exists()
    del before["data/a.txt"]
    assert_nothing_lost(tracked.root, before)


def test_add_names_both_overlapping_pointers(tracked: Moma) -> None:
    commit_overlapping_pointer(tracked)
    assert_one_error(tracked("add", "data", ok=False), "data: contains data/sub",
                     "has its own pointer")
    assert_one_error(tracked("add", "data/sub", ok=False), "data/sub: is inside data")


@pytest.mark.parametrize("force", [False, True])
def test_parent_symlinked_outside_is_refused(tracked: Moma, tmp_path: Path, force: bool) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write(tracked.root / "models/m.bin", "model")
    tracked("add", "models/m.bin")
    for victim in ("models", "data"):
        os.rename(tracked.root / victim, tmp_path / f"{victim}.moved")
        os.symlink(outside, tracked.root / victim)
    res = tracked("checkout", *(["--force"] if force else []), ok=False)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "Traceback" not in res.stderr
    assert all("a parent directory is a symlink leading outside" in e for e in errors), errors
    assert snapshot(outside) == {}
    res = tracked("status", "models/m.bin", ok=False)
    assert_one_error(res, "a parent directory is a symlink leading outside")


@pytest.mark.parametrize("entry", ["../escape.txt", "/tmp/moma-escape.txt", "a/../../x",
                                   "./a", "a//b"])
def test_manifest_entry_outside_the_directory_is_refused(repo: Moma, tmp_path: Path,
                                                         entry: str) -> None:
    oid = store_object(repo, b"payload")
    dir_pointer(repo, "data", [(entry, oid, 7)])
    before = snapshot(repo.root)
    res = repo("checkout", ok=False)
    assert_one_error(res, "data.moma: manifest", "line 2")
    assert_nothing_lost(repo.root, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    assert not Path("/tmp/moma-escape.txt").exists()


def test_10mb_pointer_is_refused(tracked: Moma) -> None:
    write(tracked.root / "big.bin.moma", pointer_text() + "#" * (10 << 20))
    check_good_ones_still_work(tracked, "big.bin.moma: pointer is larger than 262144 bytes")


def test_huge_pointer_is_refused_without_reading_it_whole(tracked: Moma) -> None:
    big = tracked.root / "big.bin.moma"
    with open(big, "wb") as fh:  # sparse: 64 GiB that would take minutes and all RAM to read
        fh.write(pointer_text().encode())
        fh.truncate(64 << 30)
    started = time.monotonic()
    for command in ("status", "checkout"):
        assert_one_error(tracked(command, ok=False), "big.bin.moma: pointer is larger than")
    assert time.monotonic() - started < 10
    assert big.stat().st_size == 64 << 30


# ru_maxrss survives fork+exec (the child would report the pytest worker's peak), so the
# probe reads the kernel's high-water mark of its own fresh address space: VmHWM.
_RSS_PROBE = """
import sys
from moma_cli.cli.app import full_app
try:
    full_app()(sys.argv[1:], prog_name="moma")
except SystemExit as exc:
    code = exc.code
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print("peak-rss-kib", hwm, file=sys.stderr)
sys.exit(code)
"""


def peak_rss_kib(root: Path, *args: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", _RSS_PROBE, *args], cwd=root,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.splitlines()
    return int(lines[-1].split()[1]), "\n".join(lines[:-1])


def test_million_entry_manifest_is_streamed_in_bounded_memory(repo: Moma, tmp_path: Path) -> None:
    n = 1_000_000
    oid = store_object(repo, b"x")
    listing = tmp_path / "listing"
    with open(listing, "w") as fh:
        fh.write(json.dumps({"moma-manifest": 1, "hash": "blake3"}) + "\n")
        for start in range(0, n, 100_000):
            fh.write("".join(f'["f{i:07d}","{oid}",1]\n' for i in range(start, start + 100_000)))
    big, _ = ObjectCache(repo.root / ".moma/cache", "blake3").add_file(listing)
    # The pointer's totals disagree with the listing: checkout must read all of it
    # (validating every entry) and then refuse, writing nothing.
    ptr = pointer_mod.Pointer("big", "blake3", big, n + 1, "dir", n)
    write(repo.root / ptr.pointer_path, pointer_mod.dumps(ptr))
    write(repo.root / "small.bin.moma", pointer_text(oid=hashing.hash_bytes(b"abc", "blake3")))
    store_object(repo, b"abc")
    baseline, _ = peak_rss_kib(repo.root, "checkout", "small.bin")
    peak, stderr = peak_rss_kib(repo.root, "checkout")
    assert "big.moma: records 1000000 files, 1000001 bytes but its listing has 1000000" in stderr
    assert not (repo.root / "big").exists()
    # Holding the listing as a list costs ~300 MB here; streaming stays near the baseline.
    assert peak - baseline < 60 * 1024, (baseline, peak)


def test_listing_that_is_not_a_manifest_is_refused_before_any_entry(repo: Moma) -> None:
    oid = store_object(repo, b'{"not": "a manifest"}\n["../x", "' + b"a" * 64 + b'", 1]\n')
    ptr = pointer_mod.Pointer("data", "blake3", oid, 1, "dir", 1)
    write(repo.root / ptr.pointer_path, pointer_mod.dumps(ptr))
    assert_one_error(repo("checkout", ok=False), "not a moma directory manifest")
    assert not (repo.root / "data").exists()


def test_files_moma_edits_are_not_followed_outside(repo: Moma, tmp_path: Path) -> None:
    secret = write(tmp_path / "kube-config", "users:\n- name: admin\n  user: {client: abc}\n")
    write(repo.root / "models/m.bin", "model")
    os.symlink(secret, repo.root / "models/.gitignore")
    before = snapshot(repo.root)
    res = repo("add", "models/m.bin", ok=False)
    assert_one_error(res, "models/.gitignore: is a symlink leading outside the repository")
    assert repo.git("diff", "--cached", "--name-only") == ""
    assert_nothing_lost(repo.root, before)
    (repo.root / ".moma.yaml").unlink()
    os.symlink(secret, repo.root / ".moma.yaml")
    before = snapshot(repo.root)
    res = repo("remote", "add", "s", "s3://bucket", ok=False)
    assert_one_error(res, ".moma.yaml: is a symlink leading outside the repository")
    assert_nothing_lost(repo.root, before)
    assert secret.read_text().startswith("users:")


def test_huge_config_is_refused_without_reading_it_whole(repo: Moma) -> None:
    with open(repo.root / ".moma.yaml", "ab") as fh:  # sparse: 64 GiB
        fh.truncate(64 << 30)
    started = time.monotonic()
    assert_one_error(repo("status", ok=False), ".moma.yaml: file is larger than 1024 KiB")
    assert time.monotonic() - started < 10


# -- a clone must not redirect moma's own directories or materialise its own files -----------


def hostile_clone(repo: Moma, tmp_path: Path, plant: dict[str, str], config: str = "",
                  files: dict[str, bytes] | None = None) -> tuple[Moma, Path]:
    """A clone of `repo` whose last commit adds symlinks (`plant`: path -> target, OUTSIDE
    standing for a directory outside holding a user's files), `config` in .moma.yaml and
    pointers to `files` (data path -> bytes) whose objects are on the local remote.
    """
    outside = tmp_path / "outside"
    write(outside / "tmp/user-notes.txt", "the user's notes")
    write(outside / "victim.txt", "the user's file")
    remote = tmp_path / "remote"
    repo("remote", "add", "storage", str(remote), "--default")
    write(repo.root / "model.bin", "weights")
    repo("add", "model.bin")
    repo("push")
    if config:
        write(repo.root / ".moma.yaml", (repo.root / ".moma.yaml").read_text() + config)
    for rel, data in (files or {}).items():
        oid = ObjectCache(remote, "blake3").add_bytes(data)
        ptr = pointer_mod.Pointer(rel, "blake3", oid, len(data), "file")
        write(repo.root / ptr.pointer_path, pointer_mod.dumps(ptr))
        repo.git("add", "-f", ptr.pointer_path)
    for rel, target in plant.items():  # committed without touching the origin's work tree
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo.root,
                              input=target.replace("OUTSIDE", str(outside)), text=True,
                              capture_output=True, check=True).stdout.strip()
        repo.git("update-index", "--add", "--cacheinfo", f"120000,{blob},{rel}")
    repo.git("add", ".moma.yaml")
    repo.git("commit", "-qm", "hostile")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.root), str(clone)], check=True)
    old = time.time() - 7200  # an hour past fsck's age for stale temps
    os.utime(outside / "tmp/user-notes.txt", (old, old))
    return Moma(clone), outside


@pytest.mark.parametrize("plant, config, error", [
    ({"cachelink": "OUTSIDE"}, "cache:\n  dir: cachelink\n",
     "cache.dir 'cachelink' resolves outside the repository"),
    ({"cachelink": "OUTSIDE"}, "cache:\n  dir: cachelink/sub\n",
     "cache.dir 'cachelink/sub' resolves outside the repository"),
    ({".moma": "OUTSIDE"}, "", ".moma: is a symlink"),
    ({".moma/cache": "OUTSIDE"}, "", "cache directory .moma/cache resolves outside"),
    # the lock refuses to follow it, or git tracking it is refused, whichever comes first
    ({".moma/lock": "OUTSIDE/victim.txt"}, "", ".moma/lock: "),
    ({".moma/state.db": "OUTSIDE/victim.txt"}, "", ".moma/state.db: is committed to git"),
    ({".moma/cache/tmp": "OUTSIDE/tmp"}, "", ".moma/cache/tmp: is committed to git"),
    ({"inside/cache/tmp": "OUTSIDE/tmp"}, "cache:\n  dir: inside/cache\n",
     "inside/cache/tmp: is committed to git"),
    ({"tmp": "OUTSIDE/tmp"}, "cache:\n  dir: .\n", "is committed to git, inside the directory "
     "where moma keeps its cache"),
])
def test_a_committed_symlink_cannot_redirect_moma_outside(
        repo: Moma, tmp_path: Path, plant: dict[str, str], config: str, error: str) -> None:
    clone, outside = hostile_clone(repo, tmp_path, plant, config)
    write(clone.root / "new.bin", "new data")
    before, outside_before = snapshot(clone.root), snapshot(outside)
    for command in (["pull"], ["fsck"], ["status"], ["gc", "--workspace", "--force"],
                    ["gc", "--purge-quarantine"], ["add", "new.bin"]):
        res = clone(*command, ok=None)
        assert snapshot(outside) == outside_before, command
        assert snapshot(clone.root) == before, command
        assert_one_error(res, error)


@pytest.mark.parametrize("target", [".moma.local.yaml", "moma.lock", "sub/.moma.local.yaml",
                                    ".gitattributes", "sub/.gitmodules"])
def test_a_pointer_cannot_materialise_moma_s_own_files(repo: Moma, tmp_path: Path,
                                                       target: str) -> None:
    evil = f"cache:\n  dir: {tmp_path / 'outside'}\n".encode()
    clone, outside = hostile_clone(repo, tmp_path, {}, files={target: evil})
    outside_before = snapshot(outside)
    res = clone("pull", ok=None)
    assert not (clone.root / target).exists() or (clone.root / target).read_bytes() != evil
    assert snapshot(outside) == outside_before
    errors = {line for line in res.stderr.splitlines() if line.startswith("error:")}
    assert res.exit_code == 1 and "Traceback" not in res.stderr, res.stderr
    assert len(errors) == 1 and f"{target}.moma: " in errors.pop(), res.stderr  # fetch, checkout
    assert (clone.root / "model.bin").read_text() == "weights"  # the good pointer still works


@pytest.mark.parametrize("entry", [".git/config", "sub/.git/config", "sub/.GIT/hooks/x",
                                   "sub/.moma/state.db", "sub/.moma.local.yaml",
                                   "sub/.gitattributes"])
def test_manifest_entry_inside_git_or_moma_files_is_refused(repo: Moma, entry: str) -> None:
    oid = store_object(repo, b"[core]\n\thooksPath = /tmp/evil\n")
    dir_pointer(repo, "data", [(entry, oid, 31)])
    before = snapshot(repo.root)
    res = repo("checkout", ok=None)
    assert_nothing_lost(repo.root, before)
    assert_one_error(res, "data.moma: manifest", "line 2", "moma's or git's own")


def test_add_skips_a_nested_git_directory_and_says_so(repo: Moma) -> None:
    write(repo.root / "data/a.txt", "a")
    subprocess.run(["git", "init", "-q", str(repo.root / "data/sub")], check=True)
    write(repo.root / "data/sub/b.txt", "b")
    res = repo("add", "data")
    assert "Added data (2 files" in res.stdout
    assert "skipped data/sub/.git" in res.stderr
    assert repo("status").exit_code == 0
    ptr = pointer_mod.parse((repo.root / "data.moma").read_text(), "data.moma")
    listing = ObjectCache(repo.root / ".moma/cache", "blake3").read_bytes(ptr.oid)
    assert b".git" not in listing


@pytest.mark.parametrize(("bad_text", "expected"), [
    (pointer_text() + "model:\n  name: ../../x\n",
     "evil.bin.moma: 'model.name': invalid model name '../../x'"),
    (pointer_text() + "model:\n  name: evil\n? [a, b]\n: x\n",
     "evil.bin.moma:8: invalid YAML: complex mapping keys are not allowed"),
    (pointer_text(moma="true") + "model:\n  name: evil\n",
     "evil.bin.moma: missing or invalid 'moma' schema version"),
], ids=["dotdot name", "complex key", "bool schema"])
def test_models_list_reports_a_bad_model_pointer_and_lists_the_good(
        repo: Moma, bad_text: str, expected: str) -> None:
    register_model(repo, "good", {"auc": 0.9})
    write(repo.root / "evil.bin.moma", bad_text)
    for args in (("models:list",), ("models:list", "--json")):
        res = repo(*args, ok=False)
        assert_one_error(res, expected)
        assert "good" in res.stdout and "../../x" not in res.stdout
    assert_one_error(repo("status", ok=False), expected)
