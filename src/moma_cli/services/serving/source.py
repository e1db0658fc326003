"""Where served models come from, and how one is loaded.

The server sees the registry through `ModelSource`: given a model name and an optional
selector (a version number or a stage), say which object that is right now. Loading goes
through services/model_loading.py: skops and ONNX need no unpickling; a joblib model is
unpickled because the user asked to serve their own registered model, and the bytes are
the cache object whose hash was just verified, never a path taken from a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from moma_cli.core.hashing import short_oid
from moma_cli.services.model_loading import ModelLoadError, load_estimator
from moma_cli.services.repo import Repo
from moma_cli.storage.cache import ObjectCache


@dataclass(frozen=True)
class ResolvedModel:
    """What a reference points at right now."""

    name: str
    version: int | None  # None: uncommitted
    stage: str | None
    oid: str
    algo: str  # hash algorithm of the oid
    kind: str  # file | dir
    metadata: dict[str, Any] = field(default_factory=dict)  # the pointer's `model:` section

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}" if self.version is not None else self.name


class ModelSource(Protocol):
    def names(self) -> list[str]:
        """Every registered model name."""

    def resolve(self, name: str, selector: str | None) -> ResolvedModel:
        """The model `name` at `selector` (None, a version number or a stage name)."""

    def refresh(self) -> None:
        """Bring the registry up to date before a reload re-resolves (a clone fetches)."""


class RegistrySource:
    """The registry (`services/registry/`) as a ModelSource, read at git revision `rev`
    (None: the checked-out branch and the work tree)."""

    def __init__(self, repo: Repo, rev: str | None = None) -> None:
        self.repo = repo
        self.rev = rev

    def names(self) -> list[str]:
        from moma_cli.services.registry import resolving

        return [v.name for v in resolving.list_models(self.repo, rev=self.rev).models]

    def resolve(self, name: str, selector: str | None) -> ResolvedModel:
        from moma_cli.services.registry import resolving

        mv = resolving.resolve(self.repo, name if selector is None else f"{name}:{selector}",
                               rev=self.rev)
        if selector is not None and not selector.isdigit():
            stage: str | None = selector
        else:
            stage = mv.stages[0] if mv.stages else None
        return ResolvedModel(mv.name, mv.version, stage, mv.oid, mv.pointer.algo,
                             mv.pointer.kind, mv.meta.to_mapping())

    def refresh(self) -> None:
        """Nothing: the work tree and its tags are the registry."""


@dataclass(frozen=True)
class LoadedModel:
    """A resolved model and its estimator, immutable: a swap replaces the whole object."""

    resolved: ResolvedModel
    estimator: Any
    feature_names: tuple[str, ...] | None
    n_features: int | None
    has_proba: bool

    def predict(self, x: Any) -> tuple[list[Any], list[Any] | None]:
        predictions = _plain(self.estimator.predict(x))
        probabilities = _plain(self.estimator.predict_proba(x)) if self.has_proba else None
        return predictions, probabilities


def _plain(values: Any) -> list[Any]:
    """An estimator's output as JSON-ready lists (numpy arrays, or plain sequences)."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def cache_for(repo: Repo, algo: str) -> ObjectCache:
    if algo == repo.cache.algo:
        return repo.cache
    return ObjectCache(repo.config.cache_dir, algo, repo.state)


def load(repo: Repo, resolved: ResolvedModel, trusted_types: Sequence[str] = (),
         trust_pickle: bool = True) -> LoadedModel:
    """Verify the cache object's hash, then load it by its recorded encoding; a pickle only
    when `trust_pickle` (a model of another repository needs --trust)."""
    what = f"model {resolved.label} (object {short_oid(resolved.oid)})"
    path = _checked_file(repo, resolved, what)
    estimator = load_estimator(path, resolved.metadata.get("encoding"), what,
                               trust_pickle=trust_pickle, trusted_types=trusted_types)
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(f"{what} is a {type(estimator).__name__}, which has no predict()")
    names = getattr(estimator, "feature_names_in_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    return LoadedModel(
        resolved,
        estimator,
        tuple(str(n) for n in names) if names is not None else None,
        int(n_features) if n_features is not None else None,
        callable(getattr(estimator, "predict_proba", None)),
    )


def verify(repo: Repo, resolved: ResolvedModel) -> LoadedModel:
    """`load`'s checks short of unpickling (a file, its cache object intact), for the
    process that only starts the workers: they load the model, this one keeps no copy."""
    _checked_file(repo, resolved, f"model {resolved.label} (object {short_oid(resolved.oid)})")
    return LoadedModel(resolved, None, None, None, False)


def _checked_file(repo: Repo, resolved: ResolvedModel, what: str) -> Path:
    if resolved.kind != "file":
        raise ModelLoadError(f"{what} is a directory; moma serve loads single-file models",
                             hint="register the model file itself")
    return cache_for(repo, resolved.algo).checked_path(resolved.oid)
