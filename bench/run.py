"""Time moma against DVC, back to back, on the data sets built by bench/datasets.py.

Each scenario runs the tools alternately (moma, dvc, moma, dvc, ...) so machine noise hits
both alike; the table shows whole-process wall-clock medians and the moma/DVC ratio.
DVC is used when bench/peers.sh has created bench/.work/peers-venv.

Usage: python bench/run.py [-n REPS] [--only S1,S2,...] [--tools moma,dvc] [--runs DIR]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import shaped_s3

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
WORK = datasets.WORK
RUNS = WORK / "runs"
PEERS = WORK / "peers-venv" / "bin"
# moto accepts any credentials; set before the tools copy the environment.
for _var, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_var, _value)


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    max_rss_kib: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one process (and the children it waited for)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    # status exits 1 when something changed (S4): that is the expected answer, not a failure.
    if proc.returncode != 0 and not (proc.returncode == 1 and "status" in cmd):
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}: {err[-2000:]}")
    return elapsed, usage.ru_maxrss


def sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)


# -- tools -------------------------------------------------------------------------------------


class Tool:
    name = ""
    exe: list[str] = []
    env: dict[str, str] | None = None
    meta_dir = ""
    ptr_suffix = ""

    def init(self, repo: Path) -> None:
        raise NotImplementedError

    def reset(self, repo: Path, target: str) -> None:
        """Forget everything about `target` so the next add starts from an empty cache."""
        raise NotImplementedError

    def add(self, target: str) -> list[str]:
        return [*self.exe, "add", target]

    def status(self) -> list[str]:
        return [*self.exe, "status"]

    def help(self) -> list[str]:
        return [*self.exe, "--help"]

    def can_transfer(self) -> bool:
        return True

    def prefer_hardlinks(self, repo: Path) -> None:
        raise NotImplementedError

    def add_remote(self, repo: Path, url: str, endpoint: str | None) -> None:
        raise NotImplementedError

    def commit_hardlinks(self, repo: Path) -> None:
        """cache.type hardlink,copy in the committed configuration, so clones use it too."""
        raise NotImplementedError

    def push(self) -> list[str]:
        return [*self.exe, "push"]

    def clone_and_pull(self, origin: Path, dest: Path) -> list[str]:
        """One timed shell: a fresh clone, then pull everything into an empty cache."""
        exe = " ".join(self.exe)
        return ["sh", "-c", f"git clone -q '{origin}' '{dest}' && cd '{dest}' && {exe} pull"]


class Moma(Tool):
    name = "moma"
    exe = [sys.executable, "-m", "moma_cli"]
    ptr_suffix = ".moma"

    def __init__(self, src: Path = SRC, name: str = "moma") -> None:
        # Run a snapshot of src/, so editing the tree during a long run cannot mix versions.
        # Another tree (`src`, e.g. main's) is timed as another tool, for a before/after.
        self.name = name
        snapshot = RUNS / f".{name}-src"  # per --runs: two runs side by side keep theirs
        _rm(snapshot)
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, snapshot, ignore=shutil.ignore_patterns("__pycache__"))
        # Byte-compile as pip install does: with PYTHONDONTWRITEBYTECODE set, every run
        # would otherwise compile moma from source while DVC's .pyc files exist.
        sh([sys.executable, "-m", "compileall", "-q", str(snapshot)], HERE)
        self.env = {**os.environ, "PYTHONPATH": str(snapshot)}

    def init(self, repo: Path) -> None:
        sh(self.exe + ["init"], repo, self.env)

    def can_transfer(self) -> bool:
        probe = subprocess.run([*self.exe, "push", "--help"], env=self.env,
                               capture_output=True)
        return probe.returncode == 0

    def prefer_hardlinks(self, repo: Path) -> None:
        (repo / ".moma.local.yaml").write_text("cache:\n  type: hardlink,copy\n")

    def commit_hardlinks(self, repo: Path) -> None:
        import yaml

        config = repo / ".moma.yaml"
        doc = yaml.safe_load(config.read_text()) or {}
        doc.setdefault("cache", {})["type"] = "hardlink,copy"
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        sh(["git", "commit", "-qam", "hardlinks"], repo)

    def add_remote(self, repo: Path, url: str, endpoint: str | None) -> None:
        sh([*self.exe, "remote", "add", "bench", url, "--default"], repo, self.env)
        if endpoint:
            sh([*self.exe, "remote", "modify", "bench", "endpointurl", endpoint], repo, self.env)

    def reset(self, repo: Path, target: str) -> None:
        for sub in ("cache", "state.db", "state.db-wal", "state.db-shm"):
            _discard(repo / ".moma" / sub)
        _discard(repo / (target + ".moma"))
        _make_writable(repo / target)


class Dvc(Tool):
    name = "dvc"
    exe = [str(PEERS / "dvc")]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    ptr_suffix = ".dvc"

    def init(self, repo: Path) -> None:
        sh(self.exe + ["init", "-q"], repo, self.env)
        sh(self.exe + ["config", "core.analytics", "false"], repo, self.env)
        sh(self.exe + ["config", "core.check_update", "false"], repo, self.env)

    def reset(self, repo: Path, target: str) -> None:
        for sub in ("cache", "tmp"):
            _discard(repo / ".dvc" / sub)
        _discard(repo / (target + ".dvc"))

    def help(self) -> list[str]:
        return [*self.exe, "--version"]

    def prefer_hardlinks(self, repo: Path) -> None:
        sh([*self.exe, "config", "cache.type", "hardlink,copy"], repo, self.env)

    def commit_hardlinks(self, repo: Path) -> None:
        self.prefer_hardlinks(repo)  # .dvc/config is committed
        sh(["git", "commit", "-qam", "hardlinks"], repo)

    def add_remote(self, repo: Path, url: str, endpoint: str | None) -> None:
        sh([*self.exe, "remote", "add", "-f", "-d", "bench", url], repo, self.env)
        if endpoint:
            sh([*self.exe, "remote", "modify", "bench", "endpointurl", endpoint], repo, self.env)


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        _make_writable(path)
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# What a repetition leaves (a cache, a clone, a remote) is moved to a trash directory, not
# deleted, and deleted when the run ends. On ext4 without a journal (this VM), the kernel
# skips inodes freed in the last 5-35 s when it allocates new ones (ialloc.c
# recently_deleted): deleting 10k files right before a timed command made that command's
# file creations 5-30x slower (0.03 against 0.2-0.8 ms each), for whichever tool came next.
def _disk_activity() -> int:
    """Sectors written plus discarded so far, over all block devices (/proc/diskstats)."""
    total = 0
    with open("/proc/diskstats") as fh:
        for line in fh:
            fields = line.split()
            total += int(fields[9]) + (int(fields[16]) if len(fields) > 16 else 0)
    return total


def settle_disk(quiet_for: float = 1.0, limit: float = 60.0) -> None:
    """Wait until the disk has written and discarded nothing for `quiet_for` seconds.

    The filesystem here is mounted with `discard`: deleting a 1 GiB clone sends TRIMs that
    kept the virtual disk busy for tens of seconds, and a 1 GiB add timed meanwhile took
    40 s instead of 0.8 s."""
    if not os.path.exists("/proc/diskstats"):
        return
    deadline = time.monotonic() + limit
    last = _disk_activity()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = _disk_activity()
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_for:
            return


def _trash() -> Path:
    return RUNS / ".trash"  # beside the runs: renames never cross filesystems


def _discard(path: Path) -> None:
    if path.exists() or path.is_symlink():
        _trash().mkdir(parents=True, exist_ok=True)
        path.rename(_trash() / f"{time.monotonic_ns()}-{path.name}")


def _empty_trash(settle: float = 0.0) -> None:
    if _trash().exists():
        _rm(_trash())
        os.sync()
        settle_disk()
        time.sleep(settle)  # let the freed inodes age (see _discard)


def _make_writable(path: Path) -> None:
    if path.is_dir():
        sh(["chmod", "-R", "u+w", str(path)], path.parent)
    elif path.exists():
        path.chmod(0o644)


# -- the local S3 server (moto), for S5s / S6s / S5b / S6b ---------------------------------

S3_BUCKET = "moma-bench"
S3_PORT = "5599"
_s3_server: subprocess.Popen[bytes] | None = None


def s3_endpoint() -> str:
    return f"http://127.0.0.1:{S3_PORT}"


def s3_start() -> None:
    """Start moto's S3 server on loopback (once; stopped when the run ends), and the bucket."""
    global _s3_server
    if _s3_server is None:
        # moto under uvicorn, answering ranged GETs from the range as S3 does (plain moto
        # reads the whole object for each), unshaped: bench/shaped_s3.py.
        _s3_server = shaped_s3.start_moto(int(S3_PORT))
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint())
    if S3_BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=S3_BUCKET)


def s3_wipe() -> None:
    import boto3

    bucket = boto3.resource("s3", endpoint_url=s3_endpoint()).Bucket(S3_BUCKET)
    bucket.objects.all().delete()


# -- repositories ------------------------------------------------------------------------------


def fresh_repo(tool: Tool, name: str, data: dict[str, Path], *wanted: str) -> Path:
    repo = RUNS / tool.name / name
    _discard(repo)
    repo.mkdir(parents=True)
    sh(["git", "init", "-q"], repo)
    sh(["git", "config", "user.email", "bench@example.com"], repo)
    sh(["git", "config", "user.name", "bench"], repo)
    tool.init(repo)
    for key in wanted:
        src = data[key]
        if src.is_dir():
            sh(["cp", "-r", str(src), str(repo / src.name)], repo)
        else:
            sh(["cp", str(src), str(repo / src.name)], repo)
    return repo


# -- scenarios ---------------------------------------------------------------------------------


@dataclass
class Scenario:
    id: str
    title: str
    reps: int
    # prepare(tool) -> repo, once per tool; before(tool, repo, rep) untimed; command(tool)
    prepare: Callable[[Tool], Path]
    command: Callable[[Tool], list[str]]
    before: Callable[[Tool, Path, int], None] = lambda tool, repo, rep: None


def scenarios(data: dict[str, Path], reps: int) -> list[Scenario]:
    big, s10k, s100k = data["big"].name, data["small10k"].name, data["small100k"].name
    repos: dict[tuple[str, str], Path] = {}

    def repo_for(key: str, *sets: str) -> Callable[[Tool], Path]:
        def make(tool: Tool) -> Path:
            if (tool.name, key) not in repos:
                repos[tool.name, key] = fresh_repo(tool, key, data, *sets)
            return repos[tool.name, key]
        return make

    def hardlinked(key: str, *sets: str) -> Callable[[Tool], Path]:
        def make(tool: Tool) -> Path:
            fresh = (tool.name, key) not in repos
            repo = repo_for(key, *sets)(tool)
            if fresh:
                tool.prefer_hardlinks(repo)
            return repo
        return make

    def reset(target: str) -> Callable[[Tool, Path, int], None]:
        return lambda tool, repo, rep: tool.reset(repo, target)

    def both_added(tool: Tool) -> Path:
        repo = repo_for("status", "big", "small10k")(tool)
        for target in (big, s10k):
            if not (repo / (target + tool.ptr_suffix)).exists():
                sh(tool.add(target), repo, tool.env)
        return repo

    def touch_one(tool: Tool, repo: Path, rep: int) -> None:
        path = repo / s10k / "d0042" / "f004217.bin"
        path.chmod(0o644)
        path.write_bytes(f"modified {rep} {time.time()}\n".encode() * 100)

    def remote_repo(key: str, targets: tuple[str, ...], s3: bool) -> Callable[[Tool], Path]:
        """A committed repo with `targets` added and a remote 'bench' set as default."""
        def make(tool: Tool) -> Path:
            if (tool.name, key) in repos:
                return repos[tool.name, key]
            sets = [k for k, v in data.items() if v.name in targets]
            repo = fresh_repo(tool, key, data, *sets)
            for target in targets:
                sh(tool.add(target), repo, tool.env)
            local = str(RUNS / tool.name / f"{key}-remote")
            url = f"s3://{S3_BUCKET}/{tool.name}-{key}" if s3 else local
            tool.add_remote(repo, url, s3_endpoint() if s3 else None)
            sh(["git", "add", "-A"], repo)
            sh(["git", "commit", "-qm", "bench data"], repo)
            repos[tool.name, key] = repo
            return repo
        return make

    def hardlinked_remote(key: str, targets: tuple[str, ...]) -> Callable[[Tool], Path]:
        """remote_repo with hardlinks preferred, committed: clones check out by hardlink."""
        def make(tool: Tool) -> Path:
            fresh = (tool.name, key) not in repos
            repo = remote_repo(key, targets, False)(tool)
            if fresh:
                tool.commit_hardlinks(repo)
            return repo
        return make

    def empty_remote(s3: bool) -> Callable[[Tool, Path, int], None]:
        def before(tool: Tool, repo: Path, rep: int) -> None:
            if s3:
                s3_wipe()
            else:
                _discard(RUNS / tool.name / f"{repo.name}-remote")
        return before

    def pushed(make: Callable[[Tool], Path]) -> Callable[[Tool], Path]:
        def prepare(tool: Tool) -> Path:
            repo = make(tool)
            sh(tool.push(), repo, tool.env)  # untimed; uploads only what the remote lacks
            return repo
        return prepare

    def fresh_clone(tool: Tool, repo: Path, rep: int) -> None:
        _discard(RUNS / tool.name / f"{repo.name}-clone")

    def pull(key: str) -> Callable[[Tool], list[str]]:
        return lambda tool: tool.clone_and_pull(repos[tool.name, key],
                                                RUNS / tool.name / f"{key}-clone")

    transfer = [
        Scenario("S5", "push 1 GiB + 10k files to a local-directory remote", min(reps, 3),
                 remote_repo("xfer", (big, s10k), False), lambda t: t.push(),
                 empty_remote(False)),
        Scenario("S6", "fresh clone + pull 1 GiB + 10k files (local remote)", min(reps, 3),
                 pushed(remote_repo("xfer", (big, s10k), False)), pull("xfer"), fresh_clone),
        Scenario("S6h", "S6 with cache.type hardlink,copy (both tools): one write per byte",
                 min(reps, 3), pushed(hardlinked_remote("xfer-hl", (big, s10k))),
                 pull("xfer-hl"), fresh_clone),
        Scenario("S5s", "push the 10k dir to S3 (moto)", min(reps, 3),
                 remote_repo("s3small", (s10k,), True), lambda t: t.push(), empty_remote(True)),
        Scenario("S6s", "fresh clone + pull the 10k dir from S3 (moto)", min(reps, 3),
                 pushed(remote_repo("s3small", (s10k,), True)), pull("s3small"), fresh_clone),
        Scenario("S5b", "push the 1 GiB file to S3 (moto)", min(reps, 3),
                 remote_repo("s3big", (big,), True), lambda t: t.push(), empty_remote(True)),
        Scenario("S6b", "fresh clone + pull the 1 GiB file from S3 (moto)", min(reps, 3),
                 pushed(remote_repo("s3big", (big,), True)), pull("s3big"), fresh_clone),
    ]
    return [
        Scenario("help", "--help (DVC: --version)", reps, repo_for("main", "big", "small10k"),
                 lambda t: t.help()),
        Scenario("S1", "add a 1 GiB file (empty cache)", min(reps, 3),
                 repo_for("main", "big", "small10k"), lambda t: t.add(big), reset(big)),
        Scenario("S3", "add a dir of 10,000 x 4 KiB", min(reps, 3),
                 repo_for("main", "big", "small10k"), lambda t: t.add(s10k), reset(s10k)),
        Scenario("S7", "re-add an unchanged 10k dir", reps, both_added, lambda t: t.add(s10k)),
        Scenario("S2", "status, nothing changed", reps, both_added, lambda t: t.status()),
        Scenario("S4", "status, 1 of 10k files modified", reps, both_added,
                 lambda t: t.status(), touch_one),
        Scenario("S3L", "add a dir of 100,000 x 1 KiB", min(reps, 3),
                 repo_for("large", "small100k"), lambda t: t.add(s100k), reset(s100k)),
        Scenario("S3h", "S3 with cache.type hardlink,copy (both tools)", min(reps, 3),
                 hardlinked("hl", "small10k"), lambda t: t.add(s10k), reset(s10k)),
        Scenario("S3Lh", "S3L with cache.type hardlink,copy (both tools)", min(reps, 3),
                 hardlinked("hl-large", "small100k"), lambda t: t.add(s100k), reset(s100k)),
        *transfer,
    ]


def run(selected: list[Scenario], tools: list[Tool],
        results: dict[tuple[str, str], Timing]) -> None:
    """Time the scenarios into `results` (kept for the table if a later scenario fails)."""
    for sc in selected:
        if sc.id.startswith(("S5", "S6")):
            if not all(tool.can_transfer() for tool in tools):
                print(f"{sc.id}: skipped, 'moma push' does not exist yet", file=sys.stderr)
                continue
            if sc.id.endswith(("s", "b")):
                s3_start()
        repos = {tool.name: sc.prepare(tool) for tool in tools}
        for rep in range(sc.reps):
            for tool in tools:
                repo = repos[tool.name]
                sc.before(tool, repo, rep)
                # Flush what the previous run left dirty (DVC does not fsync its cache), so
                # nobody's timed sync pays for another tool's writes.
                os.sync()
                settle_disk()
                seconds, rss = timed(sc.command(tool), repo, tool.env)
                t = results.setdefault((sc.id, tool.name), Timing())
                t.seconds.append(seconds)
                t.max_rss_kib = max(t.max_rss_kib, rss)
                print(f"{sc.id:5} {tool.name:5} rep {rep}: {seconds:7.3f} s  "
                      f"{rss / 1024:6.0f} MiB", file=sys.stderr, flush=True)
        # The trash of a scenario can be gigabytes: gone before the next one starts, and
        # the freed inodes old enough not to slow its file creations (see _discard).
        _empty_trash(settle=40)


def table(selected: list[Scenario], tools: list[Tool],
          results: dict[tuple[str, str], Timing]) -> str:
    names = [t.name for t in tools]
    both = names == ["moma", "dvc"]
    head = "| id | scenario | n | " + " | ".join(f"{n} s" for n in names)
    head += " | moma/dvc |" if both else " |"
    head += " peak RSS " + " / ".join(names) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for sc in selected:
        if (sc.id, names[0]) not in results:
            continue
        cells = [results[sc.id, n] for n in names]
        row = f"| {sc.id} | {sc.title} | {len(cells[0].seconds)} | "
        row += " | ".join(f"{c.median:.3f}" for c in cells)
        if both:
            row += f" | {cells[0].median / cells[1].median:.2f}"
        row += " | " + " / ".join(f"{c.max_rss_kib / 1024:.0f} MiB" for c in cells) + " |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--reps", type=int, default=5)
    parser.add_argument("--only", help="comma-separated scenario ids")
    parser.add_argument("--tools", default="moma,dvc")
    parser.add_argument("--runs", type=Path, default=RUNS,
                        help="where the timed repositories and remotes live (both tools); "
                        "file creation speed depends on the directory (docs/performance.md)")
    args = parser.parse_args()
    RUNS = args.runs.resolve()
    data = datasets.build()
    _empty_trash(settle=40)  # left by an interrupted run
    atexit.register(_empty_trash)
    wanted_tools = args.tools.split(",")
    tools: list[Tool] = [Moma()]
    if "dvc" in wanted_tools and (PEERS / "dvc").exists():
        tools.append(Dvc())
    elif "dvc" in wanted_tools:
        print("DVC not installed (run bench/peers.sh); timing moma only", file=sys.stderr)
    tools = [t for t in tools if t.name in wanted_tools]
    selected = scenarios(data, args.reps)
    if args.only:
        ids = args.only.split(",")
        selected = [s for s in selected if s.id in ids]
    results: dict[tuple[str, str], Timing] = {}
    try:
        run(selected, tools, results)
    finally:
        print(table(selected, tools, results))


if __name__ == "__main__":
    main()
