"""The extender's Prometheus metrics, on a registry of its own so tests and replicas don't collide.

Latency buckets are fine-grained below 5 ms because the scheduler calls us on its hot path:
the target is p99 under 2 ms, and the buckets must be able to show whether it is met.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

VERBS: Final = ("filter", "prioritize")
OUTCOMES: Final = ("ok", "bad_request", "error")
_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class ExtenderMetrics:
    """Request latency per verb, requests by outcome, demand by reason, stream health."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.latency = Histogram(
            "jitnode_extender_request_seconds",
            "Time to answer a kube-scheduler extender call.",
            ["verb"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "jitnode_extender_requests",
            "Extender calls by verb and outcome (ok, bad_request, error).",
            ["verb", "outcome"],
            registry=self.registry,
        )
        self.demand = Gauge(
            "jitnode_extender_demand_pods",
            "Pods currently reported to the launcher as demand, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.demand_events = Counter(
            "jitnode_extender_demand_events",
            "Demand upserts and withdrawals sent, by action.",
            ["action"],
            registry=self.registry,
        )
        self.stream_reconnects = Counter(
            "jitnode_extender_stream_reconnects",
            "Times the demand stream to the launcher was (re)established after the first.",
            registry=self.registry,
        )
        self.stream_connected = Gauge(
            "jitnode_extender_stream_connected",
            "1 while the demand stream to the launcher is connected.",
            registry=self.registry,
        )
        self.predictions_dropped = Counter(
            "jitnode_extender_predictions_dropped",
            "Filtered pods not read for shortfall prediction because its queue was full (the oldest go).",
            registry=self.registry,
        )
        self.tls_reloads = Counter(
            "jitnode_extender_tls_reloads",
            "Serving-certificate reloads after the files changed, by outcome (ok, failed).",
            ["outcome"],
            registry=self.registry,
        )
        # Children bound once: the request path then skips the label lookup.
        self.latency_by_verb = {verb: self.latency.labels(verb) for verb in VERBS}
        self.requests_by = {
            (verb, outcome): self.requests.labels(verb, outcome) for verb in VERBS for outcome in OUTCOMES
        }

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
