"""Small answers leave at once: every server we run turns Nagle off on its connections.

Without TCP_NODELAY on the accepted socket, each small response waited ~44 ms for the
peer's delayed ACK (asyncio sets it only for sockets that say IPPROTO_TCP), and benchmarks
measured the sandbox instead of Rapport. Checked on the live connection, server side.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from typing import Any

import httpx
import uvicorn

from application.web.server import serve_in_thread
from sandbox.google.sandbox import GoogleSandbox
from sandbox.microsoft.sandbox import GraphSandbox

from .conftest import Harness


def _accepted_nodelay(server: uvicorn.Server, timeout: float = 5.0) -> list[int]:
    """TCP_NODELAY of every connection the server holds open (keep-alive keeps ours)."""
    deadline = time.monotonic() + timeout
    while not server.server_state.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    flags = []
    for connection in list(server.server_state.connections):
        sock: Any = connection.transport.get_extra_info("socket")
        flags.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return flags


def _uvicorn_of(sandbox: GoogleSandbox | GraphSandbox) -> uvicorn.Server:
    holder: Any = sandbox._server  # the sandbox's server thread
    return holder._server  # type: ignore[no-any-return]


def test_the_google_sandbox_answers_without_nagle(google_sandbox: GoogleSandbox) -> None:
    with httpx.Client() as client:
        client.get(google_sandbox.token_url)  # any answer; the connection stays open
        flags = _accepted_nodelay(_uvicorn_of(google_sandbox))
    assert flags and all(flags), flags


def test_the_graph_sandbox_answers_without_nagle(graph_sandbox: GraphSandbox) -> None:
    with httpx.Client(verify=graph_sandbox.ca_file) as client:
        client.get(f"{graph_sandbox.token_url}/v2.0/.well-known/openid-configuration")
        flags = _accepted_nodelay(_uvicorn_of(graph_sandbox))
    assert flags and all(flags), flags


def test_rapport_run_answers_without_nagle(harness: Harness) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = replace(harness.runtime, settings=harness.runtime.settings.model_copy(
        update={"http_host": "127.0.0.1", "http_port": port}))
    server = serve_in_thread(served)
    try:
        with httpx.Client() as client:
            assert client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            flags = _accepted_nodelay(server)
        assert flags and all(flags), flags
    finally:
        server.should_exit = True
