"""`moma serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    refs: Annotated[list[str] | None, typer.Argument(
        metavar="MODEL_REF",
        help="Models to serve: NAME, NAME:VERSION or NAME:STAGE "
             "(default: every registered model at its production stage).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    poll: Annotated[float, typer.Option(
        metavar="SECONDS", help="Re-resolve stages this often and switch models whose stage "
                                "tag moved (0: only on POST /v1/admin/reload).")] = 10.0,
    log_predictions: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Append sampled inputs and predictions to FILE as JSON lines "
                             "(format in docs/serving.md).")] = None,
    sample_rate: Annotated[float, typer.Option(
        help="Fraction of requests to log with --log-predictions.")] = 0.1,
    trust_types: Annotated[list[str] | None, typer.Option(
        "--trust-type", metavar="TYPE",
        help="A type a skops model may hold beyond those skops trusts, e.g. "
             "sklearn.tree._tree.Tree; repeatable.")] = None,
    canary: Annotated[list[str] | None, typer.Option(
        metavar="REF=PERCENT",
        help="Send PERCENT of the requests for a served model to REF, another version or "
             "stage of it, e.g. iris:staging=10%; sticky per X-Request-Key header or "
             "request_key field. One per model.")] = None,
    shadow: Annotated[list[str] | None, typer.Option(
        metavar="REF",
        help="Mirror every request for a served model to REF, off the response path, and "
             "count how often it agrees (/metrics). One per model.")] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes sharing the port, each loading the models and polling "
                    "the stages itself; /metrics sums them all.")] = 1,
    repo_url: Annotated[str | None, typer.Option(
        "--repo", metavar="GIT_URL",
        help="Serve the registry of this git repository instead of the current one: cloned "
             "under --workdir, its tags fetched on every poll, its models downloaded from "
             "its default remote and verified.")] = None,
    workdir: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Where --repo keeps its clone and its objects "
                            "(default: ~/.cache/moma, or $XDG_CACHE_HOME/moma).")] = None,
    trust: Annotated[bool, typer.Option(
        "--trust", help="With --repo: load its joblib and pickle models, which runs code "
                        "from their files; without it only skops and ONNX models serve.")] = False,
) -> None:
    """Serve registered models over HTTP (needs the 'serve' extra of moma-cli).

    Routes: POST /v1/models/NAME[:VERSION|:STAGE]/predict with {"inputs": [[...], ...]},
    GET /v1/models, /healthz, /metrics (Prometheus), /openapi.json, POST /v1/admin/reload.

    Bound beyond loopback, POST /v1/admin/reload needs 'Authorization: Bearer TOKEN' with
    TOKEN from the MOMA_SERVE_ADMIN_TOKEN environment variable, and is off without it.

    Models load by their format: skops (only the types skops trusts, plus --trust-type)
    and ONNX run no code from the file; joblib and pickle models are unpickled, which runs
    code from the file: only models registered in this repository, only from the cache
    after verifying their hash, never a path from a request. Serve pickles you trust, as
    you would when calling joblib.load yourself.

    Example: moma serve credit-risk:production --port 8080 --log-predictions preds.jsonl

    Example: moma serve iris:production --canary iris:staging=10% --shadow iris:candidate

    Example: moma serve --workers 4 --host 0.0.0.0

    Example: moma serve --repo https://git.example.com/ml/models.git iris:production --trust
    """
    from moma_cli.cli import render
    from moma_cli.services import serve as serve_service
    from moma_cli.services.repo import open_repo
    from moma_cli.services.serving.admin import TOKEN_ENV

    render.line_buffered()
    server, report = serve_service.prepare(open_repo() if repo_url is None else None,
                                           refs or (), host=host, port=port,
                                           poll=poll, log_predictions=log_predictions,
                                           sample_rate=sample_rate,
                                           trusted_types=trust_types or (),
                                           canaries=[_canary(text) for text in canary or ()],
                                           shadows=shadow or (), workers=workers,
                                           git_url=repo_url, workdir=workdir, trust=trust)
    if repo_url is not None:
        render.line(f"Following {repo_url}: its tags are fetched on every reload")
    for message in report.errors:
        render.warn(f"not served: {message}")
    for slot in server.table.slots:
        r = slot.current.resolved
        render.line(f"Serving {slot.spec} (version {r.version}, {r.oid[:8]}) at "
                    f"http://{host}:{port}/v1/models/{slot.spec}/predict")
    for variants in server.table.variants:
        for slot, what in ((variants.canary, f"takes {variants.percent:g}% of"),
                           (variants.shadow, "mirrors")):
            if slot is not None:
                r = slot.current.resolved
                render.line(f"{slot.role.capitalize()} {slot.spec} (version {r.version}, "
                            f"{r.oid[:8]}) {what} the requests for {variants.primary.spec}")
    if server.admin.mode != "open":
        render.warn(f"listening on {host}: predictions have no authentication; put the "
                    "server behind a proxy that has")
    if server.admin.mode == "token":
        render.line(f"Admin: POST /v1/admin/reload needs 'Authorization: Bearer ${TOKEN_ENV}'")
    elif server.admin.mode == "off":
        render.warn(f"POST /v1/admin/reload is off: set {TOKEN_ENV} to use it beyond loopback")
    if workers > 1:
        render.line(f"Workers: {workers} processes on port {port}")
    stopped_by = serve_service.run(server)
    render.line(f"Stopped serving ({stopped_by})" if stopped_by else "Stopped serving")


def _canary(text: str) -> tuple[str, float]:
    from moma_cli.services.serving.settings import parse_canary

    try:
        return parse_canary(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: write it as REF=PERCENT, e.g. iris:staging=10%",
                                 param_hint="--canary") from None
