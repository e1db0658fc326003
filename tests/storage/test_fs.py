"""storage/fs.py and the S3 store on the S3 server: what an upload holds in memory, and an
upload that cannot read what it was told to send."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RemoteSpec
from moma_cli.config import RemoteConfig
from moma_cli.storage import fs

# Sends one pack of 8 MiB (64 files of 128 KiB) to the S3 server and prints the most the
# Python heap held meanwhile (tracemalloc's peak, bytes), over what it held before. In a
# process of its own: the test's moto server, in the test's process, keeps what it receives.
_PACK_PROBE = """
import sys, tracemalloc
from pathlib import Path
from moma_cli.config import RemoteConfig
from moma_cli.core.hashing import hash_bytes
from moma_cli.storage import fs
from moma_cli.storage.remote.objectstore import FsspecRemote
url, endpoint, top = sys.argv[1:]
location = fs.open_location(RemoteConfig("s3", url, {"endpointurl": endpoint}), Path(top))
store = FsspecRemote(location, "blake3", Path(top) / "idx", 4, False)
files = []
for i in range(64):
    data = bytes([i]) * (128 << 10)
    path = Path(top) / f"f{i}"
    path.write_bytes(data)
    files.append((hash_bytes(data, "blake3"), path, len(data)))
store.pack_files(files[:2])  # the client and its connections, warmed up
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
store.pack_files(files)
print(tracemalloc.get_traced_memory()[1] - before)
"""


def test_a_pack_is_sent_to_s3_from_its_buffer_without_copies(s3_remote: RemoteSpec,
                                                              tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _PACK_PROBE, s3_remote.url,
                          s3_remote.options["endpointurl"], str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout
    # The pack itself (8 MiB) and the pieces botocore hashes it in (10.0 MiB measured); a
    # bytearray body was copied by aiohttp (a slice, the join with the headers): 28.2 MiB.
    assert int(out) < 12 << 20
    objects = s3_remote.objects()
    assert len(objects) == 64 and all(len(data) == 128 << 10 for data in objects.values())


def test_a_part_read_short_fails_the_upload_and_leaves_nothing(s3_remote: RemoteSpec,
                                                              tmp_path: Path) -> None:
    # A cache file that shrank after its size was taken: its part must not go up padded.
    src = tmp_path / "shrunk"
    src.write_bytes(os.urandom(1000))
    location = fs.open_location(RemoteConfig("s3", s3_remote.url, s3_remote.options),
                                tmp_path)
    key = f"{location.root}/object"
    with pytest.raises(OSError, match="short read at offset 0"):
        fs.put_in_parts(location, src, key, 2000)
    assert not location.fs.exists(key)
    bucket = location.root.split("/")[0]
    assert not location.fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads")
