"""Serving HTTP inside `rapport run`: the manager pages, web sign-in, webhooks, health and
metrics."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from application.web.app import create_app
from application.web.signin import signin_router
from application.web.webhooks import webhook_router
from service.accounts.crypto import Vault
from service.observability import set_queue_depth_source
from workers import actors
from workers.observability import broker_reachable, queue_depths
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def build_web_app(runtime: Runtime) -> FastAPI:
    """Everything Rapport answers over HTTP, on one app; health and queue depth are read
    from the broker the actors are bound to."""
    broker = actors.sync_calendar.broker
    set_queue_depth_source(lambda: queue_depths(broker))
    app = create_app(runtime.settings, runtime.factory, clock=runtime.clock,
                     broker_reachable=lambda: broker_reachable(broker),
                     enqueue_write=actors.write_agenda.send)
    app.include_router(webhook_router(factory=runtime.factory,
                                      vault=Vault.from_settings(runtime.settings),
                                      enqueue_sync=actors.sync_calendar.send,
                                      enqueue_renew=actors.renew_channel.send))
    app.include_router(signin_router(runtime.settings, runtime.factory, clock=runtime.clock,
                                     on_connected=actors.sync_account.send))
    return app


def serve_in_thread(runtime: Runtime) -> uvicorn.Server:
    """Start uvicorn on the configured host and port in a daemon thread; returns the server
    (set `should_exit` to stop it)."""
    settings = runtime.settings
    server = uvicorn.Server(uvicorn.Config(build_web_app(runtime), host=settings.http_host,
                                           port=settings.http_port, log_level="warning",
                                           proxy_headers=True))
    thread = threading.Thread(target=server.run, name="rapport-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise OSError(f"could not listen on {settings.http_host}:{settings.http_port} "
                      "(RAPPORT_HTTP_HOST / RAPPORT_HTTP_PORT)")
    log.info("serving HTTP on %s:%d", settings.http_host, settings.http_port)
    return server
