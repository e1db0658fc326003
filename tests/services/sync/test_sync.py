"""push / fetch / pull / status --remote against a local-directory remote and a real S3 server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Moma, RemoteSpec, clone_of, s3_bucket, tree_bytes, write
from moma_cli.core import pointer
from moma_cli.core.hashing import hash_bytes
from moma_cli.credentials import redact
from realtools import free_port


def _oid(moma: Moma, rel: str) -> str:
    return pointer.parse((moma.root / f"{rel}.moma").read_text(), f"{rel}.moma").oid


def _project(moma: Moma, remote: RemoteSpec) -> None:
    write(moma.root / "model.pkl", b"weights-v1" * 500)
    for i in range(6):
        write(moma.root / f"data/part{i}.csv", f"row,{i}\n" * (i + 1))
    write(moma.root / "data/sub/deep.txt", "deep")
    moma("add", "model.pkl", "data")
    remote.add_to(moma)
    moma.git("add", ".moma.yaml")
    moma.git("commit", "-qm", "model and data")


def _cache_objects(moma: Moma) -> dict[str, bytes]:
    return tree_bytes(moma.root / ".moma/cache/blake3")


def test_push_clone_pull_is_byte_identical(repo: Moma, any_remote: RemoteSpec,
                                           tmp_path: Path) -> None:
    _project(repo, any_remote)
    res = repo("push", "--json")
    report = json.loads(res.stdout)
    assert report["ok"] and report["skipped"] == 0
    assert len(report["transferred"]) == 9  # model, 7 distinct data files, the manifest
    assert any_remote.oids() == set(report["transferred"])

    again = repo("push")
    assert "0 files pushed, 9 up to date" in again.stdout

    clone = clone_of(repo, tmp_path)
    res = clone("pull")
    assert "9 files fetched, 0 up to date" in res.stdout
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    assert (clone.root / "model.pkl").read_bytes() == (repo.root / "model.pkl").read_bytes()
    assert clone("status").exit_code == 0
    assert "0 files fetched, 9 up to date" in clone("pull").stdout


def test_pull_at_a_commit_older_than_the_remote_uses_the_one_this_clone_knows(
        repo: Moma, tmp_path: Path) -> None:
    write(repo.root / "data.csv", "a,b\n1,2\n")
    repo("add", "data.csv")
    repo.git("commit", "-qm", "data, before any remote")
    old = repo.git("rev-parse", "HEAD").strip()
    repo("remote", "add", "storage", str(tmp_path / "remote"), "--default")
    repo.git("commit", "-qam", "a remote")
    repo("push")
    clone = clone_of(repo, tmp_path)
    clone("pull")
    clone.git("checkout", "-q", old)  # its .moma.yaml has no remote
    (clone.root / "data.csv").unlink()
    for cache_object in (clone.root / ".moma" / "cache").rglob("*"):
        if cache_object.is_file() and "blake3" in cache_object.parts:
            cache_object.chmod(0o644)
            cache_object.unlink()
    res = clone("pull")
    assert "1 files fetched" in res.stdout
    assert "using remote 'storage'" in res.stderr and "which this clone used before" in res.stderr
    assert (clone.root / "data.csv").read_text() == "a,b\n1,2\n"
    fresh = clone_of(repo, tmp_path, "fresh")
    fresh.git("checkout", "-q", old)
    res = fresh("pull", ok=False)  # a clone that never used it knows nothing to fall back on
    assert res.exit_code == 1 and "no default remote set" in res.stderr


def test_push_targets_and_status_remote(repo: Moma, any_remote: RemoteSpec) -> None:
    _project(repo, any_remote)
    res = repo("status", "-c", "--json", ok=False)
    states = {e["path"]: e["state"] for e in json.loads(res.stdout)["entries"]}
    assert states == {"data": "not-pushed", "model.pkl": "not-pushed"}

    repo("push", "model.pkl")
    assert any_remote.oids() == {_oid(repo, "model.pkl")}
    res = repo("status", "-c", ok=False)
    assert "not-pushed:" in res.stdout and "data" in res.stdout
    assert "model.pkl" not in res.stdout

    repo("push")
    assert "up to date" in repo("status", "-c").stdout


def test_manifest_is_pushed_only_after_its_files(repo: Moma, any_remote: RemoteSpec) -> None:
    _project(repo, any_remote)
    part0 = repo.root / ".moma/cache/blake3"
    oid = pointer.parse((repo.root / "data.moma").read_text(), "data.moma").oid
    entries = [line for line in (part0 / oid[:2] / oid[2:]).read_text().splitlines()[1:]]
    lost = json.loads(entries[0])[1]
    os.chmod(part0 / lost[:2], 0o755)
    os.unlink(part0 / lost[:2] / lost[2:])

    res = repo("push", ok=False)
    assert "data/part0.csv: object" in res.stderr and "not in the cache" in res.stderr
    assert "directory listing" in res.stderr
    assert oid not in any_remote.oids()
    assert _oid(repo, "model.pkl") in any_remote.oids()


def test_tampered_or_truncated_object_is_refused(repo: Moma, any_remote: RemoteSpec,
                                                  tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push")
    model = _oid(repo, "model.pkl")
    good = any_remote.read(model)
    any_remote.write(model, good[:-10])  # truncated
    clone = clone_of(repo, tmp_path)
    res = clone("pull", ok=False)
    assert res.exit_code == 1
    assert f"model.pkl: object {model[:8]}" in res.stderr and "corrupt" in res.stderr
    assert "moma push --verify" in res.stderr
    assert not (clone.root / "model.pkl").exists()
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    quarantined = list((clone.root / ".moma/cache/quarantine/corrupt").iterdir())
    assert [p.read_bytes() for p in quarantined] == [good[:-10]]
    cached = _cache_objects(clone)
    assert f"{model[:2]}/{model[2:]}" not in cached
    assert all(len(blob) > 0 for blob in cached.values())

    # push --verify finds the poisoned copy and replaces it; then the pull completes
    res = repo("push", "--verify")
    assert "1 damaged remote copies replaced" in res.stdout
    assert any_remote.read(model) == good
    clone("pull")
    assert (clone.root / "model.pkl").read_bytes() == good


def test_missing_object_on_remote_names_file_and_others_transfer(
        repo: Moma, any_remote: RemoteSpec, tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push")
    lost = _oid(repo, "model.pkl")
    any_remote.delete(lost)
    clone = clone_of(repo, tmp_path)
    res = clone("pull", ok=False)
    assert res.exit_code == 1
    assert f"model.pkl: no object {lost[:8]} on remote 'storage'" in res.stderr
    assert "run 'moma push' on the machine that added it" in res.stderr
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")


def test_fetch_fills_cache_only(repo: Moma, any_remote: RemoteSpec, tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push", "-j", "2")
    clone = clone_of(repo, tmp_path)
    clone("fetch", "data")
    assert not (clone.root / "data").exists()
    assert len(_cache_objects(clone)) == 8  # data files + manifest, not the model
    clone("checkout", "data")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")


def test_second_commit_pushes_only_the_new_object(repo: Moma, any_remote: RemoteSpec,
                                                  tmp_path: Path) -> None:
    _project(repo, any_remote)
    repo("push")
    write(repo.root / "model.pkl", b"weights-v2" * 500)
    repo("add", "model.pkl")
    repo.git("commit", "-qm", "v2")
    assert "1 files pushed, 8 up to date" in repo("push").stdout
    clone = clone_of(repo, tmp_path)
    clone("pull")
    clone.git("checkout", "-q", "HEAD~1")
    clone("pull")
    assert (clone.root / "model.pkl").read_bytes() == b"weights-v1" * 500


# -- faults of the remote as a whole --------------------------------------------------------


def test_closed_port_fails_fast_without_local_change(repo: Moma, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = RemoteSpec("s3", "s3://bucket/moma", {"endpointurl": f"http://127.0.0.1:{port}"})
    _project(repo, spec)
    before = _cache_objects(repo), tree_bytes(repo.root / "data")
    for command in ("push", "pull"):
        started = time.monotonic()
        res = repo(command, ok=False)
        assert time.monotonic() - started < 15
        assert res.exit_code == 1
        assert "cannot reach remote 'storage'" in res.stderr and "Traceback" not in res.stderr
        assert "testing-secret-value" not in res.stderr
    assert (_cache_objects(repo), tree_bytes(repo.root / "data")) == before


def test_missing_bucket_is_not_created(repo: Moma, moto_endpoint: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    spec = RemoteSpec("s3", "s3://no-such-bucket-xyz/moma", {"endpointurl": moto_endpoint})
    _project(repo, spec)
    res = repo("push", ok=False)
    assert "bucket 'no-such-bucket-xyz' of remote 'storage'" in res.stderr
    assert "does not exist" in res.stderr and "never creates buckets" in res.stderr
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": moto_endpoint})
    assert "no-such-bucket-xyz" not in fs.ls("")


def test_unknown_protocol_and_missing_local_remote(repo: Moma, tmp_path: Path) -> None:
    spec = RemoteSpec("local", "nosuchproto://x/y", {})
    _project(repo, spec)
    assert "unknown protocol 'nosuchproto://'" in repo("push", ok=False).stderr
    repo("remote", "modify", "storage", "url", str(tmp_path / "absent"))
    res = repo("fetch", ok=False)
    assert "directory does not exist" in res.stderr
    assert not (tmp_path / "absent").exists()


def test_no_default_remote(repo: Moma) -> None:
    write(repo.root / "a.bin", b"a")
    repo("add", "a.bin")
    res = repo("push", ok=False)
    assert "no remote given and no default remote set" in res.stderr
    assert "unknown remote 'nope'" in repo("push", "-r", "nope", ok=False).stderr


# -- remote configuration -------------------------------------------------------------------


def test_remote_add_list_modify_default_remove(repo: Moma, tmp_path: Path) -> None:
    repo("remote", "add", "share", str(tmp_path / "share"))
    repo("remote", "add", "storage", "s3://bucket/prefix", "--default")
    repo("remote", "modify", "storage", "endpointurl", "http://127.0.0.1:9000", "--local")
    listing = json.loads(repo("remote", "list", "--json").stdout)
    assert [(r["name"], r["default"]) for r in listing] == [("share", False), ("storage", True)]
    assert listing[1]["options"] == {"endpointurl": "http://127.0.0.1:9000"}
    assert "endpointurl" not in (repo.root / ".moma.yaml").read_text()
    repo("remote", "default", "share")
    assert repo("remote", "default").stdout.strip() == "share"
    repo("remote", "remove", "share")
    assert repo("remote", "default").stdout.strip() == "(no default remote)"
    res = repo("remote", "modify", "storage", "secret_access_key", "abc", ok=False)
    assert "must not be stored" in res.stderr and "abc" not in res.stderr


def test_urls_with_credentials_refused_and_secrets_redacted(
        repo: Moma, monkeypatch: pytest.MonkeyPatch) -> None:
    res = repo("remote", "add", "bad", "s3://AKIAXX:supersecret@bucket/x", ok=False)
    assert "must not contain credentials" in res.stderr and "supersecret" not in res.stderr
    assert "bad" not in (repo.root / ".moma.yaml").read_text()
    repo("remote", "add", "storage", "s3://bucket/x", "--default")
    res = repo("remote", "modify", "storage", "endpointurl",
               "http://user:very-secret-key-123@127.0.0.1:1", ok=False)
    assert "very-secret-key-123" not in res.stderr + (repo.root / ".moma.yaml").read_text()
    # whatever reaches a message, the values of secret variables never do
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-key-123")
    assert redact("denied for very-secret-key-123 at https://u:p@host/x") == (
        "denied for **** at https://****@host/x")


# -- crash safety ---------------------------------------------------------------------------


def _kill_once_under_way(moma: Moma, command: str, watched: Path, entries: int = 20) -> int:
    """Run `moma COMMAND -j 2`, kill -9 it once `watched` holds more than `entries` entries;
    its exit code."""
    proc = subprocess.Popen([sys.executable, "-m", "moma_cli", command, "-j", "2"],
                            cwd=moma.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if watched.is_dir() and sum(1 for _ in watched.rglob("*")) > entries:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def test_kill_during_push_leaves_no_partial_object(repo: Moma, tmp_path: Path) -> None:
    remote_dir = tmp_path / "remote"
    for i in range(400):  # about 25 MiB of small files: several packs
        write(repo.root / f"data/f{i:03}.bin", os.urandom(64 << 10) + bytes([i % 256]))
    write(repo.root / "big.bin", os.urandom(24 << 20))
    repo("add", "data", "big.bin")
    repo("remote", "add", "storage", str(remote_dir), "--default")
    remote = RemoteSpec("local", str(remote_dir), {})
    assert _kill_once_under_way(repo, "push", remote_dir / "blake3/packs", 0) == -signal.SIGKILL
    cached = {rel.replace("/", ""): blob
              for rel, blob in tree_bytes(repo.root / ".moma/cache/blake3").items()}
    for oid, blob in remote.objects().items():
        assert blob == cached[oid], f"partial object {oid}"
    res = repo.proc("push")
    assert "failed" not in res.stdout
    assert remote.objects() == cached
    assert "0 files pushed" in repo.proc("push").stdout


def test_kill_during_pull_leaves_no_partial_object(repo: Moma, tmp_path: Path) -> None:
    remote_dir = tmp_path / "remote"
    for i in range(400):
        write(repo.root / f"data/f{i:03}.bin", os.urandom(2048) + bytes([i % 256]))
    repo("add", "data")
    repo("remote", "add", "storage", str(remote_dir), "--default")
    repo.git("add", ".moma.yaml")
    repo.git("commit", "-qm", "data")
    repo("push")
    clone = clone_of(repo, tmp_path)
    cache = clone.root / ".moma/cache/blake3"
    assert _kill_once_under_way(clone, "pull", cache) == -signal.SIGKILL, \
        "pull finished before it could be killed"
    for rel, blob in _cache_objects(clone).items():
        assert hash_bytes(blob, "blake3") == rel.replace("/", ""), f"partial object {rel}"
    clone.proc("pull")
    assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    assert clone.proc("fsck").exit_code == 0


# -- a server of our own, for faults that would disturb the shared one ----------------------


def _moto_process(port: int, **env: str) -> subprocess.Popen[bytes]:
    """`moto_server` as a separate process on its own port, so a test can kill it."""
    import socket

    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], env=os.environ | env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("moto server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def test_requests_abandoned_with_a_dead_remote_print_no_traceback(tmp_path: Path) -> None:
    """What made the test below fail now and then: aiohttp tasks a failed push abandoned
    printed "Task exception was never retrieved" and their tracebacks after moma's error."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import fsspec.asyn\n"
        "from moma_cli.config import RemoteConfig\n"
        "from moma_cli.storage.fs import open_location\n"
        "open_location(RemoteConfig('s', 's3://b/p', {'endpointurl': 'http://127.0.0.1:9'}),"
        " Path('.'))\n"
        "loop = fsspec.asyn.get_loop()\n"
        "def report(message, exc):\n"
        "    loop.call_soon_threadsafe(loop.call_exception_handler,\n"
        "                              {'message': message, 'exception': exc})\n"
        "report('Task exception was never retrieved', ConnectionResetError('reset'))\n"
        "report('Task exception was never retrieved', ValueError('a real bug'))\n"
        "import time; time.sleep(0.5)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "reset" not in out.stderr
    assert "a real bug" in out.stderr  # any other loop error is still shown


def test_server_stopped_mid_push_fails_fast_then_rerun_completes(
        repo: Moma, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = _moto_process(port)
    try:
        s3_bucket(endpoint, monkeypatch, "stopped")
        spec = RemoteSpec("s3", "s3://stopped/moma", {"endpointurl": endpoint})
        for i in range(60):  # too few to pack: one upload each, so the push takes a while
            write(repo.root / f"data/f{i:03}.bin", f"row {i}\n")
        repo("add", "data")
        spec.add_to(repo)
        repo.git("add", ".moma.yaml")
        repo.git("commit", "-qm", "data")
        before = _cache_objects(repo), tree_bytes(repo.root / "data")
        fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False,
                               client_kwargs={"endpoint_url": endpoint})
        push = subprocess.Popen([sys.executable, "-m", "moma_cli", "push", "-j", "1"],
                                cwd=repo.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # stop the server once uploads are under way
            if fs.exists("stopped/moma/blake3") and len(fs.find("stopped/moma/blake3")) > 20:
                break
            time.sleep(0.02)
        _stop(server)
        stopped = time.monotonic()
        _, stderr = push.communicate(timeout=60)
        assert time.monotonic() - stopped < 20
        assert push.returncode == 1
        assert "cannot reach remote 'storage'" in stderr and "Traceback" not in stderr
        assert "testing-secret-value" not in stderr
        assert (_cache_objects(repo), tree_bytes(repo.root / "data")) == before

        server = _moto_process(port)  # a fresh, empty server on the same endpoint
        s3_bucket(endpoint, monkeypatch, "stopped")
        assert "61 files pushed" in repo.proc("push").stdout  # 60 files + the listing
        clone = clone_of(repo, tmp_path)
        clone("pull")
        assert tree_bytes(clone.root / "data") == tree_bytes(repo.root / "data")
    finally:
        _stop(server)


def test_wrong_credentials_give_a_clear_auth_error(
        repo: Moma, monkeypatch: pytest.MonkeyPatch) -> None:
    # INITIAL_NO_AUTH_ACTION_COUNT=0: moto checks every request's credentials against its
    # (empty) IAM, as AWS would for an unknown key.
    port = free_port()
    server = _moto_process(port, INITIAL_NO_AUTH_ACTION_COUNT="0")
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-123")
        spec = RemoteSpec("s3", "s3://private/moma",
                          {"endpointurl": f"http://127.0.0.1:{port}"})
        _project(repo, spec)
        before = _cache_objects(repo), tree_bytes(repo.root / "data")
        for command in ("push", "pull", "fetch"):
            started = time.monotonic()
            res = repo(command, ok=False)
            assert time.monotonic() - started < 15
            assert res.exit_code == 1
            assert "access denied by remote 'storage'" in res.stderr, res.stderr
            assert "wrong-secret-value-123" not in res.stderr + res.stdout
            assert "Traceback" not in res.stderr
        assert (_cache_objects(repo), tree_bytes(repo.root / "data")) == before
    finally:
        _stop(server)


def test_large_object_is_downloaded_to_a_file_and_verified(
        repo: Moma, any_remote: RemoteSpec, tmp_path: Path) -> None:
    # above what is read into memory: written to a file
    big = _pushed_big(repo, any_remote, (16 << 20) + 1)
    assert json.loads(repo("fsck", "-c", "--json").stdout)["ok"]
    clone = clone_of(repo, tmp_path)
    clone("pull")
    assert (clone.root / "big.bin").read_bytes() == big

    oid = _oid(repo, "big.bin")
    any_remote.write(oid, big[:-1] + b"\0")
    report = json.loads(repo("fsck", "-c", "--json", ok=False).stdout)
    assert [c["oid"] for c in report["corrupt"]] == [oid]
    other = clone_of(repo, tmp_path, "other")
    res = other("pull", ok=False)
    assert f"big.bin: object {oid[:8]}" in res.stderr and "corrupt" in res.stderr
    assert not (other.root / "big.bin").exists()
    assert not any((other.root / ".moma/cache/blake3").rglob("*"))
    assert not any((other.root / ".moma/cache/tmp").iterdir())


def _pushed_big(repo: Moma, remote: RemoteSpec, size: int) -> bytes:
    big = os.urandom(size)
    write(repo.root / "big.bin", big)
    repo("add", "big.bin")
    remote.add_to(repo)
    repo.git("add", "-A")
    repo.git("commit", "-qm", "big")
    repo("push")
    return big


def test_large_s3_object_pulled_in_ranged_parts_is_byte_identical(
        repo: Moma, s3_remote: RemoteSpec, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from moma_cli.storage import fs

    # 17 MiB + 3 bytes in 3 MiB parts: six whole parts and a short last one, 2 at a time.
    monkeypatch.setattr(fs, "PART_SIZE", 3 << 20)
    monkeypatch.setattr(fs, "PARTS_IN_FLIGHT", 2)
    mid = os.urandom(3 << 20)  # over what S3 reads into memory: one part, streamed
    write(repo.root / "mid.bin", mid)
    repo("add", "mid.bin")
    big = _pushed_big(repo, s3_remote, (17 << 20) + 3)
    clone = clone_of(repo, tmp_path)
    clone("pull")
    assert (clone.root / "big.bin").read_bytes() == big
    assert (clone.root / "mid.bin").read_bytes() == mid
    assert not any((clone.root / ".moma/cache/tmp").iterdir())


def test_a_pulled_large_object_reaches_each_path_as_its_own_copy(
        repo: Moma, s3_remote: RemoteSpec, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from moma_cli.storage import fs

    # Written twice as it arrives (cache and a spare the first path takes), copied for the
    # second path: three inodes, none shared with the read-only cache object.
    monkeypatch.setattr(fs, "PART_SIZE", 4 << 20)
    big = _pushed_big(repo, s3_remote, (9 << 20) + 7)
    write(repo.root / "again.bin", big)
    repo("add", "again.bin")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "again")
    repo("push")
    clone = clone_of(repo, tmp_path)
    clone("pull")
    oid = _oid(repo, "big.bin")
    paths = [clone.root / "big.bin", clone.root / "again.bin",
             clone.root / ".moma/cache/blake3" / oid[:2] / oid[2:]]
    assert all(p.read_bytes() == big for p in paths)
    assert len({p.stat().st_ino for p in paths}) == 3
    assert [p.stat().st_mode & 0o777 for p in paths] == [0o644, 0o644, 0o444]
    assert not any((clone.root / ".moma/cache/tmp").iterdir())
    assert json.loads(clone("fsck", "--json").stdout)["ok"]


def test_a_corrupt_part_of_a_large_s3_object_is_detected_and_nothing_stored(
        repo: Moma, s3_remote: RemoteSpec, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from moma_cli.storage import fs

    monkeypatch.setattr(fs, "PART_SIZE", 4 << 20)
    big = _pushed_big(repo, s3_remote, 17 << 20)
    oid = _oid(repo, "big.bin")
    middle = 9 << 20  # in the third of five parts
    s3_remote.write(oid, big[:middle] + bytes([big[middle] ^ 1]) + big[middle + 1:])
    clone = clone_of(repo, tmp_path)
    res = clone("pull", ok=False)
    assert f"big.bin: object {oid[:8]}" in res.stderr and "corrupt" in res.stderr
    assert not (clone.root / "big.bin").exists()
    assert not any((clone.root / ".moma/cache/blake3").rglob("*"))
    assert not any((clone.root / ".moma/cache/tmp").iterdir())
    [kept] = (clone.root / ".moma/cache/quarantine/corrupt").iterdir()
    assert kept.name.startswith(oid) and kept.stat().st_size == len(big)


def test_a_large_push_is_a_multipart_upload_of_the_exact_bytes(
        repo: Moma, s3_remote: RemoteSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    from moma_cli.storage import fs

    monkeypatch.setattr(fs, "UPLOAD_PART_SIZE", 5 << 20)  # S3's smallest: 17 MiB is 4 parts
    big = _pushed_big(repo, s3_remote, (17 << 20) + 5)
    oid = _oid(repo, "big.bin")
    assert s3_remote.read(oid) == big
    client = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={
        "endpoint_url": s3_remote.options["endpointurl"]})
    bucket = s3_remote.url.removeprefix("s3://").split("/")[0]
    etag = client.info(s3_remote.object_key(oid))["ETag"]
    assert etag.strip('"').endswith("-4")  # assembled from 4 parts
    assert not client.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads")


def test_a_large_s3_object_gone_from_the_remote_is_named(
        repo: Moma, s3_remote: RemoteSpec, tmp_path: Path) -> None:
    _pushed_big(repo, s3_remote, (16 << 20) + 1)
    oid = _oid(repo, "big.bin")
    s3_remote.delete(oid)
    res = clone_of(repo, tmp_path)("pull", ok=False)
    assert f"no object {oid[:8]}" in res.stderr and "big.bin" in res.stderr


# -- what push sends: the work tree, the registry's versions, and revisions asked for ----------


def _model_versions(moma: Moma, count: int) -> list[str]:
    """credit-risk versions 1..count, one commit each; returns their oids."""
    oids = []
    for n in range(1, count + 1):
        write(moma.root / "model.pkl", f"weights v{n}" * 100)
        moma("models:add", "credit-risk", "model.pkl")
        moma.git("commit", "-qm", f"v{n}")
        oids.append(_oid(moma, "model.pkl"))
    return oids


def test_push_sends_every_version_the_registry_points_at(repo: Moma, any_remote: RemoteSpec,
                                                          tmp_path: Path) -> None:
    oids = _model_versions(repo, 4)
    repo("models:tag", "credit-risk:3", "production")  # no remote yet: only the tag is made
    repo("models:register", "credit-risk:2", "--semver", "v1.0.0")
    any_remote.add_to(repo)
    repo.git("commit", "-qam", "remote")

    res = repo("status", "-c", ok=False)
    assert res.stderr.count("warning:") == 2  # one line per stage or semver lacking its data
    assert "credit-risk:production (v3) points at data remote 'storage' lacks" in res.stderr
    assert "credit-risk@v1.0.0 (v2) points at data remote 'storage' lacks" in res.stderr
    report = json.loads(repo("status", "-c", "--json", ok=False).stdout)
    assert sorted((r["ref"], r["version"]) for r in report["registry"]) == [
        ("credit-risk:production", 3), ("credit-risk@v1.0.0", 2)]

    res = repo("push")
    assert "3 files pushed" in res.stdout
    assert any_remote.oids() == {oids[1], oids[2], oids[3]}  # v1 holds nothing: not sent
    assert "warning:" not in repo("status", "-c").stderr

    clone = clone_of(repo, tmp_path)
    clone("pull")
    clone("models:get", "credit-risk:production", "-o", "prod.pkl")
    assert (clone.root / "prod.pkl").read_text() == "weights v3" * 100
    clone("models:get", "credit-risk@v1.0.0", "-o", "v1.pkl")
    assert (clone.root / "v1.pkl").read_text() == "weights v2" * 100


def test_a_staged_version_missing_from_the_cache_is_named(repo: Moma,
                                                          any_remote: RemoteSpec) -> None:
    oids = _model_versions(repo, 2)
    repo("models:tag", "credit-risk:1", "production")
    any_remote.add_to(repo)
    path = repo.root / ".moma/cache/blake3" / oids[0][:2] / oids[0][2:]
    os.chmod(path.parent, 0o755)
    path.unlink()
    res = repo("push", ok=False)
    assert f"model.pkl (credit-risk:1, production): object {oids[0][:8]}" in res.stderr
    assert any_remote.oids() == {oids[1]}


def test_models_tag_pushes_the_tagged_version(repo: Moma, any_remote: RemoteSpec) -> None:
    oids = _model_versions(repo, 3)
    any_remote.add_to(repo)
    res = repo("models:tag", "credit-risk:1", "production")
    assert "credit-risk v1 is now in production" in res.stdout
    assert "Pushed the data of credit-risk v1 to remote 'storage' (1 files pushed" in res.stdout
    assert any_remote.oids() == {oids[0]}
    res = repo("models:register", "credit-risk:2")
    assert "Pushed the data of credit-risk v2 to remote 'storage'" in res.stdout
    assert any_remote.oids() == {oids[0], oids[1]}


def test_push_rev_all_tags_all_branches_all_commits(repo: Moma, any_remote: RemoteSpec) -> None:
    any_remote.add_to(repo)
    repo.git("add", ".moma.yaml")
    oids = []
    for n in range(5):
        write(repo.root / "data.csv", f"rows v{n}\n")
        repo("add", "data.csv")
        repo.git("commit", "-qm", f"data v{n}")
        oids.append(_oid(repo, "data.csv"))
        if n == 1:
            repo.git("tag", "v1")  # a lightweight tag
        if n == 2:
            repo.git("branch", "old")
    repo.git("reset", "-q", "--hard", "HEAD~1")  # v4 only on no branch now; v3 is HEAD
    repo("checkout")

    repo("push")
    assert any_remote.oids() == {oids[3]}
    repo("push", "--rev", "HEAD~3")
    assert any_remote.oids() == {oids[3], oids[0]}
    repo("push", "--all-tags")
    assert any_remote.oids() == {oids[3], oids[0], oids[1]}
    repo("push", "--all-branches")
    assert any_remote.oids() == {oids[3], oids[0], oids[1], oids[2]}
    res = repo("push", "--rev=--upload-pack=touch pwned", ok=False)
    assert res.exit_code == 1 and "invalid git revision" in res.stderr
    res = repo("push", "--rev", "no-such-branch", ok=False)
    assert res.exit_code == 1 and "unknown git revision 'no-such-branch'" in res.stderr
    repo("push", "--all-commits")
    assert any_remote.oids() == set(oids[:4])  # v4 is reachable from no ref any more
