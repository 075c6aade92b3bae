"""Serve a sandbox over HTTPS on 127.0.0.1 in a background thread (trustme certificate):
the Graph sandbox always, the Google sandbox when asked (google-auth-oauthlib refuses plain
HTTP endpoints)."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import trustme
import uvicorn
from starlette.types import ASGIApp

from sandbox.listen import listening_socket


class HttpsServer:
    """uvicorn in a daemon thread on a free port, with a throwaway CA whose PEM is `ca_file`."""

    def __init__(self, app: ASGIApp, *, name: str = "sandbox") -> None:
        self.app = app
        self.name = name
        self._dir = tempfile.TemporaryDirectory(prefix=f"{name}-")
        folder = Path(self._dir.name)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = str(folder / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self._cert = str(folder / "cert.pem")
        self._key = str(folder / "key.pem")
        for i, pem in enumerate(cert.cert_chain_pems):
            pem.write_to_path(self._cert, append=i > 0)
        cert.private_key_pem.write_to_path(self._key)
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        """https://127.0.0.1:PORT"""
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and serve until `stop`."""
        sock = listening_socket()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ssl_certfile=self._cert,
            ssl_keyfile=self._key,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and delete the certificate files."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._dir.cleanup()
