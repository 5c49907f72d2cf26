"""Hedged warm starts: which parked instances start beside those the pods wait for."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from launcher.warmpool.claims import hedged
from launcher.warmpool.hedging import spares
from launcher.warmpool.reuse import refusal
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.api.nodepool import NodePool
from shared.api.warmpool import HIBERNATED, RUNNING, STOPPED, WarmPoolSpec
from tests.launcher.planner_fixtures import CATALOGUE as TYPES
from tests.launcher.planner_fixtures import nodepool
from tests.launcher.test_warmpool import NOW, claim, parked

CATALOGUE = {t.name: t for t in TYPES}


def pools(hedged_starts: int = 1, reuse: bool = False) -> dict[str, NodePool]:
    spec = WarmPoolSpec(size=4, max_size=4, hedged_starts=hedged_starts, reuse_on_scale_in=reuse)
    return {"default": replace(nodepool().pool, warm_pool=spec)}


def names(picked: list[NodeClaim]) -> list[str]:
    return [c.name for c in picked]


def test_each_parked_start_brings_its_spares_fastest_then_largest_then_cheapest() -> None:
    primary = parked(STOPPED, name="p")
    small = parked(STOPPED, name="small", launched="m5.xlarge")
    large = parked(STOPPED, name="large", launched="m5.2xlarge")
    resumes = parked(HIBERNATED, name="resumes", launched="m5.xlarge")
    others = [primary, small, large, resumes]
    assert names(spares([primary], others, pools(1), CATALOGUE)) == ["resumes"]
    assert names(spares([primary], others, pools(2), CATALOGUE)) == ["resumes", "large"]
    # Never more than the pool has parked.
    assert names(spares([primary], others, pools(5), CATALOGUE)) == ["resumes", "large", "small"]


def test_spares_in_the_zone_of_the_instance_they_stand_in_for_come_first() -> None:
    primary = parked(STOPPED, name="p", zone="us-east-1a")
    faster_elsewhere = parked(HIBERNATED, name="elsewhere", zone="us-east-1b")
    same_zone = parked(STOPPED, name="same", zone="us-east-1a")
    picked = spares([primary], [primary, faster_elsewhere, same_zone], pools(2), CATALOGUE)
    assert names(picked) == ["same", "elsewhere"]


def test_nothing_is_hedged_without_the_setting_or_for_running_and_filling_instances() -> None:
    spare = parked(STOPPED, name="spare")
    assert spares([parked(STOPPED, name="p")], [spare], pools(0), CATALOGUE) == []
    assert spares([parked(RUNNING, name="p")], [spare], pools(1), CATALOGUE) == []
    assert spares([claim("filling")], [spare], pools(1), CATALOGUE) == []
    # Only parked Stopped or Hibernated claims of the pool serve as spares.
    assert spares([parked(STOPPED, name="p")], [claim("filling"), parked(RUNNING)], pools(1), CATALOGUE) == []


def test_a_hedged_claim_goes_back_to_the_pool_without_reuse_on_scale_in() -> None:
    annotated = claim("h", warm=False, initialized=True, annotations={labels.WARM_HEDGED_ANNOTATION: "p"})
    plain = claim("c", warm=False, initialized=True)
    pool = pools(1, reuse=False)["default"]
    assert hedged(annotated)
    assert not hedged(plain)
    assert refusal(annotated, pool, 1, 2, "Empty", NOW) is None
    assert "does not reuse" in (refusal(plain, pool, 1, 2, "Empty", NOW) or "")
    assert refusal(annotated, pool, 2, 2, "Empty", NOW + timedelta(seconds=1)) is not None
