"""What the serving suites share: a registry of real fitted estimators, an HTTP client of
the running server, and a reader of its Prometheus metrics (the fixtures that use them,
`registry` and `start`, are in conftest.py)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_iris

from conftest import Moma
from moma_cli.services.registry import resolving
from moma_cli.services.repo import Repo, open_repo

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X, Y = load_iris(return_X_y=True)


@dataclass
class Registry:
    """Registers real joblib-dumped estimators with `moma models:add` and moves stages with
    `moma models:tag`, remembering each version's estimator to compare predictions."""

    moma: Moma
    estimators: dict[tuple[str, int], Any] = field(default_factory=dict)

    @property
    def repo(self) -> Repo:
        return open_repo(self.moma.root)

    def register(self, name: str, estimator: Any) -> int:
        rel = f"models/{name}.joblib"
        path = self.moma.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        joblib.dump(estimator, path)
        self.moma("models:add", name, rel)
        self.moma.git("commit", "-qm", f"{name}: new version")
        version = resolving.resolve(self.repo, name).version
        assert version is not None
        self.estimators[(name, version)] = estimator
        return version

    def tag(self, ref: str, stage: str) -> None:
        self.moma("models:tag", ref, stage)

    def oid(self, ref: str) -> str:
        return resolving.resolve(self.repo, ref).oid


def fitted(estimator: Any, names: bool = False) -> Any:
    estimator.fit(X, Y)
    if names:
        # What fitting on a DataFrame records; pandas is not a test dependency.
        estimator.feature_names_in_ = np.array(FEATURES, dtype=object)
    return estimator


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        self.conn.request(method, path, body=data, headers=(
            {"Content-Type": "application/json"} if data else {}) | (headers or {}))
        resp = self.conn.getresponse()
        text = resp.read().decode()
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(text)
        return resp.status, text

    def predict(self, target: str, inputs: Any) -> tuple[int, Any]:
        return self.request("POST", f"/v1/models/{target}/predict", {"inputs": inputs})


@dataclass
class Running:
    server: Any
    port: int

    def client(self) -> Client:
        return Client(self.port)


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
