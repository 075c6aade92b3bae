"""Run an ASGI app with uvicorn in a background thread on 127.0.0.1 and a free port."""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from sandbox.listen import listening_socket


class ServerThread:
    """A uvicorn server on its own thread; `start` returns once it accepts connections."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1") -> None:
        self._app = app
        self._host = host
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Bind a free port, serve in a daemon thread and wait until ready."""
        sock = listening_socket(self._host)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        self._server = server

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None
