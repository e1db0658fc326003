"""The layering in docs/architecture.md, checked from the imports each module makes."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import Moma, configure, register_model

PKG = Path(__file__).resolve().parents[1] / "src" / "moma_cli"

# layer -> layers it may import from
ALLOWED = {
    "api": {"services", "core", "storage", "atomic", "errors"},
    "cli": {"cli", "services", "errors", "core", "config", "credentials", "atomic"},
    "services": {"services", "core", "storage", "gitrepo", "config", "config_keys", "atomic",
                 "yamlio", "credentials", "errors"},
    "storage": {"storage", "core", "config", "atomic", "yamlio", "credentials", "errors"},
    "gitrepo": {"errors"},
    "config": {"core", "atomic", "yamlio", "credentials", "errors"},
    "config_keys": {"yamlio", "credentials", "errors"},
    "core": {"core", "yamlio", "errors"},
    "atomic": set(),
    "credentials": set(),
    "yamlio": {"errors"},
    "errors": set(),
}
ONLY_IMPORTER = {"rich": "cli/render.py", "git": "gitrepo/clone.py", "s3fs": "storage/fs.py",
                 "starlette": "services/serving/app.py", "uvicorn": "services/serving/running.py",
                 "skops": "services/model_loading.py",
                 "onnxruntime": "services/model_loading.py",
                 "distributed": "services/pipeline/executors.py",
                 "dask": "services/pipeline/executors.py",
                 "vl_convert": "services/plots.py",
                 "papermill": "services/pipeline/notebook.py",
                 "nbformat": "services/pipeline/notebook.py",
                 "jupyter_client": "services/pipeline/notebook.py"}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def test_tests_mirror_the_package_tree() -> None:
    """A test file lives in the directory of the package it tests (tests/services/serving/
    for services/serving/), so a newcomer finds a module's tests where the module is."""
    tests = PKG.parents[1] / "tests"
    dirs = {p.relative_to(tests) for p in tests.rglob("*") if p.is_dir()
            and p.name != "__pycache__" and "__pycache__" not in p.parts}
    assert [d for d in sorted(dirs) if not (PKG / d).is_dir()] == []


def test_architecture_md_names_every_module() -> None:
    """docs/architecture.md is the newcomer's map: a module it does not name is a room
    nobody was told about."""
    text = (PKG.parents[1] / "docs" / "architecture.md").read_text()
    unnamed = [p.relative_to(PKG).as_posix() for p in sorted(PKG.rglob("*.py"))
               if p.name not in ("__init__.py", "__main__.py")
               and not re.search(rf"\b{re.escape(p.stem)}\b", text)]
    assert unnamed == []


def test_every_module_has_a_layer() -> None:
    layers = {layer_of(p) for p in PKG.rglob("*.py")} - {"__init__", "__main__"}
    assert sorted(layers - ALLOWED.keys()) == []


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_layers_import_only_downwards() -> None:
    problems = []
    for path in PKG.rglob("*.py"):
        layer = layer_of(path)
        if layer not in ALLOWED:
            continue
        for name in imports_of(path):
            if name.startswith("moma_cli."):
                target = name.split(".")[1]
                if target not in ALLOWED[layer] and target != layer:
                    problems.append(f"{path.relative_to(PKG)} imports {name}")
    assert problems == []


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, at any depth of the file: an import inside a
    function still runs, so hiding a loop in one does not end it."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("moma_cli"):
                for alias in node.names:  # `from pkg import module` imports the module
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in modules)
        graph[name] = (targets & modules.keys()) - {name, "moma_cli"}
    return graph


def cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A shortest import path from `start` back to itself, if there is one."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for target in sorted(graph[current]):
            if target == start:
                return paths[current] + [start]
            if target not in paths:
                paths[target] = paths[current] + [target]
                queue.append(target)
    return None


def test_no_import_loops() -> None:
    graph = import_graph()
    assert len(graph) > 80  # the walk found the package
    loops = {" -> ".join(c) for name in graph if (c := cycle_from(graph, name))}
    assert sorted(loops) == []


def test_heavy_libraries_have_one_importer() -> None:
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in ONLY_IMPORTER:
                assert rel == ONLY_IMPORTER[top], f"{rel} imports {top}"


def test_cli_import_stays_light() -> None:
    code = ("import sys, moma_cli.cli.app; "
            "print(' '.join(m for m in ('s3fs', 'fsspec', 'joblib', 'sklearn', 'git', 'rich', "
            "'starlette', 'uvicorn', 'dask', 'distributed', 'papermill', 'nbformat', "
            "'moma_cli.services.data', "
            "'moma_cli.services.serve') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_serve_loads_starlette_only_when_serving() -> None:
    code = ("import sys, moma_cli.services.serve; "
            "print(' '.join(m for m in ('starlette', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


# Modules each command must not load: they cost start-up time and are not needed there.
# The commands are those people type most and those git hooks and pre-commit run on every
# commit, checkout and push (docs/hooks.md); a failing hook prints its error without rich.
HEAVY = ("s3fs", "fsspec", "joblib", "sklearn", "git", "rich", "pydantic", "dask",
         "distributed", "importlib.metadata")
# The commands of cli/fastspec.FAST run without Typer (and the click it vendors), read the
# pointers and config moma wrote without PyYAML (yamlio/canonical.py), and in a blake3
# repository never load OpenSSL (hashlib).
FAST_PATH = ("typer", "typer._click", "yaml", "hashlib")
# The pre-commit checks open no stat cache.
NO_STATE = ("sqlite3",)
TRANSFER = ("moma_cli.services.sync.pushing", "moma_cli.services.sync.remote_status",
            "moma_cli.storage.transfer", "moma_cli.storage.remote", "concurrent.futures")
NOT_LOADED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("--help",): (*HEAVY, "moma_cli.services.data", "moma_cli.services.repo"),
    ("status",): (*HEAVY, *FAST_PATH),
    ("checkout",): (*HEAVY, *FAST_PATH),
    ("hook", "pointers", "data.txt.moma"): (*HEAVY, *TRANSFER, *FAST_PATH,
                                            *NO_STATE),
    ("hook", "pointers", "gone.txt.moma"): (*HEAVY, *TRANSFER, *FAST_PATH,
                                            *NO_STATE),
    ("hook", "large-files", "data.txt", "--max-kb", "1"): (*HEAVY, *TRANSFER, *FAST_PATH,
                                                           *NO_STATE),
    ("hook", "pre-push", "origin", "url"): (*HEAVY, *FAST_PATH),
    ("check", "--json"): (*HEAVY, *FAST_PATH, "moma_cli.services.heal", "moma_cli.services.monitor",
                          "moma_cli.services.pipeline", "urllib.request"),
}


def test_hook_speed_commands_load_nothing_heavy(repo: Moma) -> None:
    """Each command runs through `main()` as the `moma` script does, in a fresh process."""
    (repo.root / "data.txt").write_text("some data\n")
    repo("add", "data.txt")
    register_model(repo, "clf", {"accuracy": 0.9})
    configure(repo, {"clf": {"checks": ["accuracy >= 0.8"]}})
    runner = ("import sys\nfrom moma_cli.cli.fastpath import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    for command, unwanted in NOT_LOADED.items():
        out = subprocess.run([sys.executable, "-c", runner, *command], cwd=repo.root,
                             capture_output=True, text=True, check=True, input="")
        *messages, modules = out.stderr.splitlines()
        assert sorted(set(modules.split()) & set(unwanted)) == [], command
        if command == ("status",):
            assert "Data and pointers are up to date." in out.stdout
        if "gone.txt.moma" in command:  # the error still says what and where
            assert messages[0].startswith("error: gone.txt.moma:"), messages
