"""The HTTP API on Starlette: the only module importing it (running.py runs it with uvicorn).

Predictions run in the thread pool so a slow model never stalls the event loop (health
checks, metrics, other models). Every failure becomes a JSON `{"error", "hint"}` body with
a 4xx status; an unexpected one a 500 with the exception's type, never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from moma_cli.errors import MomaError
from moma_cli.services.serving import inputs, traffic
from moma_cli.services.serving.admin import AdminAccess
from moma_cli.services.serving.metrics import CONTENT_TYPE, Metrics, model_info, version_label
from moma_cli.services.serving.openapi import document
from moma_cli.services.serving.predlog import REQUEST_ID_HEADER, PredictionLog, request_id_of
from moma_cli.services.serving.settings import Workers
from moma_cli.services.serving.shadow import Copy, Shadowing
from moma_cli.services.serving.shared import SIGNAL_INTERVAL, ReloadSignal, SharedMetrics
from moma_cli.services.serving.slots import ModelTable, ReloadReport, RequestError, Slot
from moma_cli.services.serving.source import LoadedModel

log = logging.getLogger("moma.serve")

# Estimators fitted on a DataFrame warn on every call when given plain rows; the server
# already put the columns in `feature_names_in_` order.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


class Server:
    """The state the routes share: served models, canary split, shadow worker, metrics,
    prediction log, poller, and where it listens (the admin access was decided for that
    host). `metrics_dir`: publish the metrics there and answer /metrics with the sum over
    the workers that do (shared.py); `signal`: the reloads shared with those workers.
    `workers`: `run` starts that many processes."""

    def __init__(self, table: ModelTable, host: str, port: int, admin: AdminAccess,
                 predlog: PredictionLog | None = None, poll: float = 0.0,
                 metrics_dir: Path | None = None, workers: Workers | None = None,
                 signal: ReloadSignal | None = None) -> None:
        self.table = table
        self.host = host
        self.port = port
        self.admin = admin
        self.metrics = Metrics()
        self.shared = (SharedMetrics(metrics_dir, self.metrics, lambda: self.table.all_slots)
                       if metrics_dir is not None else None)
        self.workers = workers
        self.signal = signal
        self.predlog = predlog
        self.poll = poll
        self.splitter = traffic.Splitter()
        self.shadowing = Shadowing(self.metrics, predlog)
        self._stop = threading.Event()

    def reload(self, signalled: bool = False) -> ReloadReport:
        """Re-resolve every served ref; `signalled`: another worker reloaded and has
        fetched the source for everyone, so this one does not fetch again."""
        report = self.table.reload(refresh=not signalled)
        if report.switched:
            self.metrics.reloaded("switched", len(report.switched))
        if report.errors:
            self.metrics.reloaded("failed", len(report.errors))
        for switch in report.switched:
            log.info("%s: switched from version %s to %s", switch.spec,
                        switch.old_version, switch.new_version)
        for message in report.errors:
            log.warning("reload: %s", message)
        if self.shared is not None:
            self.shared.changed()
        return report

    def _poll_loop(self) -> None:
        """Reload every `poll` seconds, and whenever another worker signals a reload."""
        wait = min(w for w in (self.poll, SIGNAL_INTERVAL if self.signal else 0.0) if w > 0)
        due = time.monotonic() + self.poll
        while not self._stop.wait(wait):
            try:
                signalled = self.signal is not None and self.signal.received()
                if self.poll > 0 and time.monotonic() >= due:
                    due = time.monotonic() + self.poll
                    self._reload_and_tell(self.reload())
                elif signalled:
                    self.reload(signalled=True)
            except Exception:  # noqa: BLE001 - the poller must outlive any one failure
                log.exception("reload failed")

    def _reload_and_tell(self, report: ReloadReport, asked: bool = False) -> ReloadReport:
        """Signal the other workers after a reload that was asked for or switched a model:
        the admin route reaches one worker, and a poll of a fetched clone may see a moved
        tag in one worker seconds before the others' polls would."""
        if self.signal is not None and (asked or report.switched):
            self.signal.send()
        return report

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        poller = None
        if self.poll > 0 or self.signal is not None:
            poller = threading.Thread(target=self._poll_loop, name="moma-poll", daemon=True)
            poller.start()
        self.shadowing.start()
        if self.shared is not None:
            self.shared.start()
        try:
            yield
        finally:
            self._stop.set()
            if poller is not None:
                poller.join(timeout=5)
            self.shadowing.stop()
            if self.shared is not None:
                self.shared.stop()
            if self.predlog is not None:
                self.predlog.close()

    # -- routes ---------------------------------------------------------------------------
    async def predict(self, request: Request) -> Response:
        start = time.perf_counter()
        labels = ("", "", "")  # model, version, role: none until a served model is found
        request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
        sampled = self.predlog is not None and self.predlog.sampled()
        answering: tuple[LoadedModel | None, str] = (None, "")  # for the log's request line
        try:
            target = self.table.find(request.path_params["target"])
            labels, answering = _labels(target.model, target.role), (target.model, target.role)
            payload = inputs.parse_body(await _body(request))
            model, role = self.splitter.choose(target, traffic.request_key(
                payload, request.headers.get(traffic.KEY_HEADER)))
            labels, answering = _labels(model, role), (model, role)
            rows = inputs.rows_of(payload, model)
            try:
                predictions, probabilities = await run_in_threadpool(model.predict, rows)
            except (ValueError, TypeError) as exc:
                raise RequestError(422, f"model {model.resolved.label} rejected the inputs: "
                                        f"{str(exc)[:500]}") from None
            if self.predlog is not None and sampled:
                self.predlog.write(model, role, request_id, rows, predictions, probabilities)
            if target.shadow is not None:
                self.shadowing.submit(Copy(target.shadow, payload, predictions,
                                           request_id if sampled else None))
        except RequestError as exc:
            reason = {404: "unknown_model", 413: "too_large", 422: "invalid_input"}.get(
                exc.status, "bad_request")
            return self._failed(exc.status, start, labels, reason, answering, request_id,
                                sampled, exc.message, exc.hint)
        except Exception as exc:  # noqa: BLE001 - the client gets JSON, the log the traceback
            log.exception("prediction failed")
            return self._failed(500, start, labels, "model_error", answering, request_id,
                                sampled, f"prediction failed: {type(exc).__name__}")
        r = model.resolved
        body: dict[str, Any] = {"model": r.name, "version": r.version, "stage": r.stage,
                                "role": role, "request_id": request_id,
                                "predictions": predictions}
        if probabilities is not None:
            body["probabilities"] = probabilities
        seconds = time.perf_counter() - start
        self.metrics.observe(*labels, 200, seconds)
        if self.predlog is not None and sampled:
            self.predlog.record(model, role, request_id, 200, seconds, len(rows))
        return JSONResponse(body, headers={REQUEST_ID_HEADER: request_id})

    def _failed(self, status: int, start: float, labels: tuple[str, str, str], reason: str,
                answering: tuple[LoadedModel | None, str], request_id: str, sampled: bool,
                message: str, hint: str | None = None) -> Response:
        """A failed prediction counted in /metrics and the log, answered with its id."""
        seconds = time.perf_counter() - start
        self.metrics.observe(*labels, status, seconds, reason)
        if self.predlog is not None and sampled:
            self.predlog.record(*answering, request_id, status, seconds, 0)
        response = error_response(status, message, hint)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    async def list_models(self, request: Request) -> Response:
        shares = {v.canary.spec: v.percent for v in self.table.variants if v.canary}
        return JSONResponse({"models": [
            _describe(slot) | ({"percent": shares[slot.spec]} if slot.role == "canary" else {})
            for slot in self.table.all_slots]})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "models": len(self.table.slots),
                             "pid": os.getpid()})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(document())

    async def metrics_text(self, request: Request) -> Response:
        text = (self.shared.render() if self.shared is not None
                else self.metrics.render(model_info(self.table.all_slots)))
        return Response(text, media_type=CONTENT_TYPE)

    async def admin_reload(self, request: Request) -> Response:
        try:
            self.admin.check(request.headers.get("authorization"))
        except RequestError as exc:
            return error_response(exc.status, exc.message, exc.hint)
        try:
            report = self._reload_and_tell(await run_in_threadpool(self.reload), asked=True)
        except MomaError as exc:
            return error_response(409, exc.message, exc.hint)
        return JSONResponse(asdict(report))


async def _body(request: Request) -> bytes:
    """The request body, refused with a 413 as soon as it is known to be over the limit:
    `request.body()` read all of it first, so a client announcing a TiB held the request
    open, and one streaming it filled the server's memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > inputs.MAX_BODY_BYTES:
        raise inputs.body_too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > inputs.MAX_BODY_BYTES:
            raise inputs.body_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _labels(model: LoadedModel, role: str) -> tuple[str, str, str]:
    return model.resolved.name, version_label(model.resolved.version), role


def _describe(slot: Slot) -> dict[str, Any]:
    model = slot.current
    r = model.resolved
    return {"ref": slot.spec, "name": r.name, "version": r.version, "stage": r.stage,
            "role": slot.role, "oid": r.oid, "metadata": r.metadata,
            "features": list(model.feature_names) if model.feature_names else None,
            "n_features": model.n_features, "probabilities": model.has_proba}


def error_response(status: int, message: str, hint: str | None = None) -> JSONResponse:
    body = {"error": message} | ({"hint": hint} if hint else {})
    return JSONResponse(body, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                          "GET /openapi.json describes the routes")


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(500, f"internal error: {type(exc).__name__}")


def create_app(server: Server) -> Starlette:
    routes = [
        Route("/v1/models/{target:path}/predict", server.predict, methods=["POST"]),
        Route("/v1/models", server.list_models, methods=["GET"]),
        Route("/v1/admin/reload", server.admin_reload, methods=["POST"]),
        Route("/healthz", server.healthz, methods=["GET"]),
        Route("/metrics", server.metrics_text, methods=["GET"]),
        Route("/openapi.json", server.openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=server.lifespan,
                     exception_handlers={HTTPException: _http_error, 500: _internal_error})


def log_to_stderr() -> None:
    """Switches and failed reloads go to stderr, timestamped (once per process)."""
    if log.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
