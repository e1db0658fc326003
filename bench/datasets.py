"""Build the benchmark data sets under bench/.work/data (git-ignored), deterministically.

  big.bin      1 GiB, one file
  small10k/    10,000 x 4 KiB in 100 sub-directories
  small100k/   100,000 x 1 KiB in 1,000 sub-directories
  mid100/      100 x 10 MiB, one directory

Content is derived from a counter through blake2b, so every run produces the same bytes
and no two files share content (identical files would be deduplicated and flatter the cache).
Usage: python bench/datasets.py [--only big|small10k|small100k|mid100]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work"
DATA = WORK / "data"
GIB = 1 << 30


def _block(seed: bytes, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.blake2b(seed + counter.to_bytes(8, "little"), digest_size=64).digest()
        counter += 1
    return bytes(out[:size])


def build_big(path: Path) -> None:
    if path.exists() and path.stat().st_size == GIB:
        return
    chunk = _block(b"big", 1 << 20)  # 1 MiB pattern, varied per MiB by a header
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for i in range(GIB >> 20):
            fh.write(i.to_bytes(8, "little") + chunk[8:])
    os.replace(tmp, path)


def build_mid(top: Path, count: int = 100, size: int = 10 << 20) -> None:
    done = top.with_name(top.name + ".complete")
    if done.exists():
        return
    top.mkdir(parents=True, exist_ok=True)
    chunk = _block(b"mid", 1 << 20)
    for i in range(count):
        with open(top / f"m{i:03d}.bin", "wb") as fh:
            for mib in range(size >> 20):
                fh.write(i.to_bytes(4, "little") + mib.to_bytes(4, "little") + chunk[8:])
    done.touch()


def build_small(top: Path, count: int, size: int, per_dir: int = 100) -> None:
    done = top.with_name(top.name + ".complete")
    if done.exists():
        return
    pad = _block(b"pad", size)
    for i in range(count):
        sub = top / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            sub.mkdir(parents=True, exist_ok=True)
        header = f"file {i}\n".encode()
        (sub / f"f{i:06d}.bin").write_bytes(header + pad[len(header):])
    # The marker sits beside the data set, not inside it, so it is never tracked.
    done.touch()


def build(which: str | None = None) -> dict[str, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    sets = {
        "big": (DATA / "big.bin", lambda p: build_big(p)),
        "small10k": (DATA / "small10k", lambda p: build_small(p, 10_000, 4096)),
        "small100k": (DATA / "small100k", lambda p: build_small(p, 100_000, 1024, 100)),
        "mid100": (DATA / "mid100", build_mid),
    }
    for name, (path, make) in sets.items():
        if which in (None, name):
            print(f"building {name} at {path}", file=sys.stderr)
            make(path)
    return {name: path for name, (path, _) in sets.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("big", "small10k", "small100k", "mid100"))
    build(parser.parse_args().only)
