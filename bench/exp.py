"""Benchmark experiments: a 16-run sweep, and `moma exp show` over 1,000 experiments.

Sweep: a 3-stage scikit-learn pipeline (prepare a data set, train a random forest, evaluate
it), committed and run once, then a 4x4 grid over train.n_estimators and train.max_depth
(16 runs; prepare stays cached, train and evaluate run in each). Timed, whole processes,
each on a fresh copy of the same project:

- moma serial:       moma exp run -S ... -S ...
- moma queue -j 2:   moma exp run --queue ... && moma exp queue start -j 2
- moma dask-local:   the same with --executor dask-local (a 2-process LocalCluster)
- dvc queue -j 2:    dvc exp run --queue -S ... && dvc queue start -j 2, then waiting for
                     the queue to drain (`dvc queue status` every 0.5 s)

DVC is the real dvc 3.67.1 in the venv tests/realtools.py::tool_venv builds under /tmp (or
DVC_BIN=/path/to/dvc, e.g. bench/.work/peers-venv/bin/dvc from bench/peers.sh). Every
stage command runs this Python (which has scikit-learn), for both tools.

Show: a base commit and 1,000 experiment refs on it, made in one `git fast-import` stream
(each commit's message carries 2 params and 2 metrics as trailers, as `moma exp run`
writes them), then `moma exp show`, `--json` and `--csv` as processes (median of 5).

    python bench/exp.py [--only sweep,show] [--tools moma,dvc] [--experiments 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml  # moma's venv, which runs this, has PyYAML and scikit-learn

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
PY = sys.executable
DVC_VERSION = "3.67.1"
GRID = ["-S", "train.n_estimators=10,20,30,40", "-S", "train.max_depth=2,4,6,8"]
EPOCH = 1_756_700_000
PYCACHE = Path(tempfile.gettempdir()) / "moma-bench-pycache"

PREPARE = """
import numpy as np, yaml
from sklearn.datasets import make_classification
p = yaml.safe_load(open("params.yaml"))["prepare"]
X, y = make_classification(n_samples=p["samples"], n_features=20, random_state=p["seed"])
np.savez("data.npz", X=X, y=y)
"""
TRAIN = """
import pickle, numpy as np, yaml
from sklearn.ensemble import RandomForestClassifier
p = yaml.safe_load(open("params.yaml"))["train"]
d = np.load("data.npz")
model = RandomForestClassifier(n_estimators=p["n_estimators"], max_depth=p["max_depth"],
                               random_state=0, n_jobs=1).fit(d["X"][:1500], d["y"][:1500])
pickle.dump(model, open("model.pkl", "wb"))
"""
EVALUATE = """
import json, pickle, numpy as np
from sklearn.metrics import accuracy_score, f1_score
d = np.load("data.npz")
model = pickle.load(open("model.pkl", "rb"))
pred = model.predict(d["X"][1500:])
json.dump({"accuracy": accuracy_score(d["y"][1500:], pred),
           "f1": f1_score(d["y"][1500:], pred)}, open("metrics.json", "w"))
"""
PARAMS = "prepare:\n  samples: 2000\n  seed: 1\ntrain:\n  n_estimators: 10\n  max_depth: 2\n"


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def moma_env() -> dict[str, str]:
    """moma from this tree, with its bytecode cached as an installed package has it (outside
    the tree; a PYTHONDONTWRITEBYTECODE environment would compile every module each run)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def moma(cwd: Path, *args: str) -> str:
    return run([PY, "-m", "moma_cli", *args], cwd, moma_env())


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd)


def _sources(root: Path) -> None:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Bench")
    git(root, "config", "user.email", "bench@example.com")
    for name, text in (("prepare.py", PREPARE), ("train.py", TRAIN),
                       ("evaluate.py", EVALUATE), ("params.yaml", PARAMS)):
        (root / name).write_text(text)


def moma_project(root: Path) -> None:
    """The pipeline as moma stages, run once and committed."""
    _sources(root)
    moma(root, "init")
    stages = {
        "prepare": {"cmd": f"{PY} prepare.py", "deps": ["prepare.py"],
                    "params": ["params.yaml:prepare"], "outs": ["data.npz"]},
        "train": {"cmd": f"{PY} train.py", "deps": ["train.py", "data.npz"],
                  "params": ["params.yaml:train"], "outs": ["model.pkl"]},
        "evaluate": {"cmd": f"{PY} evaluate.py", "deps": ["evaluate.py", "data.npz",
                                                          "model.pkl"],
                     "metrics": ["metrics.json"]},
    }
    config = root / ".moma.yaml"
    doc = yaml.safe_load(config.read_text()) or {}
    config.write_text(yaml.safe_dump({**doc, "stages": stages}, sort_keys=False))
    moma(root, "repro")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "pipeline")


def dvc_project(root: Path, dvc: str) -> None:
    """The same pipeline as DVC stages, run once and committed."""
    _sources(root)
    run([dvc, "init", "-q"], root, dvc_env(dvc))
    stages = {
        "prepare": {"cmd": f"{PY} prepare.py", "deps": ["prepare.py"],
                    "params": ["prepare"], "outs": ["data.npz"]},
        "train": {"cmd": f"{PY} train.py", "deps": ["train.py", "data.npz"],
                  "params": ["train"], "outs": ["model.pkl"]},
        "evaluate": {"cmd": f"{PY} evaluate.py", "deps": ["evaluate.py", "data.npz",
                                                          "model.pkl"],
                     "metrics": [{"metrics.json": {"cache": False}}]},
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    run([dvc, "repro", "-q"], root, dvc_env(dvc))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "pipeline")


def timed(label: str, steps: list[tuple[list[str], dict[str, str] | None]], cwd: Path,
          wait: list[str] | None = None) -> float:
    start = time.perf_counter()
    for cmd, env in steps:
        run(cmd, cwd, env)
    if wait is not None:
        _drain_dvc_queue(wait, cwd)
    seconds = time.perf_counter() - start
    print(f"  {label:<22} {seconds:7.1f} s", flush=True)
    return seconds


def _drain_dvc_queue(status: list[str], cwd: Path) -> None:
    """`dvc queue start` returns at once; its workers run in the background."""
    deadline = time.monotonic() + 1800
    idle = 0  # polls in a row with work queued and no worker (a worker that died at start)
    while time.monotonic() < deadline:
        out = run(status, cwd, dvc_env(status[0]))
        idle = idle + 1 if "0 active, 0 idle" in out and "Queued" in out else 0
        if idle > 20:
            raise RuntimeError(f"dvc queue: no worker is running:\n{out}")
        if not any(word in out for word in ("Queued", "Running")):
            if "Failed" in out:
                raise RuntimeError(f"dvc queue: a run failed:\n{out}")
            return
        time.sleep(0.5)
    raise RuntimeError("dvc queue did not drain in 30 minutes")


def dvc_env(dvc: str) -> dict[str, str]:
    """`dvc queue start` spawns its workers as `dvc` from PATH; no analytics daemon."""
    return {**os.environ, "PATH": f"{Path(dvc).parent}:{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1"}


def sweep(work: Path, tools: list[str]) -> dict[str, float]:
    print("Sweep: 16 runs of a 3-stage scikit-learn pipeline", flush=True)
    figures: dict[str, float] = {}
    if "moma" in tools:
        figures.update(_moma_sweep(work))
    if "dvc" in tools:
        figures.update(_dvc_sweep(work, dvc_bin()))
    return figures


def _moma_sweep(work: Path) -> dict[str, float]:
    template = work / "moma-template"
    moma_project(template)
    figures: dict[str, float] = {}
    cli = [PY, "-m", "moma_cli"]
    env = moma_env()
    scenarios = {
        "moma serial": [(cli + ["exp", "run", *GRID, "-n", "s"], env)],
        "moma queue -j 2": [(cli + ["exp", "run", "--queue", *GRID, "-n", "q"], env),
                            (cli + ["exp", "queue", "start", "-j", "2"], env)],
        "moma dask-local -j 2": [(cli + ["exp", "run", "--queue", *GRID, "-n", "d"], env),
                                 (cli + ["exp", "queue", "start", "-j", "2", "--executor",
                                         "dask-local"], env)],
    }
    for label, steps in scenarios.items():
        copy = work / label.replace(" ", "_")
        shutil.copytree(template, copy, symlinks=True)
        figures[label] = timed(label, steps, copy)
        shown = json.loads(moma(copy, "exp", "show", "--json"))
        assert len(shown) == 16 and all(e["metrics"] for e in shown), label
    return figures


def _dvc_sweep(work: Path, dvc: str) -> dict[str, float]:
    env = dvc_env(dvc)
    template = work / "dvc-template"
    dvc_project(template, dvc)
    copy = work / "dvc_queue"
    shutil.copytree(template, copy, symlinks=True)
    figures = {"dvc queue -j 2": timed(
        "dvc queue -j 2", [([dvc, "exp", "run", "--queue", *GRID], env),
                           ([dvc, "queue", "start", "-j", "2"], env)], copy,
        wait=[dvc, "queue", "status"])}
    shown = json.loads(run([dvc, "exp", "show", "--json"], copy, env))
    count = sum(len(rev.get("experiments") or []) for rev in shown)
    assert count == 16, f"dvc recorded {count} experiments"
    run([dvc, "queue", "stop"], copy, env)
    return figures


def _trailer_stream(base: str, count: int) -> bytes:
    out = bytearray()
    for i in range(count):
        when = EPOCH + i
        message = (f"moma exp e{i}\n\nMoma-Param: params.yaml:train.lr={i / 1000}\n"
                   f"Moma-Param: params.yaml:train.depth={i % 10}\n"
                   f"Moma-Metric: metrics.json:accuracy={0.5 + i / 4000}\n"
                   f"Moma-Metric: metrics.json:f1={0.4 + i / 5000}\n"
                   f"Moma-Duration: 1.250\nMoma-Exit: 0\n").encode()
        out += (f"commit refs/moma/exps/{base}/e{i}\n"
                f"committer Bench <bench@example.com> {when} +0000\n"
                f"data {len(message)}\n").encode() + message + f"from {base}\n\n".encode()
    return bytes(out)


def show(work: Path, count: int) -> dict[str, float]:
    print(f"exp show with {count} experiments (median of 5 processes)", flush=True)
    root = work / "show"
    _sources(root)
    moma(root, "init")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    base = git(root, "rev-parse", "HEAD").strip()
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, check=True,
                   input=_trailer_stream(base, count))
    assert len(json.loads(moma(root, "exp", "show", "--json"))) == count
    figures = {}
    for args in ([], ["--json"], ["--csv"]):
        wall, cpu = [], []
        for _ in range(5):
            start = time.perf_counter()
            proc = subprocess.Popen([PY, "-m", "moma_cli", "exp", "show", *args], cwd=root,
                                    env=moma_env(), stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            wall.append(time.perf_counter() - start)
            cpu.append(usage.ru_utime + usage.ru_stime)
            assert os.waitstatus_to_exitcode(status) == 0
        label = " ".join(["moma exp show", *args])
        figures[label] = statistics.median(wall)
        print(f"  {label:<22} {figures[label]:7.3f} s wall, {statistics.median(cpu):.3f} s CPU",
              flush=True)
    return figures


def dvc_bin() -> str | None:
    if os.environ.get("DVC_BIN"):
        return os.environ["DVC_BIN"]
    sys.path.insert(0, str(HERE.parent / "tests"))
    from realtools import tool_venv  # the venv the DVC interop tests use

    return str(tool_venv("dvc", DVC_VERSION) / "dvc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="sweep,show")
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--tools", default="moma,dvc", help="for the sweep")
    parser.add_argument("--keep", type=Path, help="build under DIR and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="moma-bench-exp-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        only = args.only.split(",")
        if "sweep" in only:
            sweep(work, args.tools.split(","))
        if "show" in only:
            show(work, args.experiments)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
