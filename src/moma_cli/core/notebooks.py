"""What of an executed notebook `moma repro --verify` compares: the cells and their outputs,
without what changes on every run of the same notebook on the same inputs.

papermill and nbclient write the time each cell ran and took (`metadata.papermill`,
`metadata.execution`), the notebook's own start, end and input/output paths (top-level
`metadata.papermill`), and give the cell papermill injects a random `id`; the kernel's
`execution_count`s are a count, not a result. Two runs therefore never hash the same, and
a verify that compared bytes reported every notebook output as irreproducible. Everything
else is kept: sources, outputs (text, images, errors), tags, the kernel and language.
"""

from __future__ import annotations

import json
from typing import Any

RULE = "notebook"  # outputs compared in the normalised form below
_RUN_METADATA = ("papermill", "execution")


def normalized(data: bytes) -> bytes | None:
    """The notebook's canonical JSON without run timings, ids and execution counts; None
    when `data` is not a notebook (then its bytes are what counts)."""
    try:
        nb = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None
    nb["metadata"] = _without(nb.get("metadata"), _RUN_METADATA)
    nb["cells"] = [_cell(c) for c in nb["cells"]]
    return json.dumps(nb, sort_keys=True, ensure_ascii=False).encode()


def _cell(cell: Any) -> Any:
    if not isinstance(cell, dict):
        return cell
    kept = _without(cell, ("id", "execution_count"))
    kept["metadata"] = _without(cell.get("metadata"), _RUN_METADATA)
    if isinstance(cell.get("outputs"), list):
        kept["outputs"] = [_without(o, ("execution_count",)) if isinstance(o, dict) else o
                           for o in cell["outputs"]]
    return kept


def _without(doc: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys} if isinstance(doc, dict) else {}
