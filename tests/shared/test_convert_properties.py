"""Properties: converted pools always parse, durations survive exactly, and nothing vanishes unreported."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.api.nodepool import NodePool
from shared.convert import convert
from shared.convert.labelkeys import RENAMED

TEMPLATE = {
    "apiVersion": "karpenter.k8s.aws/v1alpha1",
    "kind": "AWSNodeTemplate",
    "metadata": {"name": "default"},
    "spec": {
        "instanceProfile": "P",
        "subnetSelector": {"karpenter.sh/discovery": "c"},
        "securityGroupSelector": {"karpenter.sh/discovery": "c"},
    },
}
UNMAPPABLE = [
    "karpenter.k8s.aws/instance-hypervisor",
    "karpenter.k8s.aws/instance-gpu-count",
    "karpenter.sh/other",
]
PLAIN = ["topology.kubernetes.io/zone", "kubernetes.io/os", "example.com/team"]
MAPPABLE = sorted(k for k, v in RENAMED.items() if v != "jitnode.io/nodepool")

values = st.lists(st.sampled_from(["a", "b1", "c-2", "7"]), min_size=1, max_size=3, unique=True)
requirements = st.lists(
    st.fixed_dictionaries(
        {"key": st.sampled_from(MAPPABLE + UNMAPPABLE + PLAIN), "operator": st.sampled_from(["In", "NotIn"])}
    ).flatmap(lambda r: values.map(lambda v: {**r, "values": v})),
    max_size=8,
)


def provisioner(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.sh/v1alpha5",
        "kind": "Provisioner",
        "metadata": {"name": "default"},
        "spec": {"providerRef": {"name": "default"}, **spec},
    }


@settings(max_examples=150, deadline=None)
@given(reqs=requirements)
def test_every_requirement_is_kept_renamed_or_reported(reqs: list[dict[str, Any]]) -> None:
    # Capacity types must be real ones, or they are (rightly) dropped as values.
    for r in reqs:
        if r["key"] == "karpenter.sh/capacity-type":
            r["values"] = ["spot"]
    conversion = convert([provisioner({"requirements": reqs}), TEMPLATE])
    pool = next(o for o in conversion.objects if o["kind"] == "NodePool")
    out = pool["spec"]["template"]["spec"]["requirements"]
    dropped = {f.path for f in conversion.dropped}
    kept = iter(out)
    for i, r in enumerate(reqs):
        if r["key"] in UNMAPPABLE:
            assert f"spec.requirements[{i}]" in dropped
            continue
        converted = next(kept)
        assert converted["key"] == RENAMED.get(r["key"], r["key"])
        assert (converted["operator"], converted["values"]) == (r["operator"], r["values"])
    assert len(dropped) == sum(r["key"] in UNMAPPABLE for r in reqs)
    NodePool.from_api(pool)


@settings(max_examples=150, deadline=None)
@given(empty=st.integers(0, 10**7), expire=st.integers(1, 10**9))
def test_ttls_survive_exactly(empty: int, expire: int) -> None:
    conversion = convert(
        [provisioner({"ttlSecondsAfterEmpty": empty, "ttlSecondsUntilExpired": expire}), TEMPLATE]
    )
    pool = NodePool.from_api(next(o for o in conversion.objects if o["kind"] == "NodePool"))
    assert pool.disruption.consolidate_after is not None
    assert pool.disruption.consolidate_after.total_seconds() == empty
    assert pool.expire_after is not None
    assert pool.expire_after.total_seconds() == expire
    assert conversion.complete


@settings(max_examples=50, deadline=None)
@given(reqs=requirements)
def test_converting_the_output_again_changes_nothing(reqs: list[dict[str, Any]]) -> None:
    for r in reqs:
        if r["key"] == "karpenter.sh/capacity-type":
            r["values"] = ["on-demand"]
    once = convert([provisioner({"requirements": reqs}), TEMPLATE])
    assert convert(once.objects).objects == once.objects
