"""`moma serve`: load the registered models from the cache and serve them over HTTP.

The HTTP stack (Starlette, uvicorn) is the optional `serve` extra; it is imported here,
inside the functions, so the rest of moma never pays for it or needs it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from moma_cli.errors import MomaError
from moma_cli.services.repo import Repo
from moma_cli.services.serving import following
from moma_cli.services.serving import settings as settings_mod
from moma_cli.services.serving import source as source_mod
from moma_cli.services.serving.admin import AdminAccess
from moma_cli.services.serving.predlog import PredictionLog
from moma_cli.services.serving.shared import ReloadSignal
from moma_cli.services.serving.slots import Canary, ModelTable, ReloadReport


class ServeError(MomaError):
    pass


def _http() -> ModuleType:
    try:
        from moma_cli.services.serving import app
    except ImportError as exc:
        raise ServeError(f"moma serve needs the 'serve' extra ({exc.name} is not installed)",
                         hint="pip install 'moma-cli[serve]'") from None
    return app


def prepare(
    repo: Repo | None,
    refs: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    poll: float = 10.0,
    log_predictions: Path | None = None,
    sample_rate: float = 0.1,
    source: source_mod.ModelSource | None = None,
    trusted_types: Sequence[str] = (),
    canaries: Sequence[tuple[str, float]] = (),
    shadows: Sequence[str] = (),
    workers: int = 1,
    metrics_dir: Path | None = None,
    git_url: str | None = None,
    workdir: Path | None = None,
    trust: bool = False,
) -> tuple[Any, ReloadReport]:
    """Resolve and load every model to serve on host:port; (server, what was loaded and
    skipped).

    No refs: every registered model at its `production` stage. Off loopback, the admin
    routes need the token in $MOMA_SERVE_ADMIN_TOKEN, or are off (serving/admin.py).
    `trusted_types`: the types a skops model may hold beyond those skops trusts.
    `canaries`: (ref, percent) pairs, each taking that share of its model's requests;
    `shadows`: refs that get a copy of every request for their model (serving/shadow.py).
    `workers` > 1: `run` serves with that many processes, each loading the models itself;
    this one only checks their cache objects (source.verify), to refuse a bad start early.
    `metrics_dir`: this is one of several workers publishing their metrics there and
    signalling their reloads to each other (serving/shared.py).
    `git_url`: serve that repository's registry, not `repo`'s (None then): cloned under
    `workdir` (default: the user cache), its tags followed on every reload and its models
    downloaded from its remote (serving/following.py); a pickled one only with `trust`.
    """
    for spec, percent in canaries:
        if not 0.0 <= percent <= 100.0:
            raise ServeError(f"--canary {spec}={percent:g}%: the percentage is not between "
                             "0 and 100")
    if not 0.0 <= sample_rate <= 1.0:
        raise ServeError(f"--sample-rate {sample_rate} is not between 0 and 1")
    if poll < 0:
        raise ServeError(f"--poll {poll} is negative", hint="use 0 to turn polling off")
    if workers < 1:
        raise ServeError(f"--workers {workers}: at least one is needed")
    if trust and git_url is None:
        raise ServeError("--trust is for --repo: the models of this repository already load",
                         hint="drop --trust, or serve another repository with --repo GIT_URL")
    app = _http()
    if git_url is not None:
        repo = following.open_clone(git_url, workdir)
        source = source or following.FollowedSource(repo)
    if repo is None:
        raise ServeError("no repository to serve from", hint="pass a Repo or a git URL")
    served = repo

    def load(resolved: source_mod.ResolvedModel) -> source_mod.LoadedModel:
        if git_url is not None:
            following.pull(served, resolved, trust)
        if workers > 1:
            return source_mod.verify(served, resolved)
        return source_mod.load(served, resolved, trusted_types,
                               trust_pickle=git_url is None or trust)

    table = ModelTable(source or source_mod.RegistrySource(repo), load, refs,
                       [Canary(spec, percent) for spec, percent in canaries], shadows)
    # Before the models load: a reload another worker signals meanwhile is not missed.
    signal = ReloadSignal(metrics_dir) if metrics_dir is not None else None
    report = table.start()
    predlog = PredictionLog(log_predictions, sample_rate) if log_predictions else None
    admin = AdminAccess.for_host(host, os.environ)
    spawn = None
    if workers > 1:
        options = settings_mod.Settings(tuple(refs), host, poll, log_predictions, sample_rate,
                                        tuple(trusted_types), tuple(canaries), tuple(shadows),
                                        git_url, workdir, trust)
        spawn = settings_mod.Workers(workers, options.to_env(repo.root))
    return app.Server(table, host, port, admin, predlog, poll, metrics_dir, spawn,
                      signal), report


def run(server: Any) -> str | None:
    """Serve until stopped; 'SIGTERM' when that stopped it.

    Several workers publish their metrics to a private temporary directory, removed when
    they have all stopped."""
    _http()
    from moma_cli.services.serving import running as http

    if server.workers is None:
        stopped_by: str | None = http.run(server)
        return stopped_by
    with tempfile.TemporaryDirectory(prefix="moma-serve-metrics-") as metrics_dir:
        env = server.workers.env | {settings_mod.METRICS_DIR: metrics_dir}
        stopped_by = http.run_workers(server, env)
    return stopped_by
