"""Pipeline stages: the `stages:` section of `.moma.yaml`, validated, and their DAG.

Everything that can be wrong with a pipeline (a cycle, two stages writing one output, a
dependency nobody provides) is found here, before any command runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moma_cli.core.params import ParamSpec, parse_spec
from moma_cli.core.paths import check_repo_relpath, is_within
from moma_cli.core.plots import PlotDef, PlotError, parse_defs
from moma_cli.errors import MomaError

_KEYS = ("cmd", "notebook", "output", "deps", "outs", "params", "metrics", "plots")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class PipelineError(MomaError):
    pass


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str  # empty for a notebook stage
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()  # cached like 'moma add'
    params: tuple[ParamSpec, ...] = ()
    metrics: tuple[str, ...] = ()  # small files kept in git, values recorded in the lock
    # A notebook stage runs `notebook` with papermill and saves the executed copy as
    # `output`; the notebook is also the first of `deps` and the output the first of `outs`,
    # so hashing, caching and the DAG treat them like any dependency and output.
    notebook: str | None = None
    output: str | None = None
    plots: tuple[PlotDef, ...] = ()  # files `moma plots show` draws; not outputs of their own

    @property
    def produces(self) -> tuple[str, ...]:
        return self.outs + self.metrics

    @property
    def command(self) -> str:
        """What runs, as `moma.lock` records it: a change re-runs the stage."""
        if self.notebook is not None:
            return f"notebook {self.notebook} -> {self.output}"
        return self.cmd


def to_mapping(stage: Stage) -> dict[str, Any]:
    doc: dict[str, Any]
    if stage.notebook is not None:
        doc = {"notebook": stage.notebook, "output": stage.output}
    else:
        doc = {"cmd": stage.cmd}
    deps = [d for d in stage.deps if d != stage.notebook]
    outs = [o for o in stage.outs if o != stage.output]
    if deps:
        doc["deps"] = deps
    if stage.params:
        doc["params"] = [str(p) for p in stage.params]
    if outs:
        doc["outs"] = outs
    if stage.metrics:
        doc["metrics"] = list(stage.metrics)
    if stage.plots:
        doc["plots"] = [p.to_mapping() for p in stage.plots]
    return doc


def parse_stages(section: Any, source: str = ".moma.yaml") -> dict[str, Stage]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise PipelineError(f"{source}: 'stages' must be a mapping of stage names")
    return {str(name): parse_stage(str(name), body, source) for name, body in section.items()}


def parse_stage(name: str, body: Any, source: str = ".moma.yaml") -> Stage:
    where = f"{source}: stage {name!r}"
    if not _NAME_RE.fullmatch(name):
        raise PipelineError(f"{where}: invalid stage name",
                            hint="use letters, digits, '_', '.', '-' (max 64)")
    if not isinstance(body, Mapping):
        raise PipelineError(f"{where}: must be a mapping with at least 'cmd'")
    unknown = [k for k in body if k not in _KEYS]
    if unknown:
        raise PipelineError(f"{where}: unknown key {unknown[0]!r}",
                            hint=f"stage keys are {', '.join(_KEYS)}")
    try:
        notebook, output = _notebook(body, where)
        deps, outs = _paths(body, "deps", where), _paths(body, "outs", where)
        if notebook is not None and output is not None:
            deps = (notebook, *(d for d in deps if d != notebook))
            outs = (output, *(o for o in outs if o != output))
        return Stage(
            name=name,
            cmd=_cmd(body, where, notebook is not None),
            deps=deps,
            outs=outs,
            params=tuple(parse_spec(str(p)) for p in _list(body, "params", where)),
            metrics=_paths(body, "metrics", where),
            notebook=notebook,
            output=output,
            plots=parse_defs(body.get("plots"), where),
        )
    except (PipelineError, PlotError):  # these already name the stage
        raise
    except MomaError as exc:
        raise PipelineError(f"{where}: {exc.message}", exc.hint) from None


def _cmd(body: Mapping[str, Any], where: str, notebook: bool) -> str:
    cmd = body.get("cmd")
    if notebook:
        if cmd is not None:
            raise PipelineError(f"{where}: has both 'cmd' and 'notebook'",
                                hint="a stage runs either a command or a notebook")
        return ""
    if not isinstance(cmd, str) or not cmd.strip():
        raise PipelineError(f"{where}: 'cmd' must be a non-empty string",
                            hint="or name a Jupyter notebook with 'notebook' and 'output'")
    return cmd


def _notebook(body: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    """`notebook` and `output` come together: both `.ipynb` paths, not the same file."""
    notebook, output = body.get("notebook"), body.get("output")
    if notebook is None and output is None:
        return None, None
    notebook, output = _ipynb(notebook, "notebook", where), _ipynb(output, "output", where)
    if notebook == output:
        raise PipelineError(f"{where}: 'output' is the notebook itself",
                            hint="save the executed notebook under another name")
    return notebook, output


def _ipynb(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.endswith(".ipynb"):
        raise PipelineError(f"{where}: '{key}' must be the path of an .ipynb file",
                            hint="a notebook stage names both 'notebook' and 'output'")
    return check_repo_relpath(value, key)


def _list(body: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = body.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PipelineError(f"{where}: '{key}' must be a list")
    return value


def _paths(body: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = [check_repo_relpath(p, f"{key} entry") for p in _list(body, key, where)]
    if len(set(items)) != len(items):
        raise PipelineError(f"{where}: '{key}' lists a path twice")
    return tuple(items)


# -- the graph -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    upstream: str
    downstream: str
    path: str  # the dependency that links them


@dataclass
class Dag:
    stages: dict[str, Stage]
    order: list[str]  # topological: every stage after the stages it depends on
    edges: list[Edge] = field(default_factory=list)

    def upstream(self, name: str) -> list[str]:
        return sorted({e.upstream for e in self.edges if e.downstream == name})

    def closure(self, targets: list[str]) -> list[str]:
        """`targets` and everything they depend on, in topological order."""
        wanted: set[str] = set()
        todo = list(targets)
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo.extend(self.upstream(name))
        return [n for n in self.order if n in wanted]

    def producer(self, path: str) -> str | None:
        for stage in self.stages.values():
            if any(is_within(path, out) for out in stage.produces):
                return stage.name
        return None


def build_dag(stages: Mapping[str, Stage], exists: Callable[[str], bool]) -> Dag:
    """Link stages through outs -> deps, refusing duplicate outputs, orphan deps and cycles."""
    owners: dict[str, str] = {}
    for stage in stages.values():
        for out in stage.produces:
            for other, owner in owners.items():
                if is_within(out, other) or is_within(other, out):
                    raise PipelineError(
                        f"output {out!r} of stage {stage.name!r} overlaps output {other!r} "
                        f"of stage {owner!r}",
                        hint="each output must be written by exactly one stage")
            owners[out] = stage.name
    edges: list[Edge] = []
    for stage in stages.values():
        for dep in stage.deps:
            producers = {owner for out, owner in owners.items()
                         if is_within(dep, out) or is_within(out, dep)}
            if stage.name in producers:
                raise PipelineError(f"stage {stage.name!r} depends on its own output {dep!r}",
                                    hint="a stage cannot read what it writes")
            if not producers and not exists(dep):
                raise PipelineError(
                    f"dependency {dep!r} of stage {stage.name!r} does not exist and no stage "
                    "produces it", hint="create it, 'moma checkout' it, or fix the stage's deps")
            edges.extend(Edge(p, stage.name, dep) for p in sorted(producers))
    return Dag(dict(stages), _toposort(list(stages), edges), edges)


def _toposort(names: list[str], edges: list[Edge]) -> list[str]:
    """Depth-first order; a back edge is reported as the cycle it closes."""
    ups: dict[str, list[str]] = {n: [] for n in names}
    for edge in edges:
        ups[edge.downstream].append(edge.upstream)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise PipelineError(f"pipeline has a cycle: {' -> '.join(reversed(cycle))}",
                                hint="a stage cannot depend, even indirectly, on its own outputs")
        state[name] = 1
        path.append(name)
        for up in sorted(set(ups[name])):
            visit(up)
        path.pop()
        state[name] = 2
        order.append(name)

    for name in sorted(names):
        visit(name)
    return order


def mermaid(dag: Dag) -> str:
    """The DAG as a Mermaid flowchart, for docs and READMEs."""
    lines = ["flowchart TD"]
    for name in dag.order:
        lines.append(f'    {_node_id(name)}["{name}"]')
    for edge in sorted({(e.upstream, e.downstream) for e in dag.edges}):
        lines.append(f"    {_node_id(edge[0])} --> {_node_id(edge[1])}")
    return "\n".join(lines) + "\n"


def _node_id(name: str) -> str:
    return "s_" + "".join(c if c.isalnum() else "_" for c in name)
