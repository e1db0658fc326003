"""Turning a verified model file into something with `predict()`: the one loader behind
`moma serve` and `api.load_model`.

Formats, safest first:
- skops (`.skops`, scikit-learn's secure format): loaded with skops, which builds only the
  types it trusts; any other type in the file is refused by name unless the caller lists
  it (`--trust-type`, `trusted_types=`). Nothing is unpickled.
- ONNX: run by onnxruntime; a graph, not code.
- joblib and pickle: unpickling runs code from the file, so the caller must have asked for
  it (serving a model registered here, `load_model(trust=True)`).
skops and onnxruntime are optional extras (`pip install moma-cli[skops]`, `[onnx]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moma_cli.errors import MomaError

# What joblib.load reads: its own format, plain pickles, and its compressed variants.
PICKLED = ("joblib", "pickle", "gzip", "bz2", "xz", "lz4")
LOADABLE = PICKLED + ("skops", "onnx")
_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64",
                "tensor(int64)": "int64", "tensor(int32)": "int32"}


class ModelLoadError(MomaError):
    pass


def load_estimator(path: Path, encoding: str | None, what: str, *, trust_pickle: bool,
                   trusted_types: Sequence[str] = ()) -> Any:
    """The estimator in the file at `path` (already hash-verified), by its recorded
    `encoding` (None: recorded before moma knew it; read as joblib)."""
    encoding = encoding or "joblib"
    if encoding == "skops":
        return _skops(path, what, trusted_types)
    if encoding == "onnx":
        return OnnxEstimator(_onnx_session(path, what))
    if encoding not in PICKLED:
        raise ModelLoadError(f"{what} is encoded as {encoding}; moma loads skops, ONNX and "
                             "joblib models", hint="save the estimator with skops.io.dump, "
                             "skl2onnx or joblib.dump and register that file")
    if not trust_pickle:
        raise ModelLoadError(f"refusing to load {what}: unpickling a model runs code from "
                             "its file", hint="pass trust=True if you trust whoever "
                             "registered it, or register it as skops or ONNX")
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the model's problem
        raise _failed(what, exc) from None


def _skops(path: Path, what: str, trusted_types: Sequence[str]) -> Any:
    sio = _optional("skops.io", "skops", what)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a damaged or hostile archive
        raise _failed(what, exc) from None
    refused = sorted(set(untrusted) - set(trusted_types))
    if refused:
        raise ModelLoadError(
            f"{what} holds types skops does not trust: {', '.join(refused)}",
            hint="if you trust them, list them: " + " ".join(f"--trust-type {t}"
                                                               for t in refused))
    try:
        return sio.load(path, trusted=list(untrusted))
    except Exception as exc:  # noqa: BLE001
        raise _failed(what, exc) from None


def _onnx_session(path: Path, what: str) -> Any:
    ort = _optional("onnxruntime", "onnx", what)
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - not a valid graph
        raise _failed(what, exc) from None


def onnx_signature(path: Path) -> dict[str, Any] | None:
    """The inputs an ONNX graph declares (name, dtype, shape), or None when onnxruntime is
    not installed or the file is no valid graph. Reading a graph runs none of it."""
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - a signature is a nicety, never a reason to fail
        return None
    return {"inputs": [{"name": i.name, "dtype": _ONNX_DTYPES.get(i.type, i.type),
                        "shape": [d if isinstance(d, int) else None for d in i.shape]}
                       for i in session.get_inputs()]}


class OnnxEstimator:
    """An ONNX classifier or regressor with scikit-learn's `predict`/`predict_proba` and
    `n_features_in_`, so the server validates and logs its inputs like any other model.
    One tensor input of rows; the first output is the prediction, a second 2-D float output
    (skl2onnx with `zipmap=False`) the class probabilities."""

    def __init__(self, session: Any) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 2:
            raise ModelLoadError("the ONNX graph must take one 2-D input (rows of features); "
                                 f"it takes {[(i.name, i.shape) for i in inputs]}")
        self.session, self.input = session, inputs[0]
        outputs = session.get_outputs()
        self.label = outputs[0].name
        self.proba = next((o.name for o in outputs[1:2] if o.type == "tensor(float)"
                           and len(o.shape) == 2), None)
        width = self.input.shape[1]
        self.n_features_in_ = width if isinstance(width, int) else None
        if self.proba is not None:
            self.predict_proba = self._predict_proba

    def _rows(self, x: Any) -> dict[str, Any]:
        import numpy as np

        return {self.input.name: np.asarray(x, dtype=_ONNX_DTYPES.get(self.input.type,
                                                                        "float32"))}

    def predict(self, x: Any) -> Any:
        return self.session.run([self.label], self._rows(x))[0]

    def _predict_proba(self, x: Any) -> Any:
        return self.session.run([self.proba], self._rows(x))[0]


def _optional(module: str, extra: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelLoadError(f"{what} needs the '{extra}' extra of moma-cli",
                             hint=f"pip install 'moma-cli[{extra}]'") from None


def _failed(what: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(f"{what} could not be loaded: {type(exc).__name__}: {exc}",
                          hint="check that the model's libraries are installed here")
