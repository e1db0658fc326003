"""Pointer parsing is strict: every malformed pointer is refused with the file named."""

from __future__ import annotations

import pytest

from moma_cli.core import pointer
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
