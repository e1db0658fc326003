"""Hash throughput on this machine: blake3 vs sha256 (and md5, DVC's), large and small inputs.

Reads bench/.work/data/big.bin (page cache warmed first) and the 10k small files.
Usage: python bench/hashes.py
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import datasets
from blake3 import blake3

CHUNK = 4 << 20


class _NoHash:
    def update(self, data: memoryview) -> None:
        pass


def read_hash(path: Path, make: Callable[[], object]) -> None:
    hasher = make()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            hasher.update(view[:n])  # type: ignore[attr-defined]


def mmap_blake3(path: Path) -> None:
    blake3(max_threads=blake3.AUTO).update_mmap(path)


def small_files(files: list[Path], make: Callable[[], object]) -> None:
    for path in files:
        hasher = make()
        with open(path, "rb", buffering=0) as fh:
            hasher.update(fh.readall())  # type: ignore[attr-defined]


def best_of(fn: Callable[[], None], reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    data = datasets.build()
    big = data["big"]
    files = sorted(p for p in data["small10k"].rglob("*") if p.is_file())
    read_hash(big, hashlib.md5)  # warm the page cache
    gib = os.path.getsize(big) / (1 << 30)
    rows = [
        ("read only", lambda: read_hash(big, _NoHash)),
        ("md5, read()", lambda: read_hash(big, hashlib.md5)),
        ("sha256, read()", lambda: read_hash(big, hashlib.sha256)),
        ("blake3, read(), 1 thread", lambda: read_hash(big, blake3)),
        ("blake3, read(), threads",
         lambda: read_hash(big, lambda: blake3(max_threads=blake3.AUTO))),
        ("blake3, update_mmap, threads", lambda: mmap_blake3(big)),
    ]
    print("| 1 GiB from page cache | s | GiB/s |\n|---|---:|---:|")
    for name, fn in rows:
        seconds = best_of(fn)
        print(f"| {name} | {seconds:.3f} | {gib / seconds:.2f} |")
    print(f"\n| {len(files)} x 4 KiB files | s |\n|---|---:|")
    for name, make in (("sha256", hashlib.sha256), ("blake3", blake3), ("md5", hashlib.md5)):
        print(f"| {name} | {best_of(lambda m=make: small_files(files, m)):.3f} |")


if __name__ == "__main__":
    main()
