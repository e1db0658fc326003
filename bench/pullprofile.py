"""Where a pull spends its time: a fresh `git clone` + `moma pull` of a data set (R10k's
10,000 x 4 KiB by default, `--data big` for Rbig's 1 GiB) through the shaped S3
(bench/shaped_s3.py), with wall-clock timers on moma's phases and every HTTP request
counted by kind (docs/performance.md, issue 17).

The repository is set up and pushed once, as bench/remote.py does; then each repetition
clones it and runs `moma pull` in a child process that wraps the phase functions with timers
(a few calls each: no measurable overhead) and counts requests at aiobotocore's endpoint.
For a function-level profile run the same pull under `python -m cProfile -o`, for the
system calls under `strace -c -f` (both slow the run 2-3x; the timers here do not).

Usage: python bench/pullprofile.py [-n 3] [--data small10k|big|mid100] [--rtt-ms 40]
                                   [--mb-per-s 50]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# (module, class or "", function, phase): each a few calls per pull.
PHASES = [
    ("moma_cli.services.sync.fetching", "", "open_remote", "remote session (config, s3fs)"),
    ("moma_cli.storage.remote.store", "Store", "packs", "pack listing + index reads"),
    ("moma_cli.storage.transfer", "", "run_tasks", "downloads (ranged GETs, hash, temps)"),
    ("moma_cli.storage.cache", "Batch", "commit", "cache commit (sync, renames, sync)"),
    ("moma_cli.services.sync.fetching", "", "_remember_verified", "stat-cache rows"),
    ("moma_cli.services.sync.fetching", "", "fetch", "fetch total"),
    ("moma_cli.services.data_checkout", "", "checkout", "checkout into the workspace"),
    ("moma_cli.services.sync.fetching", "", "pull", "pull service total"),
]
# Inside the phases above, summed over threads: where a large object's time goes.
NESTED = [
    ("moma_cli.storage.fs", "", "get_in_parts", "  of downloads: ranged GETs into the temp"),
    ("moma_cli.core.hashing", "", "hash_path", "  of downloads: hashing whole files"),
    ("moma_cli.storage.link", "Placement", "stage", "  of checkout: copies into temps"),
    ("moma_cli.storage.link", "Placement", "commit", "  of checkout: sync + renames"),
]


def child(out: Path) -> None:
    """`moma pull` in this process, timed by phase; the figures go to `out` as JSON."""
    import importlib

    import aiobotocore.endpoint as endpoint

    times: dict[str, float] = collections.defaultdict(float)
    requests: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def wrap(owner: Any, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                with lock:
                    times[phase] += time.perf_counter() - start
        setattr(owner, name, timed)

    for module, cls, name, phase in PHASES + NESTED:
        mod = importlib.import_module(module)
        wrap(getattr(mod, cls) if cls else mod, name, phase)
    send = endpoint.AioEndpoint._send

    async def counted(self: Any, request: Any) -> Any:
        url, _, query = request.url.partition("?")
        ranged = "range" in {k.lower() for k in request.headers}
        kind = "list" if "list-type" in query else "ranged pack" if ranged else \
            "index" if url.endswith(".idx") else "other"
        with lock:
            requests[f"{request.method} {kind}"] += 1
        return await send(self, request)
    endpoint.AioEndpoint._send = counted  # type: ignore[method-assign]
    from moma_cli.cli.app import main

    sys.argv = ["moma", "pull"]
    with contextlib.suppress(SystemExit):  # the exit code is not what is measured
        main()
    out.write_text(json.dumps({"times": times, "requests": requests}))


def parent(name: str, reps: int, rtt_ms: float, mb_per_s: float) -> None:
    import datasets
    import run
    import shaped_s3

    source = datasets.build(name)[name]
    moma = run.Moma()
    with shaped_s3.ShapedS3(rtt_ms=rtt_ms, mb_per_s=mb_per_s) as s3:
        s3.create_bucket("moma-pull-profile")
        repo = run.fresh_repo(moma, "pullprofile", {name: source}, name)
        run.sh(moma.add(source.name), repo, moma.env)
        moma.add_remote(repo, "s3://moma-pull-profile/moma", s3.endpoint)
        run.sh(["git", "add", "-A"], repo)
        run.sh(["git", "commit", "-qm", "bench data"], repo)
        run.sh(moma.push(), repo, moma.env)
        rows: list[dict[str, float]] = []
        for rep in range(reps):
            dest = run.RUNS / "moma" / "pullprofile-clone"
            run._discard(dest)
            run.os.sync()
            clone, _ = run.timed(["git", "clone", "-q", str(repo), str(dest)], run.RUNS)
            out = run.RUNS / "pullprofile.json"
            pull, _ = run.timed([sys.executable, str(Path(__file__).resolve()), "--child",
                                 str(out)], dest, moma.env)
            got = json.loads(out.read_text())
            t = got["times"]
            fetch_rest = t["fetch total"] - sum(t[p] for _, _, _, p in PHASES[:5])
            row = {"git clone": clone,
                   "start-up (interpreter, imports, CLI)": pull - t["pull service total"],
                   **{p: t[p] for _, _, _, p in PHASES[:5]},
                   "rest of fetch (plans, manifests, cache checks)": fetch_rest,
                   "checkout into the workspace": t["checkout into the workspace"],
                   **{p: t.get(p, 0.0) for _, _, _, p in NESTED}}
            row["total"] = clone + pull
            rows.append(row)
            print(f"rep {rep}: {row['total']:.2f} s, requests {got['requests']}",
                  file=sys.stderr, flush=True)
        total = statistics.median(r["total"] for r in rows)
        print(f"| phase (median of {reps}) | s | share |\n|---|---:|---:|")
        for phase in rows[0]:
            med = statistics.median(r[phase] for r in rows)
            print(f"| {phase} | {med:.2f} | {100 * med / total:.0f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--reps", type=int, default=3)
    parser.add_argument("--data", default="small10k", choices=("small10k", "big", "mid100"))
    parser.add_argument("--rtt-ms", type=float, default=40)
    parser.add_argument("--mb-per-s", type=float, default=50)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
    else:
        sys.path.insert(0, str(HERE))
        parent(args.data, args.reps, args.rtt_ms, args.mb_per_s)


if __name__ == "__main__":
    main()
