"""Running the HTTP app (app.py) under uvicorn, the only module importing it: in this
process, or as `moma serve --workers N` worker processes sharing one socket. Either way
until SIGTERM or Ctrl-C, reporting which one stopped it.
"""

from __future__ import annotations

import os
import signal

from moma_cli.errors import MomaError
from moma_cli.services.serving import app

# How uvicorn's worker processes build their app (`moma serve --workers N`).
FACTORY = "moma_cli.services.serving.factory:create_app"


def run(server: app.Server) -> str | None:
    """Serve until SIGTERM or Ctrl-C (uvicorn drains the connections); 'SIGTERM' when that
    stopped it.

    uvicorn re-raises the signal it drained on with the handler it found: with the default
    SIGTERM handler the process died right there, before Python flushed stdout, so a
    container's log lost what moma printed and the exit status was -15 (issue 12). Ours
    records the signal instead, and also stops a server that is still starting up.
    """
    import uvicorn

    app.log_to_stderr()
    http = uvicorn.Server(uvicorn.Config(app.create_app(server), host=server.host,
                                         port=server.port, log_level="warning",
                                         access_log=False, timeout_graceful_shutdown=10))
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        http.should_exit = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        http.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return "SIGTERM" if received else None


def run_workers(server: app.Server, env: dict[str, str]) -> str | None:
    """Serve with `server.workers.count` uvicorn worker processes on one socket, each
    building its own app with FACTORY from `env` (settings.py), until SIGTERM or Ctrl-C;
    'SIGTERM' when that stopped it.

    uvicorn's supervisor restarts a worker that dies, and stops everything when one fails
    to start (its log says why): that is a WorkersFailed here.
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess

    class Supervisor(Multiprocess):
        stopped_by: str | None = None

        def handle_term(self) -> None:
            self.stopped_by = "SIGTERM"
            super().handle_term()

    assert server.workers is not None
    saved_env = {name: os.environ.get(name) for name in env}
    saved_handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    # The workers are spawned, not forked: they get the environment of this process.
    os.environ.update(env)
    try:
        config = uvicorn.Config(FACTORY, factory=True, host=server.host, port=server.port,
                                workers=server.workers.count, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=10)
        sock = config.bind_socket()
        try:
            supervisor = Supervisor(config, sockets=[sock])
            supervisor.run()
        finally:
            sock.close()
    finally:
        for sig, handler in saved_handlers.items():
            if handler is not None:  # None: not set from Python, nothing to put back
                signal.signal(sig, handler)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise WorkersFailed("a worker process failed to start (its error is above)")
    return supervisor.stopped_by


class WorkersFailed(MomaError):
    pass
