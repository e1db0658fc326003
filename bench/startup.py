"""Start-up of the commands people and git hooks run often, against `python -c pass`.

Builds a small repository (a tracked file, a model with a quality gate, a script, moma's git
hooks installed), then runs every command below N times, alternating (one of each per
round, so machine noise hits all alike), and prints whole-process wall-clock medians and
the margin over the interpreter alone. The goal (issue 17) is a margin under 50 ms.

    python bench/startup.py [-n 20] [--baseline OTHER/src] [--importtime COMMAND]

`--importtime status` prints the 25 slowest imports of `moma status` (`python -X importtime`)
in that repository instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PY = sys.executable
# As the installed `moma` script runs it: an import of the entry point, no runpy (`-m`
# costs 4 ms more); each source tree's own __main__ calls its own entry point.
MOMA = [PY, "-c", "import moma_cli.__main__"]
STATUS_STDLIB = ("import dataclasses, datetime, fnmatch, hashlib, json, mmap, pathlib, sqlite3, "
                 "subprocess, threading, typing, zlib")
# label -> argv, run in the small repository.
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [PY, "-c", "pass"],
    "python -c 'import typer'": [PY, "-c", "import typer"],
    # The standard library `moma status` loads beyond `python -c pass` (these and what they
    # import: inspect, ast, dis, tokenize, enum, urllib, ipaddress, selectors, ...): the floor
    # of any status written with them.
    "python -c 'import <status's stdlib>'": [PY, "-c", STATUS_STDLIB],
    "moma --help": [*MOMA, "--help"],
    "moma status": [*MOMA, "status"],
    "moma hook pointers (pre-commit)": [*MOMA, "hook", "pointers", "data.csv.moma",
                                        "model.pkl.moma"],
    "moma hook large-files (pre-commit)": [*MOMA, "hook", "large-files", "train.py"],
    "moma check (pre-commit)": [*MOMA, "check"],
    "moma checkout (post-checkout)": [*MOMA, "checkout"],
    "moma hook pre-push (nothing new)": [*MOMA, "hook", "pre-push", "origin", "url"],
}
CONFIG = "models:\n  clf:\n    checks:\n      - accuracy >= 0.8\n"


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, input="", capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")


def small_repo(root: Path, env: dict[str, str]) -> None:
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "Bench"],
                 ["config", "user.email", "bench@example.com"]):
        run(["git", *args], root, env)
    run([*MOMA, "init"], root, env)
    (root / "data.csv").write_text("".join(f"{i},{i * i}\n" for i in range(1000)))
    (root / "model.pkl").write_bytes(os.urandom(4096))
    (root / "train.py").write_text("print('train')\n")
    run([*MOMA, "add", "data.csv"], root, env)
    run([*MOMA, "models:add", "clf", "model.pkl", "--metric", "accuracy=0.9"], root, env)
    with open(root / ".moma.yaml", "a") as config:
        config.write(CONFIG)
    run([*MOMA, "install"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "small repo", "--no-verify"], root, env)
    for command in COMMANDS.values():  # each must succeed before it is timed
        run(command, root, env)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process and the children it waited for:
    on a loaded machine the CPU time says more than the wall clock."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def importtime(root: Path, env: dict[str, str], command: str) -> None:
    proc = subprocess.run([PY, "-X", "importtime", *MOMA[1:], *command.split()],
                          cwd=root, env=env, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        fields = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[0].isdigit():
            rows.append((int(fields[1]), int(fields[0]), fields[2]))
    for cumulative, self_us, name in sorted(rows, reverse=True)[:25]:
        print(f"{cumulative / 1000:8.1f} ms cumulative {self_us / 1000:6.1f} ms self  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="rounds (default 20)")
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="also time this moma source tree (another checkout's src/), "
                             "alternating, to compare before and after")
    parser.add_argument("--importtime", metavar="COMMAND",
                        help="profile the imports of one moma command instead")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="moma-bench-startup-"))
    env = dict(os.environ, PYTHONPATH=str(SRC))
    # Users' interpreters cache bytecode; without it every run compiles moma afresh.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        small_repo(root, env)
        if args.importtime:
            importtime(root, env, args.importtime)
            return
        envs = {"": env}
        if args.baseline:  # the same commands run by another source tree, alternating
            envs["baseline "] = dict(env, PYTHONPATH=str(args.baseline.resolve()))
            for command in COMMANDS.values():  # compile its bytecode before timing
                run(command, root, envs["baseline "])
        runs: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.n):
            for label, cmd in COMMANDS.items():
                for tree, tree_env in envs.items() if cmd[:3] == MOMA else [("", env)]:
                    runs.setdefault(tree + label, []).append(timed(cmd, root, tree_env))
        medians = {label: (statistics.median(w for w, _ in values),
                           statistics.median(c for _, c in values))
                   for label, values in runs.items()}
        wall0, cpu0 = medians["python -c pass"]
        print(f"medians of {args.n} alternating runs, in ms")
        print(f"{'command':<47} {'wall':>7} {'+python':>8} {'cpu':>7} {'+python':>8}")
        for label, (wall, cpu) in medians.items():
            print(f"{label:<47} {wall * 1000:7.1f} {(wall - wall0) * 1000:+8.1f} "
                  f"{cpu * 1000:7.1f} {(cpu - cpu0) * 1000:+8.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
