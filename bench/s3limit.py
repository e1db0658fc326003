"""The best a client could do: plain boto3 moving a directory to or from S3, nothing else.

No hashing, no cache, no existence checks, no pointers: each file is one PUT (small) or a
multipart upload (large), each object one GET (small) or parallel ranged GETs (large,
boto3's s3transfer, bounded memory), on `--jobs` threads sharing one connection pool, the
concurrency moma uses. bench/remote.py times it beside moma and DVC as the limit.

Usage: python bench/s3limit.py push DIR s3://BUCKET/PREFIX --endpoint URL [--jobs 32]
       python bench/s3limit.py pull s3://BUCKET/PREFIX DIR --endpoint URL [--jobs 32]
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PART = 16 << 20  # the part size moma uses for large objects (storage/fs.py)
PARTS_IN_FLIGHT = 16


def _client(endpoint: str, jobs: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint,
                        config=Config(max_pool_connections=max(jobs, PARTS_IN_FLIGHT)))


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=2 * PART, multipart_chunksize=PART,
                          max_concurrency=PARTS_IN_FLIGHT)


def _split(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.rstrip("/")


def push(top: Path, url: str, endpoint: str, jobs: int) -> int:
    s3, config = _client(endpoint, jobs), _transfer_config()
    bucket, prefix = _split(url)
    files = ([top] if top.is_file() else
             [Path(d) / f for d, _, names in os.walk(top) for f in names])

    def put(path: Path) -> None:
        key = f"{prefix}/{path.name if path == top else path.relative_to(top)}"
        if path.stat().st_size >= 2 * PART:
            s3.upload_file(str(path), bucket, key, Config=config)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(put, files))
    return len(files)


def pull(url: str, top: Path, endpoint: str, jobs: int) -> int:
    s3, config = _client(endpoint, jobs), _transfer_config()
    bucket, prefix = _split(url)
    objects = [(o["Key"], o["Size"])
               for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                        Prefix=prefix + "/")
               for o in page.get("Contents", [])]

    def get(item: tuple[str, int]) -> None:
        key, size = item
        dest = top / key[len(prefix) + 1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        if size >= 2 * PART:
            s3.download_file(bucket, key, str(dest), Config=config)
        else:
            dest.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(get, objects))
    return len(objects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("direction", choices=("push", "pull"))
    parser.add_argument("src")
    parser.add_argument("dest")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--jobs", type=int, default=32)
    args = parser.parse_args()
    if args.direction == "push":
        push(Path(args.src), args.dest, args.endpoint, args.jobs)
    else:
        pull(args.src, Path(args.dest), args.endpoint, args.jobs)


if __name__ == "__main__":
    main()
