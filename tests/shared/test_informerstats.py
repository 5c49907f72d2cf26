"""Informer series read at scrape time: synced, resourceVersion (NaN when opaque), objects."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared.informerstats import InformerCollector, resource_version_number


@dataclass
class FakeInformer:
    name: str
    synced: bool = False
    rv: str = ""
    objects: dict[str, object] = field(default_factory=dict)

    @property
    def has_synced(self) -> bool:
        return self.synced

    @property
    def resource_version(self) -> str:
        return self.rv

    def store(self) -> dict[str, object]:
        return self.objects


def scrape(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels["informer"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_series_follow_the_informers_at_each_scrape() -> None:
    pods, nodes = FakeInformer("pods"), FakeInformer("nodes", synced=True, rv="17", objects={"a": 1})
    registry = CollectorRegistry()
    registry.register(InformerCollector((pods, nodes)))
    first = scrape(registry)
    assert first[("jitnode_informer_synced", "pods")] == 0.0
    assert math.isnan(first[("jitnode_informer_resource_version", "pods")])
    assert first[("jitnode_informer_synced", "nodes")] == 1.0
    assert first[("jitnode_informer_resource_version", "nodes")] == 17.0
    assert first[("jitnode_informer_objects", "nodes")] == 1.0
    pods.synced, pods.rv, pods.objects = True, "1234567", {"x": 1, "y": 2}
    second = scrape(registry)
    assert second[("jitnode_informer_synced", "pods")] == 1.0
    assert second[("jitnode_informer_resource_version", "pods")] == 1234567.0
    assert second[("jitnode_informer_objects", "pods")] == 2.0


def test_two_collectors_share_a_registry() -> None:
    registry = CollectorRegistry()
    registry.register(InformerCollector((FakeInformer("pods"),)))
    registry.register(InformerCollector((FakeInformer("pods"),)))  # no duplicate-name error
    assert ("jitnode_informer_synced", "pods") in scrape(registry)


def test_resource_versions_that_are_not_numbers_are_nan() -> None:
    assert resource_version_number("42") == 42.0
    assert math.isnan(resource_version_number(""))
    assert math.isnan(resource_version_number("abc-1"))
