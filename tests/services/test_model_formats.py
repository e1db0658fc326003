"""Safe model formats: real skops and ONNX (skl2onnx, onnxruntime) models, registered,
loaded through `api.load_model` and served by a real uvicorn server, running no code from
their files; a pickle still needs trust."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io as sio
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

import moma_cli.api as api
from conftest import Moma
from moma_cli.errors import MomaError
from moma_cli.services import serve
from moma_cli.services.repo import open_repo
from moma_cli.services.serving.app import create_app
from realtools import free_port, uvicorn_running

X, Y = load_iris(return_X_y=True)
TREE_TYPE = "sklearn.tree._tree.Tree"  # skops 0.16 does not trust it by itself


@pytest.fixture
def tree() -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, Y)


@pytest.fixture
def formats(repo: Moma, tree: DecisionTreeClassifier) -> Moma:
    sio.dump(tree, repo.root / "iris.skops")
    onnx = to_onnx(tree, X[:1].astype(np.float32), options={id(tree): {"zipmap": False}})
    (repo.root / "iris.onnx").write_bytes(onnx.SerializeToString())
    repo("models:add", "iris-skops", "iris.skops")
    repo("models:add", "iris-onnx", "iris.onnx")
    repo.git("commit", "-qm", "safe formats")
    return repo


def show(repo: Moma, ref: str) -> dict[str, Any]:
    return dict(json.loads(repo("models:show", ref, "--json").stdout))


def test_formats_and_signatures_are_read_without_running_the_model(formats: Moma) -> None:
    skops_version = show(formats, "iris-skops")
    assert (skops_version["encoding"], skops_version["algo"]) == ("skops",
                                                                   "DecisionTreeClassifier")
    assert skops_version["signature"] == {"n_features": 4}
    onnx_version = show(formats, "iris-onnx")
    assert onnx_version["encoding"] == "onnx"
    assert onnx_version["signature"] == {"inputs": [{"name": "X", "dtype": "float32",
                                                     "shape": [None, 4]}]}
    assert "Signature: X float32 [?, 4]" in formats("models:show", "iris-onnx").stdout


def test_skops_loads_only_the_types_it_trusts_or_the_caller_lists(
        formats: Moma, tree: DecisionTreeClassifier) -> None:
    with pytest.raises(MomaError, match=f"types skops does not trust: {TREE_TYPE}") as info:
        api.load_model("iris-skops", cwd=formats.root)
    assert info.value.hint == f"if you trust them, list them: --trust-type {TREE_TYPE}"
    loaded = api.load_model("iris-skops", trusted_types=[TREE_TYPE], cwd=formats.root)
    assert (loaded.predict(X) == tree.predict(X)).all()


def test_onnx_loads_without_trust_and_predicts_like_the_estimator(
        formats: Moma, tree: DecisionTreeClassifier) -> None:
    loaded = api.load_model("iris-onnx", cwd=formats.root)
    assert loaded.n_features_in_ == 4
    assert (loaded.predict(X) == tree.predict(X)).all()
    assert np.allclose(loaded.predict_proba(X), tree.predict_proba(X), atol=1e-5)


def test_a_pickle_still_needs_trust(repo: Moma, tree: DecisionTreeClassifier) -> None:
    joblib.dump(tree, repo.root / "iris.joblib")
    repo("models:add", "iris", "iris.joblib")
    with pytest.raises(MomaError, match="unpickling a model runs code") as info:
        api.load_model("iris", cwd=repo.root)
    assert "register it as skops or ONNX" in (info.value.hint or "")


@pytest.fixture
def served(formats: Moma) -> Iterator[Any]:
    """served(*refs, **options) -> (port, what was not served), a real uvicorn server."""
    with contextlib.ExitStack() as running:
        def _serve(*refs: str, **options: Any) -> tuple[int, list[str]]:
            port = free_port()
            server, report = serve.prepare(open_repo(formats.root), refs, port=port, poll=0,
                                           **options)
            running.enter_context(uvicorn_running(create_app(server), port))
            return port, report.errors

        yield _serve


def predict(port: int, target: str, rows: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", f"/v1/models/{target}/predict", json.dumps({"inputs": rows}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def test_serving_onnx_and_skops_enforces_the_signature(
        served: Any, tree: DecisionTreeClassifier) -> None:
    port, errors = served("iris-onnx", "iris-skops", trusted_types=[TREE_TYPE])
    assert errors == []
    for target in ("iris-onnx", "iris-skops"):
        status, body = predict(port, target, X[::30].tolist())
        assert status == 200, body
        assert body["predictions"] == tree.predict(X[::30]).tolist()
        assert np.allclose(body["probabilities"], tree.predict_proba(X[::30]), atol=1e-5)
    status, body = predict(port, "iris-onnx", [[1, 2, 3]])
    assert status == 422 and "row 0 has 3 features; model iris-onnx:1 expects 4" in str(body)


def test_serving_a_skops_model_with_untrusted_types_is_refused_by_name(formats: Moma) -> None:
    res = formats.proc("serve", "iris-skops", "--port", "0", ok=False)
    assert res.exit_code == 1
    assert f"types skops does not trust: {TREE_TYPE}" in res.stderr
    assert f"--trust-type {TREE_TYPE}" in res.stderr
    assert "Serving" not in res.stdout
