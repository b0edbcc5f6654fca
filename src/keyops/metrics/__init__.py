"""keyops' Prometheus metrics: what every layer counts, and how a scrape renders it.

The counters and the histogram below are process-wide; any layer may increment them
(``deploy/`` counts roll-out results, the webhook sender counts deliveries, the HTTP
middleware in ``api/metrics.py`` counts requests). What the database holds (not-afters,
gateway nodes) is not counted here: it is read at scrape time (``metrics/database.py``)
by the process that answers the scrape, so it appears exactly once.

Several workers (``keyops serve --workers N``): ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start (prometheus
client picks its value class when it is first imported, so the variable must be set by
then), each worker writes its counts to its own memory-mapped files there, and the
worker that answers a scrape adds up every worker's files. In that mode the process
collectors (CPU, memory, GC) are left out: they would describe one random worker.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal, Protocol

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "DEPLOYMENTS",
    "HTTP_REQUEST_SECONDS",
    "MULTIPROC_ENV",
    "REGISTRY",
    "WEBHOOK_DELIVERIES",
    "WebhookOutcome",
    "is_multiprocess",
    "multiprocess_dir",
    "process_exited",
    "record_deployments",
    "record_webhook_delivery",
    "scrape_registry",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# ``*_created`` series double the output and tell nothing a restart counter does not.
disable_created_metrics()  # type: ignore[no-untyped-call]

# keyops' own registry: what a single process exports (the library's default registry
# is left to whoever else imports prometheus-client).
REGISTRY = CollectorRegistry(auto_describe=True)

# Requests: by the matched route's path template, never the raw path (unbounded). The
# histogram's ``_count`` is the request counter: a separate ``_total`` counter would
# repeat it at a cost of about 1.2 us per request (a third of the middleware's).
HTTP_REQUEST_SECONDS = Histogram(
    "keyops_http_request_duration_seconds",
    "Time from receiving a request to the end of its answer, by method, route template"
    " and status code.",
    ("method", "route", "status"),
    # From a cached list (about a millisecond) to a deployment that waits for its
    # gateway nodes (KEYOPS_DEPLOY_TIMEOUT_SECONDS, 5 s by default).
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
DEPLOYMENTS = Counter(
    "keyops_deployments_total",
    "Roll-outs of a change to one environment, by environment and outcome (success, failure).",
    ("environment", "outcome"),
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "keyops_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome (delivered; retrying: failed, tried again"
    " later; failed: failed and given up).",
    ("outcome",),
    registry=REGISTRY,
)


class _Outcome(Protocol):
    @property
    def environment_name(self) -> str: ...

    @property
    def success(self) -> bool: ...


def record_deployments(results: Iterable[_Outcome]) -> None:
    """Count each environment's result of a roll-out."""
    for result in results:
        outcome = "success" if result.success else "failure"
        DEPLOYMENTS.labels(result.environment_name, outcome).inc()


WebhookOutcome = Literal["delivered", "retrying", "failed"]


def record_webhook_delivery(outcome: WebhookOutcome) -> None:
    """Count one webhook delivery attempt, once its outcome is committed."""
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def is_multiprocess() -> bool:
    """Whether this process shares its counts with sibling workers through files."""
    return bool(os.environ.get(MULTIPROC_ENV))


if not is_multiprocess():
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        REGISTRY.register(_collector)


def scrape_registry(*extra: Collector) -> CollectorRegistry:
    """A registry for one scrape: this process's (or every worker's) counts and the
    given collectors (what the database holds, read for this scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    if is_multiprocess():
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Delegate(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return registry


class _Delegate(Collector):
    """Everything a registry holds, as one collector of another registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


def process_exited() -> None:
    """A worker's bookkeeping at exit (its live gauges go; its counts stay)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path and os.path.isdir(path):
        _multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


@contextmanager
def multiprocess_dir(workers: int) -> Iterator[str | None]:
    """The directory the workers of one ``serve`` share their counts in, emptied first.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is used as it is (only the count files
    prometheus-client writes are removed from it); otherwise, with several workers, a
    fresh temporary directory is made and removed when serving ends. One worker without
    the variable needs none. Set before the workers start, which inherit it.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for pattern in ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db"):
            for path in glob.glob(os.path.join(given, pattern)):
                os.remove(path)
        yield given
        return
    if workers <= 1:
        yield None
        return
    made = tempfile.mkdtemp(prefix="keyops-metrics-")
    os.environ[MULTIPROC_ENV] = made
    try:
        yield made
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(made, ignore_errors=True)
