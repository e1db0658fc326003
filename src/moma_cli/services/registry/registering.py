"""Registering a model: `models:add` and `api.log_model` write the pointer's `model:`
section (metrics bound to the bytes they were measured on) and stage it."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from moma_cli.core import metrics as metrics_mod
from moma_cli.core import modelmeta, refs
from moma_cli.core import pointer as pointer_mod
from moma_cli.core.lineage import Lineage
from moma_cli.core.modelsection import METRICS_FILE, ModelSection
from moma_cli.errors import PathError
from moma_cli.services import data, lineage, lockfile, model_loading, monitor_inputs
from moma_cli.services.registry.model_version import ModelError, ModelVersion
from moma_cli.services.registry.reading import load
from moma_cli.services.repo import Repo

# -- registering -----------------------------------------------------------------------------


def add(
    repo: Repo,
    name: str,
    target: str,
    *,
    metrics: dict[str, Any] | None = None,
    metrics_file: str | None = None,
    params: dict[str, Any] | None = None,
    description: str | None = None,
    stage: bool = True,
    cwd: Path | None = None,
    extra_model: dict[str, Any] | None = None,
    lineage: Lineage | None = None,
) -> ModelVersion:
    """Track the file at `target` like `moma add` and write its `model:` section.

    Its `lineage:` section is `lineage` when given (see services.lineage.capture); else the
    one already recorded for these bytes, or the one `moma.lock` holds when a pipeline stage
    produced them; lineage recorded for other bytes is dropped, like their metrics.
    `metrics_file` (the file `metrics` were read from) is remembered: a pipeline stage that
    writes it after reading these bytes records its numbers for them."""
    name = refs.check_name(name)
    rel = repo.relpath(target, cwd)
    _check_unique(repo, name, rel)
    before = _current_oid(repo, rel)
    data.add(repo, [rel], stage=False, cwd=repo.root, lineage=lineage)
    ptr = repo.load_pointer(pointer_mod.pointer_path_of(rel))
    if lineage is None:
        kept = ptr.lineage if before == ptr.oid else None
        ptr = replace(ptr, lineage=kept or lockfile.output_lineage(repo, rel, ptr.oid))
    encoding, algo = ("dir", modelmeta.UNKNOWN) if ptr.is_dir else modelmeta.sniff(
        str(repo.abspath(rel)))
    # metrics and params describe the bytes they were recorded with: new content starts
    # without them unless given again
    section = ptr.model.to_mapping() if ptr.model is not None else {}
    old = section if before == ptr.oid else {
        k: v for k, v in section.items() if k in ("description", METRICS_FILE)}
    model: dict[str, Any] = {"name": name, "encoding": encoding, "algo": algo}
    signature = None if ptr.is_dir else _signature(repo.abspath(rel), encoding)
    if signature:
        model["signature"] = signature
    model.update(extra_model or {})
    model["params"] = _plain(params if params is not None else old.get("params") or {})
    # metrics given are bound to these bytes; kept ones stay as recorded (a legacy,
    # unbound section is not vouched for by re-adding it)
    if metrics is not None:
        plain = _plain(metrics)
        recorded = {"metrics": plain} | ({"metrics_oid": ptr.oid} if plain else {})
    else:
        recorded = {k: v for k, v in old.items() if k in ("metrics", "metrics_oid")}
    model |= {"metrics": {}} | recorded
    source = repo.relpath(metrics_file, cwd) if metrics_file else old.get(METRICS_FILE)
    if source:
        model[METRICS_FILE] = source
    if "reference" not in model and before == ptr.oid and "reference" in old:
        model["reference"] = old["reference"]  # the training inputs of these same bytes
    text = description if description is not None else old.get("description")
    if text:
        model["description"] = text
    ptr = replace(ptr, model=ModelSection.from_mapping(model, ptr.pointer_path))
    repo.write_pointer(ptr)
    if stage:
        repo.git.add([ptr.pointer_path, posixpath.join(posixpath.dirname(rel), ".gitignore")])
    registry = load(repo)
    return registry.of(name)[-1]


def add_file(
    repo: Repo,
    name: str,
    target: str,
    *,
    metrics_file: str | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    froms: Sequence[str] = (),
    params_files: Sequence[str] = (),
    description: str | None = None,
    reference: str | None = None,
    labels: str | None = None,
) -> ModelVersion:
    """`models:add` and `add --model`: the metrics of `metrics_file`, overridden by the
    given ones, lineage captured from `froms` and `params_files` when any are named, and
    the profile of the training inputs in `reference`, else in the one CSV or JSON-lines
    file among `froms` (what `moma monitor` measures drift against), its column `labels`
    holding the training labels (`--target`)."""
    recorded = (metrics_mod.read_file(repo.abspath(repo.relpath(metrics_file)), metrics_file)
                if metrics_file else {})
    recorded.update(metrics or {})
    traced = lineage.capture(repo, froms, params_files) if froms or params_files else None
    source = training_data(traced)
    if labels is not None and reference is None and source is None:
        raise ModelError("--target names a column of the training data",
                         hint="name the data with --reference DATA (or --from DATA.csv)")
    profile = None
    if reference:
        profile = reference_section(repo, repo.relpath(reference), labels, reference)
    elif source is not None:
        try:
            profile = reference_section(repo, source, labels)
        except (PathError, monitor_inputs.MonitorError):
            if labels is not None:
                raise  # asked for: say why there is none
            # the input is not checked out here, or no table: registered without a profile
    return add(repo, name, target,
               metrics=recorded if metrics_file or metrics is not None else None,
               metrics_file=metrics_file, params=params, description=description,
               lineage=traced, extra_model={"reference": profile} if profile else None)


def reference_section(repo: Repo, rel: str, target: str | None,
                      shown: str | None = None) -> dict[str, Any]:
    """The `model.reference` profile of the training data at `rel`, with where it came from
    (`source`, `target`): what `check --heal` profiles again for a retrained version."""
    section = monitor_inputs.reference_profile(repo.abspath(rel), shown or rel, target)
    return {"source": rel} | section


DATA_SUFFIXES = (".csv", ".jsonl", ".ndjson")  # the training data reference_profile reads


def training_data(lineage: Lineage | None) -> str | None:
    """The path of the one CSV or JSON-lines input a lineage section records, what the
    model was trained on; None when it records none, or several (which one is unknown)."""
    deps = lineage.deps if lineage is not None else ()
    data = [d["path"] for d in deps if d["path"].lower().endswith(DATA_SUFFIXES)]
    return data[0] if len(data) == 1 else None


def _signature(path: Path, encoding: str) -> dict[str, Any] | None:
    """The inputs the model declares, read without running it: a skops schema's feature
    count, an ONNX graph's inputs. A pickle's would need unpickling, so it has none."""
    if encoding == "skops":
        with open(path, "rb") as fh:
            schema = modelmeta.skops_schema(fh)
        return modelmeta.skops_signature(schema) if schema else None
    if encoding == "onnx":
        return model_loading.onnx_signature(path)
    return None


def _current_oid(repo: Repo, rel: str) -> str | None:
    if not (repo.root / pointer_mod.pointer_path_of(rel)).exists():
        return None
    return repo.load_pointer(pointer_mod.pointer_path_of(rel)).oid


def _check_unique(repo: Repo, name: str, rel: str) -> None:
    pointers, _bad = repo.pointers()
    for ptr in pointers:
        if ptr.model and ptr.model.name == name and ptr.path != rel:
            raise ModelError(f"model name {name!r} is already used by {ptr.path}",
                             hint="choose another name, or re-add that file to make a new "
                                  "version")


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Metadata values as YAML/JSON scalars; anything else (an estimator inside params,
    say) is recorded as its repr, never pickled."""
    result: dict[str, Any] = {}
    for key in sorted(values):
        value = values[key]
        if value is None or type(value) in (bool, int, float, str):
            result[str(key)] = value
        elif hasattr(value, "item") and callable(value.item):  # numpy scalars
            result[str(key)] = _plain({"v": value.item()})["v"]
        else:
            result[str(key)] = repr(value)
    return result

