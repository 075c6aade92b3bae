"""The broker only delivers: in-process by default, Redis or RabbitMQ by URL.

Actors are declared once in `workers.actors`; `install_broker` (re)binds them to the broker
chosen here, so tests can install a fresh StubBroker per test.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, ShutdownNotifications

from service.settings import Settings
from workers import actors, context, observability
from workers.pending import PendingSends
from workers.retries import RapportRetries, one_line
from workers.superseded import SupersededSyncs

log = logging.getLogger(__name__)


def create_broker(settings: Settings) -> dramatiq.Broker:
    """A broker for `RAPPORT_BROKER_URL`: unset → in-process, redis:// or amqp:// → that one."""
    url = settings.broker_url
    middleware = [AgeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(),
                  RapportRetries()]
    if not url:
        broker: dramatiq.Broker = StubBroker(middleware=middleware)
        broker.emit_after("process_boot")
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker  # the redis extra, loaded only when used

        broker = RedisBroker(url=url, middleware=middleware)
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker  # the rabbitmq extra, likewise

        broker = RabbitmqBroker(url=url, middleware=middleware)
    else:
        scheme = url.split(":", 1)[0]
        raise ValueError(f"RAPPORT_BROKER_URL must start with redis:// or amqp:// "
                         f"(got {scheme}://...)")
    broker.add_middleware(SupersededSyncs.for_broker(broker))
    PendingSends.install(broker)
    return broker


def install_broker(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Make `broker` the global one and declare every Rapport actor on it."""
    dramatiq.set_broker(broker)
    context.install(broker)
    for actor in actors.ALL:
        actor.broker = broker
        broker.declare_actor(actor)
    observability.install(broker)
    return broker


def safe_url(url: str) -> str:
    """The broker URL without user and password, for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def broker_problem(url: str, *, timeout: float = 3.0) -> str | None:
    """None when the broker at `url` answers within `timeout`; otherwise why not, one line.

    dramatiq connects lazily and its consumer threads retry a lost connection every few
    seconds, each with a log line; asking once, with short timeouts, before a Worker starts
    lets `rapport worker` and `rapport scheduler` say plainly that the broker is not there.
    pika logs every failed connect at ERROR with a traceback; the answer here says it once.
    """
    pika_log = logging.getLogger("pika")
    pika_level = pika_log.level
    pika_log.setLevel(logging.CRITICAL + 1)
    try:
        if url.startswith(("redis://", "rediss://")):
            import redis  # the redis extra; only needed with a Redis broker

            client = redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                          socket_timeout=timeout)
            try:
                client.ping()
            finally:
                client.close()
        elif url.startswith(("amqp://", "amqps://")):
            import pika  # the rabbitmq extra; only needed with a RabbitMQ broker

            params = pika.URLParameters(url)
            params.connection_attempts, params.retry_delay = 1, 0
            params.socket_timeout = params.stack_timeout = timeout
            params.blocked_connection_timeout = timeout
            pika.BlockingConnection(params).close()
        else:
            return "not a redis:// or amqp:// URL"
    except Exception as err:  # whatever the client raises, the answer is "not reachable"
        detail = str(err).strip() or repr(err)  # pika's errors say it only in their repr
        name = type(err).__name__
        return (detail if detail.startswith(name) else f"{name}: {detail}").splitlines()[0]
    finally:
        pika_log.setLevel(pika_level)
    return None


def wait_for_broker(url: str, *, stop: threading.Event, first_delay: float = 1.0,
                    max_delay: float = 60.0) -> bool:
    """Ask the broker until it answers, backing off up to `max_delay`, one log line per
    attempt; False when `stop` was set first."""
    attempt, delay = 0, first_delay
    while not stop.is_set():
        attempt += 1
        problem = broker_problem(url)
        if problem is None:
            if attempt > 1:
                log.info("broker %s answers now (attempt %d)", safe_url(url), attempt)
            return True
        log.warning("broker %s cannot be reached (%s); trying again in %.0f s (attempt %d)",
                    safe_url(url), problem, delay, attempt)
        if stop.wait(delay):
            break
        delay = min(max_delay, delay * 2)
    return False


class OneLinePerOutage(logging.Filter):
    """dramatiq's consumer threads log each failed reconnect, some with a traceback, every
    few seconds and once per queue: keep one line (no traceback) per message per interval."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({one_line(record.exc_info[1])})"
            record.args, record.exc_info, record.exc_text = None, None, None
        key = str(record.msg)
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.interval) < self.interval:
                return False
            self._last[key] = now
        return True


_ONE_LINE = OneLinePerOutage()


def quiet_consumer_errors(broker: dramatiq.Broker) -> None:
    """Install one shared `OneLinePerOutage` on the logger of each of the broker's consumer
    threads (dramatiq names them ``dramatiq.worker.ConsumerThread(<queue>)``), once each."""
    for queue in broker.get_declared_queues() | broker.get_declared_delay_queues():
        logger = logging.getLogger(f"dramatiq.worker.ConsumerThread({queue})")
        if _ONE_LINE not in logger.filters:
            logger.addFilter(_ONE_LINE)
