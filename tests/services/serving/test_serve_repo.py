"""`moma serve --repo GIT_URL`: a real bare repository on disk and a local-directory moma
remote, served by the real command with no checkout, following the stage tags pushed to
the bare repository while requests keep coming."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from test_serve import Client, X, container_env, fitted, wait_until_up, workers_serving

from conftest import Moma, git, make_repo
from moma_cli.errors import MomaError
from moma_cli.services import serve
from moma_cli.services.repo import open_repo
from realtools import free_port


@dataclass
class Published:
    """The authors' work tree, the bare repository servers clone, and its moma remote."""

    moma: Moma
    bare: Path
    estimators: dict[int, Any]

    def register(self, version: int, estimator: Any) -> None:
        path = self.moma.root / "models/iris.joblib"
        path.parent.mkdir(exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        joblib.dump(estimator, path)
        self.moma("models:add", "iris", "models/iris.joblib")
        self.moma.git("commit", "-qm", f"iris v{version}")
        self.moma("push")
        self.moma.git("push", "-q", "origin", "HEAD:main")
        self.estimators[version] = estimator

    def tag(self, ref: str, stage: str) -> None:
        self.moma("models:tag", ref, stage)  # uploads the version's object to the remote
        self.moma.git("push", "-q", "origin", "--tags")


@pytest.fixture
def published(tmp_path: Path) -> Published:
    git(tmp_path, "init", "-q", "--bare", "models.git")
    moma = make_repo(tmp_path / "authors")
    moma("remote", "add", "storage", str(tmp_path / "storage"), "--default")
    moma.git("add", ".moma.yaml")
    moma.git("commit", "-qm", "storage remote")
    moma.git("remote", "add", "origin", str(tmp_path / "models.git"))
    pub = Published(moma, tmp_path / "models.git", {})
    pub.register(1, fitted(LogisticRegression(max_iter=300)))
    pub.register(2, fitted(DecisionTreeClassifier(max_depth=1, random_state=0)))
    pub.tag("iris:1", "production")
    return pub


def serve_repo(url: Path, workdir: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moma_cli", "serve", "--repo", str(url), "--workdir",
         str(workdir), "--port", str(port), "--poll", "0.2", *extra],
        cwd=workdir.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=container_env())
    return proc, port


def version_served(client: Client) -> int:
    status, body = client.predict("iris", X[:1].tolist())
    assert status == 200, body
    return int(body["version"])


def test_serve_from_a_git_url_follows_moved_and_deleted_stage_tags(published: Published,
                                                                   tmp_path: Path) -> None:
    """Started from the URL alone (outside any repository), it serves v1; production moved
    to v2 in the bare repository is followed with no failed request in between; that tag
    deleted there, production is v1 again."""
    workdir = tmp_path / "work"
    proc, port = serve_repo(published.bare, workdir, "iris:production", "--trust")
    statuses: list[int] = []
    stop = threading.Event()
    try:
        client = wait_until_up(port, proc)
        status, body = client.predict("iris", X[:5].tolist())
        assert (status, body["version"]) == (200, 1)
        assert body["predictions"] == published.estimators[1].predict(X[:5]).tolist()

        def hammer() -> None:
            steady = Client(port)
            while not stop.is_set():
                statuses.append(steady.predict("iris:production", X[:1].tolist())[0])

        load = threading.Thread(target=hammer)
        load.start()
        published.tag("iris:2", "production")
        wait_for(lambda: version_served(client) == 2, "the moved tag was never followed")
        body = client.predict("iris", X[:5].tolist())[1]
        assert body["predictions"] == published.estimators[2].predict(X[:5]).tolist()
        stop.set()
        load.join(timeout=30)
        moved = [tag for tag in git(published.bare, "tag").split() if tag.endswith("#2")]
        assert len(moved) == 1, moved
        git(published.bare, "tag", "-d", moved[0])
        wait_for(lambda: version_served(client) == 1, "the deleted tag was never followed")
    finally:
        stop.set()
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert statuses and set(statuses) == {200}
    assert out.splitlines()[0].startswith(f"Following {published.bare}")
    assert {p.name for p in workdir.iterdir()} == {"repos", "cache"}


def test_two_workers_share_one_clone_and_follow_the_tags(published: Published,
                                                        tmp_path: Path) -> None:
    """`--workers 2`: each worker opens the clone from MOMA_SERVE_GIT_URL (the app factory),
    and both switch when production moves in the bare repository."""
    workdir = tmp_path / "work"
    proc, port = serve_repo(published.bare, workdir, "iris:production", "--trust",
                            "--workers", "2")
    try:
        wait_until_up(port, proc)
        wait_for(lambda: workers_serving(port, 1) == 2, "the second worker never started")
        published.tag("iris:2", "production")
        wait_for(lambda: workers_serving(port, 2) == 2 and workers_serving(port, 1) == 0,
                 "a worker kept serving version 1")
        assert version_served(Client(port)) == 2
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(list((workdir / "repos").iterdir())) == 1


def wait_for(condition: Any, message: str, timeout: float = 60) -> None:
    """Poll `condition` until true; the poller fetches every 0.2 s, on a loaded machine
    a fetch and a model load may take seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def test_serve_from_a_git_url_loads_no_pickle_without_trust(published: Published,
                                                            tmp_path: Path) -> None:
    proc, _ = serve_repo(published.bare, tmp_path / "work", "iris:production")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "refusing to serve model iris:1 of another repository: it is a joblib pickle" in err
    assert "--trust" in err
    cache = tmp_path / "work/cache"
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # not a byte downloaded


def test_serve_from_a_git_url_refuses_a_source_remote_it_cannot_trust(tmp_path: Path) -> None:
    """The source's .moma.yaml is untrusted: a relative remote path would resolve inside
    the clone moma made (config.source_config), so it is refused, naming the file."""
    git(tmp_path, "init", "-q", "--bare", "models.git")
    moma = make_repo(tmp_path / "authors")
    moma("remote", "add", "storage", "../storage", "--default")
    moma.git("add", ".moma.yaml")
    moma.git("commit", "-qm", "relative remote")
    moma.git("push", "-q", str(tmp_path / "models.git"), "HEAD:main")
    proc, _ = serve_repo(tmp_path / "models.git", tmp_path / "work", "iris:production")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "source .moma.yaml: remote 'storage' is the relative path '../storage'" in err


def test_an_unreachable_source_keeps_the_served_models(published: Published,
                                                       tmp_path: Path) -> None:
    """The git host down: the reload reports the failed fetch and the model goes on serving."""
    server, _ = serve.prepare(None, ["iris:production"], git_url=str(published.bare),
                              workdir=tmp_path / "work", trust=True)
    published.bare.rename(tmp_path / "moved.git")
    report = server.reload()
    assert report.switched == [] and len(report.errors) == 1
    assert "(fetching the tags of the source)" in report.errors[0]
    model = server.table.find("iris:production").model
    assert model.resolved.version == 1
    assert model.predict(X[:3])[0] == published.estimators[1].predict(X[:3]).tolist()


def test_trust_is_only_for_another_repository(published: Published) -> None:
    with pytest.raises(MomaError, match="--trust is for --repo"):
        serve.prepare(open_repo(published.moma.root), ["iris:production"], trust=True)
