"""`moma plots models / show`: metric charts as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from moma_cli.cli.options import Json

if TYPE_CHECKING:
    from moma_cli.services.plots import PlotsResult

plots_app = typer.Typer(help="Draw metrics and plot files as an HTML page (the 'plots' extra).",
                        no_args_is_help=True)

Out = Annotated[Path, typer.Option("--out", "-o", help="The HTML page to write.")]
Png = Annotated[Path | None, typer.Option(
    "--png", metavar="DIR", help="Also write each chart as a PNG file into DIR.")]


def register(app: typer.Typer) -> None:
    plots_app.command("models")(models)
    plots_app.command("show")(show)
    app.add_typer(plots_app, name="plots")


def models(
    name: Annotated[str, typer.Argument(help="Model name.")],
    metric: Annotated[list[str], typer.Option(
        "--metric", "-m", help="A recorded metric to draw (repeat for one chart each).")],
    out: Out = Path("plots.html"),
    png: Png = None,
    json_out: Json = False,
) -> None:
    """Chart a model's metrics across its versions (x: version; tooltip: date, stage).

    \b
    Example:
      moma plots models credit-risk --metric accuracy --metric f1 -o plots.html
    """
    from moma_cli.services import plots
    from moma_cli.services.repo import open_repo

    _render(plots.models(open_repo(), name, metric, out, png), json_out)


def show(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Stages or plot files (default: every plot the stages declare).")] = None,
    rev: Annotated[list[str] | None, typer.Option(
        "--rev", help="A git revision to draw, one line each (repeat; default: the "
                      "workspace).")] = None,
    x: Annotated[str | None, typer.Option(
        "--x", help="The x field (default: the declared one, else the row number).")] = None,
    y: Annotated[str | None, typer.Option(
        "--y", help="The y field (default: the declared one).")] = None,
    out: Out = Path("plots.html"),
    png: Png = None,
    json_out: Json = False,
) -> None:
    """Chart the stages' plot files (CSV, JSON, YAML), one line per revision.

    \b
    Examples:
      moma plots show --rev HEAD~1 --rev HEAD -o plots.html
      moma plots show eval/roc.csv --x fpr --y tpr --png plots/
    """
    from moma_cli.services import plots
    from moma_cli.services.repo import open_repo

    _render(plots.show(open_repo(), targets or [], rev or [], out, x=x, y=y, png_dir=png),
            json_out)


def _render(result: PlotsResult, json_out: bool) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json(vars(result))
        return
    for missing in result.missing:
        render.warn(f"{missing}: not found, left out")
    for title in result.charts:
        render.line(f"{title}: {', '.join(result.series[title])}")
    render.line(f"Wrote {result.html}" + "".join(f", {p}" for p in result.pngs))
