"""Benchmark the model registry on a big history.

Builds (with one `git fast-import` stream and `git pack-refs`, in seconds) a repository of
20,000 first-parent commits in which 10,000 change one of 10 models (`model-0` ...
`model-9`, 1,000 versions each), plus 30,000 annotated GTO tags (a semver registration of
every version, then stage assignments), then times `moma models:list`, `models:show
NAME:stage` and `models:log -n 20` as real processes, with a cold registry index (it and
the registry summary deleted before the run) and warm, alternating, medians of --repeat
runs. --commit-graph writes git's commit-graph file first (`git gc` does in real
repositories; fast-import does not). With
GTO_BIN=/path/to/venv/bin/gto it also times `gto show` on the same repository.

    python bench/registry.py [--commits 20000] [--versions 10000] [--models 10]
                             [--tags 30000] [--repeat 5] [--keep DIR] [--baseline SRC]
                             [--commit-graph]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
EPOCH = 1_756_700_000  # 2025-09-01
STAGES = ("production", "staging", "canary")


def pointer(name: str, version: int) -> bytes:
    oid = hashlib.sha256(f"{name} {version}".encode()).hexdigest()
    return (f"moma: 1\nhash: sha256\noid: {oid}\nsize: {1000 + version}\nkind: file\n"
            f"model:\n  name: {name}\n  encoding: joblib\n  algo: DecisionTreeClassifier\n"
            f"  params:\n    max_depth: {version % 12 + 1}\n"
            f"  metrics:\n    accuracy: {0.5 + version / 4000:.4f}\n").encode()


def blob(path: str, data: bytes) -> bytes:
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def fast_import_stream(commits: int, versions: int, models: int, tags: int) -> bytes:
    every = max(1, commits // versions)
    out = bytearray()
    # per model: the marks of the commits that made its versions 1, 2, ...
    made: list[list[int]] = [[] for _ in range(models)]
    made_total = 0
    for i in range(1, commits + 1):
        when = EPOCH + i * 60
        message = f"Commit {i}\n".encode()
        out += (f"commit refs/heads/main\nmark :{i}\n"
                f"author Bench <bench@example.com> {when} +0000\n"
                f"committer Bench <bench@example.com> {when} +0000\n"
                f"data {len(message)}\n").encode() + message
        if i > 1:
            out += f"from :{i - 1}\n".encode()
        if i == 1:
            out += blob(".moma.yaml", b"core:\n  hash: sha256\n")
            out += blob(".gitignore", b"/.moma/\n/.moma.local.yaml\n")
        if i % every == 0 and made_total < versions:
            model = made_total % models
            made[model].append(i)
            made_total += 1
            name = f"model-{model}"
            out += blob(f"models/{name}.joblib.moma", pointer(name, len(made[model])))
        else:
            out += blob("src/train.py", f"# revision {i}\n".encode())
        out += b"\n"
    when = EPOCH + commits * 60
    for t in range(tags):
        # first a semver for every version, oldest first; then stages, cycling over them
        model, number = t % models, t // models % len(made[0])
        mark = made[model][number]
        name = f"model-{model}"
        if t < versions:
            tag, text = f"{name}@v0.{number + 1}.0", "Registering artifact"
        else:
            stage = STAGES[t // models % len(STAGES)]
            tag, text = f"{name}#{stage}#{t // models + 1}", "Assigning stage"
        message = f"{text} '{name}'\n".encode()
        out += (f"tag {tag}\nfrom :{mark}\ntagger Bench <bench@example.com> {when + t} +0000\n"
                f"data {len(message)}\n").encode() + message + b"\n"
    return bytes(out)


def build(root: Path, commits: int, versions: int, models: int, tags: int) -> float:
    start = time.perf_counter()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, check=True,
                   input=fast_import_stream(commits, versions, models, tags))
    subprocess.run(["git", "pack-refs", "--all"], cwd=root, check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=root, check=True)
    (root / ".moma").mkdir(exist_ok=True)
    return time.perf_counter() - start


def timed(cmd: list[str], root: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return elapsed, proc.stdout


def in_process(root: Path, name: str) -> None:
    """The registry work alone, without interpreter start-up and imports."""
    sys.path.insert(0, str(SRC))
    from moma_cli.services.registry import resolving
    from moma_cli.services.repo import open_repo

    repo = open_repo(root)
    forget(root)
    for label, call in (("log, cold index (full read)", lambda: resolving.log(repo, name)),
                        ("log (full read)", lambda: resolving.log(repo, name)),
                        ("list, summary computed", lambda: resolving.list_models(repo)),
                        ("list", lambda: resolving.list_models(repo)),
                        (f"resolve {name}:production",
                         lambda: resolving.resolve(repo, f"{name}:production")),
                        ("log -n 20", lambda: resolving.log(repo, limit=20))):
        start = time.perf_counter()
        call()
        print(f"in-process {label:<36} {time.perf_counter() - start:6.3f} s")


CACHES = ("registry-index.json", "registry-summary.json")


def forget(root: Path) -> None:
    """A cold start: no registry index and no summary."""
    for name in CACHES:
        (root / ".moma" / name).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--tags", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the repository here (or reuse the "
                                                   "one built there) and keep it")
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="also time this moma source tree (another checkout's src/), "
                             "alternating with this one, to compare before and after")
    parser.add_argument("--commit-graph", action="store_true",
                        help="write git's commit-graph file before timing")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="moma-bench-registry-"))
    trees = {"": SRC} | ({"baseline ": args.baseline.resolve()} if args.baseline else {})
    name = "model-0"
    try:
        if not (root / ".git").exists():
            seconds = build(root, args.commits, args.versions, args.models, args.tags)
            print(f"build: {seconds:.2f} s ({args.commits} commits, {args.versions} versions "
                  f"of {args.models} models, {args.tags} tags)")
        graph = root / ".git" / "objects" / "info" / "commit-graph"
        if args.commit_graph and not graph.exists():
            subprocess.run(["git", "commit-graph", "write", "--reachable"], cwd=root, check=True)
        print(f"commit-graph: {'yes' if graph.exists() else 'no'}; load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        moma = [sys.executable, "-m", "moma_cli"]
        commands = {"models:list": [*moma, "models:list"],
                    f"models:show {name}:production":
                        [*moma, "models:show", f"{name}:production"],
                    "models:log -n 20": [*moma, "models:log", "-n", "20"],
                    f"models:log {name} -n 20": [*moma, "models:log", name, "-n", "20"]}
        others = {"python -c pass": [sys.executable, "-c", "pass"]}
        if os.environ.get("GTO_BIN"):
            others["gto show"] = [os.environ["GTO_BIN"], "show"]
        runs: dict[str, list[float]] = {}
        for _ in range(args.repeat):  # alternating: machine noise hits every command alike
            for label, cmd in others.items():
                runs.setdefault(label, []).append(timed(cmd, root, dict(os.environ))[0])
            for label, cmd in commands.items():
                for tree, src in trees.items():
                    env = dict(os.environ, PYTHONPATH=str(src))
                    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run it
                    forget(root)
                    runs.setdefault(f"{tree}{label} (cold index)", []).append(
                        timed(cmd, root, env)[0])
                    runs.setdefault(f"{tree}{label}", []).append(timed(cmd, root, env)[0])
        print(f"medians of {args.repeat} alternating runs; load average now "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for label, values in runs.items():
            print(f"{label:<52} {statistics.median(values):6.3f} s")
        in_process(root, name)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
