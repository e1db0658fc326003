"""storage/heap.py: a freed large buffer goes back to the system, in a process of its own
(the setting is process-wide)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Frees an 8 MiB buffer (glibc then raises its mmap threshold to 8 MiB), allocates and
# frees another, and prints how much anonymous memory the second one left behind (KiB).
_PROBE = """
import sys
from moma_cli.storage import heap
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1])
applied = heap.keep_large_buffers_mapped() if sys.argv[1] == "fixed" else None
a = bytearray(8 << 20); del a
before = anon()
a = bytearray(8 << 20); del a
print(applied, anon() - before)
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def _retained(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], int(out[1])


@glibc
def test_a_freed_large_buffer_is_returned_once_the_threshold_is_fixed() -> None:
    applied, kept = _retained("fixed")
    assert applied == "True"
    assert kept < 1024  # KiB: the buffer was unmapped


@glibc
def test_without_it_glibc_keeps_the_freed_buffer_in_its_heap() -> None:
    # What the fix is for: the probe is sensitive enough to see the retention.
    _, kept = _retained("default")
    assert kept > 6 * 1024
