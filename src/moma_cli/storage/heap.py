"""How the C allocator hands back the large buffers of a transfer (glibc's malloc).

glibc serves a request of more than `M_MMAP_THRESHOLD` bytes with its own mapping, unmapped
when freed; but the first time such a buffer is freed it raises the threshold to that size,
so from then on packs (8 MiB), upload bodies and their copies in the HTTP stack come from the
heaps of the threads that touch them and stay there, fragmented, once freed. A push of
100,000 files through bench/shaped_s3.py grew by 20-50 MiB a window that way (255 MiB at its
peak; 407 MiB at a million), none of it live Python objects. A fixed threshold keeps every
buffer of 1 MiB and more mapped: the same push peaked at 205 MiB, flat between windows.
"""

from __future__ import annotations

_M_MMAP_THRESHOLD = -3  # malloc.h; setting it also turns off the dynamic raise
_THRESHOLD = 1 << 20


def keep_large_buffers_mapped() -> bool:
    """Fix glibc's mmap threshold at 1 MiB for this process; False where the C library has
    no `mallopt` (musl says 0, macOS and Windows have none): nothing else changes there."""
    import ctypes  # only transfers pay for it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
