"""storage/heap.py: a freed large buffer goes back to the system, in a process of its own
(the setting is process-wide)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

# Frees a mapped buffer (glibc then raises its mmap threshold to its size), allocates and
# frees another, and prints how much memory glibc still holds from the system because of
# the second one: its heap (`arena`) plus its own mappings (`hblkhd`), from `mallinfo2`,
# with the RssAnon change beside it. The buffers are 8 MiB larger than the heap's free
# memory, which glibc would use before mapping anything (the threshold would never rise).
_PROBE = """
import ctypes, json, sys
from moma_cli.storage import heap
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
def held():
    info = mallinfo2()
    return info.arena + info.hblkhd
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1])
applied = heap.keep_large_buffers_mapped() if sys.argv[1] == "fixed" else None
size = (8 << 20) + mallinfo2().fordblks
a = bytearray(size); del a
before = held(), anon()
a = bytearray(size); del a
print(json.dumps({"applied": applied, "held_kib": (held() - before[0]) // 1024,
                  "rss_anon_kib": anon() - before[1]}))
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


def _retained(mode: str) -> dict[str, int | bool | None]:
    # glibc's defaults: any MALLOC_* setting turns its dynamic threshold off, and a test
    # process that started a Dask LocalCluster has MALLOC_TRIM_THRESHOLD_ set (the Nanny
    # writes distributed.nanny.pre-spawn-environ into its own environment): inherited, it
    # made this probe see nothing kept in whole-suite runs, never when the file ran alone.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True,
                         capture_output=True, text=True, env=env).stdout
    result: dict[str, int | bool | None] = json.loads(out)
    return result


@glibc
def test_a_freed_large_buffer_is_returned_once_the_threshold_is_fixed() -> None:
    probe = _retained("fixed")
    assert probe["applied"] is True
    assert probe["held_kib"] < 1024, probe  # the buffer was unmapped


@glibc
def test_without_it_glibc_keeps_the_freed_buffer_in_its_heap() -> None:
    # What the fix is for: the probe is sensitive enough to see the retention.
    probe = _retained("default")
    assert probe["held_kib"] > 6 * 1024, probe
