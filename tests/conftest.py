"""Shared fixtures: sealed environment, real git repositories in tmp dirs, the moma CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

if TYPE_CHECKING:
    from servetools import Registry, Running

PROJECT = Path(__file__).resolve().parents[1]  # the checkout: docs/, src/, .moma.example.yaml
SRC = PROJECT / "src"

# Fuzzing profiles: "ci" keeps the fuzz suite's share of `make test` small; run the long one by
# hand with HYPOTHESIS_PROFILE=long. No deadline: a loaded 2-core CI machine is not a bug.
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def sealed_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the user's HOME, git config, AWS credentials or MOMA_* settings."""
    home = tmp_path_factory.mktemp("home")
    for var in list(os.environ):
        if var.startswith(("MOMA_", "AWS_", "GIT_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Author")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "author@example.com")
    (home / ".gitconfig").write_text(
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    monkeypatch.setenv("PYTHONPATH", str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


class Moma:
    """Runs moma in a repository: in-process (fast) or as a real subprocess."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *args: str, ok: bool | None = True, cwd: Path | None = None) -> Result:
        from moma_cli.cli.app import full_app
        from moma_cli.cli.context import OPTIONS

        OPTIONS.verbose, OPTIONS.wait = False, 0.0
        old = os.getcwd()
        os.chdir(cwd or self.root)
        try:
            res = CliRunner().invoke(full_app(), list(args), catch_exceptions=False)
        finally:
            os.chdir(old)
        result = Result(res.exit_code, res.stdout, res.stderr)
        _check(result, ok, args)
        return result

    def proc(self, *args: str, ok: bool | None = True, timeout: float = 120,
             cwd: Path | None = None) -> Result:
        p = subprocess.run([sys.executable, "-m", "moma_cli", *args], cwd=cwd or self.root,
                           capture_output=True, text=True, timeout=timeout)
        result = Result(p.returncode, p.stdout, p.stderr)
        _check(result, ok, args)
        return result

    def git(self, *args: str) -> str:
        return git(self.root, *args)


def _check(result: Result, ok: bool | None, args: tuple[str, ...]) -> None:
    if ok is True and result.exit_code != 0:
        raise AssertionError(f"moma {' '.join(args)} failed ({result.exit_code}):\n"
                             f"{result.stdout}\n{result.stderr}")
    if ok is False and result.exit_code == 0:
        raise AssertionError(f"moma {' '.join(args)} unexpectedly succeeded:\n{result.stdout}")


def clone_of(moma: Moma, tmp_path: Path, name: str = "clone") -> Moma:
    """A git clone of `moma`'s repository beside it (what another machine would have)."""
    git(tmp_path, "clone", "-q", str(moma.root), name)
    return Moma(tmp_path / name)


def make_repo(path: Path) -> Moma:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    moma = Moma(path)
    moma("init")
    git(path, "commit", "-qm", "moma init")
    return moma


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Moma]:
    yield make_repo(tmp_path / "repo")


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def tree_bytes(top: Path) -> dict[str, bytes]:
    """Every file under `top` with its content, for byte-identical comparisons."""
    return {p.relative_to(top).as_posix(): p.read_bytes()
            for p in sorted(top.rglob("*")) if p.is_file()}


def configure(moma: Moma, models: dict[str, Any], **extra: Any) -> None:
    """Set the `models:` section (and any other top-level keys) of .moma.yaml."""
    path = moma.root / ".moma.yaml"
    from moma_cli import yamlio

    doc = yamlio.load_file(path) | {"models": models, **extra}
    path.write_text(yamlio.dumps(doc))


def register_model(moma: Moma, name: str, metrics: dict[str, Any], env: dict[str, str] | None
                   = None) -> None:
    """A model is a pointer with a `model:` section (what the registry writes)."""
    write(moma.root / f"{name}.pkl", f"weights of {name}")
    moma("add", f"{name}.pkl")
    from helpers import with_sections
    from moma_cli.services.repo import open_repo

    repo = open_repo(moma.root)
    ptr = repo.load_pointer(f"{name}.pkl.moma")
    repo.write_pointer(with_sections(ptr, model={"name": name, "metrics": metrics}))
    moma.git("add", "-A")
    subprocess.run(["git", "commit", "-qm", f"train {name}"], cwd=moma.root, check=True,
                   env=os.environ | (env or {}))


# -- remotes ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto) on 127.0.0.1, shared by the whole session."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class RemoteSpec:
    """A remote for `moma remote add NAME URL` plus the options it needs."""

    kind: str  # local | s3
    url: str
    options: dict[str, str]

    def add_to(self, moma: Moma, name: str = "storage", *extra: str) -> None:
        moma("remote", "add", name, self.url, "--default", *extra)
        for key, value in self.options.items():
            moma("remote", "modify", name, key, value)

    def _fs(self) -> tuple[Any, str]:
        if self.kind == "local":
            import fsspec

            return fsspec.filesystem("file"), self.url
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False,
                               client_kwargs={"endpoint_url": self.options["endpointurl"]})
        return fs, self.url.removeprefix("s3://")

    def object_key(self, oid: str) -> str:
        return f"{self._fs()[1]}/blake3/{oid[:2]}/{oid[2:]}"

    def objects(self) -> dict[str, bytes]:
        """Every object on the remote by oid: loose ones, and those in complete packs."""
        from moma_cli.storage import packs

        fs, root = self._fs()
        keys = fs.find(f"{root}/blake3") if fs.exists(f"{root}/blake3") else []
        found = {}
        for key in keys:
            parent, name = key.split("/")[-2:]
            if parent == "packs" and name.endswith(".idx"):
                packid = name.removesuffix(".idx")
                data = bytes(fs.cat_file(key.removesuffix(".idx") + ".pack"))
                slots = packs.decode_index(bytes(fs.cat_file(key)), packid, "blake3",
                                           len(data))
                found |= {oid: data[s.offset:s.offset + s.size] for oid, s in slots.items()}
            elif len(parent) == 2 and not name.startswith(".moma-tmp-"):
                found[parent + name] = bytes(fs.cat_file(key))
        return found

    def oids(self) -> set[str]:
        return set(self.objects())

    def packs(self) -> list[str]:
        """The names of the files in the remote's packs directory."""
        fs, root = self._fs()
        top = f"{root}/blake3/packs"
        return sorted(k.rsplit("/", 1)[-1] for k in fs.find(top)) if fs.exists(top) else []

    def read_pack(self, name: str) -> bytes:
        fs, root = self._fs()
        return bytes(fs.cat_file(f"{root}/blake3/packs/{name}"))

    def write_pack(self, name: str, data: bytes) -> None:
        fs, root = self._fs()
        key = f"{root}/blake3/packs/{name}"
        if self.kind == "local":
            os.chmod(key, 0o644)
        fs.pipe_file(key, data)

    def delete_pack(self, name: str) -> None:
        fs, root = self._fs()
        fs.rm_file(f"{root}/blake3/packs/{name}")

    def read(self, oid: str) -> bytes:
        fs, _ = self._fs()
        return bytes(fs.cat_file(self.object_key(oid)))

    def write(self, oid: str, data: bytes) -> None:
        fs, _ = self._fs()
        key = self.object_key(oid)
        if self.kind == "local":
            os.chmod(key, 0o644)
        fs.pipe_file(key, data)

    def delete(self, oid: str) -> None:
        fs, _ = self._fs()
        fs.rm_file(self.object_key(oid))


def s3_bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    """Create a fresh bucket; credentials set after `sealed_env` cleared AWS_*."""
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    fs = s3fs.S3FileSystem(skip_instance_cache=True,
                           client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"})
    fs.call_s3("create_bucket", Bucket=bucket)


@pytest.fixture(params=["local", "s3"])
def any_remote(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> RemoteSpec:
    """The same tests run against a local-directory remote and the S3 server."""
    if request.param == "local":
        return RemoteSpec("local", str(tmp_path / "remote"), {})
    return request.getfixturevalue("s3_remote")


@pytest.fixture
def s3_remote(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RemoteSpec:
    """A fresh bucket on the S3 server, for what only S3 does (ranged parts, multipart)."""
    bucket = f"b-{tmp_path.name.lower().replace('_', '-')[-40:]}-{os.getpid()}"
    s3_bucket(moto_endpoint, monkeypatch, bucket)
    return RemoteSpec("s3", f"s3://{bucket}/moma", {"endpointurl": moto_endpoint,
                                                    "region": "us-east-1"})


# The pipeline of the experiment tests (test_exp, test_exp_queue): one stage making model.txt
# and metrics.json from params.yaml; train.fail makes it exit 1. With $BARRIER set, each run
# marks itself there, then waits until two runs have: a run alone never gets past it, so
# runs that all finish ran two at a time (no timing bound, a generous deadline).
EXP_TRAIN = """
import json, os, sys, time, uuid, yaml
barrier = os.environ.get("BARRIER")
if barrier:
    os.makedirs(barrier, exist_ok=True)
    open(os.path.join(barrier, uuid.uuid4().hex), "w").close()
    deadline = time.monotonic() + 60
    while len(os.listdir(barrier)) < 2:
        if time.monotonic() > deadline:
            sys.exit(9)
        time.sleep(0.02)
p = yaml.safe_load(open("params.yaml"))["train"]
if p.get("fail"):
    sys.exit("asked to fail")
open("model.txt", "w").write(f"lr={p['lr']} depth={p['depth']}\\n")
json.dump({"score": p["lr"] * p["depth"]}, open("metrics.json", "w"))
"""


@pytest.fixture
def pipe(repo: Moma) -> Moma:
    """A committed one-stage pipeline (EXP_TRAIN), run once."""
    write(repo.root / "params.yaml", "train:\n  lr: 0.1\n  depth: 2\n  fail: false\n")
    write(repo.root / "train.py", EXP_TRAIN)
    repo("run", "-n", "train", "-d", "train.py", "-p", "params.yaml:train", "-o", "model.txt",
         "-M", "metrics.json", "--", f"{sys.executable} train.py")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "pipeline")
    return repo


# -- serving: a registry of real estimators and servers on free ports (tests/servetools.py) --


@pytest.fixture
def registry(repo: Moma) -> Registry:
    """iris v1 (a logistic regression, in production) and v2 (a tree fitted with names)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from servetools import Registry, fitted

    reg = Registry(repo)
    reg.register("iris", fitted(LogisticRegression(max_iter=300)))
    reg.register("iris", fitted(DecisionTreeClassifier(max_depth=2, random_state=0), names=True))
    reg.tag("iris:1", "production")
    return reg


@pytest.fixture
def start(registry: Registry) -> Iterator[Any]:
    """start(refs, **options) -> a server running in this process on a free port. Whatever
    host it binds (`host="0.0.0.0"`), its clients connect to 127.0.0.1."""
    import contextlib

    from moma_cli.services import serve
    from moma_cli.services.serving.app import create_app
    from realtools import free_port, uvicorn_running
    from servetools import Running

    with contextlib.ExitStack() as running:
        def _start(*refs: str, **options: Any) -> Running:
            port = free_port()
            server, _ = serve.prepare(registry.repo, refs, port=port, **options)
            running.enter_context(uvicorn_running(create_app(server), port, server.host))
            return Running(server, port)

        yield _start
