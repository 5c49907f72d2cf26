"""Prometheus series for informers, read at scrape time: nothing is counted per event.

How far a watch lags is what a scale test and an operator both need to see: the
``resourceVersion`` an informer has applied, compared with the API server's, says how many
writes it is behind (the API server's resourceVersion is etcd's revision, one number for the
whole cluster, so the comparison holds across resources). Synced and object counts say when the
first list is done and how much each cache holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class InformerLike(Protocol):
    """What is read from an informer (:class:`shared.informer.Informer`)."""

    name: str

    @property
    def has_synced(self) -> bool: ...

    @property
    def resource_version(self) -> str: ...

    def store(self) -> Sized: ...


def resource_version_number(text: str) -> float:
    """The resourceVersion as a number (NaN when it is empty or not one: it is opaque to clients)."""
    return float(text) if text.isdigit() else float("nan")


class InformerCollector(Collector):
    """``jitnode_informer_{synced,resource_version,objects}`` for a fixed set of informers."""

    def __init__(self, informers: Sequence[InformerLike]) -> None:
        self._informers = tuple(informers)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """Nothing up front: several services' collectors may share one registry in tests."""
        return ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        synced = GaugeMetricFamily(
            "jitnode_informer_synced", "1 once the informer's first list is delivered.", labels=["informer"]
        )
        version = GaugeMetricFamily(
            "jitnode_informer_resource_version",
            "The last resourceVersion the informer applied (from a list, an event or a bookmark).",
            labels=["informer"],
        )
        objects = GaugeMetricFamily(
            "jitnode_informer_objects", "Objects in the informer's store.", labels=["informer"]
        )
        for informer in self._informers:
            synced.add_metric([informer.name], 1.0 if informer.has_synced else 0.0)
            version.add_metric([informer.name], resource_version_number(informer.resource_version))
            objects.add_metric([informer.name], float(len(informer.store())))
        yield synced
        yield version
        yield objects
