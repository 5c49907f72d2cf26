"""Instance prices: on-demand from the Pricing API or a bundled table, spot from EC2's history.

The planner needs a price for every offering, so no type may be left without one. On-demand
prices come from the Pricing API (GetProducts, served from us-east-1 for every region); when it
is unreachable or errors, the bundled ``pricing_table.csv`` (us-east-1 list prices) stands in,
and types missing from it are priced with :func:`estimate_on_demand_price`, a per-vCPU, per-GiB
and per-GPU model fitted to list prices of each instance category. Spot prices are the latest
DescribeSpotPriceHistory entry per (type, zone).

Parsing and the estimate are pure functions; the fetchers are thin async shells around them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from shared.logs import get_logger

log = get_logger(__name__)

TABLE_PATH: Final = Path(__file__).with_name("pricing_table.csv")
LINUX_PRODUCT_DESCRIPTIONS: Final = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")
# How long the whole GetProducts walk may take before the table is used instead.
PRICING_DEADLINE_SECONDS: Final = 30.0


@dataclass(frozen=True)
class PriceModel:
    """USD per hour per vCPU, per GiB of memory and per GPU, for one instance category."""

    per_vcpu: float
    per_gib: float
    per_gpu: float = 0.0


# Fitted to us-east-1 list prices of current x86 families: m (m5.large 2 vCPU/8 GiB = 0.096),
# c (c5.large 2/4 = 0.085), r (r5.large 2/16 = 0.126), t (t3.large 2/8 = 0.0832), storage (i3),
# accelerated (g4dn.xlarge 4/16/1 GPU = 0.526; p3.2xlarge 8/61/1 = 3.06). Graviton types cost
# about 20% less than their x86 peers (m6g vs m5), so arm64 takes ARM64_DISCOUNT.
PRICE_MODELS: Final[Mapping[str, PriceModel]] = {
    "m": PriceModel(per_vcpu=0.024, per_gib=0.006),
    "c": PriceModel(per_vcpu=0.034, per_gib=0.00425),
    "r": PriceModel(per_vcpu=0.020, per_gib=0.005375),
    "t": PriceModel(per_vcpu=0.0208, per_gib=0.0052),
    "x": PriceModel(per_vcpu=0.020, per_gib=0.0075),
    "z": PriceModel(per_vcpu=0.040, per_gib=0.0075),
    "i": PriceModel(per_vcpu=0.039, per_gib=0.0049),
    "d": PriceModel(per_vcpu=0.040, per_gib=0.0050),
    "h": PriceModel(per_vcpu=0.040, per_gib=0.0050),
    "g": PriceModel(per_vcpu=0.024, per_gib=0.006, per_gpu=0.33),
    "p": PriceModel(per_vcpu=0.024, per_gib=0.006, per_gpu=2.48),
    "inf": PriceModel(per_vcpu=0.024, per_gib=0.006, per_gpu=0.10),
    "trn": PriceModel(per_vcpu=0.024, per_gib=0.006, per_gpu=1.10),
    "dl": PriceModel(per_vcpu=0.024, per_gib=0.006, per_gpu=1.60),
}
DEFAULT_PRICE_MODEL: Final = PRICE_MODELS["m"]
ARM64_DISCOUNT: Final = 0.8
MIN_PRICE: Final = 0.001


def estimate_on_demand_price(
    category: str, vcpus: int, memory_mib: int, gpus: int = 0, architecture: str = "amd64"
) -> float:
    """A list-price estimate for a type missing from every price source (see :data:`PRICE_MODELS`)."""
    model = PRICE_MODELS.get(category, DEFAULT_PRICE_MODEL)
    price = model.per_vcpu * vcpus + model.per_gib * memory_mib / 1024 + model.per_gpu * gpus
    if architecture == "arm64":
        price *= ARM64_DISCOUNT
    return round(max(price, MIN_PRICE), 6)


def parse_price_table(text: str) -> dict[str, float]:
    """``instance_type,usd_per_hour`` rows; ``#`` comments and the header line are skipped."""
    prices: dict[str, float] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("instance_type,"):
            continue
        name, sep, value = line.partition(",")
        try:
            price = float(value)
        except ValueError:
            price = -1.0
        if not sep or not name or price < 0:
            raise ValueError(
                f"{TABLE_PATH.name}:{number}: expected 'instance_type,usd_per_hour', got {raw!r}"
            )
        prices[name.strip()] = price
    return prices


@cache
def bundled_prices() -> Mapping[str, float]:
    """The bundled us-east-1 table, read once on first use."""
    return parse_price_table(TABLE_PATH.read_text(encoding="utf-8"))


def get_products_filters(region: str) -> list[dict[str, str]]:
    """GetProducts filters for Linux, shared tenancy, no pre-installed software, used capacity."""
    terms = {
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in terms.items()]


def parse_price_list(items: Iterable[str | bytes | Mapping[str, Any]]) -> dict[str, float]:
    """Instance type -> USD per hour from GetProducts ``PriceList`` entries (JSON strings).

    Each product may carry several on-demand terms and dimensions; the hourly USD one is taken,
    and a zero price (a reservation placeholder) is ignored.
    """
    prices: dict[str, float] = {}
    for item in items:
        product = orjson.loads(item) if isinstance(item, str | bytes) else item
        name = product.get("product", {}).get("attributes", {}).get("instanceType")
        if not name:
            continue
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                if dimension.get("unit", "Hrs") not in ("Hrs", "Hours"):
                    continue
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "0") or 0)
                if usd > 0:
                    prices[name] = min(usd, prices.get(name, usd))
    return prices


async def fetch_on_demand_prices(pricing: Any, region: str) -> dict[str, float]:
    """Every Linux on-demand price in ``region`` from the Pricing API (raises on any failure)."""
    paginator = pricing.get_paginator("get_products")
    prices: dict[str, float] = {}
    async for page in paginator.paginate(
        ServiceCode="AmazonEC2", Filters=get_products_filters(region), FormatVersion="aws_v1"
    ):
        prices.update(parse_price_list(page.get("PriceList", [])))
    return prices


async def on_demand_prices(
    pricing: Any, region: str, deadline: float = PRICING_DEADLINE_SECONDS
) -> tuple[dict[str, float], str]:
    """On-demand prices and where they came from (``"pricing-api"`` or ``"bundled-table"``).

    The Pricing API is optional: any error, or an empty answer, falls back to the bundled table
    (and to estimates for what it lacks, done by the caller that knows each type's shape).
    """
    try:
        async with asyncio.timeout(deadline):
            prices = await fetch_on_demand_prices(pricing, region)
        if prices:
            return prices, "pricing-api"
        log.warning("pricing api returned no prices, using the bundled table", region=region)
    except (BotoCoreError, ClientError, TimeoutError, OSError, ValueError) as exc:
        log.warning("pricing api unavailable, using the bundled table", region=region, error=str(exc))
    return dict(bundled_prices()), "bundled-table"


def latest_spot_prices(history: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """(instance type, zone) -> the most recent spot price in ``history`` entries."""
    latest: dict[tuple[str, str], tuple[datetime, float]] = {}
    epoch = datetime.min.replace(tzinfo=UTC)
    for entry in history:
        key = (str(entry["InstanceType"]), str(entry["AvailabilityZone"]))
        stamp = entry.get("Timestamp") or epoch
        if isinstance(stamp, datetime) and stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        price = float(entry["SpotPrice"])
        if key not in latest or stamp >= latest[key][0]:
            latest[key] = (stamp, price)
    return {key: price for key, (_, price) in latest.items()}


async def fetch_spot_prices(
    ec2: Any, instance_types: Iterable[str] | None = None
) -> dict[tuple[str, str], float]:
    """The latest Linux spot price per (type, zone); ``StartTime=now`` asks EC2 for just those."""
    kwargs: dict[str, Any] = {
        "ProductDescriptions": list(LINUX_PRODUCT_DESCRIPTIONS),
        "StartTime": datetime.now(UTC),
    }
    if instance_types is not None:
        kwargs["InstanceTypes"] = sorted(instance_types)
    history: list[Mapping[str, Any]] = []
    async for page in ec2.get_paginator("describe_spot_price_history").paginate(**kwargs):
        history.extend(page.get("SpotPriceHistory", []))
    return latest_spot_prices(history)
