"""Pointer parsing is strict: every malformed pointer is refused with the file named."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import with_sections
from moma_cli.core import pointer
from moma_cli.core.lineage import Lineage
from moma_cli.core.modelsection import ModelSection
from moma_cli.errors import MomaError

OID = "a" * 64


def good(**changes: object) -> str:
    doc = {"moma": 1, "hash": "blake3", "oid": OID, "size": 3, "kind": "file", **changes}
    return "".join(f"{k}: {v}\n" for k, v in doc.items() if v is not None)


def test_round_trip_preserves_unknown_keys_in_order() -> None:
    text = good() + "meta:\n  owner: ana\nfuture_key: 1\n"
    ptr = pointer.parse(text, "m.pkl.moma")
    assert ptr.path == "m.pkl"
    assert pointer.dumps(ptr) == text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (good(oid="abc"), "not a valid"),
        (good(oid="A" * 64), "not a valid"),
        (good(oid="../../tmp/x"), "not a valid"),
        (good(hash="md5"), "unknown or missing hash"),
        (good(size=-1), "non-negative"),
        (good(oid=None), "not a valid"),
        (good(moma=2), "newer than this moma"),
        ("- just\n- a list\n", "expected a mapping"),
        (good() + "size: 4\n", "duplicate key"),
        ("a: &x [1]\nb: *x\n", "aliases are not allowed"),
        ("!!python/object/apply:os.system ['touch pwned']\n", "could not determine"),
        (good(kind="file", nfiles=3), "only valid for a directory"),
        (good(model="[a]"), "'model' must be a mapping"),
        (good() + "model:\n  name: 3\n", "'model.name' must be a string"),
        (good() + "model:\n  name: m\n  params: [1]\n", "'model.params' must be a mapping"),
        (good() + "model:\n  name: m\n  metrics: 0.9\n", "'model.metrics' must be a mapping"),
        (good() + "model:\n  name: m\n  encoding: {a: 1}\n",
         "'model.encoding' must be a string"),
        (good() + "model:\n  name: m\n  3: x\n", "'model' keys must be strings"),
        (good(lineage="abc"), "'lineage' must be a mapping"),
        (good() + "lineage:\n  deps: x\n", "'lineage.deps' must be a list"),
        (good() + "lineage:\n  deps: [{path: a}]\n", "'lineage.deps' entries must be"),
        (good() + "lineage:\n  code: [1]\n", "'lineage.code' must be a string"),
        (good() + "lineage:\n  env: 3\n", "'lineage.env' must be a mapping"),
    ],
)
def test_bad_pointers_are_refused(text: str, needle: str) -> None:
    with pytest.raises(MomaError) as info:
        pointer.parse(text, "x.moma")
    assert needle in info.value.message
    assert info.value.message.startswith("x.moma")


@pytest.mark.parametrize("name", ["/abs/path.moma", "../up.moma", "a/../b.moma", ".git/x.moma"])
def test_pointer_paths_must_stay_inside_the_repo(name: str) -> None:
    with pytest.raises(MomaError):
        pointer.parse(good(), name)


def test_oversized_pointer_is_refused() -> None:
    with pytest.raises(MomaError, match="larger than"):
        pointer.parse(good() + "meta: " + "x" * (pointer.MAX_POINTER_BYTES + 1), "big.moma")


MODEL = ("model:\n  name: credit-risk\n  encoding: joblib\n  algo: Tree\n"
         "  params:\n    depth: 3\n  metrics:\n    auc: 0.9\n  metrics_oid: " + OID + "\n"
         "  reference:\n    columns:\n    - a\n  description: scorer\n")
LINEAGE = ("lineage:\n  deps:\n  - path: data.csv\n    oid: " + OID + "\n"
           "  code: abc\n  params:\n    depth: 3\n  env:\n    python: 3.11.9\n")


def test_sections_are_read_once_as_typed_values() -> None:
    ptr = pointer.parse(good() + MODEL + LINEAGE, "m.pkl.moma")
    assert ptr.model == ModelSection("credit-risk", "joblib", "Tree", None, {"depth": 3},
                                     {"auc": 0.9}, OID, None, {"columns": ["a"]}, "scorer")
    assert ptr.lineage == Lineage(({"path": "data.csv", "oid": OID},), "abc", {"depth": 3},
                                  {"python": "3.11.9"})
    assert ptr.extra == {}
    assert pointer.dumps(ptr) == good() + MODEL + LINEAGE


def test_a_model_section_keeps_its_key_order_and_unknown_keys() -> None:
    text = good() + "model:\n  future: 1\n  description: d\n  name: m\n  params: {}\n"
    ptr = pointer.parse(text, "m.pkl.moma")
    assert ptr.model is not None and ptr.model.unknown == {"future": 1}
    assert pointer.dumps(ptr) == text
    # a changed section keeps the order; a new key goes after the known ones it had
    bound = replace(ptr, model=ptr.model.bind_metrics({"auc": 0.9}, OID))
    assert list(pointer.to_mapping(bound)["model"]) == [
        "future", "description", "name", "params", "metrics", "metrics_oid"]
    assert pointer.parse(pointer.dumps(bound), "m.pkl.moma") == bound


def test_metrics_belong_to_the_bytes_they_were_measured_on() -> None:
    section = ModelSection("m").bind_metrics({"auc": 0.9}, OID)
    assert section.own_metrics(OID) == {"auc": 0.9}
    assert section.own_metrics("b" * 64) == {}
    assert section.without_metrics() == ModelSection("m")
    legacy = ModelSection("m", metrics={"auc": 0.9})  # written before metrics_oid existed
    assert legacy.own_metrics("b" * 64) == {"auc": 0.9}
    assert legacy.own_metrics("b" * 64, previous={"auc": 0.9}) == {}


_keys = st.text(st.characters(categories=["Ll"]), min_size=1, max_size=8).filter(
    lambda k: k not in ("name", "encoding", "algo", "signature", "params", "metrics",
                        "metrics_oid", "metrics_file", "reference", "description", "deps",
                        "code", "env"))
_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(_keys, inner, max_size=3), max_leaves=6)


@given(st.dictionaries(_keys, _values, max_size=4), st.dictionaries(_keys, _values, max_size=4))
def test_unknown_keys_of_both_sections_survive_a_round_trip(
        model_keys: dict[str, object], lineage_keys: dict[str, object]) -> None:
    ptr = with_sections(
        pointer.parse(good(), "m.pkl.moma"),
        model={"name": "m", **model_keys, "description": "d"},
        lineage={"deps": [], "code": None, "params": {}, "env": {}, **lineage_keys})
    again = pointer.parse(pointer.dumps(ptr), "m.pkl.moma")
    assert again == ptr
    assert again.model is not None and again.model.unknown == model_keys
    assert again.lineage is not None and again.lineage.unknown == lineage_keys
    assert pointer.dumps(again) == pointer.dumps(ptr)
