"""`moma plots`: model metrics across versions and stage plot files across revisions, drawn
through vl-convert into one self-contained HTML page (and PNGs)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import Moma, write

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def specs(page: str) -> list[dict]:
    import html

    return [json.loads(html.unescape(m)) for m in re.findall(r"<pre>(.*?)</pre>", page, re.S)]


def assert_self_contained(page: str) -> None:
    assert "<svg" in page
    assert not re.search(r"<script", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "default-src 'none'" in page  # the page may fetch nothing, even if it tried


@pytest.fixture
def two_versions(repo: Moma) -> Moma:
    for accuracy, data in (("0.8125", "one"), ("0.9375", "two")):
        write(repo.root / "model.bin", data)
        repo("models:add", "credit", "model.bin", "--metric", f"accuracy={accuracy}",
             "--metric", "f1=0.5")
        repo.git("commit", "-qm", f"model {data}")
    repo("models:tag", "credit:2", "production")
    return repo


def test_models_page_has_each_versions_value_and_loads_nothing(two_versions: Moma,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "plots.html"
    res = two_versions("plots", "models", "credit", "--metric", "accuracy", "-o", str(out))
    assert "credit: accuracy: v1, v2" in res.stdout
    page = out.read_text()
    assert_self_contained(page)
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "0.8125" in svg and "0.9375" in svg  # the points' aria labels carry the values
    assert "production" in svg  # the tooltip's stage
    [spec] = specs(page)
    assert [(v["version"], v["value"]) for v in spec["data"]["values"]] == [(1, 0.8125),
                                                                          (2, 0.9375)]


def test_models_unknown_metric_names_the_known_ones(two_versions: Moma, tmp_path: Path) -> None:
    res = two_versions("plots", "models", "credit", "--metric", "auc", "-o",
                       str(tmp_path / "p.html"), ok=False)
    assert "no version with metric 'auc'" in res.stderr and "accuracy, f1" in res.stderr


ROC_V1 = "fpr,tpr\n0,0\n0.5,0.6\n1,1\n"
ROC_V2 = "fpr,tpr\n0,0\n0.25,0.875\n1,1\n"


@pytest.fixture
def staged_plots(repo: Moma) -> Moma:
    doc = (repo.root / ".moma.yaml").read_text()
    write(repo.root / ".moma.yaml", doc + "stages:\n  evaluate:\n    cmd: python eval.py\n"
          "    plots:\n      - {file: eval/roc.csv, x: fpr, y: tpr, title: ROC}\n")
    for text, tag in ((ROC_V1, "v1"), (ROC_V2, "v2")):
        write(repo.root / "eval" / "roc.csv", text)
        repo.git("add", ".moma.yaml", "eval/roc.csv")
        repo.git("commit", "-qm", f"eval {tag}")
        repo.git("tag", tag)
    return repo


def test_show_draws_one_series_per_revision_and_pngs(staged_plots: Moma, tmp_path: Path) -> None:
    out, pngs = tmp_path / "plots.html", tmp_path / "png"
    res = staged_plots("plots", "show", "--rev", "v1", "--rev", "v2", "-o", str(out),
                       "--png", str(pngs), "--json")
    result = json.loads(res.stdout)
    assert result["series"] == {"ROC": ["v1", "v2"]}
    page = out.read_text()
    assert_self_contained(page)
    [spec] = specs(page)
    by_rev = {}
    for v in spec["data"]["values"]:
        by_rev.setdefault(v["series"], []).append((v["x"], v["y"]))
    assert by_rev == {"v1": [(0, 0), (0.5, 0.6), (1, 1)], "v2": [(0, 0), (0.25, 0.875), (1, 1)]}
    [png] = result["pngs"]
    assert Path(png).parent == pngs and Path(png).read_bytes().startswith(PNG_MAGIC)


def test_show_a_file_named_on_the_command_line_from_the_workspace(repo: Moma,
                                                                  tmp_path: Path) -> None:
    write(repo.root / "loss.json", json.dumps({"train": [{"step": 1, "loss": 0.75},
                                                         {"step": 2, "loss": 0.5}]}))
    out = tmp_path / "p.html"
    repo("plots", "show", "loss.json", "--x", "step", "--y", "loss", "-o", str(out))
    [spec] = specs(out.read_text())
    assert [(v["x"], v["y"], v["series"]) for v in spec["data"]["values"]] == [
        (1, 0.75, "workspace"), (2, 0.5, "workspace")]


@pytest.mark.parametrize(("plots", "message"), [
    ("[{file: eval/roc.csv, x: fpr}]", "plots[0]: missing 'y'"),
    ("[{file: eval/roc.csv, y: tpr, colour: red}]", "plots[0]: unknown key 'colour'"),
    ("[{file: eval/roc.txt, y: tpr}]", "plots[0]: 'eval/roc.txt' is not a CSV, TSV, JSON"),
    ("eval/roc.csv", "'plots' must be a list"),
])
def test_bad_plot_declarations_are_refused_by_name(repo: Moma, tmp_path: Path, plots: str,
                                                   message: str) -> None:
    doc = (repo.root / ".moma.yaml").read_text()
    write(repo.root / ".moma.yaml", doc + f"stages:\n  ev:\n    cmd: x\n    plots: {plots}\n")
    res = repo("plots", "show", "-o", str(tmp_path / "p.html"), ok=False)
    assert f".moma.yaml: stage 'ev': {message}" in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2  # one error line, maybe a hint


@pytest.mark.parametrize(("content", "message"), [
    ("fpr,auc\n0,1\n", "eval/roc.csv: record 1 has no field 'tpr' (fields: auc, fpr)"),
    ("fpr,tpr\n0,high\n", "eval/roc.csv: record 1: 'tpr' is not a finite number"),
    ("fpr,tpr\n0,1,2\n", "eval/roc.csv: row 2 has more fields than the header"),
    ("fpr,tpr\n" + "0,1\n" * 100_001, "eval/roc.csv: more than 100000 rows"),
])
def test_bad_plot_files_are_refused_naming_the_file(staged_plots: Moma, tmp_path: Path,
                                                    content: str, message: str) -> None:
    write(staged_plots.root / "eval" / "roc.csv", content)
    res = staged_plots("plots", "show", "-o", str(tmp_path / "p.html"), ok=False)
    assert message in res.stderr
    assert not (tmp_path / "p.html").exists()


def test_bad_json_shape_and_oversized_blob_at_a_revision(staged_plots: Moma,
                                                         tmp_path: Path) -> None:
    write(staged_plots.root / "m.json", json.dumps({"a": 1, "b": 2}))
    res = staged_plots("plots", "show", "m.json", "--y", "b", "-o", str(tmp_path / "p.html"),
                       ok=False)
    assert "m.json: a plot file must hold a list of records" in res.stderr
    write(staged_plots.root / "eval" / "roc.csv", "fpr,tpr\n" + "0,1\n" * (2 << 20))
    staged_plots.git("commit", "-qam", "huge")
    res = staged_plots("plots", "show", "--rev", "HEAD", "-o", str(tmp_path / "p.html"),
                       ok=False)
    assert "eval/roc.csv: plot file is larger than 8 MiB" in res.stderr


def test_missing_renderer_says_which_extra(staged_plots: Moma, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "vl_convert", None)  # import raises ImportError
    res = staged_plots("plots", "show", "-o", str(tmp_path / "p.html"), ok=False)
    assert "pip install 'moma-cli[plots]'" in res.stderr


def test_page_renders_in_headless_chromium(two_versions: Moma, tmp_path: Path) -> None:
    out = tmp_path / "plots.html"
    two_versions("plots", "models", "credit", "--metric", "accuracy", "-o", str(out))
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", out.as_uri()], capture_output=True, text=True,
                         timeout=30).stdout
    assert "<svg" in dom and "0.9375" in dom
