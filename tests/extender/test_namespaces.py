"""The namespace-label cache behind the webhook follows informer events exactly."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from extender.namespaces import NamespaceLabels


def namespace(name: str, labels: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": "1"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def test_added_modified_deleted() -> None:
    cache = NamespaceLabels()
    assert cache.get("team-a") is None
    cache.on_added(namespace("team-a", {"jitnode.io/scheduling": "enabled"}))
    cache.on_added(namespace("bare", None))
    assert cache.get("team-a") == {"jitnode.io/scheduling": "enabled"}
    assert cache.get("bare") == {}  # known, no labels: not the same as unknown
    cache.on_modified(namespace("team-a", {"jitnode.io/scheduling": "enabled"}), namespace("team-a", {}))
    assert cache.get("team-a") == {}
    cache.on_deleted(namespace("team-a", {}))
    assert cache.get("team-a") is None
    assert len(cache) == 1


def test_cached_labels_do_not_alias_the_event() -> None:
    cache = NamespaceLabels()
    obj = namespace("a", {"x": "1"})
    cache.on_added(obj)
    obj["metadata"]["labels"]["x"] = "2"
    assert cache.get("a") == {"x": "1"}


names = st.sampled_from(["a", "b", "c", "d"])
label_sets = st.one_of(st.none(), st.dictionaries(st.sampled_from(["k", "l"]), st.sampled_from(["1", "2"])))
events = st.lists(st.tuples(st.sampled_from(["put", "delete"]), names, label_sets), max_size=30)


@given(events)
def test_matches_a_plain_dict_model(steps: list[tuple[str, str, dict[str, str] | None]]) -> None:
    cache = NamespaceLabels()
    model: dict[str, dict[str, str]] = {}
    for action, name, labels in steps:
        obj = namespace(name, labels)
        if action == "delete":
            cache.on_deleted(obj)
            model.pop(name, None)
        elif name in model:
            cache.on_modified(namespace(name, model[name]), obj)
            model[name] = dict(labels or {})
        else:
            cache.on_added(obj)
            model[name] = dict(labels or {})
    for name in ("a", "b", "c", "d"):
        got = cache.get(name)
        assert (dict(got) if got is not None else None) == model.get(name)
    assert len(cache) == len(model)
