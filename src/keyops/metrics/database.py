"""What the database holds, as gauges computed at scrape time.

``read_facts`` is one unit of work (run it with ``await db.read(...)``) of a constant
number of statements: three for the not-afters (``domain/expiry.not_afters``: one per
kind) and one for the gateway nodes. ``DatabaseCollector`` turns what it read into
metric families for that one scrape; it is never registered for good, so only the
process answering a scrape reads the database, and each series appears once whatever
the number of workers.

Series:

- ``keyops_certificate_not_after_seconds{project, kind, name, environment, alias}``:
  the not-after (Unix seconds) of every certificate (``kind="certificate"``), keystore
  entry holding a certificate (``kind="keystore"``, ``alias`` the entry's) and JWK with
  ``exp`` (``kind="jwk"``), per environment. One metric with a ``kind`` label, in the
  manner of cert-manager's ``certmanager_certificate_expiration_timestamp_seconds``, so
  one alert rule (``keyops_certificate_not_after_seconds - time() < 7 * 86400``) covers
  every kind. A JWK is one document per project, not per environment: its
  ``environment`` is empty; ``alias`` is empty except for keystore entries.
- ``keyops_gateway_nodes_connected{environment}``: nodes connected (heard from within
  ``KEYOPS_GATEWAY_NODE_TTL_SECONDS`` and not said goodbye), 0 included.
- ``keyops_gateway_node_lag_revisions{environment, node}``: per connected node, the
  environment's desired revision minus the revision the node last applied (0: up to
  date).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from keyops.domain.expiry import Expiring, not_afters
from keyops.storage.models.base import utcnow
from keyops.storage.repositories.metrics import EnvironmentNode, MetricsRepository

__all__ = ["DatabaseCollector", "DatabaseFacts", "read_facts"]


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    """What one scrape read from the database."""

    not_afters: Sequence[Expiring]
    nodes: Sequence[EnvironmentNode]


def read_facts(session: Session, *, node_ttl_seconds: float) -> DatabaseFacts:
    """Every not-after of every project and every environment's connected nodes."""
    now = utcnow()
    return DatabaseFacts(
        not_afters(session, None, now=now),
        MetricsRepository(session).environment_nodes(now - timedelta(seconds=node_ttl_seconds)),
    )


class DatabaseCollector(Collector):
    """The gauges of one scrape, from facts already read."""

    def __init__(self, facts: DatabaseFacts) -> None:
        self.facts = facts

    def collect(self) -> Iterable[Metric]:
        not_after = GaugeMetricFamily(
            "keyops_certificate_not_after_seconds",
            "Not-after (Unix time) of each certificate, keystore entry with a certificate"
            " and JWK with exp, per environment (JWKs: no environment).",
            labels=("project", "kind", "name", "environment", "alias"),
        )
        for e in self.facts.not_afters:
            not_after.add_metric(
                (e.project, e.kind, e.name, e.environment or "", e.alias or ""),
                e.not_after.timestamp(),
            )
        connected = GaugeMetricFamily(
            "keyops_gateway_nodes_connected",
            "Gateway nodes connected to each environment.",
            labels=("environment",),
        )
        lag = GaugeMetricFamily(
            "keyops_gateway_node_lag_revisions",
            "Revisions each connected gateway node is behind its environment's desired state.",
            labels=("environment", "node"),
        )
        counts: dict[str, int] = {}
        for row in self.facts.nodes:
            counts.setdefault(row.environment, 0)
            if row.node is not None:
                counts[row.environment] += 1
                lag.add_metric(
                    (row.environment, row.node), row.revision - (row.applied_revision or 0)
                )
        for environment, count in counts.items():
            connected.add_metric((environment,), count)
        return (not_after, connected, lag)
