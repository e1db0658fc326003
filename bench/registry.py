"""Benchmark the model registry on a big history.

Builds (with one `git fast-import` stream, in seconds) a repository of 5,000 first-parent
commits in which 1,000 change the model `credit-risk`, plus 2,000 annotated GTO tags
(1,000 semver registrations and 1,000 stage assignments), then times `moma models:log`,
`models:list` and `models:show` as real processes, cold (no registry index) and warm.
With GTO_BIN=/path/to/venv/bin/gto it also times `gto show` on the same repository.

    python bench/registry.py [--commits 5000] [--versions 1000] [--tags 2000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
EPOCH = 1_756_700_000  # 2025-09-01
STAGES = ("production", "staging", "canary")


def pointer(version: int) -> bytes:
    oid = hashlib.sha256(f"model {version}".encode()).hexdigest()
    return (f"moma: 1\nhash: sha256\noid: {oid}\nsize: {1000 + version}\nkind: file\n"
            f"model:\n  name: credit-risk\n  encoding: joblib\n  algo: DecisionTreeClassifier\n"
            f"  params:\n    max_depth: {version % 12 + 1}\n"
            f"  metrics:\n    accuracy: {0.5 + version / 4000:.4f}\n").encode()


def blob(path: str, data: bytes) -> bytes:
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def fast_import_stream(commits: int, versions: int, tags: int) -> bytes:
    every = max(1, commits // versions)
    out = bytearray()
    model_commits: list[int] = []
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
        if i % every == 0 and len(model_commits) < versions:
            model_commits.append(i)
            out += blob("models/credit-risk.joblib.moma", pointer(len(model_commits)))
        else:
            out += blob("src/train.py", f"# revision {i}\n".encode())
        out += b"\n"
    for t in range(tags):
        number = t // 2 % len(model_commits)
        mark = model_commits[number]
        when = EPOCH + commits * 60 + t
        if t % 2 == 0:
            name, text = f"credit-risk@v0.{number + 1}.0", "Registering artifact"
        else:
            name = f"credit-risk#{STAGES[t % 3]}#{t + 1}"
            text = "Assigning stage"
        message = f"{text} 'credit-risk'\n".encode()
        out += (f"tag {name}\nfrom :{mark}\ntagger Bench <bench@example.com> {when} +0000\n"
                f"data {len(message)}\n").encode() + message + b"\n"
    return bytes(out)


def build(root: Path, commits: int, versions: int, tags: int) -> float:
    start = time.perf_counter()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, check=True,
                   input=fast_import_stream(commits, versions, tags))
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


def in_process(root: Path) -> None:
    """The registry work alone, without interpreter start-up and imports."""
    sys.path.insert(0, str(SRC))
    from moma_cli.services.registry import resolving
    from moma_cli.services.repo import open_repo

    repo = open_repo(root)
    (root / ".moma" / "registry-index.json").unlink(missing_ok=True)
    for label, call in (("log, cold index", lambda: resolving.log(repo, "credit-risk")),
                        ("log", lambda: resolving.log(repo, "credit-risk")),
                        ("list", lambda: resolving.list_models(repo)),
                        ("resolve credit-risk:production",
                         lambda: resolving.resolve(repo, "credit-risk:production"))):
        start = time.perf_counter()
        call()
        print(f"in-process {label:<36} {time.perf_counter() - start:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="moma-bench-registry-"))
    env = dict(os.environ, PYTHONPATH=str(SRC))
    try:
        print(f"build: {build(root, args.commits, args.versions, args.tags):.2f} s "
              f"({args.commits} commits, {args.versions} versions, {args.tags} tags)")
        moma = [sys.executable, "-m", "moma_cli"]
        baseline, _ = timed([sys.executable, "-c", "import moma_cli.cli.app"], root, env)
        print(f"python + moma import (floor for every command): {baseline:.3f} s")
        (root / ".moma" / "registry-index.json").unlink(missing_ok=True)
        for label, cmd in (("models:log (cold index)", ["models:log", "credit-risk"]),
                           ("models:log", ["models:log", "credit-risk"]),
                           ("models:log --json", ["models:log", "credit-risk", "--json"]),
                           ("models:list", ["models:list"]),
                           ("models:show credit-risk:production",
                            ["models:show", "credit-risk:production"]),
                           ("models:history", ["models:history", "credit-risk", "--json"])):
            elapsed, out = timed(moma + cmd, root, env)
            print(f"moma {label:<38} {elapsed:6.3f} s  ({out.count(chr(10))} lines)")
        in_process(root)
        gto_bin = os.environ.get("GTO_BIN")
        if gto_bin:
            elapsed, _ = timed([gto_bin, "show"], root, env)
            print(f"gto show {'':<34} {elapsed:6.3f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
