"""The process's Prometheus metrics: what `/metrics` serves, counted where the work happens.

One registry of our own (not prometheus-client's global one), so the families served are
exactly Rapport's. Service code only increments counters here; the broker's queue depth is
read at scrape time through a source the workers layer installs (service never imports
workers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)

SYNCS = Counter("rapport_syncs", "Calendar syncs run by the workers, by result "
                "(ok; throttled; failed: an expected provider failure; error: a bug).",
                ["result"], registry=REGISTRY)
PROVIDER_CALLS = Counter("rapport_provider_calls", "HTTP calls made to calendar providers, "
                         "by provider, operation and HTTP status.",
                         ["provider", "operation", "status"], registry=REGISTRY)
EMAILS = Counter("rapport_emails", "Outbox delivery attempts, by result (sent, failed).",
                 ["result"], registry=REGISTRY)
AGENDA_WRITES = Counter("rapport_agenda_writes", "Agendas written into calendar invites.",
                        registry=REGISTRY)

QueueDepths = Callable[[], Mapping[str, int]]


class _QueueDepthCollector(Collector):
    """`rapport_queue_depth{queue}`, read from the broker when scraped."""

    def __init__(self) -> None:
        self.source: QueueDepths | None = None

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("rapport_queue_depth",
                                   "Messages waiting in each broker queue (delayed included).",
                                   labels=["queue"])
        if self.source is not None:
            try:
                depths = dict(self.source())
            except Exception as err:  # an unreachable broker must not break the scrape
                log.warning("queue depth unavailable: %s: %s", type(err).__name__, err)
                depths = {}
            for queue, depth in sorted(depths.items()):
                family.add_metric([queue], depth)
        yield family


_QUEUE_DEPTH = _QueueDepthCollector()
REGISTRY.register(_QUEUE_DEPTH)


def set_queue_depth_source(source: QueueDepths | None) -> None:
    """Install where queue depths come from (the broker of this process)."""
    _QUEUE_DEPTH.source = source


def render() -> bytes:
    """Every metric in the Prometheus text exposition format."""
    return generate_latest(REGISTRY)
