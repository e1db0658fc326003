"""Property-based fuzzing of every parser of outside input (Hypothesis).

Outside input is anything a clone, a remote or a tag can carry: pointers, directory
listings, `.moma.yaml` / `.moma.local.yaml`, `moma.lock`, registry tags, metrics and params
files, and the state files under `.moma/` (which a crash, a full disk or a careless `cp`
can leave torn). Two levels:

- unit: the parser functions called directly with generated text or bytes; each returns
  a valid value or raises MomaError, never another exception, in bounded time;
- CLI: a generated file in a real repository, then `status`, `checkout`, `models:list`, ...
  in-process; exit code 0, 1 or 2, at most one `error:` line per bad file, no traceback,
  nothing written outside the repository.

The "ci" profile (tests/conftest.py) keeps this quick; `HYPOTHESIS_PROFILE=long` runs more.
The generated YAML is text, not dumped values: complex keys, tags whose value cannot be
built, floats and booleans where ints belong, huge ints, deep nesting, NUL bytes, unicode,
anchors and aliases, truncation at any point.
"""

from __future__ import annotations

import gc
import io
import json
import re
import sqlite3
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import Moma, register_model, write
from helpers import assert_one_error
from moma_cli import config, yamlio
from moma_cli.core import checks, manifest, params, pointer, refs, stages
from moma_cli.errors import MomaError
from moma_cli.services import lockfile
from moma_cli.services.registry.index import INDEX_VERSION
from moma_cli.services.repo import Repo
from moma_cli.storage.state import StateDB, StatKey

OID = "a" * 64
# Per example, generously: a parser that loops or explodes on its input is far slower.
MAX_SECONDS = 5.0
# Peak Python allocations of one parse of a few KiB: an expansion (an alias bomb, a huge
# repeat) would be far larger.
MAX_BYTES = 64 << 20
# Each CLI example runs whole commands: a fifth of the profile's examples (12 in "ci").
CLI_EXAMPLES = settings(max_examples=max(1, settings.default.max_examples // 5))

# -- YAML-ish text ---------------------------------------------------------------------------

ODD_SCALARS = [
    "1", "0", "-1", "1.0", "1e400", "-.inf", ".nan", "true", "false", "yes", "null", "~", "''",
    "0x1F", "0o17", "1_000", "99999999999999999999999999999999", "2001-01-01",
    "2001-12-14t21:59:43.10-05:00", "!!int 12x", "!!float x", "!!bool maybe",
    "!!timestamp 2001-13-99", "!!binary '!!!'", "!!binary AAAA", "!!set {a, b}",
    "!!omap [a: 1]", "!!pairs [[a, b]]", "!!map [1]", "!!str [1]", "!!null x", "!!merge x",
    "!!python/object/apply:os.system ['false']", "!custom x", "'unterminated", '"\\0"',
    '"\\x00"', '"\\ud800"', "\x00", "\x1b[31m", "é🙂", "\u202e", "../../x", "/etc/passwd",
    "-x", "a" * 64, "A" * 64, "blake3", "sha256", "file", "dir", "&a 1", "*a", "[*a, *a]",
    "[" * 60, "]", "{", "}", "{a: [1, {b: c}]}", "[1, [2, [3, []]]]", "|\n  block",
    ">-\n  folded", "- a\n- b", ": x", "? x", "#", "%YAML 1.1", "---", "...", "@x", "`x",
]
ODD_KEYS = [
    "? [a, b]", "? {a: 1}", "? [[a]]", "1", "1.0", "true", "null", "~", "''", '"a\\0b"',
    "!!binary AAAA", "<<", "&k key", "*k", "? |\n  x", "-", "é", "a b", "..", "0x1",
]
# Keys every moma file has somewhere: pointers, config, lock, metrics.
SCHEMA_KEYS = [
    "moma", "hash", "oid", "size", "kind", "nfiles", "model", "name", "lineage", "meta",
    "core", "remote", "jobs", "cache", "dir", "type", "remotes", "url", "models", "checks",
    "retrain", "every", "stage", "metric", "op", "value", "on_fail", "alerts", "webhook",
    "stages", "cmd", "deps", "outs", "params", "metrics", "env", "code", "schema", "path",
    "hooks", "storage", "auc",
]

# Raw text without control characters (ODD_SCALARS has some): a raw control character only
# exercises the YAML scanner's first check, and would hide everything behind it.
printable = st.characters(exclude_categories=("Cc", "Cs"))
scalar = st.one_of(st.sampled_from(ODD_SCALARS), st.integers().map(str),
                   st.floats().map(repr), st.text(max_size=12).map(json.dumps),
                   st.text(printable, max_size=12))
key = st.one_of(st.sampled_from(SCHEMA_KEYS), st.sampled_from(SCHEMA_KEYS),
                st.sampled_from(ODD_KEYS), st.text(printable, min_size=1, max_size=8))


def _flow(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_flow(v) for v in values) + "]"
    if isinstance(values, tuple):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in values) + "}"
    return str(values)


def _block(values: Any, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(values, tuple) and values:
        lines = []
        for k, v in values:
            complex_key = k.startswith("? ")
            head = f"{pad}{k}\n{pad}:" if complex_key else f"{pad}{k}:"
            nested = isinstance(v, tuple | list) and v and not complex_key
            lines.append(f"{head}\n{_block(v, indent + 2)}" if nested else f"{head} {_flow(v)}")
        return "\n".join(lines)
    if isinstance(values, list) and values:
        return "\n".join(f"{pad}- {_flow(v)}" for v in values)
    return pad + _flow(values)


tree = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.lists(st.tuples(key, inner), max_size=5).map(tuple)),
    max_leaves=20,
)


@st.composite
def yaml_text(draw: st.DrawFn, base: str = "") -> str:
    """`base` (a valid document) plus generated mappings, in block or flow style, maybe cut."""
    doc = draw(st.lists(st.tuples(key, tree), min_size=1, max_size=6).map(tuple))
    text = _block(doc) if draw(st.booleans()) else _flow(doc)
    if base and draw(st.booleans()):  # near-valid documents reach the deeper checks
        text = base + text + "\n"
    if draw(st.integers(0, 4)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@st.composite
def shaped(draw: st.DrawFn, template: Any) -> Any:
    """`template` (a tree in the form `_block` renders) with some values replaced by
    generated ones, some keys dropped and odd ones added: what a hand edit, a bad merge or a
    hostile commit makes of a valid file, reaching the checks behind the first level."""
    if draw(st.integers(0, 7)) == 0:
        return draw(tree)
    if isinstance(template, tuple):
        items = [(k, draw(shaped(v))) for k, v in template if draw(st.integers(0, 9))]
        if draw(st.integers(0, 3)) == 0:
            items.append((draw(key), draw(tree)))
        return tuple(items)
    if isinstance(template, list):
        return [draw(shaped(v)) for v in template]
    return template


def yaml_of(template: Any) -> st.SearchStrategy[str]:
    """Text of a shaped document, in block or flow style, sometimes cut short."""
    @st.composite
    def text(draw: st.DrawFn) -> str:
        doc = draw(shaped(template))
        out = _block(doc) + "\n" if draw(st.booleans()) else _flow(doc)
        if draw(st.integers(0, 5)) == 0:
            out = out[: draw(st.integers(0, len(out)))]
        return out

    return st.one_of(text(), text(), text(), yaml_text())


CONFIG_TEMPLATE = (
    ("core", (("hash", "blake3"), ("jobs", "2"), ("remote", "storage"))),
    ("cache", (("type", "reflink,copy"),)),
    ("remotes", (("storage", (("url", "s3://bucket/x"), ("jobs", "'4'"),
                              ("region", "eu-west-1"), ("verify_ssl", "false"))),)),
    ("models", (("good", (("checks", ["auc >= 0.8", (("metric", "auc"), ("op", "'>='"),
                                                      ("value", "0.5"), ("on_fail", "alert"))]),
                          ("retrain", (("every", "7d"), ("stage", "train"))))),)),
    ("alerts", (("webhook", "https://hooks.example/x"),)),
    ("stages", (("train", (("cmd", "'python train.py'"), ("deps", ["data.csv"]),
                           ("outs", ["model.pkl"]), ("params", ["params.yaml:auc"]),
                           ("metrics", ["metrics.json"]))),)),
)
LOCK_TEMPLATE = (
    ("schema", "1"),
    ("stages", (("train", (
        ("cmd", "'python train.py'"),
        ("deps", [(("path", "data.csv"), ("oid", OID), ("size", "8"))]),
        ("params", (("params.yaml", (("auc", "1"),)),)),
        ("outs", [(("path", "model.pkl"), ("oid", OID), ("size", "3"))]),
        ("metrics", (("metrics.json", (("auc", "0.9"),)),)),
        ("code", "b" * 40),
        ("env", (("python", "3.11.7"),)))),)),
)


def valid_pointer(**extra: str) -> str:
    lines = {"moma": "1", "hash": "blake3", "oid": OID, "size": "3", **extra}
    return "".join(f"{k}: {v}\n" for k, v in lines.items())


@st.composite
def pointer_text(draw: st.DrawFn) -> str:
    """A valid pointer with one field replaced by a generated value, or generated text."""
    if draw(st.booleans()):
        return draw(yaml_text(valid_pointer()))
    field = draw(st.sampled_from(["moma", "hash", "oid", "size", "kind", "nfiles", "model"]))
    value = draw(tree)
    replaced = {field: _flow(value)}
    if field == "model":
        replaced["model"] = _flow(draw(st.lists(st.tuples(st.just("name"), tree), max_size=1)
                                       .map(tuple)))
    return valid_pointer(**replaced)


def bounded(fn: Any, *args: Any) -> Any:
    """Call a parser: it returns or raises MomaError, within MAX_SECONDS and MAX_BYTES."""
    started = time.monotonic()
    tracemalloc.start()
    try:
        return fn(*args)
    except MomaError as exc:
        assert exc.message, exc
        return exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert time.monotonic() - started < MAX_SECONDS, (fn, args)
        assert peak < MAX_BYTES, (fn, args, peak)


# -- unit level: the parsers themselves ------------------------------------------------------


@given(yaml_text())
def test_yaml_loads_returns_plain_data_or_a_moma_error(text: str) -> None:
    bounded(yamlio.loads, text, "f.yaml")


@given(pointer_text())
def test_pointer_parse_returns_a_valid_pointer_or_a_moma_error(text: str) -> None:
    ptr = bounded(pointer.parse, text, "x.bin.moma")
    if isinstance(ptr, pointer.Pointer):
        assert type(ptr.size) is int and ptr.size >= 0 and ptr.oid == OID
        assert ptr.model is None or refs.check_name(ptr.model.name)
        assert pointer.parse(pointer.dumps(ptr), "x.bin.moma") == ptr  # round trip


entry_field = st.one_of(st.sampled_from(["a.txt", "b/c", "../x", "/abs", "", OID, "A" * 64]),
                        st.text(max_size=8), st.integers(-2, 2**70), st.booleans(),
                        st.floats(), st.none(), st.lists(st.integers(), max_size=2))


@st.composite
def manifest_bytes(draw: st.DrawFn) -> bytes:
    header = draw(st.sampled_from([{"moma-manifest": 1, "hash": "blake3"},
                                   {"moma-manifest": 1.0}, {"moma-manifest": True}, [1], 1]))
    rows = draw(st.lists(st.lists(entry_field, min_size=2, max_size=4), max_size=6))
    lines = [json.dumps(header)] + [json.dumps(r) for r in rows]
    lines += draw(st.lists(st.sampled_from(["[" * 5000, "", "],[", "\x00", "{}"]), max_size=2))
    raw = ("\n".join(lines) + "\n").encode()
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))] + draw(st.binary(max_size=8))
    return raw


@given(manifest_bytes())
def test_manifest_decode_yields_valid_entries_or_a_moma_error(raw: bytes) -> None:
    def decode() -> list[manifest.Entry]:
        return list(manifest.iter_decode(io.BytesIO(raw), "m"))

    entries = bounded(decode)
    if isinstance(entries, list):
        for e in entries:
            assert type(e.size) is int and e.size >= 0 and isinstance(e.relpath, str)


@given(yaml_of(CONFIG_TEMPLATE), st.one_of(st.none(), yaml_of(CONFIG_TEMPLATE)))
def test_config_load_returns_a_config_or_a_moma_error(tmp_path_factory: pytest.TempPathFactory,
                                                      committed: str, local: str | None) -> None:
    root = tmp_path_factory.mktemp("cfg")
    write(root / config.CONFIG_FILE, committed)
    if local is not None:
        write(root / config.LOCAL_CONFIG_FILE, local)
    cfg = bounded(config.load, root, {})
    if isinstance(cfg, config.Config):
        assert cfg.jobs >= 0 and cfg.hash_algo in ("blake3", "sha256")
        for remote in cfg.remotes.values():
            assert remote.jobs is None or remote.jobs >= 0
        bounded(stages.parse_stages, cfg.raw.get("stages"))


@given(yaml_of(LOCK_TEMPLATE))
def test_lock_read_returns_checked_entries_or_a_moma_error(
        tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    root = tmp_path_factory.mktemp("lock")
    write(root / lockfile.LOCK_FILE, text)
    repo = Repo(root, config.Config(root))
    entries = bounded(lockfile.read, repo)
    if isinstance(entries, dict):
        for entry in entries.values():  # what repro, verify and lineage read from an entry
            for item in (entry.get("deps") or []) + (entry.get("outs") or []):
                assert isinstance(item["path"], str) and isinstance(item["oid"], str)
            for key in ("params", "metrics", "env"):
                assert all(isinstance(k, str) for k in entry.get(key) or {})
            assert all(isinstance(v, dict) for v in (entry.get("params") or {}).values())
            assert isinstance(entry.get("cmd") or "", str)
        bounded(lockfile.output_lineage, repo, "model.pkl", OID)


@given(yaml_text("auc: 0.9\n"), st.sampled_from(["", "auc", "a.b,auc", "missing"]))
def test_params_and_metrics_reading(text: str, keys: str) -> None:
    doc = bounded(yamlio.loads, text, "params.yaml")
    if isinstance(doc, MomaError):
        return
    for value in params.numeric_leaves(doc).values():
        assert isinstance(value, int | float)
    bounded(params.select, doc, params.parse_spec(f"params.yaml:{keys}"))


@given(st.one_of(st.text(max_size=40), st.sampled_from(
    ["m#prod#1", "m#prod!#2", "m@v1.2.3", "m@deprecated", "m@v1.2.3!", "a/b#c#99999999999999",
     "m#prod#1#2", "-m#prod#1", "m..x#prod#1"])))
def test_registry_tag_names_parse_or_are_ignored(tag: str) -> None:
    from moma_cli.core import tags

    parsed = tags.parse(tag)
    if parsed is not None:
        refs.check_name(parsed.name)
        assert parsed.action in tags.ACTIONS
        assert tags.parse(parsed.format()) == parsed


@given(st.one_of(st.binary(max_size=200), st.sampled_from([b"SQLite format 3\x00" + b"\xff" * 80,
                                                           b""])))
@example(b"\x00\x00")  # found by this test: "file is not a database", exit 3 in every command
def test_corrupt_state_db_is_rebuilt(tmp_path_factory: pytest.TempPathFactory,
                                     raw: bytes) -> None:
    path = tmp_path_factory.mktemp("state") / "state.db"
    path.write_bytes(raw)
    db = StateDB(path)
    key = StatKey(1, 2, 3)
    db.put_many([("/a", key, "blake3", OID)])
    assert db.get("/a", key, "blake3") == OID
    db.close()


@given(yaml_text("checks:\n- auc >= 0.8\n"))
def test_quality_gates_parse_or_fail_cleanly(text: str) -> None:
    doc = bounded(yamlio.loads, text, ".moma.yaml")
    if not isinstance(doc, MomaError):
        bounded(checks.parse_models, {"m": doc})


# -- what the fuzzing found, pinned ----------------------------------------------------------


@pytest.mark.parametrize(("text", "env", "expected"), [
    ("core:\n  remote: [a]\n", {}, "core.remote: default remote ['a'] is not defined"),
    ("core:\n  jobs: true\n", {}, "core.jobs: expected 0 (auto) or a positive integer"),
    ("core:\n  jobs: 2.5\n", {}, "core.jobs: expected 0 (auto) or a positive integer"),
    ("remotes:\n  s:\n    url: s3://b/x\n    jobs: abc\n", {}, "remotes.s.jobs: expected 0"),
    ("remotes:\n  s:\n    url: [s3://b/x]\n", {}, "remotes.s: needs a 'url'"),
    ("core:\n", {"MOMA_JOBS": "3"}, None),
    ("remotes: [s]\n", {"MOMA_REMOTE_S__JOBS": "3"}, "'remotes' in .moma.yaml must be a mapping"),
], ids=["list remote", "bool jobs", "float jobs", "text remote jobs", "list url",
        "empty core with MOMA_JOBS", "list remotes with MOMA_REMOTE_"])
def test_config_values_of_the_wrong_type_are_config_errors(
        tmp_path: Path, text: str, env: dict[str, str], expected: str | None) -> None:
    write(tmp_path / config.CONFIG_FILE, text)
    if expected is None:
        assert config.load(tmp_path, env).jobs == 3
        return
    with pytest.raises(MomaError, match=re.escape(expected)):
        cfg = config.load(tmp_path, env)
        [remote.jobs for remote in cfg.remotes.values()]  # where a bad value used to crash


@pytest.mark.parametrize(("text", "expected"), [
    ("schema: 1.0\nstages: {}\n", "moma.lock: lock schema 1.0 is not valid"),
    ("schema: true\nstages: {}\n", "moma.lock: lock schema True is not valid"),
    ("schema: 2\nstages: {}\n", "moma.lock: lock schema 2 is newer than this moma"),
    ("stages:\n  train:\n    params: [1]\n", "'params' must map each params file"),
    ("stages:\n  train:\n    metrics: {1: a, b: c}\n", "'metrics' must be a mapping with"),
    ("stages:\n  train:\n    cmd: [rm]\n", "stage 'train': 'cmd' must be a string"),
], ids=["float schema", "bool schema", "newer schema", "list params", "int metric name",
        "list cmd"])
def test_lock_entries_of_the_wrong_shape_are_refused(repo: Moma, text: str,
                                                     expected: str) -> None:

    write(repo.root / ".moma.yaml", "stages:\n  train:\n    cmd: 'true'\n"
                                    "    params: [params.yaml:a]\n    metrics: [m.json]\n")
    write(repo.root / "params.yaml", "a: 1\n")
    write(repo.root / lockfile.LOCK_FILE, text)
    assert_one_error(repo("repro", "--dry", ok=False), expected)


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"moma-manifest": true}\n', "not a moma directory manifest"),
    (b'{"moma-manifest": 1.0}\n', "not a moma directory manifest"),
    (b'{"moma-manifest": 1}\n["a", "' + OID.encode() + b'", true]\n', "invalid oid or size"),
    (b'{"moma-manifest": 1}\n' + b"[" * 100_000 + b"\n", "line 2 is malformed"),
    (b"[" * 100_000 + b"\n", "unreadable header"),
    (b'{"moma-manifest": 1}\n["\\ud800", "' + OID.encode() + b'", 1]\n', "not valid UTF-8"),
], ids=["bool version", "float version", "bool size", "deep line", "deep header", "surrogate"])
def test_manifest_odd_json_is_refused(raw: bytes, expected: str) -> None:
    with pytest.raises(MomaError, match=expected):
        list(manifest.iter_decode(io.BytesIO(raw), "m"))


def test_a_lone_surrogate_escape_is_invalid_yaml(repo: Moma) -> None:
    """Found by the metrics fuzzing: with an '&' anywhere the pure-Python scanner reads the
    file and took `"\\ud800"`; printing it was exit 3."""
    write(repo.root / ".moma.yaml", "stages:\n  train:\n    cmd: 'true'\n"
                                    "    metrics: [metrics.yaml]\n")
    write(repo.root / "metrics.yaml", '{"\\ud800 &": 1, auc: 0.5}')
    assert_one_error(repo("metrics", "show", ok=False),
                     "metrics.yaml:1: invalid YAML: unpaired surrogate")


def test_files_read_from_git_or_as_metrics_fail_cleanly(repo: Moma) -> None:
    write(repo.root / ".moma.yaml", "stages:\n  train:\n    cmd: 'true'\n"
                                    "    params: [params.yaml:a]\n")
    write(repo.root / "params.yaml", b"a: \xff\n")  # not UTF-8, committed
    repo.git("add", "-A")
    repo.git("commit", "-qm", "binary params")
    assert_one_error(repo("params", "diff", ok=False), "HEAD:params.yaml: not UTF-8 text")
    write(repo.root / "m.pkl", "weights")
    write(repo.root / "metrics.json", "[" * 100_000)
    assert_one_error(repo("models:add", "m", "m.pkl", "--metrics-file", "metrics.json",
                          ok=False), "metrics.json: not valid JSON")
    # found by the metrics fuzzing: JSON takes a lone surrogate, which then broke every
    # later write and print of the pointer (exit 3 in models:add and models:list)
    write(repo.root / "metrics.json", '{"auc": "\\ud800"}')
    assert_one_error(repo("models:add", "m", "m.pkl", "--metrics-file", "metrics.json",
                          ok=False), "metrics.json: holds a string that is not valid UTF-8")


# -- CLI level: generated files in a real repository -----------------------------------------


def run_each(moma: Moma, tmp_path: Path, commands: list[tuple[str, ...]],
             bad_files: int = 1) -> None:
    """Each command exits 0, 1 or 2 with at most `bad_files` error lines and no traceback,
    and nothing appears outside the repository."""
    around = sorted(p.name for p in tmp_path.iterdir())
    for args in commands:
        started = time.monotonic()
        res = moma(*args, ok=None)
        assert time.monotonic() - started < MAX_SECONDS * 4, args
        assert res.exit_code in (0, 1, 2), (args, res.exit_code, res.stderr)
        assert "Traceback" not in res.stdout + res.stderr and "internal error" not in res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) <= bad_files, (args, res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == around


@pytest.fixture
def tracked(repo: Moma) -> Moma:
    """A repository with data, a registered model and a stage, all committed."""
    write(repo.root / "data.csv", "x,y\n1,2\n")
    repo("add", "data.csv")
    register_model(repo, "good", {"auc": 0.9})
    return repo


@CLI_EXAMPLES
@given(text=pointer_text())
def test_cli_survives_any_pointer(tracked: Moma, tmp_path: Path, text: str) -> None:
    write(tracked.root / "bad.bin.moma", text)
    run_each(tracked, tmp_path, [("status",), ("checkout",), ("models:list",)])


@CLI_EXAMPLES
@given(text=yaml_of(CONFIG_TEMPLATE), local=st.booleans())
def test_cli_survives_any_config(tracked: Moma, tmp_path: Path, text: str, local: bool) -> None:
    name = config.LOCAL_CONFIG_FILE if local else config.CONFIG_FILE
    kept = (tracked.root / name).read_bytes() if (tracked.root / name).exists() else None
    write(tracked.root / name, text)
    try:
        run_each(tracked, tmp_path, [("status",), ("models:list",), ("remote", "list")])
    finally:
        if kept is None:
            (tracked.root / name).unlink()
        else:
            (tracked.root / name).write_bytes(kept)


@CLI_EXAMPLES
@given(text=yaml_of(LOCK_TEMPLATE))
def test_cli_survives_any_lock(tracked: Moma, tmp_path: Path, text: str) -> None:
    if not (tracked.root / "train.py").exists():
        doc = yamlio.load_file(tracked.root / ".moma.yaml")
        doc["stages"] = {"train": {"cmd": "python train.py", "deps": ["data.csv"],
                                   "outs": ["model.pkl"], "metrics": ["metrics.json"]}}
        write(tracked.root / ".moma.yaml", yamlio.dumps(doc))
        write(tracked.root / "train.py", "raise SystemExit('never run by a dry run')\n")
    write(tracked.root / lockfile.LOCK_FILE, text)
    run_each(tracked, tmp_path, [("repro", "--dry"), ("lineage", "data.csv"), ("dag",)])


@CLI_EXAMPLES
@given(text=yaml_text("auc: 0.9\n"))
def test_cli_survives_any_metrics_or_params_file(tracked: Moma, tmp_path: Path,
                                                 text: str) -> None:
    if not (tracked.root / "params.yaml").exists():
        doc = yamlio.load_file(tracked.root / ".moma.yaml")
        doc["stages"] = {"train": {"cmd": "true", "params": ["params.yaml:auc"],
                                   "metrics": ["metrics.json"]}}
        write(tracked.root / ".moma.yaml", yamlio.dumps(doc))
        write(tracked.root / "params.yaml", "auc: 1\n")
        tracked.git("add", "-A")
        tracked.git("commit", "-qm", "stage")
    write(tracked.root / "metrics.json", text)
    write(tracked.root / "params.yaml", text)
    try:
        run_each(tracked, tmp_path, [("metrics", "show"), ("metrics", "diff"),
                                     ("params", "diff"), ("models:add", "good", "good.pkl",
                                                          "--metrics-file", "metrics.json")])
    finally:  # models:add rewrote the pointer: each example starts from the committed one
        tracked.git("checkout", "HEAD", "--", "good.pkl.moma")


tag_name = st.one_of(st.sampled_from(["good#prod#1", "good#prod!#2", "good@v1.0.0",
                                      "good@deprecated", "good#prod#99999999999999999999",
                                      "x#y#1", "good#Prod#3", "good@v01.0.0"]),
                     st.from_regex(r"[a-z0-9][a-z0-9/#@!.\-]{0,20}", fullmatch=True))
message = st.text(max_size=30).filter(lambda m: "\x00" not in m)


@CLI_EXAMPLES
@given(tags=st.lists(st.tuples(tag_name, message), min_size=1, max_size=3))
def test_cli_survives_any_registry_tags(tracked: Moma, tmp_path: Path,
                                        tags: list[tuple[str, str]]) -> None:
    for name, text in tags:
        subprocess.run(["git", "tag", "-f", "-a", "-m", text or ".", name], cwd=tracked.root,
                       capture_output=True)  # names git refuses are simply not created
    try:
        run_each(tracked, tmp_path, [("models:list",), ("models:history", "good"),
                                     ("models:show", "good:prod")])
    finally:
        for name in tracked.git("tag").split():
            tracked.git("tag", "-d", name)


@CLI_EXAMPLES
@given(state=st.binary(max_size=300), index=st.one_of(st.binary(max_size=300), st.builds(
    lambda doc: json.dumps(doc).encode(), st.recursive(
        st.one_of(st.none(), st.integers(), st.text(max_size=4), st.just(OID)),
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(st.text(max_size=4), inner, max_size=4)),
        max_leaves=12).map(lambda d: {"version": INDEX_VERSION, "chains": d, "blobs": d,
                                      "tags": d}))))
# found by this test: KeyError 'chains', exit 3
@example(state=b"", index=json.dumps({"version": INDEX_VERSION}).encode())
@example(state=b"", index=json.dumps({"version": INDEX_VERSION, "chains": {}, "blobs": {"x": 1},
                                      "tags": {}}).encode())
@example(state=b"", index=json.dumps({"version": INDEX_VERSION, "chains": {}, "blobs": {},
                                      "tags": {"x": ["c", "a", "e", "d", "s", [[1, 2]]]}}).encode())
def test_cli_rebuilds_corrupt_state_files(tracked: Moma, tmp_path: Path, state: bytes,
                                          index: bytes) -> None:
    moma_dir = tracked.root / ".moma"
    # In-process commands can leave a connection to be collected; a real command is a new
    # process. A live connection to a replaced file would wait on a lock that is not there.
    gc.collect()
    for name in ("state.db-wal", "state.db-shm"):
        if (moma_dir / name).exists():
            (moma_dir / name).unlink()
    (moma_dir / "state.db").write_bytes(state)
    (moma_dir / "registry-index.json").write_bytes(index)
    run_each(tracked, tmp_path, [("status",), ("models:list",), ("checkout",)], bad_files=0)
    res = tracked("models:list", "--json")
    assert [m["name"] for m in json.loads(res.stdout)["models"]] == ["good"]
    with sqlite3.connect(moma_dir / "state.db") as db:  # rebuilt, usable
        db.execute("SELECT count(*) FROM stat").fetchone()

