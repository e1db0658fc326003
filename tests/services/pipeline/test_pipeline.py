"""A real three-stage pipeline (prepare -> train -> evaluate) with an sklearn model."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import Moma, make_repo, write
from helpers import with_sections
from moma_cli import yamlio
from moma_cli.core import pointer

PY = sys.executable

PREPARE = """
import csv, os
rows = list(csv.reader(open("data/raw.csv")))
os.makedirs("data/prepared", exist_ok=True)
with open("data/prepared/train.csv", "w") as fh:
    fh.writelines(",".join(r) + "\\n" for i, r in enumerate(rows) if i % 4)
with open("data/prepared/test.csv", "w") as fh:
    fh.writelines(",".join(r) + "\\n" for i, r in enumerate(rows) if not i % 4)
"""
TRAIN = """
import joblib, numpy as np, yaml
from sklearn.tree import DecisionTreeClassifier
p = yaml.safe_load(open("params.yaml"))["train"]
d = np.loadtxt("data/prepared/train.csv", delimiter=",")
model = DecisionTreeClassifier(max_depth=p["max_depth"], random_state=p["seed"])
model.fit(d[:, :-1], d[:, -1])
joblib.dump(model, "model.pkl")
"""
EVALUATE = """
import json, joblib, numpy as np
d = np.loadtxt("data/prepared/test.csv", delimiter=",")
model = joblib.load("model.pkl")
acc = float((model.predict(d[:, :-1]) == d[:, -1]).mean())
json.dump({"accuracy": round(acc, 6), "n_test": len(d)}, open("metrics.json", "w"))
"""


def _raw_data() -> str:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=240, n_features=6, n_informative=4, flip_y=0.1,
                               random_state=7)
    return "".join(",".join(f"{v:.5f}" for v in row) + f",{int(label)}\n"
                   for row, label in zip(x, y, strict=True))


def _lock(repo: Moma) -> dict:
    return yamlio.loads((repo.root / "moma.lock").read_text())["stages"]


def _ptr(repo: Moma, rel: str) -> pointer.Pointer:
    return pointer.parse((repo.root / f"{rel}.moma").read_text(), f"{rel}.moma")


_TEMPLATE: dict[str, Path] = {}


@pytest.fixture
def pipeline(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Moma:
    """A committed, tagged (v1) run of the pipeline; built once per worker, then copied:
    each run starts three Python processes that import sklearn."""
    if "repo" not in _TEMPLATE:
        _TEMPLATE["repo"] = _build(tmp_path_factory.mktemp("template") / "repo")
    shutil.copytree(_TEMPLATE["repo"], tmp_path / "repo", symlinks=True)
    return Moma(tmp_path / "repo")


def _build(root: Path) -> Path:
    repo = make_repo(root)
    write(repo.root / "data/raw.csv", _raw_data())
    write(repo.root / "prepare.py", PREPARE)
    write(repo.root / "train.py", TRAIN)
    write(repo.root / "evaluate.py", EVALUATE)
    write(repo.root / "params.yaml", "train:\n  max_depth: 2\n  seed: 42\nunused: 1\n")
    repo("add", "data/raw.csv")
    repo.git("add", "prepare.py", "train.py", "evaluate.py", "params.yaml")
    repo.git("commit", "-qm", "code and raw data")
    repo("run", "-n", "prepare", "-d", "data/raw.csv", "-d", "prepare.py",
         "-o", "data/prepared", "--", PY, "prepare.py")
    repo("run", "-n", "train", "-d", "data/prepared/train.csv", "-d", "train.py",
         "-p", "params.yaml:train.max_depth,train.seed", "-o", "model.pkl", "--", PY, "train.py")
    repo("run", "-n", "evaluate", "-d", "data/prepared", "-d", "model.pkl", "-d", "evaluate.py",
         "-M", "metrics.json", "--", f"{PY} evaluate.py")
    repo.git("commit", "-qm", "pipeline v1")
    repo.git("tag", "v1")
    return root


def test_pipeline_records_stages_lock_and_caches_outputs(pipeline: Moma) -> None:
    stages = yamlio.loads((pipeline.root / ".moma.yaml").read_text())["stages"]
    assert list(stages) == ["prepare", "train", "evaluate"]
    assert stages["train"]["params"] == ["params.yaml:train.max_depth,train.seed"]
    lock = _lock(pipeline)
    raw = _ptr(pipeline, "data/raw.csv")
    assert lock["prepare"]["deps"][0] == {"path": "data/raw.csv", "oid": raw.oid}
    assert lock["train"]["params"] == {"params.yaml": {"train.max_depth": 2, "train.seed": 42}}
    assert lock["train"]["outs"][0]["oid"] == _ptr(pipeline, "model.pkl").oid
    assert _ptr(pipeline, "data/prepared").kind == "dir"
    assert 0.5 < lock["evaluate"]["metrics"]["metrics.json"]["accuracy"] <= 1.0
    assert lock["train"]["code"] == pipeline.git("rev-parse", "HEAD~1").strip()
    assert set(lock["train"]["env"]) == {"python", "platform", "packages"}
    assert "/model.pkl" in (pipeline.root / ".gitignore").read_text()
    assert pipeline.git("status", "--porcelain") == ""  # everything moma wrote was staged

    res = pipeline("repro")
    assert "Pipeline is up to date." in res.stdout
    assert (pipeline.root / "moma.lock").read_text() == yamlio.dumps(
        {"schema": 1, "stages": lock})


def test_param_change_reruns_only_downstream_and_verify_reproduces_old_model(
        pipeline: Moma) -> None:
    v1_model = _lock(pipeline)["train"]["outs"][0]["oid"]
    write(pipeline.root / "params.yaml", "train:\n  max_depth: 5\n  seed: 42\nunused: 1\n")
    dry = pipeline("repro", "--dry", "--json")
    plan = {s["name"]: s for s in json.loads(dry.stdout)["stages"]}
    assert plan["prepare"]["action"] == "unchanged"
    assert plan["train"]["reasons"] == ["param train.max_depth changed (2 -> 5)"]
    assert plan["evaluate"]["reasons"] == ["upstream stage 'train' would run"]
    assert _lock(pipeline)["train"]["outs"][0]["oid"] == v1_model  # dry run changed nothing

    res = pipeline("repro", "--json")
    actions = {s["name"]: s["action"] for s in json.loads(res.stdout)["stages"]}
    assert actions == {"prepare": "unchanged", "train": "ran", "evaluate": "ran"}
    v2_model = _lock(pipeline)["train"]["outs"][0]["oid"]
    assert v2_model != v1_model
    pipeline.git("commit", "-qam", "deeper tree")

    changed = pipeline("params", "diff", "v1", "HEAD", "--json")
    assert json.loads(changed.stdout) == [
        {"file": "params.yaml", "key": "train.max_depth", "old": 2, "new": 5}]
    shown = pipeline("metrics", "show", "v1", "--json")
    assert [m["key"] for m in json.loads(shown.stdout)] == ["accuracy", "n_test"]
    metrics_diff = json.loads(pipeline("metrics", "diff", "v1", "HEAD", "--all",
                                       "--json").stdout)
    assert {m["key"]: m["change"] for m in metrics_diff}["n_test"] == 0
    table = pipeline("metrics", "diff", "v1", "HEAD", "--all").stdout
    assert "accuracy" in table and "metrics.json" in table

    diff = json.loads(pipeline("diff", "v1", "HEAD", "--json").stdout)
    assert [(e["path"], e["change"]) for e in diff["entries"]] == [("model.pkl", "modified")]

    pipeline.git("checkout", "-q", "v1")
    pipeline("checkout")
    assert _ptr(pipeline, "model.pkl").oid == v1_model
    verified = pipeline("repro", "--verify", "train", "--json")
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert report["outputs"][0]["actual"] == v1_model
    assert pipeline("repro", "--dry").stdout.count("Unchanged") == 3


def test_lineage_names_exact_data_hash_and_commits(pipeline: Moma) -> None:
    raw = _ptr(pipeline, "data/raw.csv")
    raw_commit = pipeline.git("rev-parse", "v1~1").strip()
    assert "not tracked by moma" in pipeline("lineage", "metrics.json", ok=False).stderr
    report = json.loads(pipeline("lineage", "model.pkl", "--json").stdout)
    assert report["oid"] == _ptr(pipeline, "model.pkl").oid
    assert [s["name"] for s in report["stages"]] == ["train", "prepare"]
    upstream = {n["path"]: n for n in report["upstream"]}
    assert upstream["data/raw.csv"]["oid"] == raw.oid
    assert upstream["data/raw.csv"]["commit"] == raw_commit
    assert upstream["data/raw.csv"]["kind"] == "data"
    assert upstream["data/prepared/train.csv"]["stage"] == "prepare"
    assert upstream["train.py"]["kind"] == "file"
    assert report["stages"][0]["params"] == {"train.max_depth": 2, "train.seed": 42}
    text = pipeline("lineage", "model.pkl").stdout
    assert raw.oid[:12] in text and "Stage: prepare" in text


def test_model_output_gets_lineage_section(pipeline: Moma) -> None:
    ptr = _ptr(pipeline, "model.pkl")
    model = with_sections(ptr, model={"name": "tree", "encoding": "joblib"})
    (pipeline.root / "model.pkl.moma").write_text(pointer.dumps(model))
    pipeline("repro", "--force", "train")
    written = _ptr(pipeline, "model.pkl")
    assert written.model is not None and written.lineage is not None
    assert written.model.to_mapping() == {"name": "tree", "encoding": "joblib"}
    lineage = written.lineage
    assert lineage.params == {"train.max_depth": 2, "train.seed": 42}
    assert list(lineage.deps) == _lock(pipeline)["train"]["deps"]
    assert lineage.code == pipeline.git("rev-parse", "HEAD").strip()
    assert written.oid == ptr.oid  # same seed, same data: the same bytes
    staged = pipeline.git("show", ":model.pkl.moma")
    assert "lineage:" in staged and "name: tree" in staged


def test_registered_run_output_shows_lineage(pipeline: Moma) -> None:
    pipeline("models:add", "tree", "model.pkl")  # registered after the run that made it
    lock = _lock(pipeline)["train"]
    shown = json.loads(pipeline("models:show", "tree", "--json").stdout)["lineage"]
    assert shown["deps"] == lock["deps"] and shown["code"] == lock["code"]
    assert shown["params"] == {"train.max_depth": 2, "train.seed": 42}
    assert shown["env"] == lock["env"]
    text = pipeline("models:show", "tree").stdout
    train_csv = next(d["oid"] for d in lock["deps"] if d["path"] == "data/prepared/train.csv")
    assert f"Data: data/prepared/train.csv {train_csv[:8]}\n" in text
    assert "Params: train.max_depth=2;train.seed=42\n" in text and "Environment: python" in text
    pipeline.git("commit", "-qm", "register tree")
    write(pipeline.root / "params.yaml", "train:\n  max_depth: 3\n  seed: 42\nunused: 1\n")
    pipeline("repro", "train")  # a registered output gets its new lineage from the run
    diff = json.loads(pipeline("models:diff", "tree:1", "tree", "--json").stdout)
    rows = {r["key"]: r for r in diff["rows"] if r["section"] == "lineage"}
    assert (rows["params.train.max_depth"]["a"], rows["params.train.max_depth"]["b"]) == (2, 3)
    assert "Params: train.max_depth=3;train.seed=42" in pipeline("models:show", "tree").stdout
