"""The NodeClaims-by-instance index follows informer events; marks carry an interruption's deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from launcher.disruption.mark import INTERRUPTED, Mark
from launcher.interruption.instances import ClaimsByInstance, instance_id_of

NOW = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)


def claim(name: str, instance: str | None = None, provider: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if instance is not None:
        status["instanceID"] = instance
    if provider is not None:
        status["providerID"] = provider
    return {"metadata": {"name": name}, "status": status}


def test_instance_id_from_status_or_provider_id() -> None:
    assert instance_id_of(claim("a", "i-1")) == "i-1"
    assert instance_id_of(claim("a", provider="aws:///us-east-1a/i-2")) == "i-2"
    assert instance_id_of(claim("a")) is None
    assert instance_id_of(claim("a", provider="kind://node")) is None
    assert instance_id_of({"metadata": {"name": "a"}}) is None


def test_index_follows_launch_relaunch_and_deletion() -> None:
    index = ClaimsByInstance()
    index.on_added(claim("a"))
    assert index.claim("i-1") is None
    index.on_modified(claim("a"), claim("a", "i-1"))
    assert index.claim("i-1") == "a"
    index.on_modified(claim("a", "i-1"), claim("a", "i-9"))
    assert index.claim("i-1") is None
    assert index.claim("i-9") == "a"
    index.on_deleted(claim("a", "i-9"))
    assert index.claim("i-9") is None
    assert len(index) == 0


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "modify", "delete"]),
            st.sampled_from("abc"),
            st.sampled_from([None, "i-1", "i-2", "i-3"]),
        ),
        max_size=30,
    )
)
def test_index_matches_the_claims_alive(steps: list[tuple[str, str, str | None]]) -> None:
    index = ClaimsByInstance()
    alive: dict[str, str | None] = {}
    for op, name, instance in steps:
        body = claim(name, instance)
        if op == "delete":
            index.on_deleted(body)
            alive.pop(name, None)
        elif op == "add":
            index.on_added(body)
            alive[name] = instance
        else:
            index.on_modified(claim(name), body)
            alive[name] = instance
    # Two claims naming one instance cannot happen in EC2; the last one wins here.
    for instance in ("i-1", "i-2", "i-3"):
        owner = index.claim(instance)
        assert owner is None or alive.get(owner) == instance


def test_a_mark_keeps_its_deadline_through_the_annotation() -> None:
    mark = Mark(INTERRUPTED, NOW, ("r1",), NOW + timedelta(minutes=2))
    assert Mark.parse(mark.to_annotation(), NOW - timedelta(days=1)) == mark
    without = Mark(INTERRUPTED, NOW, ("r1",))
    assert "deadline" not in without.to_annotation()
    assert Mark.parse(without.to_annotation(), NOW).deadline is None
