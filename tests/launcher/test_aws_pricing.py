"""Prices: the bundled table, its estimate model, Pricing API parsing, fallback and spot prices."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.aws import testing
from launcher.aws.pricing import (
    TABLE_PATH,
    bundled_prices,
    estimate_on_demand_price,
    fetch_spot_prices,
    latest_spot_prices,
    on_demand_prices,
    parse_price_list,
    parse_price_table,
)
from launcher.aws.session import AWSClients
from localcluster.ec2 import MotoEC2


def test_bundled_table_has_the_common_families_and_says_where_it_comes_from() -> None:
    prices = bundled_prices()
    assert prices["m5.large"] == pytest.approx(0.096)
    assert prices["c5.large"] == pytest.approx(0.085)
    assert prices["m6g.large"] == pytest.approx(0.077)
    assert len(prices) > 250
    header = TABLE_PATH.read_text().splitlines()[:6]
    assert any("aws.amazon.com/ec2/pricing" in line for line in header)
    assert any("refresh_pricing_table" in line for line in header)


def test_table_parser_rejects_bad_rows() -> None:
    assert parse_price_table("# c\ninstance_type,usd_per_hour\nm5.large,0.096\n") == {"m5.large": 0.096}
    with pytest.raises(ValueError, match=":2:"):
        parse_price_table("m5.large,0.096\nm5.xlarge\n")
    with pytest.raises(ValueError, match=":1:"):
        parse_price_table("m5.large,-1\n")


@pytest.mark.parametrize(
    ("name", "category", "vcpus", "memory_mib", "gpus", "arch"),
    [
        ("m5.large", "m", 2, 8192, 0, "amd64"),
        ("c5.xlarge", "c", 4, 8192, 0, "amd64"),
        ("r5.2xlarge", "r", 8, 65536, 0, "amd64"),
        ("t3.large", "t", 2, 8192, 0, "amd64"),
        ("m6g.xlarge", "m", 4, 16384, 0, "arm64"),
        ("g4dn.xlarge", "g", 4, 16384, 1, "amd64"),
        ("p3.2xlarge", "p", 8, 62464, 1, "amd64"),
        ("i3.large", "i", 2, 15616, 0, "amd64"),
    ],
)
def test_estimate_is_close_to_list_prices(
    name: str, category: str, vcpus: int, memory_mib: int, gpus: int, arch: str
) -> None:
    estimate = estimate_on_demand_price(category, vcpus, memory_mib, gpus, arch)
    assert estimate == pytest.approx(bundled_prices()[name], rel=0.1)


@given(
    category=st.sampled_from(["m", "c", "r", "t", "g", "p", "x", "unknown"]),
    vcpus=st.integers(1, 448),
    memory_mib=st.integers(512, 24 * 2**20),
    gpus=st.integers(0, 16),
)
def test_estimate_is_positive_and_grows_with_size(
    category: str, vcpus: int, memory_mib: int, gpus: int
) -> None:
    price = estimate_on_demand_price(category, vcpus, memory_mib, gpus)
    assert price > 0
    assert estimate_on_demand_price(category, vcpus * 2, memory_mib * 2, gpus) > price
    assert estimate_on_demand_price(category, vcpus, memory_mib, gpus, "arm64") <= price


def _product(instance_type: str, usd: str) -> str:
    return orjson.dumps(
        {
            "product": {"productFamily": "Compute Instance", "attributes": {"instanceType": instance_type}},
            "terms": {
                "OnDemand": {
                    "SKU.JRTCKXETXF": {
                        "priceDimensions": {
                            "SKU.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}
                        }
                    }
                }
            },
        }
    ).decode()


def test_get_products_price_list_is_parsed() -> None:
    items = [_product("m5.large", "0.0960000000"), _product("c5.large", "0.0850000000"), _product("x", "0")]
    assert parse_price_list(items) == {"m5.large": 0.096, "c5.large": 0.085}


async def test_pricing_api_failure_falls_back_to_the_table_fast(ec2: MotoEC2) -> None:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        started = time.monotonic()
        prices, source = await on_demand_prices(clients.pricing, "us-east-1")
        elapsed = time.monotonic() - started
    assert source == "bundled-table"
    assert prices == dict(bundled_prices())
    assert elapsed < 2.0  # one attempt, short timeout: moto's HTTP 500 is not retried for seconds


async def test_pricing_api_unreachable_falls_back(ec2: MotoEC2) -> None:
    settings = testing.moto_settings("http://127.0.0.1:9")  # nothing listens on the discard port
    async with AWSClients(settings) as clients:
        started = time.monotonic()
        _, source = await on_demand_prices(clients.pricing, "us-east-1")
    assert source == "bundled-table"
    assert time.monotonic() - started < 3.0


async def test_spot_prices_come_per_type_and_zone(ec2: MotoEC2) -> None:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        prices = await fetch_spot_prices(clients.ec2, ["m5.large", "m6g.large"])
    assert {name for name, _ in prices} == {"m5.large", "m6g.large"}
    assert {zone for _, zone in prices} >= {"us-east-1a", "us-east-1b", "us-east-1c"}
    assert all(price > 0 for price in prices.values())


def test_the_latest_spot_price_wins() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    history = [
        {"InstanceType": "m5.large", "AvailabilityZone": "a", "SpotPrice": "0.05", "Timestamp": now},
        {
            "InstanceType": "m5.large",
            "AvailabilityZone": "a",
            "SpotPrice": "0.04",
            "Timestamp": now - timedelta(hours=1),
        },
        {
            "InstanceType": "m5.large",
            "AvailabilityZone": "b",
            "SpotPrice": "0.03",
            "Timestamp": now - timedelta(hours=2),
        },
    ]
    assert latest_spot_prices(history) == {("m5.large", "a"): 0.05, ("m5.large", "b"): 0.03}
