"""The instance catalogue: every usable EC2 instance type with labels, allocatable and offerings.

Built from DescribeInstanceTypes (shape: vCPUs, memory, architectures, GPUs, ENI limits, whether
it can hibernate), DescribeInstanceTypeOfferings (which zones sell each type) and prices
(``pricing``). Allocatable
is predicted with ``shared.eks``, the same formulas the EKS AMIs and the local kubelets use, so the
planner's idea of a node matches the node that joins. The catalogue is cached and refreshed in
the background: the hot path never waits for EC2.

Building is pure (:func:`build_catalogue` on plain API dicts); :class:`InstanceCatalogue` is the
I/O shell that fetches, caches and refreshes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from launcher.aws.hibernation import can_hibernate
from launcher.aws.pricing import bundled_prices, estimate_on_demand_price, fetch_spot_prices, on_demand_prices
from launcher.aws.session import AWSClients
from launcher.model import ON_DEMAND, SPOT, InstanceType, Offering
from shared import eks, labels
from shared.logs import get_logger
from shared.resources import GPU_NVIDIA, Resources
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

# EC2 architecture names -> Kubernetes' (GOARCH). i386-only and Mac types are not usable.
ARCHITECTURES: Final = {"x86_64": "amd64", "arm64": "arm64"}
DEFAULT_ROOT_VOLUME_BYTES: Final = 20 * eks.GIB  # the EKS AMIs' default root volume
DESCRIBE_PAGE_SIZE: Final = 100  # DescribeInstanceTypes' maximum
_FAMILY: Final = re.compile(r"^(?P<category>[a-z]+)-?(?P<generation>\d+)?")


@dataclass(frozen=True)
class InstanceTypeInfo:
    """The parts of a DescribeInstanceTypes entry the catalogue needs."""

    name: str
    vcpus: int
    memory_mib: int
    architecture: str  # Kubernetes spelling: amd64 | arm64
    enis: int
    ipv4_per_eni: int
    nvidia_gpus: int = 0
    accelerators: int = 0  # every GPU or accelerator, for the price estimate
    bare_metal: bool = False
    usage_classes: frozenset[str] = frozenset({ON_DEMAND, SPOT})
    hibernation_supported: bool = False  # DescribeInstanceTypes' HibernationSupported

    @property
    def family(self) -> str:
        return self.name.partition(".")[0]

    @property
    def size(self) -> str:
        return self.name.partition(".")[2]

    @property
    def category(self) -> str:
        match = _FAMILY.match(self.family)
        return match.group("category") if match else self.family

    @property
    def generation(self) -> str | None:
        match = _FAMILY.match(self.family)
        return match.group("generation") if match else None


def parse_instance_type(raw: Mapping[str, Any]) -> InstanceTypeInfo | None:
    """One DescribeInstanceTypes entry, or None when Kubernetes nodes cannot run on it."""
    arch = next(
        (
            ARCHITECTURES[a]
            for a in raw.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
            if a in ARCHITECTURES
        ),
        None,
    )
    vcpus = int(raw.get("VCpuInfo", {}).get("DefaultVCpus", 0))
    memory_mib = int(raw.get("MemoryInfo", {}).get("SizeInMiB", 0))
    network = raw.get("NetworkInfo", {})
    enis = int(network.get("MaximumNetworkInterfaces", 0))
    ipv4_per_eni = int(network.get("Ipv4AddressesPerInterface", 0))
    if arch is None or vcpus < 1 or memory_mib < 1 or enis < 1 or ipv4_per_eni < 1:
        return None
    gpus = raw.get("GpuInfo", {}).get("Gpus", [])
    nvidia = sum(int(g.get("Count", 0)) for g in gpus if str(g.get("Manufacturer", "")).upper() == "NVIDIA")
    accelerators = sum(int(g.get("Count", 0)) for g in gpus) + sum(
        int(a.get("Count", 0)) for a in raw.get("InferenceAcceleratorInfo", {}).get("Accelerators", [])
    )
    classes = {"on-demand": ON_DEMAND, "spot": SPOT}
    usage = frozenset(classes[c] for c in raw.get("SupportedUsageClasses", []) if c in classes)
    return InstanceTypeInfo(
        name=str(raw["InstanceType"]),
        vcpus=vcpus,
        memory_mib=memory_mib,
        architecture=arch,
        enis=enis,
        ipv4_per_eni=ipv4_per_eni,
        nvidia_gpus=nvidia,
        accelerators=accelerators,
        bare_metal=bool(raw.get("BareMetal", False)),
        usage_classes=usage,
        hibernation_supported=bool(raw.get("HibernationSupported", False)),
    )


def type_labels(info: InstanceTypeInfo) -> dict[str, str]:
    """The labels every node of the type carries (zone and capacity type come per offering)."""
    out = {
        labels.INSTANCE_TYPE: info.name,
        labels.INSTANCE_FAMILY: info.family,
        labels.INSTANCE_SIZE: info.size,
        labels.INSTANCE_CATEGORY: info.category,
        labels.INSTANCE_CPU: str(info.vcpus),
        labels.INSTANCE_MEMORY: str(info.memory_mib),
        labels.ARCH: info.architecture,
        labels.OS: "linux",
    }
    if info.generation is not None:
        out[labels.INSTANCE_GENERATION] = info.generation
    return out


def build_instance_type(
    info: InstanceTypeInfo,
    zones: Iterable[str],
    on_demand_price: float,
    spot_prices: Mapping[str, float],
    root_volume_bytes: int = DEFAULT_ROOT_VOLUME_BYTES,
) -> InstanceType:
    """The planner's view of one type: capacity and allocatable as EKS computes them, offerings.

    A spot offering needs a spot price for its zone; a zone with no spot history has none.
    """
    pods = eks.max_pods(info.enis, info.ipv4_per_eni, info.vcpus)
    capacity = eks.capacity(info.vcpus, info.memory_mib, pods, root_volume_bytes) + Resources(
        {GPU_NVIDIA: info.nvidia_gpus}
    )
    allocatable = eks.allocatable(capacity, pods, info.vcpus)
    offerings: list[Offering] = []
    for zone in sorted(set(zones)):
        if ON_DEMAND in info.usage_classes:
            offerings.append(Offering(zone=zone, capacity_type=ON_DEMAND, price=on_demand_price))
        if SPOT in info.usage_classes and zone in spot_prices:
            offerings.append(Offering(zone=zone, capacity_type=SPOT, price=spot_prices[zone]))
    return InstanceType(
        name=info.name,
        labels=type_labels(info),
        capacity=capacity,
        allocatable=allocatable,
        offerings=tuple(offerings),
        can_hibernate=can_hibernate(info.hibernation_supported, info.memory_mib),
    )


def build_catalogue(
    raw_types: Iterable[Mapping[str, Any]],
    offerings: Mapping[str, Iterable[str]],
    on_demand: Mapping[str, float],
    spot: Mapping[tuple[str, str], float],
    root_volume_bytes: int = DEFAULT_ROOT_VOLUME_BYTES,
) -> list[InstanceType]:
    """Every usable type offered in at least one zone, sorted by name.

    ``offerings`` maps type -> zones; ``on_demand`` type -> USD/h (a missing one is estimated,
    so no type is left without a price); ``spot`` (type, zone) -> USD/h.
    """
    spot_by_type: dict[str, dict[str, float]] = {}
    for (name, zone), spot_price in spot.items():
        spot_by_type.setdefault(name, {})[zone] = spot_price
    out: list[InstanceType] = []
    for raw in raw_types:
        info = parse_instance_type(raw)
        if info is None:
            continue
        zones = list(offerings.get(info.name, ()))
        if not zones:
            continue
        price = on_demand.get(info.name)
        if price is None:
            price = estimate_on_demand_price(
                info.category, info.vcpus, info.memory_mib, info.accelerators, info.architecture
            )
        out.append(
            build_instance_type(info, zones, price, spot_by_type.get(info.name, {}), root_volume_bytes)
        )
    out.sort(key=lambda t: t.name)
    return out


@dataclass(frozen=True)
class CatalogueSettings:
    """``zones`` and ``instance_types`` limit the catalogue (None: the whole region's)."""

    region: str = "us-east-1"
    zones: tuple[str, ...] | None = None
    instance_types: tuple[str, ...] | None = None
    refresh_period: float = 3600.0
    spot_refresh_period: float = 300.0
    root_volume_bytes: int = DEFAULT_ROOT_VOLUME_BYTES
    retry_period: float = 30.0
    pricing_api: bool = True  # False: use the bundled table without asking (no Pricing endpoint)


async def fetch_instance_types(ec2: Any, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """DescribeInstanceTypes, in pages of 100 so response parsing yields to the loop between pages."""
    types: list[dict[str, Any]] = []
    paginator = ec2.get_paginator("describe_instance_types")
    if names is None:
        async for page in paginator.paginate(PaginationConfig={"PageSize": DESCRIBE_PAGE_SIZE}):
            types.extend(page.get("InstanceTypes", []))
        return types
    unique = sorted(set(names))
    for start in range(0, len(unique), DESCRIBE_PAGE_SIZE):
        chunk = unique[start : start + DESCRIBE_PAGE_SIZE]
        async for page in paginator.paginate(InstanceTypes=chunk):
            types.extend(page.get("InstanceTypes", []))
    return types


async def fetch_offerings(
    ec2: Any, zones: Iterable[str] | None = None, names: Iterable[str] | None = None
) -> dict[str, set[str]]:
    """Instance type -> the zones that sell it."""
    filters: list[dict[str, Any]] = []
    if zones is not None:
        filters.append({"Name": "location", "Values": sorted(zones)})
    if names is not None:
        filters.append({"Name": "instance-type", "Values": sorted(set(names))})
    kwargs: dict[str, Any] = {"LocationType": "availability-zone"}
    if filters:
        kwargs["Filters"] = filters
    out: dict[str, set[str]] = {}
    async for page in ec2.get_paginator("describe_instance_type_offerings").paginate(**kwargs):
        for offering in page.get("InstanceTypeOfferings", []):
            out.setdefault(offering["InstanceType"], set()).add(offering["Location"])
    return out


class InstanceCatalogue:
    """The cached catalogue, rebuilt in the background (types hourly, spot prices every 5 min)."""

    def __init__(self, clients: AWSClients, settings: CatalogueSettings = CatalogueSettings()) -> None:
        self.clients = clients
        self.settings = settings
        self._types: list[InstanceType] = []
        self._raw_types: list[dict[str, Any]] = []
        self._offerings: dict[str, set[str]] = {}
        self._on_demand: dict[str, float] = {}
        self._spot: dict[tuple[str, str], float] = {}
        self.on_demand_source = ""
        self.refreshed_at = 0.0
        self.fully_refreshed_at: float | None = None  # monotonic time of the last full refresh
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def _on_demand_prices(self) -> tuple[dict[str, float], str]:
        if not self.settings.pricing_api:
            return dict(bundled_prices()), "bundled-table"
        return await on_demand_prices(self.clients.pricing, self.settings.region)

    async def refresh(self) -> list[InstanceType]:
        """Fetch everything again (concurrently) and rebuild; returns the new catalogue."""
        async with self._lock:
            ec2 = self.clients.ec2
            names = self.settings.instance_types
            started = time.monotonic()
            raw_types, offerings, (on_demand, source), spot = await asyncio.gather(
                fetch_instance_types(ec2, names),
                fetch_offerings(ec2, self.settings.zones, names),
                self._on_demand_prices(),
                fetch_spot_prices(ec2, names),
            )
            self._raw_types, self._offerings, self._on_demand, self._spot = (
                raw_types,
                offerings,
                on_demand,
                spot,
            )
            self.on_demand_source = source
            await self._rebuild()
            self.fully_refreshed_at = time.monotonic()
            log.info(
                "instance catalogue refreshed",
                types=len(self._types),
                on_demand_source=source,
                seconds=round(time.monotonic() - started, 3),
            )
            return self._types

    async def refresh_spot_prices(self) -> list[InstanceType]:
        async with self._lock:
            self._spot = await fetch_spot_prices(self.clients.ec2, self.settings.instance_types)
            await self._rebuild()
            return self._types

    async def _rebuild(self) -> None:
        # A worker thread: building ~1,400 types takes a second or more on a busy core, which on
        # the event loop would stall lease renewal and the demand stream. Callers hold ``_lock``,
        # and the inputs are replaced (never mutated) by refreshes, so the thread sees a snapshot.
        self._types = await asyncio.to_thread(
            build_catalogue,
            self._raw_types,
            self._offerings,
            self._on_demand,
            self._spot,
            self.settings.root_volume_bytes,
        )
        async with self._changed:
            self.refreshed_at = time.monotonic()
            self._changed.notify_all()

    async def wait_refreshed(self, newer_than: float = 0.0) -> list[InstanceType]:
        """Wait until the catalogue was rebuilt after ``newer_than`` (a ``refreshed_at`` value)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.refreshed_at > newer_than and bool(self._types))
            return self._types

    async def instance_types(self) -> list[InstanceType]:
        """The cached catalogue; the first call (before any refresh) fetches it."""
        if not self._types:
            return await self.refresh()
        return self._types

    def cached(self) -> list[InstanceType]:
        """The catalogue as last built, without I/O (empty before the first refresh)."""
        return self._types

    def start(self) -> None:
        """Refresh in the background until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="instance-catalogue")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            # Measured from the last full refresh, wherever it came from: a leader refreshes
            # before starting this loop, which must not fetch everything again at once.
            last_full = self.fully_refreshed_at
            full = (
                not self._types
                or last_full is None
                or time.monotonic() - last_full >= self.settings.refresh_period
            )
            try:
                if full:
                    await self.refresh()
                else:
                    await self.refresh_spot_prices()
                delay = min(self.settings.refresh_period, self.settings.spot_refresh_period)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("instance catalogue refresh failed", error=str(exc), full=full)
                delay = self.settings.retry_period
            await asyncio.sleep(delay)
