"""moma's Python API for models: find, load and log registered models from code.

    from moma_cli import api
    api.log_model(clf, "credit-risk", metrics={"accuracy": 0.85})
    clf = api.load_model("credit-risk:production", trust=True)

Loading a model unpickles it, which runs code chosen by whoever wrote the file; it only
happens in `load_model`, only with `trust=True`, and only after the bytes are re-hashed
against the registry's oid.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from moma_cli.errors import HashMismatchError, MomaError


def model_path(ref: str, *, cwd: Path | None = None) -> Path:
    """A read-only path to the bytes of `ref` (e.g. 'credit-risk:4') in the cache."""
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    return models.model_file(open_repo(cwd), ref)[1]


def load_model(ref: str, trust: bool = False, *, cwd: Path | None = None) -> Any:
    """joblib-load a registered model. `trust=True` is required: unpickling executes code."""
    if not trust:
        raise MomaError(f"refusing to load {ref}: unpickling a model runs code from its file",
                        hint="pass trust=True if you trust whoever registered it")
    import joblib

    from moma_cli.core.hashing import hash_bytes
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo

    version, path = models.model_file(open_repo(cwd), ref)
    raw = path.read_bytes()
    if hash_bytes(raw, version.pointer.algo) != version.oid:
        raise HashMismatchError(f"{path}: content does not match {version.name} "
                                f"{version.label} ({version.model_id})",
                                hint="run 'moma fetch' to download a good copy")
    return joblib.load(io.BytesIO(raw))


def log_model(
    obj: Any,
    name: str,
    *,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    path: str | None = None,
    description: str | None = None,
    cwd: Path | None = None,
) -> Any:
    """Dump `obj` with joblib to `path` (default NAME.joblib) and register it as `name`,
    recording the estimator's class and `get_params()`. Returns the ModelVersion;
    commit the pointer to make it a version."""
    import joblib

    from moma_cli.core import refs
    from moma_cli.services import models
    from moma_cli.services.repo import open_repo
    from moma_cli.storage.atomic import atomic_open

    refs.check_name(name)
    repo = open_repo(cwd)
    target = repo.root / (path or f"{name}.joblib")
    recorded = dict(obj.get_params(deep=False)) if hasattr(obj, "get_params") else {}
    recorded.update(params or {})
    with repo.lock():
        target.parent.mkdir(parents=True, exist_ok=True)
        # A checked-out model may be a hard link into the cache: write a new file and
        # rename it over, never truncate the shared inode.
        with atomic_open(target) as fh:
            joblib.dump(obj, fh)
        return models.add(repo, name, str(target), metrics=metrics or {}, params=recorded,
                          description=description,
                          extra_model={"algo": type(obj).__name__})
