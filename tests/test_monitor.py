"""Live monitoring: a real `moma serve` session logs its predictions, `moma monitor` measures
input drift against the profile of the training inputs, and `moma check --live` gates on
it."""

from __future__ import annotations

import csv
import http.client
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from conftest import Moma, write
from moma_cli.core import drift
from moma_cli.services import serve
from moma_cli.services.repo import open_repo
from moma_cli.services.serving.app import create_app
from realtools import free_port, uvicorn_running

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X, Y = load_iris(return_X_y=True)
GATE = "models:\n  iris:\n    checks:\n      - 'drift.psi.max < 0.2'\n      - 'live.rows >= 50'\n"


@pytest.fixture
def registered(repo: Moma) -> Moma:
    with open(repo.root / "train.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FEATURES)
        writer.writerows(X.tolist())
    joblib.dump(LogisticRegression(max_iter=300).fit(X, Y), repo.root / "iris.joblib")
    repo("models:add", "iris", "iris.joblib", "--reference", "train.csv")
    with open(repo.root / ".moma.yaml", "a") as fh:
        fh.write(GATE)
    repo.git("add", ".moma.yaml")
    repo.git("commit", "-qm", "iris with its reference profile")
    return repo


def serve_and_predict(repo: Moma, log: Path, batches: list[np.ndarray]) -> None:
    """A real uvicorn server logging every request, sent `batches` of rows."""
    port = free_port()
    server, _ = serve.prepare(open_repo(repo.root), ["iris"], port=port, poll=0,
                              log_predictions=log, sample_rate=1.0)
    with uvicorn_running(create_app(server), port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for rows in batches:
            conn.request("POST", "/v1/models/iris/predict", json.dumps({"inputs": rows.tolist()}),
                         {"Content-Type": "application/json"})
            assert conn.getresponse().read()


def test_reference_profile_is_recorded_at_registration(registered: Moma) -> None:
    pointer = (registered.root / "iris.joblib.moma").read_text()
    assert "reference:" in pointer and "petal_length" in pointer
    res = registered("monitor", "iris", "--log", "missing.jsonl", ok=False)
    assert res.exit_code == 1 and "missing.jsonl: no such prediction log" in res.stderr


def test_drifted_inputs_fail_the_live_gate_and_stable_ones_pass(registered: Moma) -> None:
    stable, drifted = registered.root / "stable.jsonl", registered.root / "drifted.jsonl"
    rng = np.random.default_rng(0)
    serve_and_predict(registered, stable, [X[i::3] for i in range(3)])
    shifted = X + np.array([0.0, 0.0, 2.5, 1.0]) + rng.normal(0, 0.05, X.shape)
    serve_and_predict(registered, drifted, [shifted[i::3] for i in range(3)])

    out = json.loads(registered("monitor", "iris", "--log", str(drifted), "--json").stdout)
    assert out["live"]["rows"] == len(X) and out["version"] == 1
    assert out["drift"]["psi"]["petal_length"] > 0.25 > out["drift"]["psi"]["sepal_length"]
    assert out["drift"]["ks"]["petal_length"] > 0.5
    table = registered("monitor", "iris", "--log", str(drifted)).stdout
    assert "petal_length" in table and "large" in table

    assert json.loads(registered("check", "iris", "--live", str(stable), "--json").stdout)["ok"]
    res = registered("check", "iris", "--live", str(drifted), ok=False)
    assert res.exit_code == 1 and "drift.psi.max < 0.2" in res.stdout
    assert "quality gate failed for iris" in res.stderr


def test_only_this_versions_lines_in_the_window_count(registered: Moma, tmp_path: Path) -> None:
    log = tmp_path / "preds.jsonl"
    serve_and_predict(registered, log, [X[:40]])
    mine = json.loads(log.read_text().splitlines()[0])
    old = dict(mine, ts="2020-01-01T00:00:00.000Z")
    other = dict(mine, oid="0" * 64)
    with open(log, "a") as fh:
        fh.write(json.dumps(old) + "\n" + json.dumps(other) + "\n" + '{"cut short\n' + "[1]\n")
    out = json.loads(registered("monitor", "iris:1", "--log", str(log), "--json").stdout)
    assert out["live"]["rows"] == 41 and out["skipped_lines"] == 2
    windowed = json.loads(registered("monitor", "iris:1", "--log", str(log), "--window", "1h",
                                     "--json", "-o", str(tmp_path / "live.json")).stdout)
    assert windowed["live"]["rows"] == 40
    assert json.loads((tmp_path / "live.json").read_text())["live"]["rows"] == 40
    res = registered("monitor", "iris", "--log", str(log), "--window", "soon", ok=False)
    assert res.exit_code == 2 and "not a duration" in res.stderr


def test_a_model_without_a_reference_says_so_and_a_hostile_one_is_named(
        registered: Moma, tmp_path: Path) -> None:
    log = tmp_path / "preds.jsonl"
    serve_and_predict(registered, log, [X[:10]])
    pointer = registered.root / "iris.joblib.moma"
    doc = yaml.safe_load(pointer.read_text())
    del doc["model"]["reference"]
    write(pointer, yaml.safe_dump(doc, sort_keys=False))
    res = registered("monitor", "iris", "--log", str(log))
    assert "has no reference profile" in res.stderr and "10 predicted rows" in res.stdout
    doc["model"]["reference"] = {"features": {"x": {"kind": "numeric", "shares": [1],
                                                    "edges": [3, 1]}}}
    write(pointer, yaml.safe_dump(doc, sort_keys=False))
    res = registered("monitor", "iris", "--log", str(log), ok=False)
    assert res.exit_code == 1
    assert "iris.joblib.moma: model.reference" in res.stderr and "Traceback" not in res.stderr


def test_psi_and_ks_are_zero_for_the_same_distribution_and_grow_with_a_shift() -> None:
    rng = np.random.default_rng(1)
    reference = drift.profile(rng.normal(0, 1, 5000).tolist())
    same, moved = drift.LiveBins(reference), drift.LiveBins(reference)
    for a, b in zip(rng.normal(0, 1, 5000), rng.normal(1, 1, 5000), strict=True):
        same.add(a)
        moved.add(b)
    assert same.drift().psi < 0.02 and (same.drift().ks or 0) < 0.03
    assert moved.drift().psi > 0.5 and (moved.drift().ks or 0) > 0.3
    colours = drift.profile(["red"] * 50 + ["blue"] * 50)
    live = drift.LiveBins(colours)
    for value in ["red"] * 90 + ["blue"] * 10:
        live.add(value)
    assert live.drift().psi > 0.25 and live.drift().ks is None
    assert drift.from_json(reference.to_json(), "x").edges == reference.edges
