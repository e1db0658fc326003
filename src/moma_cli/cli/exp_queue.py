"""`moma exp queue list / start / remove / clear`: experiments waiting to run (queued by
`moma exp run --queue`), and running them N at once; added to `moma exp` by
experiments.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from moma_cli.cli import views
from moma_cli.cli.options import Executor, Json

if TYPE_CHECKING:
    from moma_cli.services.experiments.queue import QueueEntry

queue_app = typer.Typer(help="Experiments waiting to run, and running them N at once.",
                        no_args_is_help=True)


def register(exp_app: typer.Typer) -> None:
    queue_app.command("list")(queue_list)
    queue_app.command("start")(queue_start)
    queue_app.command("remove")(queue_remove)
    queue_app.command("clear")(queue_clear)
    exp_app.add_typer(queue_app, name="queue")


def queue_list(json_out: Json = False) -> None:
    """List the queued, running and failed experiments, oldest first.

    Example: moma exp queue list --json
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import queue
    from moma_cli.services.repo import open_repo

    found = queue.entries(open_repo())
    if json_out:
        render.print_json([vars(e) for e in found])
    elif found:
        render.table(["Experiment", "State", "Base", "Queued", "Params", "Exit", "Error"],
                     [_queue_row(e) for e in found])
    else:
        render.line("The queue is empty; add runs with 'moma exp run --queue -S KEY=VALUE'.")


def _queue_row(e: QueueEntry) -> list[Any]:
    return [e.name, e.state, e.base[:10], e.queued_at[:19].replace("T", " "),
            views.key_values(e.params), "" if e.exit is None else e.exit, e.error or ""]


def queue_start(
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1,
        help="Run up to N experiments at once, each in a process of its own (default: 1; "
             "with dask://, as many as the workers take).")] = None,
    executor: Executor = None,
    json_out: Json = False,
) -> None:
    """Run the queued experiments, oldest first, until the queue is empty.

    Each runs in a temporary work tree as 'moma exp run' does. A failed run stays in the
    queue as failed, with its error and exit status; the others go on. Dask workers must
    see the repository at the same path and have moma installed.

    \b
    Examples:
      moma exp queue start -j 2
      moma exp queue start --executor dask://scheduler:8786
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import queue
    from moma_cli.services.repo import open_repo

    def started(entry: QueueEntry) -> None:
        render.line(f"Running experiment {entry.name}"
                    + (f": {views.key_values(entry.params)}" if entry.params else ""))

    result = queue.start(open_repo(), jobs, executor, on_start=None if json_out else started,
                         on_done=None if json_out else views.render_exp_run)
    if json_out:
        render.print_json({"runs": [vars(r) for r in result.runs],
                           "requeued": result.requeued})
    elif not result.runs:
        render.line("The queue is empty; nothing to run.")
    if not result.ok:
        raise typer.Exit(1)


def queue_remove(
    names: Annotated[list[str], typer.Argument(help="Queued or failed experiments.")],
) -> None:
    """Take experiments out of the queue.

    Example: moma exp queue remove exp-1a2b3c
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import queue
    from moma_cli.services.repo import open_repo

    for entry in queue.remove(open_repo(), names):
        render.line(f"Removed {entry.state} experiment {entry.name} from the queue.")


def queue_clear() -> None:
    """Take every queued and failed experiment out of the queue (running ones stay).

    Example: moma exp queue clear
    """
    from moma_cli.cli import render
    from moma_cli.services.experiments import queue
    from moma_cli.services.repo import open_repo

    removed = queue.clear(open_repo())
    render.line(f"Removed {len(removed)} experiments from the queue.")
