"""What this machine can do at best, the floor under every figure of bench/run.py and remote.py.

  disk write     1 GiB written and fsynced (MB/s)
  disk read      the same file after dropping it from the page cache (posix_fadvise)
  file creation  10,000 x 4 KiB files created, written and synced (files/s)
  hash           blake3 (moma; multithreaded on files) and md5 (DVC) over 256 MiB in memory
  python start   `python -c pass` and `python -I -S -c pass`, whole-process medians of 15
Each figure is the median of `-n` runs (default 3). The files live under bench/.work/limits
(the same filesystem as the benchmarks) and are deleted afterwards.

Usage: python bench/limits.py [-n 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work" / "limits"
MIB = 1 << 20


def _median(fn: Callable[[], float], reps: int) -> float:
    return statistics.median(fn() for _ in range(reps))


def disk_write(path: Path, size: int = 1 << 30) -> float:
    block = os.urandom(8 * MIB)
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(size // len(block)):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size / (time.perf_counter() - start) / 1e6


def disk_read(path: Path) -> float:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # out of the page cache
        start = time.perf_counter()
        size = 0
        while chunk := os.read(fd, 8 * MIB):
            size += len(chunk)
    finally:
        os.close(fd)
    return size / (time.perf_counter() - start) / 1e6


def file_creation(top: Path, count: int = 10_000) -> float:
    data = os.urandom(4096)
    shutil.rmtree(top, ignore_errors=True)
    start = time.perf_counter()
    for d in range(count // 100):
        sub = top / f"d{d:03d}"
        os.makedirs(sub)
        for f in range(100):
            fd = os.open(sub / f"f{f:03d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
    os.sync()
    rate = count / (time.perf_counter() - start)
    # Moved aside, not deleted at once: freed inodes slow the next creations (bench/run.py).
    top.rename(top.with_name(f"{top.name}.{time.monotonic_ns()}"))
    return rate


def hash_speed(name: str, data: bytes) -> float:
    if name == "blake3":
        import blake3

        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    else:
        hasher = hashlib.new(name)
    start = time.perf_counter()
    hasher.update(data)
    hasher.digest()
    return len(data) / (time.perf_counter() - start) / 1e6


def python_start(*flags: str) -> float:
    def once() -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, *flags, "-c", "pass"], check=True)
        return time.perf_counter() - start
    return statistics.median(once() for _ in range(15)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--reps", type=int, default=3)
    reps = parser.parse_args().reps
    WORK.mkdir(parents=True, exist_ok=True)
    big = WORK / "write.bin"
    data = os.urandom(256 * MIB)
    try:
        rows = [
            ("disk write, 1 GiB + fsync", f"{_median(lambda: disk_write(big), reps):.0f} MB/s"),
            ("disk read, 1 GiB, not cached", f"{_median(lambda: disk_read(big), reps):.0f} MB/s"),
            ("file creation, 10k x 4 KiB + sync",
             f"{_median(lambda: file_creation(WORK / 'files'), reps):.0f} files/s"),
            ("hash blake3 (moma), in memory",
             f"{_median(lambda: hash_speed('blake3', data), reps):.0f} MB/s"),
            ("hash md5 (DVC), in memory",
             f"{_median(lambda: hash_speed('md5', data), reps):.0f} MB/s"),
            ("python -c pass", f"{python_start():.1f} ms"),
            ("python -I -S -c pass", f"{python_start('-I', '-S'):.1f} ms"),
        ]
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"| limit (median of {reps}) | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
