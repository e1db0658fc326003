"""How results several commands share are shown: checkouts, transfers, model versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moma_cli.errors import ExitCode

if TYPE_CHECKING:
    from moma_cli.core.lineage import Lineage
    from moma_cli.services.data_checkout import CheckoutResult
    from moma_cli.services.experiments.running import ExpRun
    from moma_cli.services.registry.model_version import ModelVersion
    from moma_cli.services.sync.results import TransferResult

_SHOWN_FAILURES = 20


def render_checkout(r: CheckoutResult) -> None:
    from moma_cli.cli import render

    render.line(f"{len(r.restored)} restored, {r.unchanged} unchanged"
                + (f", {len(r.removed)} removed" if r.removed else "")
                + (f", {len(r.stale_tmp)} temp files of an interrupted checkout removed"
                   if r.stale_tmp else ""))
    for path in r.replaced:
        render.warn(f"replaced modified {path} (--force)")
    for path in r.conflicts:
        render.error(f"{path}: modified and not in the cache; left as is",
                     "save it with 'moma add', or pass --force to overwrite it")
    for path in r.missing:
        render.error(f"{path}: object not in the cache", "run 'moma pull' to download it")
    for path in r.corrupt:
        render.error(f"{path}: cache object was corrupt and was moved aside",
                     "run 'moma pull' to download a good copy")
    render_invalid(r.invalid)


def render_invalid(messages: list[str], hint: str | None = None) -> None:
    """Pointers a command could not use, one error each; the fix once, after the last."""
    from moma_cli.cli import render
    from moma_cli.errors import POINTER_HINT

    for i, message in enumerate(messages):
        render.error(message, (hint or POINTER_HINT) if i == len(messages) - 1 else None)


def registered(version: ModelVersion) -> str:
    return (f"Registered {version.name} {version.label} ({version.model_id}); commit the "
            "pointer to keep it.")


def transfer_json(r: TransferResult) -> dict[str, object]:
    return {"remote": r.remote, "ok": r.ok, "transferred": list(r.transferred),
            "skipped": r.skipped, "failed": r.failed, "invalid": r.invalid, "repaired": r.repaired,
            "cleaned": r.cleaned, "warnings": r.warnings}


def report_transfer(result: TransferResult, verb: str, json_out: bool) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json(transfer_json(result))
    else:
        render_transfer(result, verb)
    if not result.ok:
        raise SystemExit(ExitCode.FAILURE)


def render_transfer(r: TransferResult, verb: str, lead: str | None = None) -> None:
    """The summary line (after `lead`, in parentheses, when given), then what failed."""
    from moma_cli.cli import render

    summary = f"{len(r.transferred):,} files {verb}, {r.skipped:,} up to date"
    if r.repaired:
        summary += f", {len(r.repaired):,} damaged remote copies replaced"
    if r.failed:
        summary += f", {len(r.failed):,} failed"
    render.line(f"{lead} ({summary})" if lead else summary)
    for message in r.warnings:  # what such an index claims counts as not on the remote
        render.warn(f"ignored {message}")
    for message in list(r.failed.values())[:_SHOWN_FAILURES]:
        render.error(message)
    if len(r.failed) > _SHOWN_FAILURES:
        render.error(f"... and {len(r.failed) - _SHOWN_FAILURES:,} more")
    render_invalid(r.invalid)
    if r.hint and r.failed:
        render.error(f"{len(r.failed):,} object(s) could not be transferred", r.hint)
    if r.cleaned:
        render.line(f"Removed {len(r.cleaned):,} leftovers of interrupted pushes from the "
                    "remote")
    if r.clean_error:
        render.warn(f"could not look for leftovers of interrupted pushes: {r.clean_error}")


def print_version(v: ModelVersion, json_out: bool, footer: str | None = None) -> None:
    from moma_cli.cli import render

    if json_out:
        render.print_json(v.to_json())
        return
    meta = v.meta
    pairs: list[tuple[str, object]] = [
        ("Model-ID", v.model_id), ("Model-Name", v.name),
        ("Model-Version", v.label[1:] if v.number else "unknown (shallow clone)"),
        ("Date", iso_date(v.date)), ("Content-Encoding", meta.encoding),
        ("Algo", meta.algo)]
    pairs += [(str(k).replace("_", " ").title().replace(" ", "-"), val)
              for k, val in v.metrics.items()]
    params = meta.params or {}
    pairs.append(("Parameters", ";".join(f"{k}={val}" for k, val in params.items())))
    if meta.signature:
        pairs.append(("Signature", _signature_text(meta.signature)))
    pairs += _lineage_pairs(v.lineage)
    if v.stages:
        pairs.append(("Stages", ", ".join(v.stages)))
    if v.semvers:
        pairs.append(("Registered", ", ".join(v.semvers)))
    pairs += [("Path", v.pointer.path), ("Commit", v.commit or "(uncommitted)")]
    render.block(pairs, meta.description)
    if footer:
        render.line(footer)


def _lineage_pairs(lineage: Lineage | None) -> list[tuple[str, object]]:
    """Data (one line per input), Code, Params and Environment, from `lineage:`."""
    from moma_cli.core.hashing import short_oid

    if lineage is None:
        return []
    pairs: list[tuple[str, object]] = [
        ("Data", f"{dep['path']} {short_oid(dep['oid'])}") for dep in lineage.deps]
    code = lineage.code
    pairs.append(("Code", short_oid(code) if code is not None else "(no commit)"))
    if lineage.params:
        pairs.append(("Params", ";".join(f"{k}={val}" for k, val in lineage.params.items())))
    env = lineage.env
    if env:
        packages = str(env.get("packages", "")).split(":")[-1]
        pairs.append(("Environment", f"python {env.get('python')}; {env.get('platform')}; "
                                     f"packages {short_oid(packages)}"))
    return pairs


def _signature_text(signature: Any) -> str:
    """`3 features` or `X float32 [?, 3]`: the inputs a model declares."""
    if not isinstance(signature, dict):
        return str(signature)
    inputs = signature.get("inputs")
    if isinstance(inputs, list):
        return "; ".join(
            f"{i.get('name')} {i.get('dtype')} "
            f"[{', '.join('?' if d is None else str(d) for d in i.get('shape') or [])}]"
            for i in inputs if isinstance(i, dict))
    return f"{signature.get('n_features')} features"


def iso_date(date: str | None) -> str:
    return date.replace("T", " ")[:19] if date else ""


def render_exp_run(r: ExpRun) -> None:
    """One finished experiment run (`moma exp run`, `moma exp queue start`)."""
    from moma_cli.cli import render

    if r.ok:
        render.line(f"Recorded experiment {r.name} ({r.duration:.1f} s)"
                    + (f": {key_values(r.metrics)}" if r.metrics else ""))
    else:
        render.error(f"experiment {r.name} failed, nothing recorded: {r.error}")


def key_values(values: dict[str, Any]) -> str:
    """Params or metrics as `k=v, k=v`."""
    return ", ".join(f"{k}={v}" for k, v in values.items())
