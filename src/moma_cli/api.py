"""moma's Python API: read tracked data at any git revision, and find, load and log
registered models, always verified against their hash.

Example:
    >>> import moma_cli.api as moma
    >>> model_bytes = moma.read("model.pkl", rev="v1")
    >>> with moma.open("data/train.csv", mode="r") as fh:
    ...     header = fh.readline()
    >>> moma.log_model(clf, "credit-risk", metrics={"accuracy": 0.85})
    >>> clf = moma.load_model("credit-risk:production", trust=True)

Paths are relative to the repository root; `rev` is any git revision (branch, tag, commit,
`HEAD~2`); None reads what the work tree's pointer says. `repo=URL` reads another
repository, as `moma get` does (`read("data.csv", repo="https://...")`). Objects missing
from the cache are fetched from `remote` (the default remote when None). Loading a model
unpickles it, which runs code chosen by whoever wrote the file: it only happens in
`load_model`, only with `trust=True`, and only after the bytes are re-hashed against the
registry's oid. `open` and `read` never unpickle anything.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from moma_cli.core.sources import is_local_path
from moma_cli.errors import NotARepoError
from moma_cli.services import access
from moma_cli.services.repo import Repo, open_repo


def open(  # noqa: A001 - mirrors builtins.open on purpose
    path: str,
    rev: str | None = None,
    remote: str | None = None,
    mode: str = "rb",
    *,
    repo: str | Path | None = None,
    encoding: str = "utf-8",
) -> IO[Any]:
    """Open a tracked file (or a file inside a tracked directory) for reading.

    `mode` is "rb" (default) or "r" (text, decoded with `encoding`). `repo` is a directory
    inside the repository (default: the current directory), or another repository's URL
    (a str: https://, ssh://, git@host:path, file://, or a path outside any moma work tree),
    read at `rev` (default: its default branch) from its remote, as `moma get` does.

    Example:
        >>> with moma_cli.api.open("model.pkl", rev="main~1") as fh:
        ...     data = fh.read()
    """
    if mode not in ("rb", "r"):
        raise ValueError(f"mode must be 'rb' or 'r', not {mode!r}")
    path_of_object = _object_path(path, rev, remote, repo)
    if mode == "r":
        return builtins.open(path_of_object, encoding=encoding)
    return builtins.open(path_of_object, "rb")


def read(
    path: str, rev: str | None = None, remote: str | None = None, *,
    repo: str | Path | None = None,
) -> bytes:
    """The verified bytes of a tracked file at `rev`.

    Example:
        >>> old = moma_cli.api.read("data/labels.csv", rev="v1")
        >>> new = moma_cli.api.read("data/labels.csv")
    """
    return _object_path(path, rev, remote, repo).read_bytes()


def _object_path(path: str, rev: str | None, remote: str | None,
                 repo: str | Path | None) -> Path:
    url = _source_url(repo)
    if url is not None:
        from moma_cli.services.crossrepo import getting

        return getting.object_of(url, path, rev, remote=remote)
    context = _context(repo, None)
    located = access.locate(context, path, rev, remote=remote)
    return access.object_path(context, located.oid, remote=remote)


def _source_url(repo: str | Path | None) -> str | None:
    """`repo` as another repository's URL: a string that is a URL, or a path outside any
    moma work tree (a bare repository, say); None for a directory of a moma repository."""
    if not isinstance(repo, str):
        return None
    if not is_local_path(repo):
        return repo
    try:
        open_repo(Path(repo))
    except NotARepoError:
        return repo
    return None


def model_path(ref: str, *, rev: str | None = None, repo: str | Path | None = None,
               cwd: Path | None = None) -> Path:
    """A read-only path to the verified bytes of `ref` (e.g. 'credit-risk:4') in the
    cache: of this repository's registry at `rev`, or of another repository's (`repo`, as
    in `open`), whose remote supplies the bytes."""
    from moma_cli.services.registry import model_files

    url = _source_url(repo)
    if url is not None:
        from moma_cli.services.crossrepo import registry

        return registry.model_file(url, ref, rev=rev, cwd=cwd)[1]
    return model_files.model_file(_context(repo, cwd), ref, rev)[1]


def load_model(ref: str, trust: bool = False, *, trusted_types: Sequence[str] = (),
               rev: str | None = None, repo: str | Path | None = None,
               cwd: Path | None = None) -> Any:
    """Load a registered model by its format. skops (with `trusted_types` for the types
    skops does not trust by itself) and ONNX models run no code from the file; a joblib or
    pickle model needs `trust=True`, because unpickling executes code.

    `repo` reads another repository's registry (a URL or a path outside any moma work
    tree, as in `open`) at `rev` (default: its default branch), the bytes fetched from its
    default remote and verified; so does `moma models:get REF --repo URL`.

    Example:
        >>> clf = moma_cli.api.load_model("credit-risk:production",
        ...                               repo="https://github.com/acme/registry")
    """
    url = _source_url(repo)
    if url is not None:
        from moma_cli.services.crossrepo import registry

        return registry.load(url, ref, rev=rev, trust_pickle=trust,
                             trusted_types=trusted_types, cwd=cwd)
    from moma_cli.services.registry import model_files

    return model_files.load(_context(repo, cwd), ref, rev=rev, trust_pickle=trust,
                            trusted_types=trusted_types)


def _context(repo: str | Path | None, cwd: Path | None) -> Repo:
    """This repository: the directory `repo` names (inside it), else `cwd`'s."""
    return open_repo(Path(repo) if repo is not None else cwd)


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

    from moma_cli.atomic import atomic_open
    from moma_cli.core import refs
    from moma_cli.services.registry import registering

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
        return registering.add(repo, name, str(target), metrics=metrics or {}, params=recorded,
                          description=description,
                          extra_model={"algo": type(obj).__name__})
