"""`moma plots models / show`: charts of a model's metrics across versions, and of the
stages' plot files across revisions, written as one self-contained HTML page.

Specs are rendered by vl-convert (the Vega project's offline renderer, the optional `plots`
extra), imported only here and only when a chart is drawn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moma_cli.atomic import atomic_write_bytes, resolves_inside
from moma_cli.core import plots as plots_mod
from moma_cli.core import vegalite
from moma_cli.core.params import numeric_leaves
from moma_cli.core.plots import MAX_PLOT_BYTES, MAX_POINTS, PlotDef, PlotError
from moma_cli.services.pipeline.loading import load_stages
from moma_cli.services.registry.resolving import log
from moma_cli.services.repo import Repo

WORKSPACE = "workspace"


@dataclass
class PlotsResult:
    html: str  # the page written
    charts: list[str]  # their titles
    series: dict[str, list[str]]  # chart title -> its series (revisions or versions)
    pngs: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "file at rev" not found, skipped


# -- models ----------------------------------------------------------------------------------


def models(repo: Repo, name: str, metrics: list[str], out: Path,
           png_dir: Path | None = None) -> PlotsResult:
    """Each of `metrics` across the versions of model `name` (x: the version number)."""
    versions = [v for v in reversed(log(repo, name)) if v.number]
    charts, series = [], {}
    for metric in metrics:
        values = []
        for v in versions:
            value = numeric_leaves(v.metrics).get(metric)
            if value is not None and not isinstance(value, bool):
                values.append({"version": v.number, "value": value,
                               "date": v.date or "(uncommitted)",
                               "stages": ", ".join(v.stages) or "-",
                               "commit": (v.commit or "")[:10] or "-"})
        if not values:
            known = sorted({k for v in versions for k in numeric_leaves(v.metrics)})
            raise PlotError(f"model {name!r} has no version with metric {metric!r}",
                            hint=f"its metrics: {', '.join(known)}" if known
                            else "record some with 'moma models:add --metric KEY=VALUE'")
        title = f"{name}: {metric}"
        charts.append(vegalite.Chart(vegalite.slug(f"{name}-{metric}"), title,
                                     vegalite.versions_spec(title, metric, values)))
        series[title] = [f"v{v['version']}" for v in values]
    return _write(f"moma plots: {name}", charts, series, [], out, png_dir)


# -- show ------------------------------------------------------------------------------------


def show(repo: Repo, targets: list[str], revs: list[str], out: Path, *,
         x: str | None = None, y: str | None = None, png_dir: Path | None = None) -> PlotsResult:
    """The plot files of `targets` (stage names or files; default every declared plot), one
    line per revision in `revs` (default the workspace)."""
    sides: list[str | None] = list(revs) or [None]
    defs = _selected(repo, targets, sides, x, y)
    charts, series, missing = [], {}, []
    for plot in defs:
        values: list[dict[str, Any]] = []
        labels = []
        for rev in sides:
            label = rev or WORKSPACE
            data = _read(repo, rev, plot.file)
            if data is None:
                missing.append(f"{plot.file} at {label}")
                continue
            source = f"{label}:{plot.file}" if rev else plot.file
            pts = plots_mod.points(plots_mod.rows_of(data, plot.file, source), plot, source)
            if len(values) + len(pts) > MAX_POINTS:
                raise PlotError(f"{plot.file}: more than {MAX_POINTS} points over "
                                f"{len(sides)} revisions", hint="compare fewer revisions")
            values += [{"x": px, "y": py, "series": label} for px, py in pts]
            labels.append(label)
        if not labels:
            raise PlotError(f"{plot.file}: not found at {', '.join(s or WORKSPACE for s in sides)}",
                            hint="commit the plot file, or run the stage that writes it")
        title = plot.title or plot.file
        charts.append(vegalite.Chart(vegalite.slug(plot.file), title, vegalite.series_spec(
            title, plot.x or "row", plot.y, values)))
        series[title] = labels
    return _write("moma plots", charts, series, missing, out, png_dir)


def _selected(repo: Repo, targets: list[str], sides: list[str | None], x: str | None,
              y: str | None) -> list[PlotDef]:
    """Declared plots (the first revision declaring a file wins), narrowed to `targets`; a
    target that is no stage and no declared file is a plot file of its own (needs --y)."""
    stages: dict[str, list[PlotDef]] = {}
    declared: dict[str, PlotDef] = {}
    for rev in sides:
        for stage in load_stages(repo, rev).values():
            stages.setdefault(stage.name, list(stage.plots))
            for plot in stage.plots:
                declared.setdefault(plot.file, plot)
    if not targets:
        chosen = list(declared.values())
        if not chosen:
            raise PlotError("no stage in .moma.yaml declares plots",
                            hint="add 'plots: [{file: eval/roc.csv, x: fpr, y: tpr}]' to a "
                                 "stage, or name a file: moma plots show FILE --x X --y Y")
    else:
        chosen = []
        for target in targets:
            if target in stages:
                chosen += stages[target]
            elif target in declared:
                chosen.append(declared[target])
            else:
                if y is None:
                    raise PlotError(f"{target}: no stage declares this plot",
                                    hint="name its columns: --x X --y Y")
                chosen.append(plots_mod.parse_def({"file": target, "y": y} | (
                    {"x": x} if x else {}), target))
    return [PlotDef(p.file, y or p.y, x or p.x, p.title) for p in chosen]


def _read(repo: Repo, rev: str | None, rel: str) -> bytes | None:
    """A plot file from the workspace or a git revision, refused before reading when it is
    too big, or (in the workspace) a symlink that leads out of the repository."""
    if rev is None:
        path = repo.abspath(rel)
        if not path.is_file():
            return None
        if not resolves_inside(path, repo.root):
            raise PlotError(f"{rel}: leads outside the repository", hint="plot a real file")
        size = path.stat().st_size
    else:
        commit = repo.git.rev_parse(rev)
        found = repo.git.blob_size(commit, rel)
        if found is None:
            return None
        size = found
    if size > MAX_PLOT_BYTES:
        raise PlotError(f"{rel}: plot file is larger than {MAX_PLOT_BYTES >> 20} MiB")
    return path.read_bytes() if rev is None else repo.git.show(commit, rel)


# -- rendering -------------------------------------------------------------------------------


def _write(title: str, charts: list[vegalite.Chart], series: dict[str, list[str]],
           missing: list[str], out: Path, png_dir: Path | None) -> PlotsResult:
    vlc = _vl_convert()
    for chart in charts:
        chart.svg = vlc.vegalite_to_svg(chart.spec)
    pngs = []
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
        names: set[str] = set()
        for chart in charts:
            name = chart.name
            while name in names:  # two files with one slug (a/b.csv, a_b.csv)
                name += "_"
            names.add(name)
            target = png_dir / f"{name}.png"
            atomic_write_bytes(target, vlc.vegalite_to_png(chart.spec, scale=2))
            pngs.append(os.fspath(target))
    atomic_write_bytes(out, vegalite.page(title, charts).encode())
    return PlotsResult(os.fspath(out), [c.title for c in charts], series, pngs, missing)


def _vl_convert() -> Any:
    try:
        import vl_convert
    except ImportError:
        raise PlotError("drawing plots needs the 'plots' extra of moma-cli (vl-convert)",
                        hint="pip install 'moma-cli[plots]'") from None
    return vl_convert
