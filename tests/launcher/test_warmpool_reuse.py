"""reuseOnScaleIn: which drained nodes go back to the warm pool, and the Node patch that takes them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from launcher.disruption.drain import unmark_patch
from launcher.disruption.mark import DRIFTED, EMPTY, EXPIRED, INTERRUPTED, UNDERUTILIZED
from launcher.warmpool import reuse, steps
from launcher.warmpool.sizing import recent_demand
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.api.nodepool import NodePool
from shared.api.warmpool import WarmPoolSpec
from tests.launcher.planner_fixtures import nodepool
from tests.launcher.test_warmpool import NOW, _time, claim


def pool(reuse_on_scale_in: bool = True) -> NodePool:
    spec = WarmPoolSpec(size=0, max_size=3, reuse_on_scale_in=reuse_on_scale_in)
    return replace(nodepool().pool, warm_pool=spec)


def serving(**kwargs: Any) -> NodeClaim:
    return claim("default-cold", warm=False, initialized=True, **kwargs)


@pytest.mark.parametrize("reason", [EMPTY, UNDERUTILIZED])
def test_surplus_goes_back_while_the_pool_wants_more(reason: str) -> None:
    assert reuse.refusal(serving(), pool(), warm=1, desired=2, reason=reason, now=NOW) is None


@pytest.mark.parametrize(
    ("why", "kwargs"),
    [
        ("does not reuse", {"nodepool": pool(reuse_on_scale_in=False)}),
        ("does not reuse", {"nodepool": replace(pool(), warm_pool=None)}),
        ("does not reuse", {"nodepool": None}),
        ("Expired, not as surplus", {"reason": EXPIRED}),
        ("Drifted, not as surplus", {"reason": DRIFTED}),
        ("Interrupted, not as surplus", {"reason": INTERRUPTED}),
        ("already has 2 of the 2", {"warm": 2}),
        ("already warm", {"claim": claim(warm=True)}),
        ("being deleted", {"claim": serving(deleting=True)}),
    ],
)
def test_what_does_not_go_back(why: str, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"claim": serving(), "nodepool": pool(), "warm": 1, "reason": EMPTY}
    args.update(kwargs)
    refusal = reuse.refusal(args["claim"], args["nodepool"], args["warm"], 2, args["reason"], NOW)
    assert refusal is not None
    assert why in refusal


def test_an_expired_or_drifted_node_does_not_go_back() -> None:
    old = serving(created=NOW - timedelta(days=40))
    assert "expired" in (reuse.refusal(old, pool(), 0, 2, EMPTY, NOW) or "")
    raw = serving().to_api()
    raw["status"]["conditions"].append(
        {"type": "Drifted", "status": "True", "lastTransitionTime": _time(NOW)}
    )
    assert "drifted" in (reuse.refusal(NodeClaim.from_api(raw), pool(), 0, 2, EMPTY, NOW) or "")


def test_the_returned_node_loses_the_disruption_mark_and_gets_the_warm_cordon() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "resourceVersion": "7",
            "annotations": {labels.DISRUPTING_ANNOTATION: "{}", "keep": "me"},
        },
        "spec": {
            "taints": [
                {"key": labels.DISRUPTED_TAINT, "effect": "NoSchedule"},
                {"key": "dedicated", "value": "x", "effect": "NoSchedule"},
            ]
        },
    }
    patch = steps.with_cordon(unmark_patch(node), node)
    assert patch["metadata"]["annotations"][labels.DISRUPTING_ANNOTATION] is None
    assert patch["metadata"]["annotations"][labels.DO_NOT_DISRUPT_ANNOTATION] == "true"
    assert patch["metadata"]["resourceVersion"] == "7"
    assert patch["metadata"]["labels"][labels.WARM_LABEL] == "true"
    assert patch["spec"]["unschedulable"] is True
    assert {t["key"] for t in patch["spec"]["taints"]} == {"dedicated", labels.WARM_TAINT}


def test_a_returned_node_still_counts_as_demand_but_a_fill_does_not() -> None:
    returned = claim(
        "returned", created=NOW - timedelta(minutes=2), annotations={labels.WARM_RETURNED_ANNOTATION: "x"}
    )
    fill = claim("fill", created=NOW - timedelta(minutes=2))
    assert recent_demand([returned, fill], NOW, timedelta(minutes=10)) == 1
    assert recent_demand([returned], NOW + timedelta(minutes=20), timedelta(minutes=10)) == 0
