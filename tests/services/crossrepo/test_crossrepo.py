"""`moma ls / get / import / update` against real bare repositories on disk: a source repo
with a local-directory remote, pushed to a bare repository that the importer clones."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Moma, clone_of, git, make_repo, register_model, tree_bytes, write
from moma_cli import yamlio


@dataclass
class Source:
    moma: Moma  # the source's work tree
    bare: Path  # what importers clone
    storage: Path  # its moma remote

    def publish(self, message: str) -> None:
        self.moma.git("add", "-A")
        self.moma.git("commit", "-qm", message)
        self.moma("push")
        self.moma.git("push", "-q", "origin", "HEAD:main")


@pytest.fixture(scope="session")
def source_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`source/` (moma add of a file, a directory and a model, pushed to `storage/`) and
    `source.git`, the bare repository it pushed to: built once per session (sealed like
    `sealed_env`, which only runs per test), copied by each test."""
    top = tmp_path_factory.mktemp("source-template")
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith(("MOMA_", "AWS_", "GIT_")):
                mp.delenv(var)
        (top / "home").mkdir()
        (top / "home/.gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
        mp.setenv("HOME", str(top / "home"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for who in ("AUTHOR", "COMMITTER"):
            mp.setenv(f"GIT_{who}_NAME", "Test Author")
            mp.setenv(f"GIT_{who}_EMAIL", "author@example.com")
        git(top, "init", "-q", "--bare", "source.git")
        moma = make_repo(top / "source")
        moma("remote", "add", "storage", str(top / "storage"), "--default")
        write(moma.root / "data.csv", "a,b\n1,2\n")
        write(moma.root / "images/cat.png", b"\x89PNG cat")
        write(moma.root / "images/sub/dog.png", b"\x89PNG dog")
        moma("add", "data.csv", "images")
        moma.git("remote", "add", "origin", str(top / "source.git"))
        Source(moma, top / "source.git", top / "storage").publish("data")
        register_model(moma, "clf", {"auc": 0.9})
        moma("push")
        moma.git("push", "-q", "origin", "HEAD:main")
    return top


@pytest.fixture
def source(source_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Source:
    """A copy of the template's source and bare repository; the storage is shared (objects
    are named by their hash: a test adding some never changes another's)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    shutil.copytree(source_template / "source", tmp_path / "source", symlinks=True)
    shutil.copytree(source_template / "source.git", tmp_path / "source.git")
    moma = Moma(tmp_path / "source")
    moma.git("remote", "set-url", "origin", str(tmp_path / "source.git"))
    return Source(moma, tmp_path / "source.git", source_template / "storage")


def _pointer(moma: Moma, rel: str) -> dict[str, object]:
    doc = yamlio.loads((moma.root / f"{rel}.moma").read_text())
    assert isinstance(doc, dict)
    return doc


def test_ls_lists_data_and_models(repo: Moma, source: Source) -> None:
    table = repo("ls", str(source.bare)).stdout
    assert "data.csv" in table and "images" in table and "clf" in table and "v1" in table
    listed = json.loads(repo("ls", str(source.bare), "--json").stdout)
    data = {d["path"]: d for d in listed["data"]}
    assert data["data.csv"]["kind"] == "file" and data["data.csv"]["size"] == 8
    assert data["images"]["kind"] == "dir" and data["images"]["nfiles"] == 2
    assert [(m["name"], m["version"]) for m in listed["models"]] == [("clf", 1)]
    only = json.loads(repo("ls", str(source.bare), "images", "--json").stdout)
    assert [d["path"] for d in only["data"]] == ["images"] and only["models"] == []
    assert (repo.root / ".moma/repos").is_dir()  # the clone is kept here, for next time


def test_get_file_and_directory_outside_a_repository(source: Source, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    runner = Moma(out)
    runner("get", str(source.bare), "data.csv")
    runner("get", str(source.bare), "images", "-o", "pics")
    runner("get", str(source.bare), "images/sub/dog.png", "-o", "dog.png")
    assert (out / "data.csv").read_bytes() == (source.moma.root / "data.csv").read_bytes()
    assert tree_bytes(out / "pics") == tree_bytes(source.moma.root / "images")
    assert (out / "dog.png").read_bytes() == b"\x89PNG dog"
    assert not list(out.glob("*.moma")) and not (out / ".gitignore").exists()
    assert (tmp_path / "user-cache/moma/repos").is_dir()
    write(out / "data.csv", "my own edits")  # unsaved work is never overwritten
    res = runner("get", str(source.bare), "data.csv", ok=False)
    assert "modified and not in the cache" in res.stderr
    assert (out / "data.csv").read_text() == "my own edits"


def test_get_refuses_a_corrupted_object(repo: Moma, source: Source) -> None:
    oid = str(_pointer(source.moma, "data.csv")["oid"])
    key = source.storage / "blake3" / oid[:2] / oid[2:]
    good = key.read_bytes()
    os.chmod(key, 0o644)
    key.write_bytes(b"a,b\n6,6\n")
    try:
        res = repo("get", str(source.bare), "data.csv", ok=False)
    finally:  # the storage is shared with the other tests
        key.write_bytes(good)
    assert "corrupt" in res.stderr and oid[:8] in res.stderr
    assert not (repo.root / "data.csv").exists()


def test_import_commit_then_update_to_a_new_source_version(repo: Moma, source: Source) -> None:
    repo("import", str(source.bare), "data.csv", "-o", "raw/data.csv")
    first = _pointer(repo, "raw/data.csv")
    recorded = first["source"]
    assert isinstance(recorded, dict)
    assert recorded["url"] == str(source.bare) and recorded["path"] == "data.csv"
    assert "rev" not in recorded and len(recorded["commit"]) == 40
    assert first["oid"] == _pointer(source.moma, "data.csv")["oid"]
    assert (repo.root / "raw/data.csv").read_text() == "a,b\n1,2\n"
    repo.git("commit", "-qm", "import data")
    assert repo("update").stdout.count("up to date") == 1

    write(source.moma.root / "data.csv", "a,b\n3,4\n")
    source.moma("add", "data.csv")
    source.publish("new data")
    repo("update", "raw/data.csv")
    moved = _pointer(repo, "raw/data.csv")
    assert moved["oid"] == _pointer(source.moma, "data.csv")["oid"] != first["oid"]
    assert (repo.root / "raw/data.csv").read_text() == "a,b\n3,4\n"
    moved_source = moved["source"]
    assert isinstance(moved_source, dict) and moved_source["commit"] != recorded["commit"]


def test_import_pins_a_revision(repo: Moma, source: Source) -> None:
    source.moma.git("tag", "v1")
    source.moma.git("push", "-q", "origin", "v1")
    write(source.moma.root / "data.csv", "newer\n")
    source.moma("add", "data.csv")
    source.publish("newer")
    repo("import", str(source.bare), "data.csv", "--rev", "v1")
    assert (repo.root / "data.csv").read_text() == "a,b\n1,2\n"
    repo("update")  # v1 has not moved
    assert (repo.root / "data.csv").read_text() == "a,b\n1,2\n"
    repo("update", "--rev", "main")
    assert (repo.root / "data.csv").read_text() == "newer\n"
    recorded = _pointer(repo, "data.csv")["source"]
    assert isinstance(recorded, dict) and recorded["rev"] == "main"


@pytest.mark.parametrize("own_remote", [False, True])
def test_a_clone_pulls_an_import_through_the_source_remote(repo: Moma, source: Source,
                                                          tmp_path: Path,
                                                          own_remote: bool) -> None:
    if own_remote:  # a remote of its own that lacks the import: the source's is asked next
        (tmp_path / "own").mkdir()
        repo("remote", "add", "own", str(tmp_path / "own"), "--default")
    repo("import", str(source.bare), "images")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "import images")
    clone = clone_of(repo, tmp_path)
    clone("pull")
    assert tree_bytes(clone.root / "images") == tree_bytes(source.moma.root / "images")


BAD_URLS = ["ext::sh -c touch% /tmp/pwned", "--upload-pack=touch x", "-u", "fd::17",
            "http://example.com/repo.git", "git://example.com/repo", "host:repo", ""]


def test_bad_urls_are_refused_before_git_runs(repo: Moma) -> None:
    for url in BAD_URLS:  # after `--`: moma's own option parser never sees them as options
        for command in (("ls", "--", url), ("get", "--", url, "data.csv"),
                        ("import", "--", url, "data.csv")):
            res = repo(*command, ok=False)
            assert res.exit_code == 1 and "refusing repository URL" in res.stderr, command
    assert not (repo.root / ".moma/repos").exists()


def test_a_committed_source_url_is_checked_too(repo: Moma, source: Source,
                                               tmp_path: Path) -> None:
    repo("import", str(source.bare), "data.csv")
    doc = _pointer(repo, "data.csv")
    doc["source"] = {**doc["source"], "url": "ext::sh -c id"}  # type: ignore[dict-item]
    (repo.root / "data.csv.moma").write_text(yamlio.dumps(doc))
    (repo.root / "data.csv").unlink()
    res = repo("pull", ok=False)
    assert "refusing repository URL" in res.stderr


def test_api_reads_another_repository(repo: Moma, source: Source,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import moma_cli.api as api

    monkeypatch.chdir(repo.root)
    assert api.read("data.csv", repo=str(source.bare)) == b"a,b\n1,2\n"
    with api.open("images/sub/dog.png", repo=f"file://{source.bare}") as fh:
        assert fh.read() == b"\x89PNG dog"


def _register_joblib(source: Source, name: str, obj: object, message: str) -> bytes:
    import joblib

    path = source.moma.root / f"{name}.joblib"
    joblib.dump(obj, path)
    source.moma("models:add", name, path.name, "--metric", "auc=0.8")
    source.publish(message)
    return path.read_bytes()


def test_models_of_another_repository(repo: Moma, source: Source,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import moma_cli.api as api
    from moma_cli.services.model_loading import ModelLoadError

    url = str(source.bare)
    first = _register_joblib(source, "net", {"weights": [1, 2, 3]}, "net v1")
    source.moma("models:tag", "net:1", "production")
    source.moma.git("push", "-q", "origin", "--tags")
    listed = json.loads(repo("models:list", "--repo", url, "--json").stdout)
    assert {m["name"]: m["latest"] for m in listed["models"]} == {"clf": 1, "net": 1}
    assert {m["name"]: m["stage"] for m in listed["models"]}["net"] == {"production": 1}
    assert "net" in repo("models:list", "--repo", url).stdout
    shown = json.loads(repo("models:show", "net:production", "--repo", url, "--json").stdout)
    assert (shown["name"], shown["version"], shown["metrics"]) == ("net", 1, {"auc": 0.8})
    repo("models:get", "net:production", "-o", "got.joblib", "--repo", url)
    assert (repo.root / "got.joblib").read_bytes() == first
    assert not (repo.root / "got.joblib.moma").exists()  # read, not tracked

    # A new version and a stage moved to it reach the cached clone on the next command.
    second = _register_joblib(source, "net", {"weights": [4]}, "net v2")
    source.moma("models:tag", "net:2", "production")
    source.moma.git("push", "-q", "origin", "--tags")
    listed = json.loads(repo("models:list", "--repo", url, "--json").stdout)
    assert {m["name"]: (m["latest"], m["stage"]) for m in listed["models"]}["net"] == \
        (2, {"production": 2})
    repo("models:get", "net:production", "-o", "got.joblib", "--repo", url, "--force")
    assert (repo.root / "got.joblib").read_bytes() == second
    source.moma.git("tag", "before-v2", "HEAD~1")
    source.moma.git("push", "-q", "origin", "before-v2")
    old = json.loads(repo("models:show", "net", "--repo", url, "--rev", "before-v2",
                          "--json").stdout)
    assert old["version"] == 1

    monkeypatch.chdir(repo.root)
    assert api.load_model("net:production", trust=True, repo=url) == {"weights": [4]}
    assert api.load_model("net", trust=True, repo=url, rev="before-v2") == \
        {"weights": [1, 2, 3]}
    assert api.model_path("net:1", repo=f"file://{source.bare}").read_bytes() == first
    with pytest.raises(ModelLoadError, match="unpickling a model runs code"):
        api.load_model("net:production", repo=url)
    res = repo("models:show", "nothere", "--repo", url, ok=False)
    assert res.exit_code == 1 and "hint: " in res.stderr


def test_data_and_models_through_an_s3_remote(repo: Moma, tmp_path: Path,
                                              moto_endpoint: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The source's remote is S3 (moto's server): ls, get, import, models:get --repo, the
    API, and a clone of the importer pulling the import through the source's remote."""
    import moma_cli.api as api
    from conftest import RemoteSpec, s3_bucket

    s3_bucket(moto_endpoint, monkeypatch, "crossrepo-s3")
    spec = RemoteSpec("s3", "s3://crossrepo-s3/moma", {"endpointurl": moto_endpoint,
                                                      "region": "us-east-1"})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    git(tmp_path, "init", "-q", "--bare", "s3source.git")
    src = Source(make_repo(tmp_path / "s3source"), tmp_path / "s3source.git", tmp_path)
    spec.add_to(src.moma)
    src.moma.git("remote", "add", "origin", str(src.bare))
    write(src.moma.root / "table.csv", "x,y\n1,2\n")
    write(src.moma.root / "shards/a.bin", b"\x00a")
    write(src.moma.root / "shards/b.bin", b"\x00b")
    src.moma("add", "table.csv", "shards")
    src.publish("data")
    model = _register_joblib(src, "ranker", {"k": 7}, "ranker v1")
    assert len(spec.oids()) == 5  # the table, the shards manifest and files, the model
    url = str(src.bare)

    listed = json.loads(repo("ls", url, "--json").stdout)
    assert [d["path"] for d in listed["data"]] == ["ranker.joblib", "shards", "table.csv"]
    repo("get", url, "shards", "-o", "got-shards")
    assert tree_bytes(repo.root / "got-shards") == tree_bytes(src.moma.root / "shards")
    repo("import", url, "table.csv")
    repo.git("commit", "-qm", "import table")
    repo("models:get", "ranker", "-o", "ranker.joblib", "--repo", url)
    assert (repo.root / "ranker.joblib").read_bytes() == model
    monkeypatch.chdir(repo.root)
    assert api.read("shards/b.bin", repo=url) == b"\x00b"
    assert api.load_model("ranker", trust=True, repo=url) == {"k": 7}

    clone = clone_of(repo, tmp_path, "consumer-clone")
    clone("pull")
    assert (clone.root / "table.csv").read_bytes() == b"x,y\n1,2\n"
