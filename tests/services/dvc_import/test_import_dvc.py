"""`moma import-dvc` against a project the real DVC 3 built: a file, a directory, a two-stage
pipeline with params, a local-directory remote it pushed to.

DVC runs from its own virtualenv (its pins clash with ours), built once per machine outside
the repository, as for GTO; the project is built once per session and copied per test.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT, Moma, clone_of, tree_bytes, write
from moma_cli import yamlio
from moma_cli.core import dvc
from moma_cli.core.dvc_config import parse_config
from moma_cli.errors import MomaError
from realtools import tool_venv

DVC_VERSION = "3.67.1"
DATA = b"id,label\n" + b"1,cat\n" * 400
IMAGES = {"1.txt": b"one\n" * 50, "sub/2.txt": os.urandom(2000)}
DVC_YAML = """\
stages:
  prepare:
    cmd: mkdir -p prepared && cp data.csv prepared/a.csv && cp -r images prepared/images
    deps: [data.csv, images]
    params: [prepare.split]
    outs: [prepared]
  train:
    cmd: >-
      cat prepared/a.csv prepared/images/1.txt > model.bin && echo "acc: 0.9" > metrics.yaml
    deps: [prepared]
    params: [train.lr, train]
    outs: [model.bin]
    metrics:
    - metrics.yaml:
        cache: false
"""
PARAMS = "prepare:\n  split: 0.2\ntrain:\n  lr: 0.1\n  epochs: 3\n"
DATA_PATHS = ("data.csv", "images", "prepared", "model.bin")


@pytest.fixture(scope="session")
def dvc_bin() -> Path:
    return tool_venv("dvc", DVC_VERSION) / "dvc"


@pytest.fixture(scope="session")
def dvc_template(dvc_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<top>/project` (git + DVC + moma init, all committed) and `<top>/dvcstore`, the
    DVC remote it pushed to (`../dvcstore`, relative, so a copy of `<top>` is whole).
    Built once per session: xdist workers share the directory above their own."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    top = shared / "dvc-template"
    with open(shared / "dvc-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (top / ".complete").exists():
            shutil.rmtree(top, ignore_errors=True)
            _build_template(dvc_bin, top)
            (top / ".complete").touch()
    return top


def _build_template(dvc_bin: Path, top: Path) -> None:
    home = top / "home"
    home.mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com",
           "PYTHONPATH": str(PROJECT / "src")}
    project = top / "project"
    project.mkdir()

    def run(*args: str) -> None:
        proc = subprocess.run(list(args), cwd=project, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"

    def dvc_(*args: str) -> None:
        run(str(dvc_bin), *args)

    run("git", "init", "-q", "-b", "main")
    dvc_("init", "-q")
    write(project / "data.csv", DATA)
    for rel, content in IMAGES.items():
        write(project / "images" / rel, content)
    write(project / "dvc.yaml", DVC_YAML)
    write(project / "params.yaml", PARAMS)
    dvc_("add", "-q", "data.csv", "images")
    dvc_("repro", "-q")
    dvc_("remote", "add", "-d", "storage", "../dvcstore")  # DVC writes ../../dvcstore
    dvc_("remote", "modify", "storage", "jobs", "4")
    dvc_("push", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "a DVC project")
    run(sys.executable, "-m", "moma_cli", "init")
    run("git", "commit", "-qm", "moma init")


@pytest.fixture
def project(dvc_template: Path, tmp_path: Path) -> Moma:
    shutil.copytree(dvc_template, tmp_path / "w", symlinks=True,
                    ignore=shutil.ignore_patterns(".complete"))
    return Moma(tmp_path / "w" / "project")


def data_bytes(root: Path) -> dict[str, bytes]:
    found = {}
    for rel in DATA_PATHS:
        path = root / rel
        found.update({f"{rel}/{k}": v for k, v in tree_bytes(path).items()} if path.is_dir()
                     else {rel: path.read_bytes()})
    return found


def snapshot(moma: Moma) -> tuple[str, dict[str, bytes]]:
    files = {p.relative_to(moma.root).as_posix(): p.read_bytes()
             for p in sorted(moma.root.rglob("*"))
             if p.is_file() and p.relative_to(moma.root).parts[0] not in (".git", ".moma")}
    return moma.git("ls-files", "--stage") + moma.git("status", "--porcelain"), files


def clone_pulls_and_repro_is_up_to_date(project: Moma, expected: dict[str, bytes]) -> None:
    project.git("commit", "-qm", "Move from DVC to moma")
    clone = clone_of(project, project.root.parent, "clone")
    clone("pull")
    assert data_bytes(clone.root) == expected
    res = clone("repro")
    assert "Unchanged stage prepare" in res.stdout and "Unchanged stage train" in res.stdout
    assert "Pipeline is up to date." in res.stdout


def test_import_converts_data_stages_remote_and_a_clone_pulls(project: Moma) -> None:
    expected = data_bytes(project.root)
    res = project("import-dvc")
    for rel in DATA_PATHS:
        assert f"Imported {rel}" in res.stdout
        assert (project.root / f"{rel}.moma").is_file()
    assert data_bytes(project.root) == expected
    staged = project.git("diff", "--cached", "--name-status").split("\n")
    assert sorted(filter(None, staged)) == [
        "A\tdata.csv.moma", "A\timages.moma", "A\tmodel.bin.moma", "A\tmoma.lock",
        "A\tprepared.moma", "D\tdata.csv.dvc", "D\timages.dvc", "M\t.moma.yaml"]
    assert not (project.root / "data.csv.dvc").exists()
    doc = yamlio.load_file(project.root / ".moma.yaml")
    assert doc["stages"] == {
        "prepare": {"cmd": "mkdir -p prepared && cp data.csv prepared/a.csv && cp -r images "
                           "prepared/images", "deps": ["data.csv", "images"],
                    "params": ["params.yaml:prepare.split"], "outs": ["prepared"]},
        "train": {"cmd": 'cat prepared/a.csv prepared/images/1.txt > model.bin && echo '
                         '"acc: 0.9" > metrics.yaml', "deps": ["prepared"],
                  "params": ["params.yaml:train.lr,train"], "outs": ["model.bin"],
                  "metrics": ["metrics.yaml"]}}
    assert doc["remotes"] == {"storage": {"url": "../dvcstore", "jobs": 4}}
    assert doc["core"]["remote"] == "storage"
    lock = yamlio.load_file(project.root / "moma.lock")["stages"]
    assert sorted(lock) == ["prepare", "train"]
    assert lock["train"]["metrics"] == {"metrics.yaml": {"acc": 0.9}}
    assert "Recorded stage train as run (from dvc.lock)" in res.stdout
    assert "Pipeline is up to date." in project("repro").stdout
    project("push")
    clone_pulls_and_repro_is_up_to_date(project, expected)

    before = snapshot(project)
    again = project("import-dvc")
    assert "Nothing to import from DVC." in again.stdout
    assert snapshot(project) == before


def test_dry_run_prints_the_plan_and_changes_nothing(project: Moma) -> None:
    (project.root / "model.bin").unlink()  # from DVC's cache, then
    before = snapshot(project)
    res = project("import-dvc", "--dry-run")
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines()
            if line.split() and line.split()[0] in DATA_PATHS}
    assert rows["images"][0] == "dir" and rows["images"][-2:] == ["workspace", "images.dvc"]
    assert rows["model.bin"][-2:] == ["dvc-cache", "dvc.lock:train"]
    assert "Would add stage prepare to .moma.yaml" in res.stdout
    assert "Would add remote storage (default): ../dvcstore" in res.stdout
    assert snapshot(project) == before
    project("import-dvc")
    assert (project.root / "model.bin").read_bytes() == DATA + IMAGES["1.txt"]


def test_copy_remote_with_an_empty_dvc_cache(project: Moma) -> None:
    expected = data_bytes(project.root)
    shutil.rmtree(project.root / ".dvc" / "cache")
    for rel in DATA_PATHS:
        path = project.root / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert "missing" in project("import-dvc", "--dry-run").stdout
    res = project("import-dvc", "--copy-remote")
    # data.csv, images (2 files + listing), model.bin, prepared (its files are those: a listing)
    assert "Copied 6 object(s) from DVC's remote to remote 'storage'" in res.stdout
    for rel in DATA_PATHS:
        assert (project.root / f"{rel}.moma").is_file() and not (project.root / rel).exists()
    assert (project.root.parent / "dvcstore" / "blake3").is_dir()  # beside DVC's files/
    clone_pulls_and_repro_is_up_to_date(project, expected)


def test_copy_remote_from_an_s3_dvc_remote(project: Moma, moto_endpoint: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC's remote on S3 (moto's server): the objects `dvc push` wrote, in DVC's layout,
    read from S3 and copied into the moma remote the import makes of it, then pulled by a
    clone from S3. (The DVC venv has no dvc-s3; its pushed tree is uploaded as it is.)"""
    import s3fs

    from conftest import s3_bucket

    expected = data_bytes(project.root)
    s3_bucket(moto_endpoint, monkeypatch, "dvc-s3")
    fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={
        "endpoint_url": moto_endpoint, "region_name": "us-east-1"})
    store = project.root.parent / "dvcstore"
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"dvc-s3/dvcstore/{path.relative_to(store).as_posix()}")
    shutil.rmtree(store)
    (project.root / ".dvc" / "config").write_text(
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://dvc-s3/dvcstore\n"
        f"    endpointurl = {moto_endpoint}\n    region = us-east-1\n    jobs = 4\n")
    project.git("commit", "-qam", "DVC remote on S3")
    shutil.rmtree(project.root / ".dvc" / "cache")
    for rel in DATA_PATHS:
        path = project.root / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    res = project("import-dvc", "--copy-remote")
    assert "Copied 6 object(s) from DVC's remote to remote 'storage'" in res.stdout
    doc = yamlio.load_file(project.root / ".moma.yaml")
    assert doc["remotes"] == {"storage": {"url": "s3://dvc-s3/dvcstore", "jobs": 4,
                                          "endpointurl": moto_endpoint,
                                          "region": "us-east-1"}}
    assert len(fs.find("dvc-s3/dvcstore/blake3")) == 6  # beside DVC's files/
    clone_pulls_and_repro_is_up_to_date(project, expected)


def test_a_mismatching_md5_is_refused_by_name(project: Moma) -> None:
    write(project.root / "data.csv", b"edited after dvc add\n")
    (project.root / "model.bin").unlink()
    obj = project.root / ".dvc" / "cache" / dvc.object_path(
        yamlio.load_file(project.root / "dvc.lock")["stages"]["train"]["outs"][1]["md5"])
    os.chmod(obj, 0o644)
    obj.write_bytes(b"corrupt")
    res = project("import-dvc", ok=False)
    assert "data.csv: the workspace does not match md5" in res.stderr
    assert "data.csv.dvc" in res.stderr
    assert "model.bin: DVC's cache object" in res.stderr
    assert not (project.root / "data.csv.moma").exists()
    assert not (project.root / "model.bin").exists()
    assert (project.root / "data.csv.dvc").is_file()
    assert (project.root / "images.moma").is_file()
    assert "Imported images" in res.stdout


def test_credentials_in_dvc_config_are_not_copied(project: Moma) -> None:
    config = project.root / ".dvc" / "config"
    config.write_text(config.read_text() + "['remote \"s3\"']\n    url = s3://bucket/dvc\n"
                      "    endpointurl = http://127.0.0.1:9\n    access_key_id = AKIAEXAMPLE\n"
                      "    secret_access_key = s3cr3t-value\n    password = hunter2\n")
    res = project("import-dvc", "--dry-run")
    assert "left out s3.secret_access_key: credentials are never copied" in res.stderr
    project("import-dvc")
    text = (project.root / ".moma.yaml").read_text()
    for secret in ("AKIAEXAMPLE", "s3cr3t-value", "hunter2", "access_key", "password"):
        assert secret not in text
    assert yamlio.loads(text)["remotes"]["s3"] == {"url": "s3://bucket/dvc",
                                                   "endpointurl": "http://127.0.0.1:9"}
    assert "s3" in project("remote", "list").stdout


@pytest.mark.parametrize("path", ["../outside.bin", "/etc/passwd", ".git/hooks/pre-commit",
                                  "sub/.moma/cache"])
def test_dvc_files_naming_unsafe_paths_are_refused(project: Moma, path: str) -> None:
    write(project.root / "evil.dvc", f"outs:\n- md5: {'0' * 32}\n  size: 1\n  hash: md5\n"
          f"  path: {path}\n")
    project.git("add", "evil.dvc")
    res = project("import-dvc", ok=False)
    assert "evil.dvc" in res.stderr
    assert (project.root / "evil.dvc").is_file()
    assert not (project.root.parent / "outside.bin.moma").exists()


def test_dvc_formats_are_parsed_strictly() -> None:
    entries = [("a", "0" * 32), ("b/c", "1" * 32)]
    listing = ('[{"md5": "' + "0" * 32 + '", "relpath": "a"}, {"md5": "' + "1" * 32
               + '", "relpath": "b/c"}]').encode()
    assert dvc.parse_listing(listing, "x") == entries
    import hashlib

    assert dvc.listing_md5(entries) == hashlib.md5(listing).hexdigest()
    for bad in (b'[{"md5": "x", "relpath": "a"}]', b'[{"md5": "' + b"0" * 32
                + b'", "relpath": "../a"}]', b"{}", b"[1]"):
        with pytest.raises(MomaError):
            dvc.parse_listing(bad, "x")
    with pytest.raises(MomaError, match="DVC 2"):
        dvc.parse_dvc_file(b"outs:\n- md5: " + b"0" * 32 + b"\n  path: a\n", "a.dvc")
    config = parse_config("[core]\n    remote = s\n['remote \"s\"']\n    url = ../x\n")
    assert config.default_remote == "s" and config.remotes["s"].url == "../x"
    with pytest.raises(MomaError):
        parse_config("[core]\nremote = a\nremote = b\n")
