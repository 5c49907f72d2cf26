"""Dollars per hour for the demo's cost figure, from the launcher's bundled price table.

The demo prices what it observed by instance type rather than asking the launcher, so the same
figure comes out on the local cluster and on a real one. Spot capacity is priced with the
catalogue's long-run spot discount: an estimate, as spot prices move.
"""

from __future__ import annotations

from collections.abc import Mapping

from launcher.aws.offline import SPOT_DISCOUNT
from launcher.aws.pricing import bundled_prices
from localcluster.demo.snapshot import PriceOf
from shared import labels


def price_lookup(on_demand: Mapping[str, float]) -> PriceOf:
    """A price function over an on-demand table (USD per hour by instance type)."""

    def price_of(instance_type: str, capacity_type: str) -> float | None:
        price = on_demand.get(instance_type)
        if price is None:
            return None
        return price * SPOT_DISCOUNT if capacity_type == labels.CAPACITY_TYPE_SPOT else price

    return price_of


def load_prices() -> PriceOf:
    """The lookup over the bundled us-east-1 table (blocking on first call: reads the CSV)."""
    return price_lookup(bundled_prices())
