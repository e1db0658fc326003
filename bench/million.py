"""A million files: moma's add, status, push/pull, gc and fsck on N x 1 KiB (issue 17, item 2).

The tree (N files of 1 KiB, 1,000 per directory) is built once under bench/.work/data and
reused. Each step is one whole process, timed with its peak RSS (wait4), one after another
(one process at a time: the machine is shared):

  cp         cp -r of the tree into the repository (the baseline `add` is compared with)
  add        moma add of that copy, empty cache
  status     moma status, nothing changed (3 runs, median)
  status1    moma status, one file modified (3 runs, a different file each time)
  push       moma push to a local-directory remote (packs)
  pull       git clone + moma pull from it, into an empty cache
  fetch      git clone + moma fetch from it (pull without the checkout), into an empty cache
  gc         moma gc --workspace --force (nothing to remove: the cost of deciding so)
  fsck       moma fsck (re-hash every cache object)
  s3push / s3pull / s3fetch   push, clone + pull, clone + fetch through bench/shaped_s3.py
             (40 ms, 50 MB/s), if present

With --dvc, DVC's add / status / status1 / push / pull are timed the same way on a tree of
--dvc-files files (default 100,000: at a million DVC takes hours, dvc#7607).

With --before SRC, another moma tree (e.g. main's, from `git archive main src`) is timed
the same way first, as tool "before", for a before/after in one run.

Usage: python bench/million.py [--files N] [--only cp,add,...] [--dvc] [--dvc-files N]
                               [--no-moma] [--before SRC] [--shaped-s3 PATH] [--drop-tree]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import datasets
import run as bench

PER_DIR = 1000
SIZE = 1024
STEPS = ("cp", "add", "status", "status1", "push", "pull", "fetch", "gc", "fsck", "s3push",
         "s3pull", "s3fetch")


def build_tree(top: Path, count: int) -> Path:
    """`count` distinct 1 KiB files, PER_DIR per directory; built once, then reused."""
    done = top.with_name(top.name + ".complete")
    if done.exists():
        return top
    pad = hashlib.blake2b(b"million", digest_size=64).digest() * (SIZE // 64)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for d in range((count + PER_DIR - 1) // PER_DIR):
        sub = top / f"d{d:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(d * PER_DIR, min(count, (d + 1) * PER_DIR)):
            header = f"file {i}\n".encode()
            fd = os.open(sub / f"f{i:07d}.bin", flags, 0o644)
            try:
                os.write(fd, header + pad[len(header):])
            finally:
                os.close(fd)
    done.touch()  # beside the tree, not in it
    return top


class Recorder:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows: dict[str, dict[str, object]] = {}

    def time(self, key: str, cmd: list[str], cwd: Path, env: dict[str, str] | None,
             ok_codes: tuple[int, ...] = (0,)) -> float:
        os.sync()
        bench.settle_disk(limit=10)  # a shared disk is never quiet for long
        start = time.perf_counter()
        proc = bench.subprocess.Popen(cmd, cwd=cwd, env=env, stdout=bench.subprocess.DEVNULL,
                                      stderr=bench.subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if code not in ok_codes:
            raise RuntimeError(f"{' '.join(cmd)} exited {code} in {cwd}: {err[-2000:]}")
        row = self.rows.setdefault(key, {"seconds": [], "rss_mib": 0.0})
        row["seconds"].append(seconds)  # type: ignore[union-attr]
        row["rss_mib"] = max(float(row["rss_mib"]), usage.ru_maxrss / 1024)  # type: ignore[arg-type]
        print(f"{key:14} {seconds:8.2f} s  {usage.ru_maxrss / 1024:6.0f} MiB",
              file=sys.stderr, flush=True)
        self.out.write_text(json.dumps(self.rows, indent=1))
        return seconds


def modify(repo: Path, data: str, count: int, rep: int) -> None:
    i = (rep * 7919 + 4217) % count
    path = repo / data / f"d{i // PER_DIR:04d}" / f"f{i:07d}.bin"
    path.chmod(0o644)
    path.write_bytes(f"modified {rep} {time.time()}\n".encode() * 40)


def run_tool(tool: bench.Tool, tree: Path, count: int, steps: list[str], rec: Recorder,
             shaped: Path | None, drop_tree: bool = False) -> None:
    name = tool.name
    is_moma = isinstance(tool, bench.Moma)  # "moma", or "before" (--before)
    base = bench.RUNS / f"million-{name}-{count}"
    repo, remote, clone = base / "repo", base / "remote", base / "clone"
    for old in (repo, remote, clone):
        bench._discard(old)
    bench._empty_trash(settle=40)
    repo.mkdir(parents=True)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "b@example.com"],
                ["git", "config", "user.name", "bench"]):
        bench.sh(cmd, repo)
    tool.init(repo)
    data = "data"
    if is_moma and "cp" in steps:
        rec.time(f"cp/{count}", ["cp", "-r", str(tree), str(repo / data)], repo, None)
    else:
        bench.sh(["cp", "-r", str(tree), str(repo / data)], repo)
    if drop_tree:  # a million files take ~4 GB per copy, and the disk is shared
        bench._discard(tree)
        bench._discard(tree.with_name(tree.name + ".complete"))
        bench._empty_trash()
    rec.time(f"add/{name}/{count}", tool.add(data), repo, tool.env)
    bench.sh(["git", "add", "-A"], repo)
    bench.sh(["git", "commit", "-qm", "data"], repo)
    if "status" in steps:
        for _ in range(3):
            rec.time(f"status/{name}/{count}", tool.status(), repo, tool.env)
    if "status1" in steps:
        for rep in range(3):
            modify(repo, data, count, rep)
            rec.time(f"status1/{name}/{count}", tool.status(), repo, tool.env, (0, 1))
        bench.sh(["git", "checkout", "-q", "."], repo)
        bench.sh([*tool.exe, "checkout", *(["--force"] if is_moma else ["-f"])],
                 repo, tool.env)
    tool.add_remote(repo, str(remote), None)
    bench.sh(["git", "commit", "-qam", "remote"], repo)
    if "push" in steps:
        rec.time(f"push/{name}/{count}", tool.push(), repo, tool.env)
    if "pull" in steps:
        rec.time(f"pull/{name}/{count}", tool.clone_and_pull(repo, clone), base, tool.env)
        _drop(clone)
    if is_moma and "fetch" in steps:
        fetch_clone = base / "fetch-clone"
        bench._discard(fetch_clone)
        cmd = ["sh", "-c", f"git clone -q '{repo}' '{fetch_clone}' && cd '{fetch_clone}' && "
               f"{' '.join(tool.exe)} fetch"]
        rec.time(f"fetch/{name}/{count}", cmd, base, tool.env)
        _drop(fetch_clone)
    if is_moma and "gc" in steps:
        rec.time(f"gc/{name}/{count}", [*tool.exe, "gc", "--workspace", "--force"], repo,
                 tool.env)
    if is_moma and "fsck" in steps:
        rec.time(f"fsck/{name}/{count}", [*tool.exe, "fsck"], repo, tool.env)
    if shaped is not None and {"s3push", "s3pull", "s3fetch"} & set(steps):
        run_s3(tool, repo, base, count, steps, rec, shaped)


def run_s3(tool: bench.Tool, repo: Path, base: Path, count: int, steps: list[str],
           rec: Recorder, shaped: Path) -> None:
    """Push, then clone + pull, through the shaped S3 (40 ms RTT, 50 MB/s per connection)."""
    spec = importlib.util.spec_from_file_location("shaped_s3", shaped)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["shaped_s3"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    bucket = "million"
    with module.ShapedS3() as s3:
        s3.create_bucket(bucket)
        url = f"s3://{bucket}/{tool.name}"
        exe = " ".join(tool.exe)
        setup = (f"{exe} remote add s3 {url} && "
                 f"{exe} remote modify s3 endpointurl {s3.endpoint}")
        bench.sh(["sh", "-c", setup], repo, tool.env)
        if "s3push" in steps:
            rec.time(f"s3push/{tool.name}/{count}", [*tool.exe, "push", "-r", "s3"], repo,
                     tool.env)
        for step, command in (("s3pull", "pull"), ("s3fetch", "fetch")):
            if step in steps:
                clone = base / f"{step}-clone"
                bench._discard(clone)
                cmd = ["sh", "-c", f"git clone -q '{repo}' '{clone}' && cd '{clone}' && "
                       f"{setup} && {exe} {command} -r s3"]
                rec.time(f"{step}/{tool.name}/{count}", cmd, base, tool.env)
                _drop(clone)


def _drop(clone: Path) -> None:
    """A clone is measured once: its copy of the data (~8 GB at a million) goes at once."""
    bench._discard(clone)
    bench._empty_trash()


def table(rows: dict[str, dict[str, object]]) -> str:
    lines = ["| step | tool | files | runs | median s | peak RSS MiB |",
             "|---|---|---:|---:|---:|---:|"]
    for key, row in rows.items():
        step, *rest = key.split("/")
        tool, count = (rest[0], rest[1]) if len(rest) == 2 else ("cp -r", rest[0])
        secs: list[float] = row["seconds"]  # type: ignore[assignment]
        lines.append(f"| {step} | {tool} | {int(count):,} | {len(secs)} | "
                     f"{statistics.median(secs):.2f} | {float(row['rss_mib']):.0f} |")  # type: ignore[arg-type]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--only", help="comma-separated steps: " + ",".join(STEPS))
    parser.add_argument("--dvc", action="store_true", help="time DVC too, on --dvc-files")
    parser.add_argument("--dvc-files", type=int, default=100_000)
    parser.add_argument("--no-moma", action="store_true")
    parser.add_argument("--before", type=Path, help="another moma src tree, timed first")
    parser.add_argument("--drop-tree", action="store_true",
                        help="delete the built tree once copied (it is built again next time)")
    parser.add_argument("--shaped-s3", type=Path, default=bench.HERE / "shaped_s3.py",
                        help="the shaped S3 module (s3push, s3pull); skipped if missing")
    args = parser.parse_args()
    steps = args.only.split(",") if args.only else list(STEPS)
    bench.RUNS = bench.RUNS.resolve()
    out = datasets.WORK / f"million-{args.files}.json"
    rec = Recorder(out)
    tools: list[tuple[bench.Tool, int]] = []
    if args.before is not None:
        tools.append((bench.Moma(args.before.resolve(), "before"), args.files))
    if not args.no_moma:
        tools.append((bench.Moma(), args.files))
    if args.dvc:
        if not (bench.PEERS / "dvc").exists():
            sys.exit("DVC not installed: run bench/peers.sh")
        tools.append((bench.Dvc(), args.dvc_files))
    shaped = args.shaped_s3 if args.shaped_s3.exists() else None
    if shaped is None:
        print(f"{args.shaped_s3} not found: S3 steps skipped", file=sys.stderr)
    try:
        for tool, count in tools:
            tree = build_tree(datasets.DATA / f"files{count}", count)
            run_tool(tool, tree, count, steps, rec, shaped, args.drop_tree)
    finally:
        bench._empty_trash()
        print(table(rec.rows))


if __name__ == "__main__":
    main()
