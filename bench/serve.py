"""Benchmark `moma serve`: requests/s and latency percentiles for a small sklearn model.

Builds a throwaway repository with a LogisticRegression on iris, starts the server in a
child process on 127.0.0.1, and drives it from threads that each keep one HTTP/1.1
keep-alive connection (http.client). Bounded by --requests and --seconds.

    python bench/serve.py [--threads 4] [--requests 5000] [--seconds 20] [--rows 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def moma(cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "moma_cli", *args], cwd=cwd, check=True,
                   capture_output=True, env=child_env())


def child_env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(SRC), "GIT_AUTHOR_NAME": "bench",
                         "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
                         "GIT_COMMITTER_EMAIL": "bench@example.com"}


def make_repo(root: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root.mkdir()
    git(root, "init", "-q")
    moma(root, "init")
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=300).fit(x, y), root / "iris.joblib")
    moma(root, "models:add", "iris", "iris.joblib")
    git(root, "commit", "-qm", "iris v1")
    moma(root, "models:tag", "iris:1", "production")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def load(port: int, threads: int, requests: int, seconds: float, rows: int) -> dict[str, float]:
    body = json.dumps({"inputs": [[5.1, 3.5, 1.4, 0.2]] * rows}).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    per_thread = requests // threads
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(per_thread):
            start = time.perf_counter()
            conn.request("POST", "/v1/models/iris/predict", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            latencies[i].append(time.perf_counter() - start)
            errors[i] += resp.status != 200
            if time.monotonic() > stop_at:
                break

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    all_lat = sorted(x for lat in latencies for x in lat)
    n = len(all_lat)
    return {"requests": n, "errors": sum(errors), "seconds": elapsed, "rps": n / elapsed,
            "p50_ms": all_lat[n // 2] * 1e3, "p99_ms": all_lat[min(n - 1, int(n * 0.99))] * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_repo(root)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "moma_cli", "serve", "iris:production",
                                 "--port", str(port), "--poll", "0"], cwd=root,
                                env=child_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            wait_ready(port, proc)
            load(port, 1, 200, 5, args.rows)  # warm-up
            result = load(port, args.threads, args.requests, args.seconds, args.rows)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps({"threads": args.threads, "rows": args.rows} | {
        k: round(v, 2) for k, v in result.items()}))


if __name__ == "__main__":
    main()
