"""Content encoding from magic bytes, algorithm from pickle opcodes, nothing executed."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from moma_cli.core import modelmeta


def tree() -> DecisionTreeClassifier:
    x = np.random.RandomState(0).rand(30, 3)
    return DecisionTreeClassifier(max_depth=2).fit(x, x[:, 0] > 0.5)


@pytest.mark.parametrize(("head", "suffix", "encoding"), [
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 8, ".h5", "hdf5"),
    (b"PK\x03\x04" + b"\0" * 22 + struct.pack("<HH", 16, 0) + b"archive/data.pkl", ".bin",
     "pytorch"),
    (b"PK\x03\x04" + b"\0" * 22 + struct.pack("<HH", 5, 0) + b"a.txt", ".zip", "zip"),
    (struct.pack("<Q", 40) + b'{"weight":{"dtype":"F32"}}', ".bin", "safetensors"),
    (b"\x08\x07\x12\x07pytorch\x1a\x031.0", ".bin", "onnx"),
    (b"x\x9c\x01\x02", ".joblib", "joblib"),
    (b"\x1f\x8b\x08\x00", ".gz", "gzip"),
    (b"\x80\x05\x95", ".pkl", "pickle"),
    (b"hello, world", ".txt", "plain"),
])
def test_encoding_from_magic_bytes(head: bytes, suffix: str, encoding: str) -> None:
    assert modelmeta.encoding_of(head, suffix) == encoding


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_algo_of_plain_pickles(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(tree(), protocol=protocol))
    assert modelmeta.sniff(str(path)) == ("pickle", "DecisionTreeClassifier")


def test_algo_of_joblib_file_with_raw_array_bytes(tmp_path: Path) -> None:
    joblib.dump(tree(), tmp_path / "m.pkl")
    assert modelmeta.sniff(str(tmp_path / "m.pkl")) == ("joblib", "DecisionTreeClassifier")
    pipe = Pipeline([("scale", StandardScaler()), ("tree", DecisionTreeClassifier())])
    joblib.dump(pipe, tmp_path / "p.joblib")
    assert modelmeta.sniff(str(tmp_path / "p.joblib")) == ("joblib", "Pipeline")


def test_compressed_joblib_reports_unknown_algo(tmp_path: Path) -> None:
    joblib.dump(tree(), tmp_path / "m.joblib", compress=3)
    assert modelmeta.sniff(str(tmp_path / "m.joblib")) == ("joblib", "unknown")


def test_truncated_and_container_pickles(tmp_path: Path) -> None:
    raw = pickle.dumps(tree(), protocol=4)
    (tmp_path / "cut.pkl").write_bytes(raw[:40])
    assert modelmeta.sniff(str(tmp_path / "cut.pkl"))[0] == "pickle"
    (tmp_path / "d.pkl").write_bytes(pickle.dumps({"model": tree()}))
    assert modelmeta.sniff(str(tmp_path / "d.pkl")) == ("pickle", "dict")


class Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_read_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Boom(str(marker))))
    encoding, _algo = modelmeta.sniff(str(tmp_path / "evil.pkl"))
    assert encoding == "pickle"
    assert not marker.exists()


def test_hostile_length_prefix_allocates_nothing(tmp_path: Path) -> None:
    # PROTO 4, BINBYTES8 claiming 2**62 bytes, then nothing
    (tmp_path / "huge.pkl").write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62))
    assert modelmeta.sniff(str(tmp_path / "huge.pkl")) == ("pickle", "unknown")
