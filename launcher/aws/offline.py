"""The instance catalogue from moto's bundled EC2 data, without any server (benchmarks, tests).

moto ships the real DescribeInstanceTypes answers (about 1,400 types) and per-zone offerings;
with the bundled on-demand price table and a spot discount this gives a realistic catalogue
for exercising the planner at full size.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from importlib import resources

from launcher.aws.catalogue import build_catalogue
from launcher.aws.pricing import bundled_prices
from launcher.model import InstanceType

SPOT_DISCOUNT = 0.35  # spot at 35% of on-demand, roughly the long-run average


def _moto_resource(*parts: str) -> object:
    path = resources.files("moto").joinpath("ec2", "resources", *parts)
    with path.open("rb") as raw, gzip.open(raw) as unzipped:
        return json.load(unzipped)


def offline_catalogue(
    region: str = "us-east-1", zones: Sequence[str] = ("us-east-1a", "us-east-1b", "us-east-1c")
) -> list[InstanceType]:
    raw_types = _moto_resource("instance_types.json.gz")
    assert isinstance(raw_types, dict)
    rows = _moto_resource("instance_type_offerings", "availability-zone", f"{region}.json.gz")
    assert isinstance(rows, list)
    offerings: dict[str, list[str]] = {}
    for row in rows:
        if row["Location"] in zones:
            offerings.setdefault(row["InstanceType"], []).append(row["Location"])
    on_demand = bundled_prices()
    spot = {
        (name, zone): round(price * SPOT_DISCOUNT, 5)
        for name, price in on_demand.items()
        for zone in offerings.get(name, ())
    }
    return build_catalogue(raw_types.values(), offerings, on_demand, spot)
