"""The planner's building blocks: the type index's fast compatibility and the merge pass."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.planner.fit import TypeIndex
from launcher.planner.improve import Draft, Option, merge
from shared import labels
from shared.requirements import Requirement, Requirements
from shared.resources import Resources
from tests.launcher.planner_fixtures import CATALOGUE

GI = 2**30


def _never(instance_type: str, zone: str, capacity_type: str) -> bool:
    return False


REQUIREMENTS = st.lists(
    st.one_of(
        st.builds(
            Requirement,
            st.sampled_from([labels.ARCH, labels.INSTANCE_FAMILY, labels.INSTANCE_SIZE, "intent"]),
            st.sampled_from(["In", "NotIn"]),
            st.lists(
                st.sampled_from(["amd64", "arm64", "m5", "c5", "t3", "xlarge", "large", "apps"]), min_size=1
            ).map(tuple),
        ),
        st.builds(
            Requirement,
            st.just(labels.INSTANCE_CPU),
            st.sampled_from(["Gt", "Lt"]),
            st.sampled_from(["2", "4", "8"]).map(lambda v: (v,)),
        ),
        st.builds(
            Requirement,
            st.sampled_from([labels.INSTANCE_FAMILY, "gpu"]),
            st.sampled_from(["Exists", "DoesNotExist"]),
        ),
    ),
    max_size=4,
).map(lambda rs: Requirements.of(*rs))


@settings(max_examples=200, deadline=None)
@given(REQUIREMENTS)
def test_the_index_agrees_with_requirements_compatible(reqs: Requirements) -> None:
    index = TypeIndex(CATALOGUE, _never)
    expected = [i for i, t in enumerate(CATALOGUE) if reqs.compatible(Requirements.from_labels(t.labels))]
    assert index.compatible(reqs) == expected


def test_candidates_are_priced_by_the_cheapest_allowed_offering_and_sorted() -> None:
    index = TypeIndex(CATALOGUE, lambda t, z, c: t == "m5.large" and c == "spot")
    on_demand = Requirements.from_labels({labels.CAPACITY_TYPE: "on-demand"})
    candidates = index.candidates(on_demand, Resources())
    assert [c.price for c in candidates] == sorted(c.price for c in candidates)
    by_name = {c.type.name: c for c in candidates}
    assert by_name["m5.large"].price == 0.096
    assert set(by_name["m5.large"].prices) == {"on-demand"}
    anything = {c.type.name: c for c in index.candidates(Requirements(), Resources())}
    assert anything["m5.large"].prices == {"on-demand": 0.096}  # its spot offerings are unavailable
    assert anything["m5.xlarge"].price < 0.192  # spot is allowed and cheaper


def test_overhead_larger_than_a_type_removes_it() -> None:
    index = TypeIndex(CATALOGUE, _never)
    names = {c.type.name for c in index.candidates(Requirements(), Resources(memory=2 * GI))}
    assert "t3.micro" not in names
    assert "m5.large" in names


# Merge ---------------------------------------------------------------------------------------

SMALL = Option("small", 1.0, (2000, 8 * GI))
LARGE = Option("large", 1.5, (4000, 16 * GI))
ARM = Requirements.from_labels({labels.ARCH: "arm64"})
AMD = Requirements.from_labels({labels.ARCH: "amd64"})


def _options(reqs: Requirements) -> list[Option]:
    return [SMALL, LARGE]


def _draft(reqs: Requirements, cpu: int, group: int, option: Option = SMALL) -> Draft:
    return Draft(reqs, (cpu, GI), {(group, 0): cpu // 500}, option.price, option.room)


def test_two_light_compatible_drafts_merge_onto_one_cheaper_node() -> None:
    merged = merge([_draft(Requirements(), 1000, 0), _draft(AMD, 1000, 1)], _options)
    assert len(merged) == 1
    (only,) = merged
    assert only.requirements == AMD
    assert only.used == (2000, 2 * GI)
    assert only.contents == {(0, 0): 2, (1, 0): 2}
    assert only.price == 1.0


def test_incompatible_requirements_never_merge() -> None:
    drafts = [_draft(ARM, 1000, 0), _draft(AMD, 1000, 1)]
    assert merge(drafts, _options) == drafts


def test_no_merge_without_a_saving() -> None:
    # Together they need the large node: at 2.0 it saves nothing over two small ones at 1.0.
    dear = Option("large", 2.0, LARGE.room)
    drafts = [_draft(Requirements(), 1500, 0), _draft(Requirements(), 1500, 1)]
    assert merge(drafts, lambda reqs: [SMALL, dear]) == drafts
    assert len(merge(drafts, _options)) == 1  # at 1.5 it does


def test_full_drafts_are_left_alone() -> None:
    full = [Draft(Requirements(), (1900, 7 * GI), {(g, 0): 1}, SMALL.price, SMALL.room) for g in range(2)]
    assert merge(full, _options) == full


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Requirements(), ARM, AMD]), st.integers(1, 8)), max_size=12))
def test_merging_never_raises_cost_nor_loses_pods(spec: list[tuple[Requirements, int]]) -> None:
    drafts = [_draft(reqs, half_cores * 250, g) for g, (reqs, half_cores) in enumerate(spec)]
    merged = merge(drafts, _options)
    assert sum(d.price for d in merged) <= sum(d.price for d in drafts) + 1e-9
    before: dict[tuple[int, int], int] = {}
    for d in drafts:
        for key, n in d.contents.items():
            before[key] = before.get(key, 0) + n
    after: dict[tuple[int, int], int] = {}
    for d in merged:
        assert d.used[0] <= d.room[0]
        assert d.requirements.is_satisfiable()
        for key, n in d.contents.items():
            after[key] = after.get(key, 0) + n
    assert after == before
    assert merge(drafts, _options) == merged  # deterministic
