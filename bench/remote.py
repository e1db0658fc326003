"""moma vs DVC vs the boto3 limit, pushing and pulling through the shaped S3 (bench/shaped_s3.py).

Scenarios (each pushed, then pulled into a fresh clone with an empty cache):
  R10k   10,000 x 4 KiB          Rbig   one 1 GiB file          Rmid   100 x 10 MiB
The tools run alternately within a scenario (moma, dvc, limit, moma, ...), so machine noise
hits all alike. The limit is bench/s3limit.py: plain boto3 with moma's concurrency, which
moves the bytes and nothing else. Whole-process wall-clock medians; peak RSS is the largest
over the process tree of a run (wait4's rusage). Results go to bench/.work/remote.json too.

Usage: python bench/remote.py [-n 3] [--only R10k,Rbig,Rmid] [--tools moma,dvc,limit]
                              [--rtt-ms 40] [--mb-per-s 50] [--before SRC]
       python bench/remote.py --table        (the last run's table again)
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import run
import shaped_s3

HERE = Path(__file__).resolve().parent
RESULTS = datasets.WORK / "remote.json"
BUCKET = "moma-remote-bench"
SETS = {"R10k": ("small10k", "10,000 x 4 KiB"), "Rbig": ("big", "one 1 GiB file"),
        "Rmid": ("mid100", "100 x 10 MiB")}
JOBS = 32  # moma's default transfer pool on this 2-core machine (services/sync/remote_session)


class Limit(run.Tool):
    name = "limit"
    exe = [sys.executable, str(HERE / "s3limit.py")]


@dataclass
class Row:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    rss_kib: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # tool -> failed runs

    def add(self, tool: str, seconds: float, rss: int) -> None:
        self.seconds.setdefault(tool, []).append(seconds)
        self.rss_kib[tool] = max(self.rss_kib.get(tool, 0), rss)


def _prefix(tool: run.Tool, key: str) -> str:
    return f"{tool.name}-{key}"


def _repo(tool: run.Tool, key: str, data: dict[str, Path], endpoint: str) -> Path:
    """A committed repository with the data set added and the shaped S3 as its remote."""
    name = SETS[key][0]
    repo = run.fresh_repo(tool, f"remote-{key}", data, name)
    run.sh(tool.add(data[name].name), repo, tool.env)
    tool.add_remote(repo, f"s3://{BUCKET}/{_prefix(tool, key)}", endpoint)
    run.sh(["git", "add", "-A"], repo)
    run.sh(["git", "commit", "-qm", "bench data"], repo)
    return repo


def _wipe(s3: shaped_s3.ShapedS3, prefix: str) -> None:
    import boto3

    bucket = boto3.resource("s3", endpoint_url=s3.direct).Bucket(BUCKET)
    bucket.objects.filter(Prefix=prefix + "/").delete()


def measure(key: str, tools: list[run.Tool], reps: int, s3: shaped_s3.ShapedS3,
            data: dict[str, Path], rows: dict[str, Row]) -> None:
    source = data[SETS[key][0]]
    repos = {t.name: (source if isinstance(t, Limit) else _repo(t, key, data, s3.endpoint))
             for t in tools}
    push, pull = rows.setdefault(f"{key} push", Row()), rows.setdefault(f"{key} pull", Row())
    for direction, row in (("push", push), ("pull", pull)):
        for rep in range(reps):
            for tool in tools:
                prefix = _prefix(tool, key)
                url = f"s3://{BUCKET}/{prefix}"
                if direction == "push":
                    _wipe(s3, prefix)
                    cwd = run.RUNS if isinstance(tool, Limit) else repos[tool.name]
                    cmd = ([*tool.exe, "push", str(source), url, "--endpoint", s3.endpoint,
                            "--jobs", str(JOBS)] if isinstance(tool, Limit) else tool.push())
                else:
                    dest = run.RUNS / tool.name / f"remote-{key}-clone"
                    run._discard(dest)
                    cwd = run.RUNS
                    cmd = ([*tool.exe, "pull", url, str(dest), "--endpoint", s3.endpoint,
                            "--jobs", str(JOBS)] if isinstance(tool, Limit)
                           else tool.clone_and_pull(repos[tool.name], dest))
                run.os.sync()
                run.settle_disk()
                try:
                    seconds, rss = run.timed(cmd, cwd, tool.env)
                except RuntimeError as exc:  # noted in the table; the other tools go on
                    row.failed[tool.name] = row.failed.get(tool.name, 0) + 1
                    print(f"{key} {direction} {tool.name} rep {rep} failed: {exc}"[:3000],
                          file=sys.stderr, flush=True)
                    continue
                row.add(tool.name, seconds, rss)
                print(f"{key} {direction} {tool.name:5} rep {rep}: {seconds:7.2f} s "
                      f"{rss / 1024:6.0f} MiB", file=sys.stderr, flush=True)
        run._empty_trash(settle=5)


def table(rows: dict[str, Row], shaping: str) -> str:
    names = [n for n in ("moma", "before", "dvc", "limit")
             if any(n in r.seconds for r in rows.values())]
    head = (f"shaped S3: {shaping}\n\n| scenario | n | " + " | ".join(f"{n} s" for n in names)
            + " | moma/dvc | moma/limit | peak RSS " + " / ".join(names) + " |")
    lines = [head, "|" + "---|" * (head.splitlines()[-1].count("|") - 1)]
    for title, row in rows.items():
        if not row.seconds and not row.failed:
            continue
        med = {n: statistics.median(row.seconds[n]) for n in names if n in row.seconds}
        ratio = {n: f"{med['moma'] / med[n]:.2f}" if "moma" in med and n in med else "-"
                 for n in ("dvc", "limit")}
        key = title.split()[0]
        lines.append(
            f"| {title} ({SETS[key][1]}) | {max(map(len, row.seconds.values()), default=0)} | "
            + " | ".join(f"{med[n]:.2f}" if n in med else "-" for n in names)
            + "".join(f" ({n}: {k} failed)" for n, k in row.failed.items())
            + f" | {ratio['dvc']} | {ratio['limit']} | "
            + " / ".join(f"{row.rss_kib[n] / 1024:.0f}" if n in row.rss_kib else "-"
                         for n in names) + " MiB |")
    return "\n".join(lines)


def _save(rows: dict[str, Row], shaping: str) -> None:
    RESULTS.write_text(json.dumps({"shaping": shaping, "rows": {
        t: {"seconds": r.seconds, "rss_kib": r.rss_kib, "failed": r.failed}
        for t, r in rows.items()}}, indent=1))


def _load() -> tuple[dict[str, Row], str]:
    doc = json.loads(RESULTS.read_text())
    return ({t: Row(r["seconds"], r["rss_kib"], r.get("failed", {}))
             for t, r in doc["rows"].items()}, doc["shaping"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--reps", type=int, default=3)
    parser.add_argument("--only", default=",".join(SETS))
    parser.add_argument("--tools", default="moma,dvc,limit")
    parser.add_argument("--rtt-ms", type=float, default=shaped_s3.DEFAULT_RTT_MS)
    parser.add_argument("--mb-per-s", type=float, default=shaped_s3.DEFAULT_MB_PER_S)
    parser.add_argument("--table", action="store_true", help="print the last run's table")
    parser.add_argument("--before", type=Path, metavar="SRC",
                        help="also time moma from this src/ tree (e.g. /work/main/src), "
                        "as the tool 'before'")
    args = parser.parse_args()
    if args.table:
        print(table(*_load()))
        return
    shaping = f"RTT {args.rtt_ms:g} ms, {args.mb_per_s:g} MB/s per connection"
    wanted = args.tools.split(",")
    keys = args.only.split(",")
    data = {}
    for key in keys:
        data = datasets.build(SETS[key][0])
    tools: list[run.Tool] = []
    if "moma" in wanted:
        tools.append(run.Moma())
    if args.before:
        tools.append(run.Moma(args.before.resolve(), "before"))
    if "dvc" in wanted and (run.PEERS / "dvc").exists():
        tools.append(run.Dvc())
    if "limit" in wanted:
        tools.append(Limit())
    # Killed: exit through atexit, which stops moto and the proxy.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows: dict[str, Row] = {}
    run.RUNS.mkdir(parents=True, exist_ok=True)
    with shaped_s3.ShapedS3(args.rtt_ms, args.mb_per_s) as s3:
        s3.create_bucket(BUCKET)
        try:
            for key in keys:
                measure(key, tools, args.reps, s3, data, rows)
        finally:
            _save(rows, shaping)
            print(table(rows, shaping))


if __name__ == "__main__":
    main()
