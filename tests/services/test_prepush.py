"""The installed pre-push hook, triggered by a real `git push` to a local bare repository,
uploads the pushed commits' data to a local-directory and to an S3 remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import Moma, RemoteSpec, write
from moma_cli.core.hashing import hash_bytes
from moma_cli.services.repo import open_repo


def push(moma: Moma, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", "-q", "origin", *args], cwd=moma.root,
                          capture_output=True, text=True, timeout=120)


def oids_of(moma: Moma, *pointer_paths: str) -> set[str]:
    from moma_cli.services.sync.planning import expand

    repo = open_repo(moma.root)
    return expand(repo, [repo.load_pointer(p) for p in pointer_paths])


def test_git_push_uploads_the_pushed_commits_data(repo: Moma, any_remote: RemoteSpec,
                                                  tmp_path: Path) -> None:
    any_remote.add_to(repo)
    repo.git("commit", "-qam", "remote")
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    log = tmp_path / "existing.log"
    hook = write(repo.root / ".git" / "hooks" / "pre-push",
                 f'#!/bin/sh\nwhile read local_ref rest; do echo "$local_ref" >> "{log}"; done\n')
    hook.chmod(0o755)
    repo("install")

    write(repo.root / "model.pkl", "v1")
    write(repo.root / "data" / "a.csv", "a")
    write(repo.root / "data" / "b.csv", "b")
    repo("add", "model.pkl", "data")
    repo.git("commit", "-qm", "v1")
    v1 = oids_of(repo, "model.pkl.moma", "data.moma")
    out = push(repo, "main")
    assert out.returncode == 0, out.stderr
    assert any_remote.oids() == v1  # the model, the manifest and both files
    assert log.read_text() == "refs/heads/main\n"  # the existing hook got git's ref lines

    write(repo.root / "model.pkl", "v2")
    repo("add", "model.pkl")
    repo.git("commit", "-qm", "v2")
    assert push(repo, "main").returncode == 0
    assert any_remote.oids() == v1 | oids_of(repo, "model.pkl.moma")

    # moma-pointers: an object on the default remote is as good as one in the cache
    drop_cache(repo)
    repo("hook", "pointers", "model.pkl.moma", "data.moma")
    write(repo.root / "model.pkl", "v3, never saved anywhere")
    repo("add", "model.pkl")
    drop_cache(repo)
    out = repo("hook", "pointers", "model.pkl.moma", ok=False)
    assert "is neither in the cache nor on remote 'storage'" in out.stderr


def drop_cache(moma: Moma) -> None:
    for obj in (moma.root / ".moma" / "cache").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.unlink()


def test_push_is_refused_when_data_cannot_be_uploaded(repo: Moma, tmp_path: Path) -> None:
    repo("remote", "add", "storage", str(tmp_path / "remote"), "--default")
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    repo("install")
    write(repo.root / "model.pkl", "weights")
    repo("add", "model.pkl")
    repo.git("commit", "-qam", "model")
    drop_cache(repo)
    out = push(repo, "main")
    assert out.returncode != 0
    assert "model.pkl: object" in out.stderr and "is not in the cache" in out.stderr
    refs = subprocess.run(["git", "ls-remote", "origin"], cwd=repo.root, capture_output=True,
                          text=True, check=True).stdout
    assert refs == ""  # git refused the push: the remote never points at missing data


def test_pushing_a_stage_tag_uploads_that_versions_data(repo: Moma, any_remote: RemoteSpec,
                                                        tmp_path: Path) -> None:
    """The stage tag's commit is already on the git remote, so no pushed commit writes its
    pointer: the hook must still send what the registry points at."""
    any_remote.add_to(repo)
    repo.git("commit", "-qam", "remote")
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    for n in (1, 2):
        write(repo.root / "model.pkl", f"weights v{n}")
        repo("models:add", "credit-risk", "model.pkl")
        repo.git("commit", "-qm", f"v{n}")
    v1 = repo.git("rev-parse", "HEAD~1").strip()
    assert push(repo, "--no-verify", "main").returncode == 0  # no hook yet: nothing uploaded
    assert any_remote.oids() == set()
    repo("install")
    repo.git("tag", "-a", "-m", "by hand", "credit-risk#production#1", v1)  # plain git, GTO grammar
    out = push(repo, "--tags")
    assert out.returncode == 0, out.stderr
    assert any_remote.oids() == {hash_bytes(b"weights v1", "blake3")}
