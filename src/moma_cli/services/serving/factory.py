"""The ASGI app factory for worker processes, configured by MOMA_SERVE_* variables.

`moma serve --workers N` runs N uvicorn workers with it; so can uvicorn or gunicorn
themselves (docs/serving.md):

    MOMA_SERVE_REPO=/srv/models MOMA_SERVE_HOST=127.0.0.1 \\
        uvicorn --factory moma_cli.services.serving.factory:create_app --workers 4

Each worker resolves and loads the models itself and polls the stage tags itself; with
MOMA_SERVE_GIT_URL it serves that repository's registry from a shared clone (following.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from moma_cli.errors import MomaError
from moma_cli.services import serve
from moma_cli.services.repo import open_repo
from moma_cli.services.serving import app, settings

log = logging.getLogger("moma.serve")


def create_app() -> Any:
    """The Starlette app of one worker; a MomaError (logged with its hint) stops it."""
    app.log_to_stderr()
    env = os.environ
    try:
        options = settings.Settings.from_env(env)
        repo = (None if options.git_url else
                open_repo(Path(env[settings.REPO]) if env.get(settings.REPO) else None))
        metrics_dir = env.get(settings.METRICS_DIR)
        server, report = serve.prepare(
            repo, options.refs, host=options.host, poll=options.poll,
            log_predictions=options.log_predictions, sample_rate=options.sample_rate,
            trusted_types=options.trusted_types, canaries=options.canaries,
            shadows=options.shadows, metrics_dir=Path(metrics_dir) if metrics_dir else None,
            git_url=options.git_url, workdir=options.workdir, trust=options.trust)
    except MomaError as exc:
        log.error("worker %d: %s%s", os.getpid(), exc.message,
                  f" (hint: {exc.hint})" if exc.hint else "")
        raise
    for message in report.errors:
        log.warning("worker %d: not served: %s", os.getpid(), message)
    for slot in server.table.all_slots:
        r = slot.current.resolved
        log.info("worker %d: serving %s (version %s, %s)", os.getpid(), slot.spec, r.version,
                 r.oid[:8])
    return app.create_app(server)
