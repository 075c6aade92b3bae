"""The broker only delivers: in-process by default, Redis or RabbitMQ by URL.

Actors are declared once in `workers.actors`; `install_broker` (re)binds them to the broker
chosen here, so tests can install a fresh StubBroker per test.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications

from service.settings import Settings
from workers import observability

log = logging.getLogger(__name__)


def create_broker(settings: Settings) -> dramatiq.Broker:
    """A broker for `RAPPORT_BROKER_URL`: unset → in-process, redis:// or amqp:// → that one."""
    url = settings.broker_url
    middleware = [AgeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(),
                  Retries(max_retries=8, min_backoff=1_000, max_backoff=600_000)]
    if not url:
        broker: dramatiq.Broker = StubBroker(middleware=middleware)
        broker.emit_after("process_boot")
        return broker
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=middleware)
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    raise ValueError(f"RAPPORT_BROKER_URL must start with redis:// or amqp:// (got {url.split(':', 1)[0]}://...)")


def install_broker(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Make `broker` the global one and declare every Rapport actor on it."""
    from workers import actors

    dramatiq.set_broker(broker)
    for actor in actors.ALL:
        actor.broker = broker
        broker.declare_actor(actor)
    observability.install(broker)
    return broker
