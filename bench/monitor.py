"""Benchmark `moma monitor` over a large prediction log: wall time and peak memory.

Builds a throwaway repository with a LogisticRegression on iris registered with
`--reference train.csv --target species`, writes a log of --lines lines in the layout
`moma serve --log-predictions` writes (docs/serving.md: one row line and one request line
per request, a share --other of them answered by another version), labels for a tenth of
the requests, then runs `moma monitor iris --log LOG --window 1d --feedback LABELS --json`
in a child process --repeat times, printing the wall time and the child's peak RSS.

    python bench/monitor.py [--lines 1000000] [--other 0.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from serve import child_env, git  # bench/serve.py, beside this script: the same set-up

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def moma(cwd: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "moma_cli", *args], cwd=cwd, check=True,
                          capture_output=True, text=True, env=child_env()).stdout


def make_repo(root: Path) -> str:
    """The repository; returns the oid of the registered version."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root.mkdir()
    git(root, "init", "-q")
    moma(root, "init")
    x, y = load_iris(return_X_y=True)
    with open(root / "train.csv", "w") as fh:
        fh.write(",".join((*FEATURES, "species")) + "\n")
        fh.writelines(",".join(map(str, (*row, label))) + "\n"
                      for row, label in zip(x.tolist(), y.tolist(), strict=True))
    joblib.dump(LogisticRegression(max_iter=300).fit(x, y), root / "iris.joblib")
    moma(root, "models:add", "iris", "iris.joblib", "--reference", "train.csv",
         "--target", "species")
    git(root, "commit", "-qm", "iris v1")
    return str(json.loads(moma(root, "models:show", "iris", "--json"))["oid"])


def write_log(path: Path, labels: Path, oid: str, lines: int, other: float) -> None:
    """`lines` log lines, two per request, written from templates (json.dumps per line
    would make the set-up slower than what it measures)."""
    rng = random.Random(0)
    ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = ('{"format":1,"ts":"' + ts + '","request":"%s","model":"iris","version":%d,'
            '"stage":"production","oid":"%s","role":"primary",')
    row = head + '"row":0,"features":{"sepal_length":%.1f,"sepal_width":%.1f,' \
                 '"petal_length":%.1f,"petal_width":%.1f},"prediction":%d,' \
                 '"probabilities":[%.3f,%.3f,%.3f]}\n'
    request = head + '"status":%d,"latency_ms":%.3f,"rows":%d}\n'
    other_oid = "0" * 64
    with open(path, "w") as log, open(labels, "w") as feedback:
        feedback.write("request_id,label\n")
        for n in range(lines // 2):
            rid = f"{n:016x}"
            mine = rng.random() >= other
            version, answered = (1, oid) if mine else (2, other_oid)
            label = rng.randrange(3)
            status = 422 if rng.random() < 0.005 else 200
            if status == 200:
                log.write(row % (rid, version, answered, rng.gauss(5.8, 0.8),
                                 rng.gauss(3.0, 0.4), rng.gauss(3.8, 1.7), rng.gauss(1.2, 0.7),
                                 label, 0.9, 0.05, 0.05))
            log.write(request % (rid, version, answered, status, rng.lognormvariate(0.7, 0.5),
                                 1 if status == 200 else 0))
            if n % 10 == 0:
                feedback.write(f"{rid},{label if rng.random() < 0.9 else (label + 1) % 3}\n")


def measure(root: Path, log: Path, labels: Path) -> tuple[float, float, int, Any]:
    """Wall seconds, CPU seconds (user + system), peak RSS (KiB) and output of one `moma
    monitor` child. CPU time is the figure to compare on a shared machine: wall time there
    also counts the waits for a core. Both are read by a wrapper process whose only child
    it is (RUSAGE_CHILDREN of this process would include the set-up's children)."""
    wrapper = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "w = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(json.dumps([w, u.ru_utime + u.ru_stime, u.ru_maxrss, p.returncode, "
               "p.stdout, p.stderr]))")
    command = [sys.executable, "-c", wrapper, sys.executable, "-m", "moma_cli", "monitor",
               "iris", "--log", str(log), "--window", "1d", "--feedback", str(labels), "--json"]
    out = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True,
                         env=child_env()).stdout
    wall, cpu, rss, code, stdout, stderr = json.loads(out)
    if code != 0:
        raise SystemExit(f"moma monitor failed ({code}): {stderr}")
    return wall, cpu, rss, json.loads(stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--other", type=float, default=0.0,
                        help="share of requests answered by another version (0..1)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="moma-bench-monitor-") as tmp:
        root = Path(tmp) / "repo"
        oid = make_repo(root)
        log, labels = Path(tmp) / "preds.jsonl", Path(tmp) / "labels.csv"
        started = time.perf_counter()
        write_log(log, labels, oid, args.lines, args.other)
        size = log.stat().st_size
        print(f"log: {args.lines:,} lines, {size / 2**20:.0f} MiB, other versions "
              f"{args.other:.0%} (written in {time.perf_counter() - started:.1f} s)")
        empty, no_labels = Path(tmp) / "empty.jsonl", Path(tmp) / "none.csv"
        empty.write_text("")
        no_labels.write_text("request_id,label\n")
        _, base_cpu, base_rss, _ = measure(root, empty, no_labels)
        print(f"moma monitor on an empty log: CPU {base_cpu:.2f} s, peak RSS "
              f"{base_rss / 1024:.0f} MiB")
        print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on "
              f"{os.cpu_count()} cores")
        for _ in range(args.repeat):
            wall, cpu, rss, doc = measure(root, log, labels)
            live = doc["live"]
            print(f"moma monitor: wall {wall:.2f} s, CPU {cpu:.2f} s, "
                  f"{args.lines / cpu:,.0f} lines per CPU second, peak RSS "
                  f"{rss / 1024:.0f} MiB; rows {live['rows']:,}, requests "
                  f"{live['requests']:,}, error rate {live['error_rate']:.2%}, p99 "
                  f"{live['latency']['p99']} ms, labelled {live['labelled']:,}, "
                  f"psi.max {doc['drift']['psi']['max']:.3f}")

if __name__ == "__main__":
    main()
