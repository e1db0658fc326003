"""Running a notebook stage: papermill executes the stage's notebook with its params as the
`parameters` cell and saves the executed copy, outputs and tracebacks included.

papermill and ipykernel are the optional `notebook` extra, imported only here and only when
a notebook stage runs (they cost ~0.5 s of start-up).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from moma_cli import atomic
from moma_cli.core import params as params_mod
from moma_cli.core.stages import PipelineError, Stage

# papermill tags the cells it adds (the parameters it injected, the error notes); they are
# not cells of the user's notebook
_INJECTED_TAG = "injected-parameters"
_ERROR_TAG = "papermill-error-cell-tag"


class NotebookFailedError(PipelineError):
    pass


def execute(stage: Stage, cwd: Path, values: dict[str, dict[str, Any]]) -> None:
    """Run `stage.notebook` from `cwd` (the repository root, or a --verify scratch copy).

    The executed notebook is written to `stage.output` even when a cell fails, so the
    traceback can be read there; the caller records nothing for a failed run."""
    if stage.notebook is None or stage.output is None:
        raise PipelineError(f"stage {stage.name!r} is not a notebook stage")
    papermill, exceptions, kernelspec = _papermill()
    output = cwd / stage.output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.tmp_sibling(output)
    try:
        with warnings.catch_warnings():
            # the temp's name does not end in .ipynb; the saved output does
            warnings.filterwarnings("ignore", message=".*does not end in one of")
            papermill.execute_notebook(
                str(cwd / stage.notebook), str(tmp),
                parameters=params_mod.as_variables(stage.params, values),
                cwd=str(cwd), progress_bar=False)
    except exceptions.PapermillExecutionError as exc:
        raise _failed(stage, tmp, exc) from None
    except kernelspec.NoSuchKernel as exc:
        raise PipelineError(f"stage {stage.name!r}: notebook {stage.notebook} asks for "
                            f"Jupyter kernel {exc.name!r}, which is not installed",
                            hint="pip install 'moma-cli[notebook]' (the python3 kernel), or "
                                 "set the notebook's kernel to an installed one") from None
    finally:
        if tmp.exists():  # papermill saves the notebook as far as it ran: keep it
            os.replace(tmp, output)


def _failed(stage: Stage, executed: Path, exc: Any) -> NotebookFailedError:
    cell = _cell_number(executed, exc.cell_index)
    return NotebookFailedError(
        f"stage {stage.name!r} failed: notebook {stage.notebook}, cell {cell}: "
        f"{exc.ename}: {exc.evalue}".splitlines()[0],
        hint=f"the traceback is in {stage.output}; fix it and run 'moma repro' again; "
             "nothing was recorded for this stage")


def _cell_number(executed: Path, index: int) -> int:
    """The failing cell's 1-based position in the user's notebook: papermill's index counts
    the parameters cell it injected, and the saved copy has its error notes besides."""
    import nbformat

    try:
        saved = nbformat.read(str(executed), as_version=4).cells
    except (OSError, ValueError):
        return index + 1
    cells = [c for c in saved if _ERROR_TAG not in c.metadata.get("tags", [])]
    injected = sum(1 for c in cells[:index] if _INJECTED_TAG in c.metadata.get("tags", []))
    return index - injected + 1


def require() -> None:
    """Fail with the extra to install when papermill or jupyter_client is missing."""
    _papermill()


def _papermill() -> tuple[Any, Any, Any]:
    try:
        import papermill
        import papermill.exceptions
        from jupyter_client import kernelspec
    except ImportError as exc:
        raise PipelineError(f"notebook stages need the 'notebook' extra ({exc.name} is not "
                            "installed)", hint="pip install 'moma-cli[notebook]'") from None
    return papermill, papermill.exceptions, kernelspec
