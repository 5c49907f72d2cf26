"""Regenerate ``pricing_table.csv`` from the AWS Pricing API (needs real AWS credentials).

    python -m launcher.aws.refresh_pricing_table --region us-east-1 [--families m5,c5,...]

Keeps the table to the common families (the ones already in it, unless ``--families`` says
otherwise) so it stays small; every other type is estimated at runtime. Writes atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from launcher.aws.pricing import TABLE_PATH, bundled_prices, fetch_on_demand_prices
from launcher.aws.session import AWSClients, AWSSettings

HEADER = """# jitnode fallback on-demand prices: Amazon EC2, Linux, shared tenancy, no pre-installed
# software, region {region}, USD per hour. Source: the public AWS EC2 On-Demand price list
# (https://aws.amazon.com/ec2/pricing/on-demand/, the same figures the Pricing API's
# AmazonEC2 offer serves). Used only when the Pricing API is unreachable; types missing here are
# priced by the per-vCPU/per-GiB model in launcher/aws/pricing.py. Regenerate with:
#   python -m launcher.aws.refresh_pricing_table --region {region}
instance_type,usd_per_hour
"""


def render_table(prices: Mapping[str, float], families: Iterable[str], region: str) -> str:
    """The CSV text: the chosen families' types, sorted by family then by price."""
    wanted = set(families)
    rows = sorted(
        ((name, price) for name, price in prices.items() if name.partition(".")[0] in wanted),
        key=lambda row: (row[0].partition(".")[0], row[1], row[0]),
    )
    body = "".join(
        f"{name},{format(round(price, 6), '.6f').rstrip('0').rstrip('.')}\n" for name, price in rows
    )
    return HEADER.format(region=region) + body


async def refresh(region: str, families: Iterable[str], output: Path) -> int:
    async with AWSClients(AWSSettings(region=region, pricing_timeout=30.0)) as clients:
        prices = await fetch_on_demand_prices(clients.pricing, region)
    if not prices:
        raise SystemExit("the Pricing API returned no prices; the table is unchanged")
    text = render_table(prices, families, region)
    temporary = output.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, output)
    return text.count("\n") - HEADER.count("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--families", help="comma-separated families (default: those in the current table)")
    parser.add_argument("--output", type=Path, default=TABLE_PATH)
    args = parser.parse_args(argv)
    families = (
        [f.strip() for f in args.families.split(",") if f.strip()]
        if args.families
        else sorted({name.partition(".")[0] for name in bundled_prices()})
    )
    rows = asyncio.run(refresh(args.region, families, args.output))
    print(f"wrote {rows} prices for {len(families)} families to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
