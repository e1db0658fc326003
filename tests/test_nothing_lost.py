"""A failing write leaves no temp file and no partial result; every write is atomic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import Moma, write
from helpers import assert_nothing_lost, assert_one_error, read_only_dir, snapshot, temp_files
from moma_cli.atomic import atomic_write_bytes
from moma_cli.core import hashing

SRC = Path(__file__).resolve().parents[1] / "src" / "moma_cli"


@pytest.mark.parametrize("target", ["model.bin", "data"])
def test_add_when_the_final_rename_fails_leaves_no_temp_and_no_pointer(repo: Moma,
                                                                       target: str) -> None:
    write(repo.root / "model.bin", "weights")
    write(repo.root / "data/model.bin", "weights")
    oid = hashing.hash_bytes(b"weights", "blake3")
    before = snapshot(repo.root)
    # The object's directory refuses new entries: the temp in cache/tmp/ is written whole,
    # then os.replace into blake3/<oid[:2]>/ fails.
    with read_only_dir(repo.root / ".moma/cache/blake3" / oid[:2]):
        res = repo("add", target, ok=False)
    assert_one_error(res, str(repo.root / ".moma/cache/blake3" / oid[:2] / oid[2:]))
    assert not (repo.root / f"{target}.moma").exists()
    assert list((repo.root / ".moma/cache/tmp").iterdir()) == []
    assert_nothing_lost(repo.root, before)
    repo("add", target)  # and the rerun works
    assert_nothing_lost(repo.root)


def test_checkout_into_a_read_only_directory_leaves_no_temp(repo: Moma) -> None:
    write(repo.root / "data/a.txt", "a")
    repo("add", "data")
    (repo.root / "data/a.txt").unlink()
    before = snapshot(repo.root)
    with read_only_dir(repo.root / "data"):
        res = repo("checkout", ok=False)
    assert_one_error(res, str(repo.root / "data"))
    assert_nothing_lost(repo.root, before)


def test_atomic_write_cleans_its_temp_when_the_rename_fails(tmp_path: Path) -> None:
    write(tmp_path / "dest/occupied", "a non-empty directory cannot be replaced by a file")
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "dest", b"new")
    assert temp_files(tmp_path) == []
    assert (tmp_path / "dest/occupied").exists()


# Modules allowed to open files for writing, and why: each writes only a temp it then
# renames (atomic.py, cache.py, link.py) or the lock file, which holds no data (lock.py).
# The append-only prediction log is the one non-atomic writer by design: O_APPEND, whole
# lines per write, readers skip a torn last line (services/serving/predlog.py).
# storage/fs.py writes a large object's ranged parts into the temp cache.py made for it
# (O_EXCL), which cache.py verifies and renames like any other download
_WRITERS = {"atomic.py", "storage/cache.py", "storage/fs.py", "storage/link.py",
            "storage/lock.py", "services/serving/predlog.py"}


def _writes(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("write_text", "write_bytes", "mkstemp", "NamedTemporaryFile"):
            lines.append(node.lineno)
        elif name == "open" and isinstance(func, ast.Attribute):  # os.open(path, flags)
            flags = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if flags & {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}:
                lines.append(node.lineno)
        elif name == "open" and len(node.args) > 1:
            mode = node.args[1]
            if not (isinstance(mode, ast.Constant) and mode.value in ("r", "rb")):
                lines.append(node.lineno)
        elif name == "open" and any(k.arg == "mode" for k in node.keywords):
            lines.append(node.lineno)
    return lines


def test_every_write_is_atomic() -> None:
    """Files are written only through atomic.py (temp + fsync + os.replace)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel not in _WRITERS:
            offenders += [f"{rel}:{n}" for n in _writes(ast.parse(path.read_text()))]
    assert offenders == [], "write through moma_cli.atomic instead: " + ", ".join(offenders)


def test_the_write_scan_sees_writes() -> None:
    code = ("open(p, 'w')\nopen(p, mode='ab')\nPath(p).write_text('x')\n"
            "os.open(p, os.O_WRONLY | os.O_CREAT)\nopen(p)\nopen(p, 'rb')\n"
            "os.open(p, os.O_RDONLY | os.O_NOFOLLOW)\n")
    assert sorted(_writes(ast.parse(code))) == [1, 2, 3, 4]
