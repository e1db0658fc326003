"""Benchmark `moma serve`: requests/s and latency percentiles for a small sklearn model.

Builds a throwaway repository with a LogisticRegression on iris in production (and a
decision tree as `candidate`, the shadow), starts each server in a child process on
127.0.0.1, and drives it from threads that each keep one HTTP/1.1 keep-alive connection
(http.client). Bounded by --requests and --seconds. Scenarios: moma with 1 and 4 workers,
each with and without `--shadow iris:candidate`, and `mlflow models serve` (1 and 4
workers, `--env-manager local`) on the same pickled model when bench/peers.sh has built
bench/.work/mlflow-venv. One JSON line per scenario, then a Markdown table.

    python bench/serve.py [--threads 4] [--requests 5000] [--seconds 20] [--rows 1]
                          [--only moma-1,mlflow-1]
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
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
MLFLOW = Path(__file__).resolve().parent / ".work/mlflow-venv/bin"


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
    from sklearn.tree import DecisionTreeClassifier

    (root / "iris.joblib").chmod(0o644)
    joblib.dump(DecisionTreeClassifier(max_depth=3).fit(x, y), root / "iris.joblib")
    moma(root, "models:add", "iris", "iris.joblib")
    git(root, "commit", "-qm", "iris v2")
    moma(root, "models:tag", "iris:2", "candidate")
    git(root, "checkout", "-q", "HEAD~1", "--", "iris.joblib.moma")  # v1 in the work tree
    moma(root, "checkout", "iris.joblib")


def mlflow_model(root: Path, out: Path) -> None:
    """The production model (the work tree's iris.joblib) saved as an MLflow model."""
    code = ("import sys, joblib, mlflow.sklearn; "
            "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2])")
    subprocess.run([str(MLFLOW / "python"), "-c", code, str(root / "iris.joblib"), str(out)],
                   check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def load(port: int, path: str, threads: int, requests: int, seconds: float,
         rows: int) -> dict[str, float]:
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
            conn.request("POST", path, body=body, headers=headers)
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


# name -> (command, health path, predict path); {port}, {root} and {mlflow_model} filled in
SCENARIOS: dict[str, tuple[list[str], str, str]] = {
    **{f"moma-{n}{tail}": ([sys.executable, "-m", "moma_cli", "serve", "iris:production",
                            "--port", "{port}", "--poll", "0", "--workers", str(n), *extra],
                           "/healthz", "/v1/models/iris/predict")
       for n in (1, 4) for tail, extra in (("", []), ("-shadow", ["--shadow", "iris:candidate"]))},
    **{f"mlflow-{n}": ([str(MLFLOW / "mlflow"), "models", "serve", "-m", "{mlflow_model}",
                        "--env-manager", "local", "-h", "127.0.0.1", "-p", "{port}",
                        "--workers", str(n)], "/ping", "/invocations")
       for n in (1, 4)},
}


def run(name: str, root: Path, mlflow_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    command, health, predict = SCENARIOS[name]
    port = free_port()
    argv = [a.format(port=port, root=root, mlflow_model=mlflow_dir) for a in command]
    # mlflow starts `uvicorn` by name: its venv's, first on PATH
    env = child_env() | {"PATH": f"{MLFLOW}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_ready(port, proc, health)
        load(port, predict, 1, 200, 5, args.rows)  # warm-up (every worker, with luck)
        result = load(port, predict, args.threads, args.requests, args.seconds, args.rows)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"scenario": name, "threads": args.threads, "rows": args.rows} | {
        k: round(v, 2) for k, v in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--only", default="", help="comma-separated scenarios "
                        f"(default: all of {', '.join(SCENARIOS)})")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    if not (MLFLOW / "mlflow").exists():
        print(f"no {MLFLOW / 'mlflow'} (run bench/peers.sh): MLflow left out", file=sys.stderr)
        names = [n for n in names if not n.startswith("mlflow")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_repo(root)
        mlflow_dir = Path(tmp) / "mlflow-model"
        if any(n.startswith("mlflow") for n in names):
            mlflow_model(root, mlflow_dir)
        for name in names:
            results.append(run(name, root, mlflow_dir, args))
            print(json.dumps(results[-1]), flush=True)
    print("\n| scenario | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['scenario']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")


if __name__ == "__main__":
    main()
